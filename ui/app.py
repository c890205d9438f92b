"""Assemble the explorer app and serve it.

    build_app(collection, text_encoder=None, pages=()) -> gr.Blocks
    create_server_app(collection, ...) -> FastAPI      # Gradio mounted at "/", plus image routes
    serve(collection, host, port, text_encoder=None, auth=None)        # blocking
    start_server(collection, host, port, ...) -> RunningServer         # in a thread (tests, bench)

Layout: the map (with its colour / filter / search controls) on the left, tabs on the
right. The Explorer tab is ui/explorer.py; later pages are `(title, build)` pairs in
`pages`, each `build(ctx: AppContext)` (see ui/context.py) runs inside its own tab.
"""
from __future__ import annotations

import gc
import os
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import gradio as gr
import uvicorn
from fastapi import FastAPI, Request
from starlette.routing import Mount

from store import Collection
from ui import explorer, export_page, figure, metrics_page
from ui import clusters_page, performance_page, quality_page
from ui.context import AppContext, TextEncoder
from ui.live_table import LiveTable
from ui.images import ImageServer, add_image_routes
from ui.map_component import add_plotly_route, add_points_route, map_component, page_head_html
from ui.state import MapState
from ui.table import PointTable
from ui.views import CSS as VIEWS_CSS

Page = tuple[str, Callable[[AppContext], None]]
APP_CSS = VIEWS_CSS + """
#es-map-col { min-width: 520px; }
#es-pager { text-align: center; }
"""
# Tabs every app gets after the Explorer (then the `pages` passed in); append to add one.
DEFAULT_PAGES: list[Page] = [
    ("Metrics", metrics_page.build),
    ("Filter & Export", export_page.build),
    ("Label quality", quality_page.build),
    ("Clusters", clusters_page.build),
    ("Model performance", performance_page.build),
]
# Other writers' edits show within this many seconds (the map's own timer ticks as often).
DEFAULT_REFRESH_S = 10.0
Auth = Callable[[str, str], bool] | tuple[str, str] | list[tuple[str, str]] | None


def build_app(collection: Collection, text_encoder: TextEncoder | None = None, pages: Sequence[Page] = (),
              live: LiveTable | None = None) -> gr.Blocks:
    """The explorer as a Blocks app for `collection` (its table is read here, or given)."""
    live = live or LiveTable(collection)
    table = live.table
    figure.layout(), figure.trace_template(len(table))  # plotly's validators load here, not on page load
    metadata = collection.read_metadata()
    with gr.Blocks(title=f"embedscape · {collection.name}") as demo:
        state = gr.State(MapState(colour_by=explorer.default_colour(table), table_version=table.version))
        gr.Markdown(f"### embedscape · `{collection.name}` · {table.size:,} images · model `{metadata.get('model', '?')}`")
        with gr.Row():
            with gr.Column(scale=3, elem_id="es-map-col"):
                controls = explorer.build_map_controls(table)
                chart = map_component()
                live_controls = explorer.build_live_controls(shared=not collection.exclusive)
                search = explorer.build_search_controls(text_encoder is not None)
            with gr.Column(scale=2):
                ctx = AppContext(collection, live, text_encoder, chart, state)
                with gr.Tabs():
                    with gr.Tab("Explorer") as tab, ctx.page("Explorer", tab, lazy=False):
                        tagging = explorer.build_explorer(ctx, controls, search)
                    for title, build in [*DEFAULT_PAGES, *pages]:
                        with gr.Tab(title) as tab, ctx.page(title, tab):
                            build(ctx)
        # The first message to the map (coordinates, colours) goes per session on load, from a
        # table checked against the collection (other writers' edits since the last check).
        explorer.wire_live_updates(ctx, controls, live_controls, tagging, demo.load)
        ctx.wire_followers()
    demo.embedscape_context = ctx  # type: ignore[attr-defined]  # for tests and tools
    return demo


