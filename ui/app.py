"""Assemble the explorer app and serve it.

    build_app(collection, text_encoder=None, pages=()) -> gr.Blocks
    create_server_app(collection, ..., objects=None) -> FastAPI   # Gradio at "/" (and "/objects/"), image routes
    serve(collection, host, port, text_encoder=None, auth=None, objects=None)   # blocking
    start_server(collection, host, port, ...) -> RunningServer         # in a thread (tests, bench)

Layout: the map (with its colour / filter / search controls) on the left, tabs on the
right, split by a handle the user drags (ui/page_layout.py); tab titles wrap onto more rows
rather than hide in a menu. The Explorer tab is ui/explorer.py; later pages are `(title, build)` pairs in
`pages`, each `build(ctx: AppContext)` (see ui/context.py) runs inside its own tab.

A detection dataset (`objects`: the object collection NAME-objects beside the images) is
served as two full explorers built the same way, the images at "/" and the boxes at
"/objects/", so every tab works on boxes as on images. A header switch links them and
"Show their images / objects" hands a selection over (ui/handoff.py). Each explorer has its
own map rows (its own view routes and row thumbnails under its prefix); the id routes
(/thumb, /image, /boxes) serve the points of both.
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
from fastapi.responses import RedirectResponse
from starlette.routing import Mount

from detection.boxes import box_of, boxes_of_image, images_of_objects, is_object_collection, objects_of_images
from store import Collection
from ui import explorer, export_page, figure, metrics_page
from ui import box_quality_page, clusters_page, labelling_page, models_page, performance_page, quality_page
from ui.context import AppContext, TextEncoder
from ui.edit_watch import edit_watch_control
from ui.explorer import PointKind
from ui.first_page import FirstPage
from ui.handoff import CSS as HANDOFF_CSS
from ui.handoff import ExplorerLink, HandoffStore, build_handover, switch_html
from ui.live_table import LiveTable
from ui.images import ImageServer, add_image_routes, add_row_route
from ui.map.component import add_plotly_route, map_component, page_head_html
from ui.map.overlays import max_thumbnails
from ui.map.routes import add_view_routes, max_points
from ui.map.share_link import UrlParams, share_link_control, wire_share_link
from ui.sessions import release_closed_sessions
from ui.state import MapState
from ui.table import PointTable
from ui.text import markdown_code
from ui.page_layout import CSS as LAYOUT_CSS
from ui.page_layout import MAP_COLUMN, PANELS_COLUMN, split_handle
from ui.panel_html import CSS as PANEL_CSS

Page = tuple[str, Callable[[AppContext], None]]
APP_CSS = PANEL_CSS + HANDOFF_CSS + LAYOUT_CSS
OBJECTS_PREFIX = "/objects"  # where a detection dataset's boxes are explored
# Tabs an object explorer gets after the default ones.
OBJECT_PAGES: list[Page] = [("Duplicate boxes", box_quality_page.build)]
# Tabs every app gets after the Explorer (then the `pages` passed in); append to add one.
DEFAULT_PAGES: list[Page] = [
    ("Metrics", metrics_page.build),
    ("Filter & Export", export_page.build),
    ("Label quality", quality_page.build),
    ("Clusters", clusters_page.build),
    ("Model performance", performance_page.build),
    ("Models", models_page.build),
    ("Label next", labelling_page.build),
]
# Other writers' edits show within this many seconds (the map's own timer ticks as often).
DEFAULT_REFRESH_S = 10.0
# The start is over once the server has had no new request for this long after a page sent its
# first event, or START_MAX_S after that: then an embedded collection opens its engine (store/edge.py).
START_IDLE_S = 2.0
START_MAX_S = 30.0
FIRST_EVENT_PATH = "/gradio_api/queue/join"
STREAM_PATHS = ("/gradio_api/queue/data", "/gradio_api/heartbeat/")  # Gradio's event streams (in the path)
Auth = Callable[[str, str], bool] | tuple[str, str] | list[tuple[str, str]] | None
# Seconds an idle keep-alive connection stays open. uvicorn's default (5 s) equals httpx's pool
# expiry (5 s) and is shorter than a proxy's (nginx, AWS ALB: 60 s) or Chromium's: a client
# reusing a connection the server is closing that moment gets it cut (httpx.ReadError; 8 of
# them in bench/bench_load.py's run A3, docs/BENCHMARKS.md). A server keeps its connections
# longer than any client's pool, so the client always gives them up first.
KEEP_ALIVE_S = 75
# Gradio's queue looks for events to start every 1 ms while it has none, and for progress to
# send every 10 ms: an idle server used 80 ms of CPU a second (8 % of a core, per explorer),
# and every request under load competes with those wake-ups. An event now starts at most
# QUEUE_POLL_S later (events take 40 ms and more of server time); no event of the app reports
# progress (gr.Progress), so that loop has nothing to send.
QUEUE_POLL_S = 0.01
PROGRESS_POLL_S = 0.1


def build_app(collection: Collection, text_encoder: TextEncoder | None = None, pages: Sequence[Page] = (),
              live: LiveTable | None = None, prefix: str = "", link: ExplorerLink | None = None,
              kind: PointKind | None = None, url_params: UrlParams | None = None,
              map_thumbnails: int | None = None, objects: Collection | None = None) -> gr.Blocks:
    """The explorer as a Blocks app for `collection` (its table is read here, or given), served
    under the URL `prefix`; `link` places it beside the other explorer of a detection dataset.
    `map_thumbnails`: up to this many points in view are drawn as their thumbnails (default
    $EMBEDSCAPE_MAP_THUMBNAILS or ui/map/overlays.py DEFAULT_THUMBNAILS; 0: never). `objects`: the
    object collection of an image collection (its detector runs feed the Label next tab)."""
    live = live or LiveTable(collection)
    table = live.table
    kind = kind or point_kind(collection)
    own_pages = OBJECT_PAGES if is_object_collection(collection) else []
    figure.layout(), figure.trace_template(len(table))  # plotly's validators load here, not on page load
    metadata = collection.read_metadata()
    with gr.Blocks(title=f"embedscape · {collection.name}", fill_width=True) as demo:
        state = gr.State(MapState(colour_by=explorer.default_colour(table), table_version=table.version))
        with gr.Row(equal_height=True):
            gr.Markdown(f"### embedscape · {markdown_code(collection.name)} · {table.size:,} "
                        f"{kind.noun or 'images'} · model {markdown_code(metadata.get('model', '?'))}")
            if link is not None:
                gr.HTML(switch_html(link), elem_id="es-switch-box")
            share = share_link_control()
        edit_watch = edit_watch_control()  # rendered below the page: a fixed notice, no room taken
        with gr.Row():
            with gr.Column(elem_id=MAP_COLUMN, min_width=0):
                controls = explorer.build_map_controls(table)
                chart = map_component(prefix, max_thumbnails(map_thumbnails))
                live_controls = explorer.build_live_controls(shared=not collection.exclusive)
                search = explorer.build_search_controls(text_encoder is not None)
            split_handle()
            with gr.Column(elem_id=PANELS_COLUMN):
                ctx = AppContext(collection, live, text_encoder, chart, state, edit_ack=edit_watch, objects=objects)
                with gr.Tabs(overflow_behavior="wrap"):
                    with gr.Tab("Explorer") as tab, ctx.page("Explorer", tab, lazy=False):
                        if link is not None:
                            build_handover(ctx, link)
                        tagging = explorer.build_explorer(ctx, controls, search, kind)
                    for title, build in [*DEFAULT_PAGES, *own_pages, *pages]:
                        with gr.Tab(title) as tab, ctx.page(title, tab):
                            build(ctx)
        edit_watch.render()
        # The first message to the map (coordinates, colours) goes per session on load, from a
        # table checked against the collection (other writers' edits since the last check).
        explorer.wire_live_updates(ctx, controls, live_controls, tagging, demo.load, url_params or UrlParams())
        wire_share_link(ctx, share)
        ctx.wire_followers()
    demo.embedscape_context = ctx  # type: ignore[attr-defined]  # for tests and tools
    return demo


def point_kind(collection: Collection, objects: Collection | None = None) -> PointKind:
    """Boxes are "objects", and their detail view is their whole image with every box of it;
    images that have boxes (`objects`: their object collection) show them too."""
    if is_object_collection(collection):
        def boxes_of_box(point: str) -> list[tuple[str, str]]:
            box = box_of(collection, point)
            return [] if box is None else [(b.point_id, b.label) for b in boxes_of_image(collection, box.image_id)]

        return PointKind("objects", boxes_of_box)
    if objects is not None:
        return PointKind("", lambda point: [(b.point_id, b.label) for b in boxes_of_image(objects, point)])
    return PointKind()


@dataclass(frozen=True)
class Explorer:
    """One explorer of the server: a collection under a URL prefix."""

    collection: Collection
    prefix: str
    link: ExplorerLink | None
    kind: PointKind


def explorers(collection: Collection, objects: Collection | None, handoff: HandoffStore) -> list[Explorer]:
    """The image explorer at "/" and, for a detection dataset, the object explorer at OBJECTS_PREFIX,
    linked both ways. A lone object collection is one explorer at "/"."""
    if objects is None:
        return [Explorer(collection, "", None, point_kind(collection))]
    to_images = ExplorerLink("Objects", OBJECTS_PREFIX + "/", "objects", "Images", "/", "images",
                             lambda ids: images_of_objects(objects, ids), handoff, images_first=False)
    to_objects = ExplorerLink("Images", "/", "images", "Objects", OBJECTS_PREFIX + "/", "objects",
                              lambda ids: objects_of_images(objects, ids), handoff, images_first=True)
    return [Explorer(collection, "", to_objects, point_kind(collection, objects)),
            Explorer(objects, OBJECTS_PREFIX, to_images, point_kind(objects))]


def create_server_app(collection: Collection, text_encoder: TextEncoder | None = None, auth: Auth = None,
                      pages: Sequence[Page] = (), objects: Collection | None = None,
                      map_points: int | None = None, map_thumbnails: int | None = None) -> FastAPI:
    """A FastAPI app: the image routes, then Gradio mounted at "/" (allowed files: plotly.js only);
    with `objects` (the image collection's object collection) the boxes' explorer at "/objects/".
    `map_points`: the most points the map draws as points (more: a density image); default
    $EMBEDSCAPE_MAP_POINTS or ui/map/routes.py DEFAULT_MAX_POINTS; `map_thumbnails`: see `build_app`."""
    handoff = HandoffStore()
    sites = explorers(collection, objects, handoff)
    for site in sites:
        site.collection.begin_start()  # until StartWatch ends it
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    authorize = (lambda request: _logged_in(app, request)) if auth else None
    images = ImageServer([site.collection for site in sites])
    demos: dict[str, gr.Blocks] = {}
    for site in sites:
        live = LiveTable(site.collection)
        demo = build_app(site.collection, text_encoder, pages, live=live, prefix=site.prefix, link=site.link,
                         kind=site.kind, url_params=UrlParams(handoff), map_thumbnails=map_thumbnails,
                         objects=objects if site.collection is not objects else None)
        demo.queue(default_concurrency_limit=4)
        _poll_less(demo)
        _undocumented_events(demo)
        release_closed_sessions(demo)  # a closed page's state goes minutes after, not an hour (ui/sessions.py)
        add_row_route(app, site.prefix, images, lambda row, live=live: _row_id(live.table, row), authorize)
        add_view_routes(app, lambda live=live: live.table, max_points(map_points), authorize, site.prefix)
        demos[site.prefix] = demo
    _warm_up_event_processing()
    _freeze_startup_objects()
    add_image_routes(app, images, authorize)
    add_plotly_route(app)
    # Longest prefix first: the app at "/" would take every path. No allowed_paths and no
    # static paths: Gradio's file= route serves none of our files.
    for prefix in sorted(demos, key=len, reverse=True):
        if prefix:
            app.add_api_route(prefix, _slash_redirect(prefix), methods=["GET"])
        gr.mount_gradio_app(app, demos[prefix], path=prefix or "/", auth=auth, allowed_paths=[], css=APP_CSS,
                            head=page_head_html(), footer_links=["gradio", "settings", "runs"])
    _share_login(app)
    app.add_middleware(StartWatch, [site.collection for site in sites])
    app.state.embedscape = demos[""]
    app.state.explorers = demos
    app.state.links = {site.prefix: site.link for site in sites}
    for demo in demos.values():
        demo.embedscape_context.live.start(refresh_interval())
    return app


class StartWatch:
    """ASGI middleware that tells the collections when the app's start is over: a page has sent
    its first event (through Gradio's queue: its data is asked for), and no request has been
    answered or begun for START_IDLE_S since (or START_MAX_S passed). An embedded
    collection's engine holds Python's GIL while it loads its shard, so loading it while the
    first page is requested would hold that page up for as long (store/edge.py)."""

    def __init__(self, app: Any, collections: Sequence[Collection]) -> None:
        self.app = app
        self._collections = list(collections)
        self._last = 0.0  # monotonic time of the latest request's start or end; 0: none yet
        self._running = 0  # requests being answered (the map's image, thumbnails), streams left out
        self._thread: threading.Thread | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        self._last = time.monotonic()
        if self._thread is None and path.endswith(FIRST_EVENT_PATH):
            self._thread = threading.Thread(target=self._watch, name="embedscape-start", daemon=True)
            self._thread.start()
        streaming = any(part in path for part in STREAM_PATHS)  # open for the whole session
        self._running += not streaming
        try:
            await self.app(scope, receive, send)
        finally:
            self._running -= not streaming
            self._last = time.monotonic()

    def _watch(self) -> None:
        deadline = time.monotonic() + START_MAX_S
        while time.monotonic() < deadline and (self._running or time.monotonic() - self._last < START_IDLE_S):
            time.sleep(0.2)
        for collection in self._collections:
            collection.finish_start()


def refresh_interval() -> float:
    """Seconds between checks for other writers' edits (EMBEDSCAPE_REFRESH_S; 0 turns it off).
    Only collections other processes can write are checked (a Qdrant server)."""
    return float(os.environ.get("EMBEDSCAPE_REFRESH_S", str(DEFAULT_REFRESH_S)))


def _row_id(table: PointTable, row: int) -> str | None:
    return str(table.ids[row]) if 0 <= row < len(table) and table.alive[row] else None


def _poll_less(demo: gr.Blocks) -> None:
    """Gradio's queue polls QUEUE_POLL_S / PROGRESS_POLL_S when idle (its attributes; no option)."""
    queue: Any = demo._queue  # type: ignore[attr-defined]
    queue.sleep_when_free = QUEUE_POLL_S
    queue.progress_update_sleep_when_free = PROGRESS_POLL_S


def _undocumented_events(demo: gr.Blocks) -> None:
    """The page's events stay callable (the page calls them by number) but out of Gradio's API
    page, whose "Use via API" link the footer drops. Gradio writes every documented event's
    API description and code examples into each page it serves: 26 of the page's 51 ms of
    server time and 430 of its 660 KB at 67 events (bench/bench_load.py --page-cost). The
    events need a session's state, so they were never an API to call from outside."""
    for fn in demo.fns.values():
        if fn.api_visibility == "public":  # a private one stays private
            fn.api_visibility = "undocumented"


def _warm_up_event_processing() -> None:
    """Pay Gradio's first-event costs at start-up instead of in the first page's load.

    Gradio wraps every event in a matplotlib backend switch, so where matplotlib is installed
    (mlxtend brings it) the first event of a server imports it: 0.5 s that the first page
    would otherwise wait for.
    """
    # A server draws off-screen. With no backend named, matplotlib.get_backend() imports
    # pyplot to choose one (0.7 s of the start); naming agg, the one Gradio switches to, skips it.
    os.environ.setdefault("MPLBACKEND", "agg")
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
          text_encoder: TextEncoder | None = None, auth: Auth = None, objects: Collection | None = None,
          map_points: int | None = None, map_thumbnails: int | None = None,
          first_page: FirstPage | None = None) -> None:
    """Serve the explorer (and the object explorer of `objects`) until interrupted. With
    `first_page` (ui/first_page.py, started on host:port before this module was imported), its
    socket is taken over and the browsers it answered reload into the explorer."""
    app = create_server_app(collection, text_encoder, auth, objects=objects, map_points=map_points,
                            map_thumbnails=map_thumbnails)
    print(f"embedscape explorer on http://{host}:{port}  (collection '{collection.name}')", flush=True)
    if objects is not None:
        print(f"boxes of its images on http://{host}:{port}{OBJECTS_PREFIX}/  (collection '{objects.name}')",
              flush=True)
    server = uvicorn.Server(server_config(app, host, port))
    server.run(sockets=[first_page.hand_over()] if first_page is not None else None)


def server_config(app: FastAPI, host: str, port: int) -> uvicorn.Config:
    """How `serve` and `start_server` run uvicorn (connections kept KEEP_ALIVE_S when idle)."""
    return uvicorn.Config(app, host=host, port=port, log_level="warning", timeout_keep_alive=KEEP_ALIVE_S)


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
        for demo in self.app.state.explorers.values():
            demo.embedscape_context.live.stop()


def start_server(collection: Collection, host: str = "127.0.0.1", port: int = 0,
                 text_encoder: TextEncoder | None = None, auth: Auth = None,
                 pages: Sequence[Page] = (), objects: Collection | None = None,
                 map_points: int | None = None, map_thumbnails: int | None = None,
                 first_page: FirstPage | None = None) -> RunningServer:
    """Serve in a background thread (port 0: a free port; with `first_page`, its socket: see
    `serve`); returns once it accepts requests."""
    port = first_page.port if first_page is not None else port or free_port(host)
    app = create_server_app(collection, text_encoder, auth, pages, objects=objects, map_points=map_points,
                            map_thumbnails=map_thumbnails)
    server = uvicorn.Server(server_config(app, host, port))
    sockets = [first_page.hand_over()] if first_page is not None else None
    thread = threading.Thread(target=server.run, kwargs={"sockets": sockets}, name="embedscape-server", daemon=True)
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


def _slash_redirect(prefix: str) -> Callable[[Request], RedirectResponse]:
    """`/objects` -> `/objects/` with its query: the app at "/" would answer it with a 404."""

    def redirect(request: Request) -> RedirectResponse:
        query = request.url.query
        return RedirectResponse(prefix + "/" + (f"?{query}" if query else ""), status_code=307)

    return redirect


def _gradio_apps(app: FastAPI) -> list[Any]:
    return [route.app for route in app.routes if isinstance(route, Mount) and hasattr(route.app, "tokens")]


def _share_login(app: FastAPI) -> None:
    """One login for every explorer of the server: Gradio keeps a login per mounted app (its
    tokens, and a cookie named after its cookie_id, set for the whole site), so the mounted apps
    are given the first one's."""
    first, *others = _gradio_apps(app)
    for other in others:
        other.tokens = first.tokens
        other.cookie_id = first.cookie_id


def _logged_in(app: FastAPI, request: Request) -> bool:
    """The image routes follow Gradio's login: a valid Gradio session cookie is required."""
    for gradio_app in _gradio_apps(app)[:1]:  # every explorer shares its login (_share_login)
        token = (request.cookies.get(f"access-token-{gradio_app.cookie_id}")
                 or request.cookies.get(f"access-token-unsecure-{gradio_app.cookie_id}"))
        return gradio_app.tokens.get(token) is not None
    return False
