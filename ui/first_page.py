"""The page a browser gets while the explorer starts: a picture of the map at once, the
explorer a few seconds later on the same address.

Most of a start is Python building the explorer before its server can answer at all: importing
Gradio and the app (about 2.5 s on this project's 2-core machine), reading the table and
building ~175 components (1-3 s), while the map's columns sit ready in the column cache. So
`FirstPage.start` binds the explorer's address first, before Gradio is imported, and answers it
from a small standard-library server in a thread:
    "/"                the first page (ui/assets/first-page.html): the whole map as a density
                       image, coloured by label as the map's default view, and a line saying
                       the explorer follows; it asks the address again every 250 ms and reloads
                       once the answer lacks STARTING_HEADER (the explorer answers);
    PREVIEW_ROUTE      that image (PNG, PREVIEW_SIZE; the page stretches it as Plotly does);
    another page       (a request accepting HTML, e.g. /objects/) the same page without the picture;
    anything else      503 with Retry-After: 1 (a page left open from before a restart).
`hand_over()` stops answering and gives the listening socket to the explorer's server
(ui/app.py `serve`): connections that arrive in between wait in the socket's backlog, so no
browser sees a refused connection.

The picture is drawn in a forked child process from the cached columns (memory-mapped, shared
with the child): drawn in a thread, its work and the import of Gradio slowed each other down
to about their sum (both hold Python's lock, and page faults of one process serialise), while
a child runs on the other core. Where there is no fork, a thread draws it.

No picture where the store keeps no column cache (a Qdrant server: reading every point twice
would slow the start it is meant to hide) or a login is configured (APP_AUTH: this page cannot
check it); the page then only says that the explorer is starting. The picture shows every
point: tags are not in the cache, so points tagged `excluded` are drawn too.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np

from store import Collection, Columns
from store.schema import LABEL, X, Y
from ui.map import density
from ui.map.palette import largest_first
from ui.text import html_text

log = logging.getLogger(__name__)

PAGE = (Path(__file__).parent / "assets" / "first-page.html").read_text(encoding="utf-8")
PREVIEW_ROUTE = "/es-first/map.png"
STARTING_HEADER = "X-Embedscape-Starting"
PREVIEW_SIZE = (1200, 900)  # pixels; about the map's share of a laptop screen
MARGIN = 0.04  # share of the points' extent left blank around them, like the map's autorange
PREVIEW_WAIT_S = 30.0  # the longest a request waits for the picture


class FirstPage:
    """Answers the explorer's address until `hand_over`; see the module docstring."""

    def __init__(self, sock: socket.socket, collection: Collection, summary: str) -> None:
        self._socket = sock
        self._name = collection.name
        self._summary = summary
        self._picture: bytes | None = None
        self._drawn = threading.Event()  # set once the picture is there or will not be
        self._server = _Server(sock, self)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="embedscape-first-page", daemon=True)

    @classmethod
    def start(cls, host: str, port: int, collection: Collection, show_map: bool = True) -> FirstPage:
        """Bind host:port (OSError: the address is taken), start drawing, and answer."""
        sock = socket.create_server((host, port), backlog=2048)  # uvicorn's default backlog
        collection.begin_start()  # reads wait for the start's end rather than open the engine
        columns = collection.cached_columns([LABEL, X, Y]) if show_map else None
        page = cls(sock, collection, f"{len(columns):,} points" if columns is not None else "")
        if columns is None:
            page._drawn.set()
        else:
            page._draw(columns)  # before any thread of ours runs: the child is forked here
        page._thread.start()
        return page

    @property
    def port(self) -> int:
        return int(self._socket.getsockname()[1])

    def hand_over(self) -> socket.socket:
        """Stop answering; the still-listening socket, for the explorer's server."""
        self._server.shutdown()
        self._thread.join()
        return self._socket

    def page(self, picture: bool = True) -> bytes:
        """The first page; `picture`: with the map's picture where there is one (the page at "/")."""
        picture = picture and bool(self._summary)
        text = (PAGE.replace("__TITLE__", html_text(self._name)).replace("__SUMMARY__", self._summary if picture else "")
                .replace("__PREVIEW__", "1" if picture else "0")
                .replace("__PREVIEW_ROUTE__", PREVIEW_ROUTE).replace("__STARTING_HEADER__", STARTING_HEADER))
        return text.encode()

    def picture(self) -> bytes | None:
        """The map's picture (PNG), once drawn; None where there is none."""
        self._drawn.wait(PREVIEW_WAIT_S)
        return self._picture

    # --- drawing ------------------------------------------------------------------
    def _draw(self, columns: Columns) -> None:
        if not hasattr(os, "fork"):
            threading.Thread(target=self._draw_here, args=(columns,), daemon=True).start()
            return
        read, write = os.pipe()
        child = os.fork()
        if child == 0:  # the child: draw, write, and leave without running any of the parent's exit code
            status = 1
            try:
                os.close(read)
                with os.fdopen(write, "wb") as out:
                    out.write(picture_png(columns))
                status = 0
            finally:
                os._exit(status)
        os.close(write)
        threading.Thread(target=self._collect, args=(read, child), name="embedscape-first-picture",
                         daemon=True).start()

    def _collect(self, read: int, child: int) -> None:
        with os.fdopen(read, "rb") as pipe:
            data = pipe.read()
        _, status = os.waitpid(child, 0)
        if status == 0 and data:
            self._picture = data
        else:
            log.warning("the first page's picture of the map was not drawn (status %s)", status)
        self._drawn.set()

    def _draw_here(self, columns: Columns) -> None:
        try:
            self._picture = picture_png(columns)
        except Exception:  # noqa: BLE001 - the page says the explorer is starting, without a picture
            log.exception("the first page's picture of the map was not drawn")
        finally:
            self._drawn.set()