def create_server_app(collection: Collection, text_encoder: TextEncoder | None = None, auth: Auth = None,
                      pages: Sequence[Page] = ()) -> FastAPI:
    """A FastAPI app: the image routes, then Gradio mounted at "/" (allowed files: plotly.js only)."""
    live = LiveTable(collection)
    demo = build_app(collection, text_encoder, pages, live=live)
    demo.queue(default_concurrency_limit=4)
    _warm_up_event_processing()
    _freeze_startup_objects()
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    images = ImageServer(collection, row_to_id=lambda row: _row_id(live.table, row))
    authorize = (lambda request: _logged_in(app, request)) if auth else None
    add_image_routes(app, images, authorize)
    add_plotly_route(app)
    add_points_route(app, lambda: live.table, authorize)
    # No allowed_paths and no static paths: Gradio's file= route serves none of our files.
    gr.mount_gradio_app(app, demo, path="/", auth=auth, allowed_paths=[], css=APP_CSS, head=page_head_html())
    app.state.embedscape = demo
    live.start(refresh_interval())
    return app


def refresh_interval() -> float:
    """Seconds between checks for other writers' edits (EMBEDSCAPE_REFRESH_S; 0 turns it off).
    Only collections other processes can write are checked (a Qdrant server)."""
    return float(os.environ.get("EMBEDSCAPE_REFRESH_S", str(DEFAULT_REFRESH_S)))


def _row_id(table: PointTable, row: int) -> str | None:
    return str(table.ids[row]) if 0 <= row < len(table) and table.alive[row] else None


def _warm_up_event_processing() -> None:
    """Pay Gradio's first-event costs at start-up instead of in the first page's load.

    Gradio wraps every event in a matplotlib backend switch, so where matplotlib is installed
    (mlxtend brings it) the first event of a server imports it: 0.5 s that the first page
    would otherwise wait for.
    """
    switch = getattr(gr.utils, "MatplotlibBackendMananger", None)  # sic: Gradio's spelling
    if switch is not None:
        with switch():
            pass


def _freeze_startup_objects() -> None:
    """Take what start-up loaded (the table's columns, Gradio's blocks) out of the garbage
    collector's passes. A full pass over them took 0.44 s at 70,000 points and landed in
    whichever request happened to trigger it (measured inside a tag edit). Objects freed later
    by reference counting are still freed; only cycles among them would stay."""
    gc.collect()
    gc.freeze()


def serve(collection: Collection, host: str = "127.0.0.1", port: int = 7860,
          text_encoder: TextEncoder | None = None, auth: Auth = None) -> None:
    """Serve the explorer until interrupted."""
    app = create_server_app(collection, text_encoder, auth)
    print(f"embedscape explorer on http://{host}:{port}  (collection '{collection.name}')", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")


@dataclass
class RunningServer:
    """A server started by `start_server`; `stop()` shuts it down."""

    url: str
    server: uvicorn.Server
    thread: threading.Thread
    app: FastAPI

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.app.state.embedscape.embedscape_context.live.stop()


def start_server(collection: Collection, host: str = "127.0.0.1", port: int = 0,
                 text_encoder: TextEncoder | None = None, auth: Auth = None,
                 pages: Sequence[Page] = ()) -> RunningServer:
    """Serve in a background thread (port 0: a free port); returns once it accepts requests."""
    port = port or free_port(host)
    app = create_server_app(collection, text_encoder, auth, pages)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="embedscape-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the explorer did not start on {host}:{port}")
        time.sleep(0.02)
    return RunningServer(f"http://{host}:{port}", server, thread, app)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _logged_in(app: FastAPI, request: Request) -> bool:
    """The image routes follow Gradio's login: a valid Gradio session cookie is required."""
    for route in app.routes:
        if isinstance(route, Mount) and hasattr(route.app, "tokens"):
            gradio_app: Any = route.app
            token = (request.cookies.get(f"access-token-{gradio_app.cookie_id}")
                     or request.cookies.get(f"access-token-unsecure-{gradio_app.cookie_id}"))
            return gradio_app.tokens.get(token) is not None
    return False
