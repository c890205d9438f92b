"""The page's watch over its own edits: an edit the server never answered is said so on the page.

A tag add / remove or a label set on the selection is sent to the server, which writes it
(store/write_behind.py journals a tag before it answers) and answers. If the server process
dies in between, Gradio shows only "connection lost" and, once the server is back, reloads the
page, and the user cannot tell whether the last edit was kept. The edit handlers are wired with
`AppContext.map_event(..., acknowledge=True)`, whose reply also sets this control's value; the
control's script (ui/assets/edit-watch.js) remembers each edit in the tab's sessionStorage until
that reply comes, and the reloaded page reports the one that never got it (for a tag: saved or
not, from the tag's count before and after).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import gradio as gr

ASSETS = Path(__file__).parent / "assets"  # the page's script, style and markup, as files
JS = (ASSETS / "edit-watch.js").read_text(encoding="utf-8")
TEMPLATE = (ASSETS / "edit-watch.html").read_text(encoding="utf-8")
CSS = (ASSETS / "edit-watch.css").read_text(encoding="utf-8")


def edit_watch_control() -> gr.HTML:
    """The notice, unrendered: render it anywhere in the page (it shows fixed at the top of the
    window, over the page, so it takes no room from the map)."""
    return gr.HTML("", html_template=TEMPLATE, css_template=CSS, js_on_load=JS, elem_id="es-edit-watch",
                   container=False, padding=False, render=False)


def acknowledgement() -> str:
    """The value an edit's reply sets: new every time, so the page sees every reply."""
    return json.dumps({"acknowledged": time.time()})
