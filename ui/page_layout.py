"""The explorer page's frame: the map beside the panels, split by a handle the user drags.

    [ map column (MAP_COLUMN) | handle (SPLIT_HANDLE) | panels (PANELS_COLUMN) ]

The map column takes DEFAULT_SHARE of the row at first; dragging the handle (or the arrow
keys on it, or a double-click back to the default) changes that share, which the browser
remembers (localStorage, one value for every explorer of the site). The map's height fills
the window below its top, so the whole map is on screen without scrolling, and the Plotly
chart follows every change of its box (a ResizeObserver), whatever changed it. Under
STACK_BELOW_PX of window width the two columns stack instead.

`split_handle()` is the handle, placed inside the `gr.Row` between the two columns; its
script finds the columns by their elem_ids. CSS goes into the page's CSS (ui/app.py).
"""
from __future__ import annotations

from pathlib import Path

import gradio as gr

MAP_COLUMN = "es-map-col"
PANELS_COLUMN = "es-panels"
SPLIT_HANDLE = "es-split"
DEFAULT_SHARE = 64.0  # percent of the row the map column takes at first
MIN_SHARE, MAX_SHARE = 30.0, 85.0
PANELS_MIN_PX = 340  # the grid keeps 2+ columns of cards
MAP_MIN_HEIGHT_PX = 420
STACK_BELOW_PX = 900
STORAGE_KEY = "embedscape.split"

ASSETS = Path(__file__).parent / "assets"  # the page's script, style and markup, as files
# The placeholders the CSS and the script share, and the values they stand for.
PLACEHOLDERS = {"__MAP__": MAP_COLUMN, "__PANELS__": PANELS_COLUMN, "__HANDLE__": SPLIT_HANDLE,
                "__KEY__": STORAGE_KEY, "__DEFAULT__": str(DEFAULT_SHARE), "__MIN__": str(MIN_SHARE),
                "__MAX__": str(MAX_SHARE), "__MIN_H__": str(MAP_MIN_HEIGHT_PX),
                "__PANELS_MIN__": str(PANELS_MIN_PX), "__STACK_BELOW__": str(STACK_BELOW_PX)}


def _filled(name: str) -> str:
    """The asset `name` with its placeholders replaced (longest first, so none is cut by a shorter one)."""
    text = (ASSETS / name).read_text(encoding="utf-8")
    for key in sorted(PLACEHOLDERS, key=len, reverse=True):
        text = text.replace(key, PLACEHOLDERS[key])
    return text


CSS = _filled("page-layout.css")
JS = _filled("page-layout.js")


def split_handle() -> gr.HTML:
    """The drag handle between the map column and the panels (call inside their gr.Row)."""
    return gr.HTML("", elem_id=SPLIT_HANDLE, js_on_load=JS, min_width=8, container=False, padding=False)
