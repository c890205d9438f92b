"""The explorer: map controls (colour, filters, search) and the Explorer tab (count line,
image grid with detail view, class distribution, tagging, tag list).

Every handler works on the session's `MapState` and the shared `PointTable`; Qdrant is
reached only through the `Collection` for search, neighbours and tag writes.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np

from actions.edits import PointEditor
from store import PointFilter
from store.schema import DETECTION_OUTCOME, PREDICTION_CORRECT, InvalidTag
from ui.clusters import load_clusters
from ui.context import AppContext
from ui.map.routes import rows_in_shape
from ui.map.share_link import UrlParams
from ui.metrics_page import numeric_fields
from ui.model_maps import DEFAULT as DEFAULT_MAP
from ui.model_maps import cluster_colourings, map_choices
from ui.panel_html import (
    detail_html, distribution_html, count_line, grid_html, page_count, pager_text,
)
from ui.state import MapState
from ui.table import NO_LABEL, PointTable
from ui.text import markdown_text

NEIGHBOURS = 12
# How often an open page asks whether the app has a newer table (cheap: a version compare).
TICK_S = 5.0
ASSETS = Path(__file__).parent / "assets"  # the page's script, style and markup, as files
CLICK_JS = (ASSETS / "explorer-card-click.js").read_text(encoding="utf-8")


@dataclass(frozen=True)
class PointKind:
    """What the explorer's points are. `noun`: how the count line and pager name them ("objects":
    "N of M objects selected"; "" keeps "N of M selected"). `boxes_of`, in a detection dataset:
    (point id, class) of every box of a point's image, for the detail view's picture with boxes."""

    noun: str = ""
    boxes_of: Callable[[str], list[tuple[str, str]]] | None = None


@dataclass
class MapControls:
    colour: gr.Radio
    labels: gr.Dropdown
    tags: gr.Dropdown
    field: gr.Dropdown  # colour by a numeric payload field (metric, score, prediction_correct)
    names: gr.Checkbox  # cluster names on the map (shown where `analyze` found clusters)
    maps: gr.Radio  # which embedding model's map (collections with named vectors; ui/model_maps.py)


@dataclass
class LiveControls:
    """Reload from Qdrant, and the line that says when other writers' edits arrived."""

    reload: gr.Button
    status: gr.Markdown


@dataclass
class TaggingControls:
    tag: gr.Dropdown
    tag_list: gr.Radio


@dataclass
class SearchControls:
    text: gr.Textbox
    button: gr.Button
    k: gr.Slider


def default_colour(table: PointTable) -> str:
    """Label view when the dataset has labels, the plain data view otherwise."""
    return "label" if any(name != NO_LABEL for name in table.label_names) else "data"


def build_map_controls(table: PointTable) -> MapControls:
    with gr.Row(equal_height=True):
        modes = [("Data", "data"), ("Label", "label"), ("Tag", "tag")]
        modes += [("Cluster", "cluster")] if load_clusters(table) is not None else []
        modes += cluster_colourings(table)  # each model's clusters, after compare-models
        colour = gr.Radio(modes, value=default_colour(table), label="Colour by", elem_id="es-colour", scale=3,
                          min_width=290)
        labels = gr.Dropdown(table.label_names, multiselect=True, label="Show labels", value=[],
                             elem_id="es-filter-labels", scale=2, min_width=130)
        tags = gr.Dropdown(list(table.tag_counts()), multiselect=True, label="Show tags", value=[],
                           elem_id="es-filter-tags", scale=2, min_width=130)
        field = gr.Dropdown([("(none)", ""), *colour_fields(table)], value="", label="Colour by field",
                            elem_id="es-colour-field", scale=2, min_width=130)
        names = gr.Checkbox(default_colour(table) == "cluster", label="Cluster names", elem_id="es-names",
                            visible=load_clusters(table) is not None, scale=1, min_width=120)
    choices = map_choices(table)
    maps = gr.Radio(choices, value=DEFAULT_MAP, label="Map of model", elem_id="es-map-vector",
                    visible=len(choices) > 1)
    return MapControls(colour, labels, tags, field, names, maps)