def picture_png(columns: Columns) -> bytes:
    """Every point of `columns` (label, x, y) as a density image coloured by label, the largest
    labels first as ui/figure.py colours them, over the points' extent: PNG bytes."""
    names, codes = columns.text(LABEL)
    codes = np.asarray(codes)
    counts = np.bincount(codes[codes >= 0], minlength=len(names)) if len(names) else np.zeros(0, np.int64)
    counts = np.append(counts, np.count_nonzero(codes < 0))  # no label: a category of its own
    remap, colours = largest_first(counts)
    categories = remap[np.where(codes >= 0, codes, len(names))]
    x = np.asarray(columns.floats(X), dtype=np.float32)
    y = np.asarray(columns.floats(Y), dtype=np.float32)
    finite = np.isfinite(x) & np.isfinite(y)
    if not finite.all():
        categories = np.where(finite, categories, len(colours)).astype(np.uint16)  # not drawn
        x, y = np.nan_to_num(x), np.nan_to_num(y)
    view = _extent(x[finite], y[finite])
    return density.png(density.render(x, y, categories, density.hex_colours(colours), view))


def _extent(x: np.ndarray, y: np.ndarray) -> density.View:
    x0, x1 = (float(x.min()), float(x.max())) if len(x) else (0.0, 1.0)
    y0, y1 = (float(y.min()), float(y.max())) if len(y) else (0.0, 1.0)
    dx, dy = max(x1 - x0, 1e-9) * MARGIN, max(y1 - y0, 1e-9) * MARGIN
    return density.View(x0 - dx, x1 + dx, y0 - dy, y1 + dy, *PREVIEW_SIZE)


class _Server(ThreadingHTTPServer):
    """A ThreadingHTTPServer on a socket bound elsewhere (FirstPage.start)."""

    daemon_threads = True

    def __init__(self, sock: socket.socket, page: FirstPage) -> None:
        super().__init__(sock.getsockname()[:2], _Handler, bind_and_activate=False)
        self.socket.close()
        self.socket = sock
        self.first_page = page


class _Handler(BaseHTTPRequestHandler):
    """One request to the first page; every answer closes its connection (HTTP/1.0), so none
    is left open when the explorer's server takes the socket."""

    server: _Server

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._answer(body=True)

    def do_HEAD(self) -> None:  # noqa: N802
        self._answer(body=False)

    def do_POST(self) -> None:  # noqa: N802
        self._send(HTTPStatus.SERVICE_UNAVAILABLE, b"starting\n", "text/plain; charset=utf-8", True)

    def _answer(self, body: bool) -> None:
        page = self.server.first_page
        path = urlsplit(self.path).path
        if path == "/" or "text/html" in self.headers.get("Accept", ""):
            # Another explorer's page (/objects/) opened meanwhile: the page without the
            # picture, which reloads as well.
            self._send(HTTPStatus.OK, page.page(picture=path == "/"), "text/html; charset=utf-8", body)
            return
        picture = page.picture() if path == PREVIEW_ROUTE else None
        if picture is not None:
            self._send(HTTPStatus.OK, picture, "image/png", body)
        elif path == PREVIEW_ROUTE:
            self._send(HTTPStatus.NOT_FOUND, b"no picture\n", "text/plain; charset=utf-8", body)
        else:
            self._send(HTTPStatus.SERVICE_UNAVAILABLE, b"starting\n", "text/plain; charset=utf-8", body)

    def _send(self, status: HTTPStatus, content: bytes, kind: str, body: bool) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(content)))
        self.send_header("Cache-Control", "no-store")
        self.send_header(STARTING_HEADER, "1")
        if status == HTTPStatus.SERVICE_UNAVAILABLE:
            self.send_header("Retry-After", "1")
        self.end_headers()
        if body:
            self.wfile.write(content)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - http.server's signature
        log.debug("first page: " + format, *args)
