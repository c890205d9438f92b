"""Two explorers on one server, for a detection dataset: the images and their boxes.

The image collection NAME is served at "/", its object collection NAME-objects at "/objects/"
(ui/app.py), each a full explorer. This module links them:

    ExplorerLink                 one explorer's place: its title and URL, the other's, and how
                                 its point ids become the other's (images <-> their boxes)
    switch_html(link)            the header's "Images | Objects" switch
    build_handover(ctx, link)    "Show their images" / "Show their objects": the selection's
                                 counterpart is selected in the other explorer
    HandoffStore                 selections handed over, under short random tokens

A hand-over stores the other explorer's ids on the server under a token and opens
`<other url>?selection=<token>`; that page's load event selects them (ui/map/share_link.py). The
ids never travel through the browser, so a million boxes cost one short URL.
"""
from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from ui.context import AppContext
from ui.state import MapState
from ui.text import html_text

TOKEN_BYTES = 9          # 12 URL-safe characters
TOKEN_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
MAX_HANDOFFS = 64        # the oldest go first
MAX_STORED_IDS = 4_000_000  # ids over all kept hand-overs (about 150 MB as text at most)
LIFETIME_S = 24 * 3600.0
ASSETS = Path(__file__).parent / "assets"  # the page's script, style and markup, as files
# Navigates as soon as the handler sends a link marked data-go (a same-tab page change).
GO_JS = (ASSETS / "handoff-go.js").read_text(encoding="utf-8")
CSS = (ASSETS / "handoff.css").read_text(encoding="utf-8")


@dataclass(frozen=True)
class Handoff:
    ids: list[str]
    source: str  # what the receiving explorer's count line says the selection is


class HandoffStore:
    """Selections handed from one explorer to the other, kept in memory for LIFETIME_S under a
    random token (at most MAX_HANDOFFS, MAX_STORED_IDS ids in all: the oldest go first)."""

    def __init__(self, lifetime_s: float = LIFETIME_S, max_handoffs: int = MAX_HANDOFFS,
                 max_ids: int = MAX_STORED_IDS) -> None:
        self.lifetime_s, self.max_handoffs, self.max_ids = lifetime_s, max_handoffs, max_ids
        self._kept: OrderedDict[str, tuple[float, int, str, str]] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, ids: Sequence[str], source: str) -> str:
        token = secrets.token_urlsafe(TOKEN_BYTES)
        with self._lock:
            # One string per hand-over: a few bytes an id instead of a Python object each.
            self._kept[token] = (time.monotonic(), len(ids), "\n".join(ids), source)
            self._trim()
        return token

    def get(self, token: str) -> Handoff | None:
        """The hand-over under `token`; None when unknown, malformed or expired. It stays
        (reloading the page selects it again) until it expires or newer ones push it out."""
        if not token or len(token) > 64 or not set(token) <= TOKEN_CHARS:
            return None
        with self._lock:
            kept = self._kept.get(token)
            if kept is None or time.monotonic() - kept[0] > self.lifetime_s:
                return None
        _, count, text, source = kept
        return Handoff(text.split("\n") if count else [], source)

    def __len__(self) -> int:
        return len(self._kept)

    def _trim(self) -> None:
        now = time.monotonic()
        total = sum(count for _, count, _, _ in self._kept.values())
        while self._kept:
            created, count, _, _ = next(iter(self._kept.values()))
            if len(self._kept) <= self.max_handoffs and total <= self.max_ids and now - created <= self.lifetime_s:
                break
            self._kept.popitem(last=False)
            total -= count


@dataclass(frozen=True)
class ExplorerLink:
    """One explorer's place beside the other: titles, URLs, nouns, and how its point ids become
    the other explorer's (`translate`: the images holding these boxes, or the boxes of these
    images)."""

    title: str          # "Images" / "Objects"
    url: str            # "/" / "/objects/"
    noun: str           # "images" / "objects": what its points are
    other_title: str
    other_url: str
    other_noun: str
    translate: Callable[[Sequence[str]], list[str]]
    store: HandoffStore
    images_first: bool  # this explorer is the images one (the switch always reads Images | Objects)


def switch_html(link: ExplorerLink) -> str:
    """"Images | Objects": this explorer highlighted, the other a link to it."""
    here = f'<span class="es-on" data-explorer="{html_text(link.title)}">{html_text(link.title)}</span>'
    there = (f'<a href="{html_text(link.other_url)}" data-explorer="{html_text(link.other_title)}" '
             f'id="es-switch-{html_text(link.other_title.lower())}">{html_text(link.other_title)}</a>')
    first, second = (here, there) if link.images_first else (there, here)
    return f'<nav class="es-switch" id="es-switch">{first} {second}</nav>'


def handover(link: ExplorerLink, ids: Sequence[str]) -> tuple[str, int]:
    """Store the counterpart of `ids` for the other explorer: (its URL, how many), or ("", 0)
    when there is none."""
    targets = link.translate(list(ids))
    if not targets:
        return "", 0
    token = link.store.put(targets, f"{link.other_noun} of {len(ids):,} {link.noun}")
    return f"{link.other_url}?selection={token}", len(targets)


def build_handover(ctx: AppContext, link: ExplorerLink) -> None:
    """The button that selects the selection's images (or objects) in the other explorer."""
    with gr.Row(equal_height=True):
        button = gr.Button(f"Show their {link.other_noun} →", size="sm", scale=0, min_width=200,
                           elem_id="es-handover")
        status = gr.HTML(elem_id="es-handover-link", js_on_load=GO_JS)

    def go(state: MapState) -> str:
        ids = state.selected_ids(ctx.table)
        if not ids:
            return f'<span class="es-handover-note">Select some {html_text(link.noun)} first.</span>'
        url, count = handover(link, ids)
        if not count:
            return (f'<span class="es-handover-note">The {len(ids):,} selected {html_text(link.noun)} have no '
                    f'{html_text(link.other_noun)}.</span>')
        return (f'<a data-go="1" href="{html_text(url)}">Opening {count:,} {html_text(link.other_noun)} in the '
                f'{html_text(link.other_title)} explorer…</a>')

    ctx.event(button.click, go, [], [status])