def colour_fields(table: PointTable) -> list[str]:
    """Numeric payload fields the map can be coloured by, plus prediction correctness and a
    detector run's outcome per box."""
    fields = numeric_fields(table)
    if table.has_fields([PREDICTION_CORRECT]) and np.isfinite(table.numeric(PREDICTION_CORRECT)).any():
        fields.append(PREDICTION_CORRECT)
    if table.has_fields([DETECTION_OUTCOME]):  # categories: found, missed and why (ui/figure.py)
        fields.append(DETECTION_OUTCOME)
    return fields


def ordered(table: PointTable, state: MapState, rows: np.ndarray,
            scores: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    """The grid's rows sorted by the session's sort field (points without a value last)."""
    if not state.sort_field or len(rows) == 0:
        return rows, scores
    values = table.numeric(state.sort_field)[rows]
    key = np.where(np.isnan(values), np.inf, -values if state.sort_descending else values)
    order = np.argsort(key, kind="stable")
    return rows[order], None if scores is None else np.asarray(scores)[order]


def build_search_controls(has_text_encoder: bool) -> SearchControls:
    with gr.Row(equal_height=False):
        text = gr.Textbox(label="Text search: selects the nearest images", placeholder="a photo of ...",
                          visible=has_text_encoder, elem_id="es-search-text", scale=3, lines=1, max_lines=1)
        button = gr.Button("Search", visible=has_text_encoder, scale=0, min_width=90, size="sm",
                           elem_id="es-search-button")
        k = gr.Slider(10, 2000, value=100, step=10, label="Results for search and 'more like this'", scale=2,
                      min_width=200)
    return SearchControls(text, button, k)


def build_live_controls(shared: bool) -> LiveControls:
    """Below the map; shown where other processes can write the collection (a Qdrant server)."""
    with gr.Row(equal_height=True, visible=shared):
        status = gr.Markdown(elem_id="es-live-status")
        reload = gr.Button("↻ Reload from Qdrant", size="sm", scale=0, min_width=170, elem_id="es-reload")
    return LiveControls(reload, status)


def build_explorer(ctx: AppContext, controls: MapControls, search: SearchControls,
                   kind: PointKind = PointKind()) -> TaggingControls:
    """The Explorer tab's components and every explorer callback (call inside a gr.Tab)."""
    count = gr.HTML(elem_id="es-count")
    detail = _detail_panel(ctx, search, kind)
    grid = _grid_panel(ctx, detail, kind)
    gr.Markdown("**Class distribution**: selection (blue) beside the whole dataset (grey)")
    distribution = gr.HTML(elem_id="es-dist")
    tagging = _tagging_panel(ctx, controls)

    def follow(state: MapState) -> tuple[str, str, str, str]:
        rows = state.shown_rows(ctx.table)
        return (count_line(ctx.table, state, kind.noun), *_grid_page(ctx.table, state, kind),
                distribution_html(ctx.table, rows, state.visible))

    ctx.on_selection_change(follow, outputs=[count, grid.pager, grid.html, distribution])
    _wire_map_controls(ctx, controls)
    _wire_text_search(ctx, search)
    return tagging


def wire_live_updates(ctx: AppContext, controls: MapControls, live: LiveControls, tagging: TaggingControls,
                      load: Any, url_params: UrlParams | None = None) -> None:
    """Other writers' edits (ui/live_table.py) reach the page on load, on "Reload", and at the
    page's timer tick after the app's own check found them; the selection, the grid's page and
    the view stay as they were, and the lists of labels, tags and fields follow. On load, the
    page URL's query parameters set the view (`url_params`), and the controls show it."""
    outputs = [live.status, controls.labels, controls.tags, controls.field, tagging.tag, tagging.tag_list,
               controls.colour, controls.names]
    shared = not ctx.collection.exclusive

    def choices(state: MapState, show_view: bool = False) -> tuple[Any, ...]:
        table, change = ctx.table, ctx.live.last_change
        tags = table.tag_counts()
        field = state.colour_by[len("field:"):] if state.colour_by.startswith("field:") else ""

        def shown(value: Any) -> dict[str, Any]:  # `show_view`: the controls are set to the session's view
            return {"value": value} if show_view else {}

        return (state, change.describe() if change else "",
                gr.Dropdown(choices=table.label_names, **shown(state.filter_labels)),
                gr.Dropdown(choices=list(tags), **shown(state.filter_tags)),
                gr.Dropdown(choices=[("(none)", ""), *colour_fields(table)], **shown(field)),
                gr.Dropdown(choices=list(tags)), gr.Radio(choices=_tag_choices(tags)),
                gr.Radio(value=state.colour_by) if show_view and not field else gr.skip(),
                gr.Checkbox(value=state.show_names) if show_view else gr.skip())

    def on_load(state: MapState, request: gr.Request) -> Any:
        if shared:
            ctx.live.check_since(time.monotonic())
        linked = url_params is not None and request is not None and bool(request.query_params)
        if linked:
            state = url_params.apply(ctx, state, request.query_params, colour_fields)
        # The page was rendered with the lists of the first table; a newer one brings its own.
        return choices(state, show_view=linked) if ctx.table.version or linked else state

    def on_reload(state: MapState) -> tuple[Any, ...]:
        ctx.live.check(force=True)
        return choices(state)

    ctx.map_event(load, on_load, [], outputs, name="page_load")
    ctx.map_event(live.reload.click, on_reload, [], outputs, name="reload")
    if shared:
        timer = gr.Timer(TICK_S)
        ctx.map_event(timer.tick, choices, [], outputs, name="live_tick", only_on_change=True)


@dataclass
class DetailView:
    box: gr.Column
    html: gr.HTML


@dataclass
class GridView:
    pager: gr.Markdown
    html: gr.HTML


def _grid_page(table: PointTable, state: MapState, kind: PointKind) -> tuple[str, str]:
    """The pager line and the grid's current page of the points the views show."""
    rows = state.shown_rows(table)
    scores = state.selection.scores if state.selection.active else None
    grid_rows, grid_scores = ordered(table, state, rows, scores)
    return pager_text(state, len(rows), kind.noun or "images"), grid_html(table, grid_rows, state.page, grid_scores)


def _detail_panel(ctx: AppContext, search: SearchControls, kind: PointKind) -> DetailView:
    """The clicked point: full image, path, tags, nearest neighbours; "More like this"."""
    with gr.Column(visible=False) as box:
        html = gr.HTML(elem_id="es-detail", js_on_load=CLICK_JS)
        with gr.Row():
            more = gr.Button("More like this", size="sm", elem_id="es-more")
            close = gr.Button("Close", size="sm", elem_id="es-close")
    ctx.event(html.click, _detail_opener(ctx, kind), [], [ctx.state, html, box])
    ctx.event(close.click, lambda s: (s, gr.Column(visible=False)), [], [ctx.state, box])

    def more_like_this(state: MapState, k: float) -> MapState:
        if state.detail_id is None:
            return state
        records = ctx.collection.retrieve([state.detail_id], [], with_vectors=True)
        if not records or records[0].vector is None:
            return state
        source = f"like {ctx.table.paths[ctx.table.row_of[state.detail_id]]}"
        return _select_hits(ctx, state, records[0].vector, int(k), source)

    ctx.map_event(more.click, more_like_this, [search.k])
    return DetailView(box, html)


def _detail_opener(ctx: AppContext, kind: PointKind) -> Any:
    """The click handler of a card (grid or neighbour): show that point in the detail view."""

    def open_detail(state: MapState, evt: gr.EventData) -> tuple[MapState, Any, Any]:
        point = str(evt._data.get("id", ""))
        if point not in ctx.table.row_of:
            return state, gr.skip(), gr.skip()
        state.detail_id = point
        boxes = kind.boxes_of(point) if kind.boxes_of is not None else None
        html = detail_html(ctx.table, point, _neighbours(ctx, point, NEIGHBOURS), boxes)
        return state, html, gr.Column(visible=True)

    return open_detail


def _grid_panel(ctx: AppContext, detail: DetailView, kind: PointKind) -> GridView:
    """The paged thumbnail grid with its sort order; a click on a card opens the detail view."""
    with gr.Row(equal_height=True):
        prev = gr.Button("◀ Prev", size="sm", scale=0, min_width=80, elem_id="es-prev")
        pager = gr.Markdown(elem_id="es-pager")
        nxt = gr.Button("Next ▶", size="sm", scale=0, min_width=80, elem_id="es-next")
    with gr.Row(equal_height=True):
        sort_field = gr.Dropdown([("selection order", ""), *colour_fields(ctx.table)], value="",
                                 label="Sort grid by", elem_id="es-sort", scale=3)
        descending = gr.Checkbox(label="Descending", value=False, elem_id="es-sort-desc", scale=1)
    grid = gr.HTML(elem_id="es-grid", js_on_load=CLICK_JS)

    def turn(state: MapState, step: int) -> tuple[MapState, str, str]:
        state.page = int(np.clip(state.page + step, 0, page_count(len(state.shown_rows(ctx.table))) - 1))
        return (state, *_grid_page(ctx.table, state, kind))

    ctx.event(prev.click, lambda s: turn(s, -1), [], [ctx.state, pager, grid])
    ctx.event(nxt.click, lambda s: turn(s, 1), [], [ctx.state, pager, grid])

    def sort_grid(state: MapState, field: str | None, desc: bool) -> tuple[MapState, str, str]:
        state.sort_field, state.sort_descending, state.page = field or None, bool(desc), 0
        return turn(state, 0)

    for control in (sort_field, descending):
        ctx.event(control.input, sort_grid, [sort_field, descending], [ctx.state, pager, grid])
    ctx.event(grid.click, _detail_opener(ctx, kind), [], [ctx.state, detail.html, detail.box])
    return GridView(pager, grid)


def _tagging_panel(ctx: AppContext, controls: MapControls) -> TaggingControls:
    """Add / remove a tag on the selection (written to Qdrant), and the tag list that selects
    a tag's points."""
    with gr.Row(equal_height=True):
        tag = gr.Dropdown(list(ctx.table.tag_counts()), value=None, allow_custom_value=True, label="Tag",
                          elem_id="es-tag", scale=2)
        add = gr.Button("Add to selection", elem_id="es-tag-add", scale=1, variant="primary")
        remove = gr.Button("Remove from selection", elem_id="es-tag-remove", scale=1)
    status = gr.Markdown(elem_id="es-tag-status")
    tag_list = gr.Radio(_tag_choices(ctx.table.tag_counts()), value=None, label="Tags (pick one to select its points)",
                        elem_id="es-tag-list")

    def edit(state: MapState, name: str | None, add: bool) -> tuple[Any, ...]:
        rows = state.selected_rows()
        if not (name or "").strip():
            return state, "Type a new tag or pick one first.", gr.skip(), gr.skip(), gr.skip()
        table = ctx.table
        try:  # the tag rule first: a bad name is the message even with nothing selected
            name, changed = PointEditor(table).edit_tag(rows if rows is not None else [], name, add)
        except InvalidTag as error:
            return state, markdown_text(error), gr.skip(), gr.skip(), gr.skip()
        if rows is None or len(rows) == 0:
            return state, "Select points on the map first.", gr.skip(), gr.skip(), gr.skip()
        if state.colour_by == "tag" or state.filter_tags:
            state.set_view(table)
        verb = f"Added '{markdown_text(name)}' to" if add else f"Removed '{markdown_text(name)}' from"
        message = f"{verb} {changed:,} of {len(rows):,} selected points (saved to Qdrant)."
        counts = table.tag_counts()
        return (state, message, gr.Dropdown(choices=list(counts), value=name),
                gr.Radio(choices=_tag_choices(counts), value=None), gr.Dropdown(choices=list(counts)))

    tag_outputs = [status, tag, tag_list, controls.tags]
    ctx.map_event(add.click, lambda s, n: edit(s, n, True), [tag], tag_outputs, name="tag_add", acknowledge=True)
    ctx.map_event(remove.click, lambda s, n: edit(s, n, False), [tag], tag_outputs, name="tag_remove",
                  acknowledge=True)

    def pick_tag(state: MapState, name: str | None) -> MapState:
        return state.select(ctx.table.rows_with_tags([name]), f"tag: {name}") if name else state

    ctx.map_event(tag_list.input, pick_tag, [tag_list])
    return TaggingControls(tag, tag_list)


def _wire_map_controls(ctx: AppContext, controls: MapControls) -> None:
    """Box / lasso / double-click on the map, colour and filter controls."""

    def on_map_select(state: MapState, payload: dict[str, Any]) -> MapState:
        kind = str(payload.get("kind") or "map")
        if "box" in payload or "lasso" in payload:
            # Drawn over the density view: the points are decided here, and the map is sent
            # the selection to dim the rest (ui/map/routes.py).
            shape_rows = rows_in_shape(ctx.table, state, payload)
            return state if shape_rows is None else state.select(shape_rows, kind)
        rows = payload.get("rows")
        if rows is None:
            return state.clear(from_map=not payload.get("redraw"))
        rows = np.unique(np.asarray([r for r in rows if isinstance(r, int)], dtype=np.int64))
        rows = rows[(rows >= 0) & (rows < len(ctx.table))]
        # Drawn on a linked map (the Models tab's): this map has yet to show it.
        return state.select(rows, kind, from_map=not payload.get("external"))

    ctx.map_select_event(on_map_select)
    def colour_by(state: MapState, colour: str) -> tuple[MapState, Any]:
        # Colouring by cluster brings the clusters' names (the user may hide them again).
        names = colour == "cluster" and not state.show_names
        state.set_view(ctx.table, colour_by=colour)
        return (state.set_names(True), True) if names else (state, gr.skip())

    ctx.map_event(controls.colour.input, colour_by, [controls.colour], [controls.names])
    ctx.map_event(controls.names.input, lambda s, v: s.set_names(v), [controls.names])

    def switch_map(state: MapState, vector: str | None) -> MapState:
        # Rows are the same points on every map: the selection, colours and filters carry over.
        state.map_vector = vector or DEFAULT_MAP
        state.dirty.add("base")
        return state

    ctx.map_event(controls.maps.input, switch_map, [controls.maps])
    ctx.map_event(controls.labels.input, lambda s, v: s.set_view(ctx.table, labels=v or []), [controls.labels])
    ctx.map_event(controls.tags.input, lambda s, v: s.set_view(ctx.table, tags=v or []), [controls.tags])
    ctx.map_event(controls.field.input,
                  lambda s, f: s.set_view(ctx.table, colour_by=f"field:{f}" if f else "label"), [controls.field])


def _wire_text_search(ctx: AppContext, search: SearchControls) -> None:
    """Text search (CLIP models): selects the nearest images to the text."""

    def text_search(state: MapState, text: str, k: float) -> MapState:
        if ctx.text_encoder is None or not (text or "").strip():
            return state
        vector = np.asarray(ctx.text_encoder(text.strip()), dtype=np.float32)
        return _select_hits(ctx, state, vector, int(k), f"text: {text.strip()}")

    ctx.map_event(search.button.click, text_search, [search.text, search.k])
    ctx.map_event(search.text.submit, text_search, [search.text, search.k])


def _tag_choices(counts: dict[str, int]) -> list[tuple[str, str]]:
    return [(f"{name} ({count:,})", name) for name, count in counts.items()]


def _store_filter(state: MapState) -> PointFilter | None:
    labels = ["" if name == NO_LABEL else name for name in state.filter_labels]
    flt = PointFilter(labels=labels or None, tags_any=list(state.filter_tags) or None)
    return None if flt.is_empty() else flt


def _select_hits(ctx: AppContext, state: MapState, vector: np.ndarray, k: int, source: str) -> MapState:
    """Select the k nearest points (within the filters), best first."""
    hits = ctx.collection.search(vector, limit=k, flt=_store_filter(state), fields=[])
    rows = ctx.table.rows_for_ids(h.id for h in hits)
    scores = np.asarray([h.score for h in hits if h.id in ctx.table.row_of], dtype=np.float32)
    return state.select(rows, source, scores=scores)


def _neighbours(ctx: AppContext, point: str, k: int) -> list[Any]:
    records = ctx.collection.retrieve([point], [], with_vectors=True)
    if not records or records[0].vector is None:
        return []
    hits = ctx.collection.search(records[0].vector, limit=k + 1, fields=[])
    return [h for h in hits if h.id != point][:k]
