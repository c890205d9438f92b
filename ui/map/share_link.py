"""The page URL as a view of the explorer: applied when a page loads, built by "Copy link".

    ?colour=tag&label=cat&tag=snowy&view=0,10,-2,8&ids=...     (the parameters: ui/map/share_link_query.py)

`UrlParams.apply(ctx, state, query)` runs in the page's load event (ui/explorer.py
`wire_live_updates`): filters first, then colouring, then the selection (`ids`, `subset`, or
`selection`, a hand-over from the other explorer: ui/handoff.py). A parameter that names
something the collection does not have (a deleted subset, an unknown label) gives a warning
saying so, and the rest still applies. The zoom (`view`) is applied in the browser, by the
Copy-link control's script, once the map has drawn; the server only checks it.

`share_link_control()` / `wire_share_link(ctx, control)` is the "Copy link" control in the header: the browser sends the map's
current axis ranges, the server adds the session's colouring, filters and selection and sends
back the link, which the browser shows and copies to the clipboard. A selection whose ids do
not fit in MAX_QUERY_CHARS is saved as a subset named SHARED_PREFIX + time (subsets/saved.py)
and the link names it. The control's script, style and markup: ui/map/assets/share-link.*.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np

from store import Collection, StoreError
from subsets.saved import list_subsets, save_subset, subset_ids
from ui.clusters import load_clusters
from ui.context import AppContext
from ui.handoff import HandoffStore
from ui.map.share_link_query import (
    COLOUR_MODES, ID_CHARS, MAX_QUERY_CHARS, LinkSpec, decode_query, encode_ids, encode_query)
from ui.state import MapState
from ui.table import PointTable
from ui.text import html_text

SELECTION = "selection"  # the hand-over's parameter (ui/handoff.py builds it)
FIELD_PREFIX = "field:"  # MapState.colour_by of a numeric field (ui/figure.py FIELD_PREFIX)
SHARED_PREFIX = "shared link"  # name of a subset saved for a link: "shared link 2026-05-01 14.03.22"
SUBSET_SOURCE = "subset: "  # a selection's source once it is (or came from) a saved subset


@dataclass
class UrlParams:
    handoff: HandoffStore | None = None

    def apply(self, ctx: AppContext, state: MapState, query: Mapping[str, str],
              fields: Callable[[PointTable], list[str]] = lambda table: []) -> MapState:
        """`state` with the view the query asks for; `fields(table)`: the numeric fields the map
        can be coloured by. Unknown parameters are ignored; unusable ones are warned about."""
        spec, problems = decode_query(query)
        table = ctx.table
        problems += self._apply_view(table, state, spec, fields)
        problems += self._apply_selection(ctx, state, spec)
        if problems:
            # A toast shows its message as HTML: what the link said is text in it.
            gr.Warning(html_text("Part of this link could not be applied: " + "; ".join(problems)
                                 + ". The rest of the view is as the link asks."))
        return state

    def _apply_view(self, table: PointTable, state: MapState, spec: LinkSpec,
                    fields: Callable[[PointTable], list[str]]) -> list[str]:
        problems = []
        labels = [name for name in spec.labels if name in table.label_names]
        problems += [f"no label '{name}' in this collection" for name in spec.labels if name not in labels]
        tag_counts = table.tag_counts()
        tags = [name for name in spec.tags if name in tag_counts]
        problems += [f"no point is tagged '{name}'" for name in spec.tags if name not in tags]
        colour = None
        if spec.colour_field:
            if spec.colour_field in fields(table):
                colour = FIELD_PREFIX + spec.colour_field
            else:
                problems.append(f"no numeric field '{spec.colour_field}' to colour by")
        if colour is None and spec.colour:
            if spec.colour == "cluster" and load_clusters(table) is None:
                problems.append("no clusters to colour by (run `analyze`)")
            else:
                colour = spec.colour
        if colour or labels or tags:
            state.set_view(table, colour_by=colour, labels=labels or None, tags=tags or None)
        if colour == "cluster":  # as choosing it by hand: the clusters' names on the map
            state.set_names(True)
        return problems

    def _apply_selection(self, ctx: AppContext, state: MapState, spec: LinkSpec) -> list[str]:
        table = ctx.table
        if spec.handoff:
            self.select_handed_over(table, state, spec.handoff)
        if spec.subset:
            if spec.subset not in list_subsets(ctx.collection):
                return [f"no subset '{spec.subset}' (deleted or renamed?): nothing is selected"]
            try:
                rows = table.rows_for_ids(subset_ids(ctx.collection, spec.subset))
            except StoreError as error:  # a name another tool wrote that embedscape does not take
                return [f"{error}: nothing is selected"]
            state.select(rows, SUBSET_SOURCE + spec.subset)
        elif spec.ids:
            rows = table.rows_for_ids(spec.ids)
            state.select(rows, "link")
            if len(rows) < len(spec.ids):
                return [f"{len(spec.ids) - len(rows)} of the link's {len(spec.ids)} selected points "
                        "are no longer in the collection"]
        return []

    def select_handed_over(self, table: PointTable, state: MapState, token: str) -> MapState:
        handed = self.handoff.get(token) if self.handoff is not None else None
        if handed is None:
            gr.Warning("That selection link has expired (the server keeps one for a day, or was restarted): "
                       "select the points again in the other explorer.")
            return state
        return state.select(table.rows_for_ids(handed.ids), handed.source)


# --- building a link ------------------------------------------------------------------
@dataclass
class SharedLink:
    url: str
    note: str  # what the user should know about it (a subset saved, a part left out)


def share_view(collection: Collection, table: PointTable, state: MapState, page: str,
               view: list[float] | None) -> SharedLink:
    """The link to `page` (the explorer's URL without query) that opens this session's view,
    with the map zoomed to `view` (x0, x1, y0, y1; None: the whole map)."""
    notes = []
    spec = LinkSpec(labels=list(state.filter_labels), tags=list(state.filter_tags))
    if state.colour_by.startswith(FIELD_PREFIX):
        spec.colour_field = state.colour_by[len(FIELD_PREFIX):]
    elif state.colour_by in COLOUR_MODES:
        spec.colour = state.colour_by
    else:
        notes.append(f"colouring by {state.colour_by} is not part of links: the link shows labels")
    if view is not None and len(view) == 4 and all(np.isfinite(view)) and view[0] < view[1] and view[2] < view[3]:
        spec.view = (float(view[0]), float(view[1]), float(view[2]), float(view[3]))
    rows = state.selected_rows()
    if rows is not None and len(rows):
        ids = table.ids_for_rows(rows)
        # Far more ids than a link holds are not encoded just to find that out (a million of them).
        fits = len(ids) * ID_CHARS <= MAX_QUERY_CHARS and encode_ids(ids) is not None
        spec.ids = ids if fits else None
        if spec.ids is None or len(encode_query(spec)) > MAX_QUERY_CHARS:
            spec.ids, spec.subset = None, _selection_subset(collection, table, state, ids)
            notes.append(f"the {len(ids):,} selected points are saved as subset '{spec.subset}' "
                         "(too many for a link)")
    return SharedLink(f"{page}?{encode_query(spec)}", "; ".join(notes).capitalize() + ("." if notes else ""))


def _selection_subset(collection: Collection, table: PointTable, state: MapState, ids: list[str]) -> str:
    """The subset holding exactly the selection: the one it came from (or was saved as for an
    earlier link) if unchanged, else a new one named after now. The selection's source then
    names it, so the next link of the same selection saves nothing."""
    source = state.selection.source
    if source.startswith(SUBSET_SOURCE):
        name = source[len(SUBSET_SOURCE):]
        if name in list_subsets(collection) and set(subset_ids(collection, name)) == set(ids):
            return name
    taken = set(list_subsets(collection))
    base = f"{SHARED_PREFIX} {datetime.now():%Y-%m-%d %H.%M.%S}"
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base} {n}"
    save_subset(collection, name, ids, description=f"{len(ids):,} points selected ({source or 'map'}), "
                                                   "saved for a shared link")
    state.selection.source = SUBSET_SOURCE + name
    return name


ASSETS = Path(__file__).parent / "assets"  # the page's script, style and markup, as files
# --- the control ----------------------------------------------------------------------
TEMPLATE = (ASSETS / "share-link.html").read_text(encoding="utf-8")

CSS = (ASSETS / "share-link.css").read_text(encoding="utf-8")

JS = (ASSETS / "share-link.js").read_text(encoding="utf-8")


def share_link_control() -> gr.HTML:
    """The "Copy link" control (call where it should appear: the page's header row); wire it with
    `wire_share_link` once the page's context exists."""
    return gr.HTML("", html_template=TEMPLATE, css_template=CSS, js_on_load=JS, elem_id="es-share",
                   container=False, padding=False)


def wire_share_link(ctx: AppContext, share: gr.HTML) -> None:
    """A click on "Copy link" sends back the link of the session's view (see `share_view`)."""

    def make_link(state: MapState, evt: gr.EventData) -> tuple[MapState, Any]:
        data = evt._data or {}
        view = data.get("view")
        try:
            link = share_view(ctx.collection, ctx.table, state, str(data.get("page") or ""),
                              [float(v) for v in view] if isinstance(view, list) else None)
        except (StoreError, TypeError, ValueError) as error:
            gr.Warning(html_text(f"The link could not be made: {error}"))
            return state, gr.skip()
        return state, json.dumps({"url": link.url, "note": link.note, "at": time.time()})

    ctx.event(share.click, make_link, [], [ctx.state, share])
