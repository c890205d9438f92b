"""What the map draws over its plot area in the page's own pixels: cluster names and thumbnails.

Both are HTML laid over the Plotly chart (`.es-overlay`, clipped to the plot area, taking no
pointer events, so box, lasso, hover and zoom reach the chart beneath), redrawn from the view's
pixel geometry after every render and at every step of a zoom or pan (`plotly_relayouting`):

  * **cluster names** (`analyze`'s cluster table, sent in the map message's `names` part, largest
    cluster first): each at its cluster's centre, in a fixed 12 px font whatever the zoom.
    Largest first, a name whose box would overlap one already placed (or the legend, or the
    modebar) is left out, so at 100+ clusters the big ones are named and zooming in names the
    rest as room appears.
  * **thumbnails**: when the points drawn in view are at most `thumbnails` (the component's
    setting, `--map-thumbnails`), each is shown as its thumbnail (from the explorer's own
    `/thumb/row/{row}` route: dataset images only) centred on its position, framed in its
    colour, the unselected dimmed when there is a selection; zooming out past the limit puts
    the points back. Only the points mode has them (a density image means far more in view).

HTML rather than Plotly layout images: a layout image is an SVG element that Plotly re-lays on
every relayout, and `Plotly.relayout` with 300 of them redraws the whole chart; moving 300
absolutely placed <img> is a style change each (bench/bench_map_overlays.py measures both).

Their script, style and markup are ui/map/assets/overlays.js, .css, .html: the script runs inside
the map component's own (ui/map/assets/map.js, where __OVERLAYS__ stands).
"""
from __future__ import annotations

import os
from pathlib import Path

THUMBNAILS_ENV = "EMBEDSCAPE_MAP_THUMBNAILS"
DEFAULT_THUMBNAILS = 300  # points in view drawn as thumbnails, at most
THUMB_PX = 64  # a thumbnail's side on the map, CSS pixels (less where points are closer ...)
THUMB_MIN_PX = 28  # (... but not less than this)

ASSETS = Path(__file__).parent / "assets"  # the page's script, style and markup, as files
TEMPLATE = (ASSETS / "overlays.html").read_text(encoding="utf-8")

CSS = (ASSETS / "overlays.css").read_text(encoding="utf-8")

JS = (ASSETS / "overlays.js").read_text(encoding="utf-8")


def max_thumbnails(value: int | None = None) -> int:
    """How many points in view the map draws as thumbnails at most: `value`, else
    $EMBEDSCAPE_MAP_THUMBNAILS, else DEFAULT_THUMBNAILS (0: never)."""
    if value is not None:
        return max(0, int(value))
    text = os.environ.get(THUMBNAILS_ENV, "").strip()
    return int(text) if text.isdigit() else DEFAULT_THUMBNAILS


def overlay_js(thumbnails: int) -> str:
    """The overlays' part of the map component's JS (it runs inside the map's own script)."""
    return (JS.replace("__THUMBNAILS__", str(int(thumbnails))).replace("__THUMB_PX__", str(THUMB_PX))
            .replace("__THUMB_MIN_PX__", str(THUMB_MIN_PX)))
