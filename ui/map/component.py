"""The map as a `gr.HTML` component that owns a Plotly scattergl chart, and its JS bridge.

Why not `gr.Plot`: it has no selection event and re-creates its chart on every update,
losing zoom and selection (see docs/notes/plotly-selection-in-gradio.md). Here one div lives for the
whole page; the component's `value` is a JSON *message* (ui/figure.py `map_message`)
that the JS applies with `Plotly.react` on that same div:

    {"seq": n,
     "base":      {"token", "n", "bounds", "map", "view_url", "near_url", "layout", "template",
                   "config"}                                              # once per page
     "colour":    {"remap", "categories", "legend", "hover_names"}        # recolour / filter
     "selection": {"count", "drawn", "rows": i4 typed array | null}       # set from Python
     "names":     {"show", "clusters": [{"name", "x", "y", "size"}]}}     # cluster names

What is drawn comes from the view route (ui/map/routes.py) as binary, for the view the user
looks at: the points themselves while the view holds at most `EMBEDSCAPE_MAP_POINTS`
(default 200,000), else a density image (a Plotly layout image under an empty trace per
category, which keeps the legend). The JS asks again after a zoom or pan that leaves what it
holds, and after every message that changes colours or the selection.

Selections: over points, Plotly selects and the row numbers (`customdata`) go to Python as a
`select` event, as before; over the density image the drawn shape goes instead (box corners
or lasso vertices in data units), and Python finds the points in numpy (ui/map/geometry.py)
and sends the selection back, so the next image dims the rest. Double-click (Plotly's
deselect) sends `rows: null`. A box or lasso on a linked map (a Plotly chart in an element of
class `es-linked-map` whose customdata are rows: the Models tab's side map) sends its rows with
`external: true`, and Python sends the selection back to draw here. Hover: Plotly's over
points; over the image, the nearest point comes from NEAR_ROUTE.

Overlays (ui/map/overlays.py): cluster names and, when few points are in view, their
thumbnails, drawn as HTML over the plot area in its pixels at every render and zoom step.
Layers: `window.embedscapeMap.addLayer({name, images(view), annotations(view)})` adds
what a layer returns (Plotly layout images / annotations for the current view, data units)
at every render, and `onView(fn)` calls fn(view) after each view change.
`window.embedscapeMap` also exposes `{gd, state, toClient(x, y), view(), overlays()}` for
tests. `data-busy` on the map counts the work waiting to be drawn (0: settled).

The script, style and markup are files (ui/map/assets/map.js, map.css, map.html), read once at
import; the page gets them inline through the gr.HTML (no route serves them).
"""
from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import gradio as gr
from fastapi import FastAPI, Request
from fastapi.responses import Response

from ui.map.overlays import CSS as OVERLAY_CSS
from ui.map.overlays import DEFAULT_THUMBNAILS, overlay_js
from ui.map.overlays import TEMPLATE as OVERLAY_TEMPLATE

# plotly.js 4.1.1 with only the scattergl and bar traces (1.5 MB instead of the full 4.8 MB
# bundle, whose parsing alone took 2 s of the page's start-up): rebuilt by ui/plotly_bundle/.
PLOTLY_JS = Path(__file__).parent.parent / "assets" / "plotly-embedscape.min.js"
PLOTLY_ROUTE = "/es-assets/plotly.min.js"

ASSETS = Path(__file__).parent / "assets"  # the page's script, style and markup, as files
TEMPLATE = (ASSETS / "map.html").read_text(encoding="utf-8")

CSS = (ASSETS / "map.css").read_text(encoding="utf-8")

JS = (ASSETS / "map.js").read_text(encoding="utf-8")


def head_html() -> str:
    """Loads plotly.js from the installed plotly package (offline), through PLOTLY_ROUTE."""
    return f'<script src="{PLOTLY_ROUTE}"></script>'


def page_head_html() -> str:
    """For the page's <head>: start downloading plotly.js before Gradio has even booted."""
    return f'<link rel="preload" href="{PLOTLY_ROUTE}" as="script">'


def add_plotly_route(app: FastAPI) -> None:
    """Serve plotly.min.js ourselves: gzipped once and cacheable by the browser. Gradio's
    `file=` route would Brotli-compress it again on every page load (0.6 s of CPU),
    and this way Gradio's `file=` route needs to allow no file at all."""
    raw = PLOTLY_JS.read_bytes()
    cache: dict[str, bytes] = {}
    etag = f'"{hashlib.sha1(raw).hexdigest()[:20]}"'
    headers = {"Cache-Control": "public, max-age=604800", "ETag": etag}

    @app.get(PLOTLY_ROUTE)
    def plotly_js(request: Request) -> Response:
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
        if "gzip" not in request.headers.get("accept-encoding", ""):
            return Response(raw, media_type="text/javascript", headers=headers)
        if "gzip" not in cache:
            cache["gzip"] = gzip.compress(raw, compresslevel=6)
        return Response(cache["gzip"], media_type="text/javascript",
                        headers={**headers, "Content-Encoding": "gzip", "Vary": "Accept-Encoding"})


def map_component(prefix: str = "", thumbnails: int = DEFAULT_THUMBNAILS) -> gr.HTML:
    """The map of the explorer served under the URL `prefix` ("" or e.g. "/objects"); up to
    `thumbnails` points in view are drawn as their thumbnails (ui/map/overlays.py)."""
    js = JS.replace("__BASE__", prefix).replace("__OVERLAYS__", overlay_js(thumbnails))
    return gr.HTML(value="", html_template=TEMPLATE.replace("__OVERLAY__", OVERLAY_TEMPLATE),
                   css_template=CSS + OVERLAY_CSS, js_on_load=js, head=head_html(), elem_id="embedscape-map",
                   padding=False, container=False)
