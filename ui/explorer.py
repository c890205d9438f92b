"""The explorer: map controls (colour, filters, search) and the Explorer tab (count line,
image grid with detail view, class distribution, tagging, tag list).

Every handler works on the session's `MapState` and the shared `PointTable`; Qdrant is
reached only through the `Collection` for search, neighbours and tag writes.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr
import numpy as np

from store import PointFilter
from store.schema import PREDICTION_CORRECT, InvalidTag, validate_tag
from ui.clusters import load_clusters
from ui.context import AppContext
from ui.metrics_page import numeric_fields
from ui.state import MapState
from ui.table import NO_LABEL, PointTable
from ui.views import (
    detail_html, distribution_html, count_line, grid_html, page_count, pager_text,
)

NEIGHBOURS = 12
CLICK_JS = """
element.addEventListener('click', (e) => {
  const card = e.target.closest('[data-id]');
  if (card && card.classList.contains('es-card')) trigger('click', {id: card.dataset.id});
});
"""


@dataclass
class MapControls:
    colour: gr.Radio
    labels: gr.Dropdown
    tags: gr.Dropdown
    field: gr.Dropdown  # colour by a numeric payload field (metric, score, prediction_correct)


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
        colour = gr.Radio(modes, value=default_colour(table), label="Colour by", elem_id="es-colour", scale=3,
                          min_width=250)
        labels = gr.Dropdown(table.label_names, multiselect=True, label="Show labels", value=[],
                             elem_id="es-filter-labels", scale=2, min_width=160)
        tags = gr.Dropdown(list(table.tag_counts()), multiselect=True, label="Show tags", value=[],
                           elem_id="es-filter-tags", scale=2, min_width=160)
        field = gr.Dropdown([("(none)", ""), *colour_fields(table)], value="", label="Colour by field",
                            elem_id="es-colour-field", scale=2, min_width=160)
    return MapControls(colour, labels, tags, field)


def colour_fields(table: PointTable) -> list[str]:
    """Numeric payload fields the map can be coloured by, plus prediction correctness."""
    fields = numeric_fields(table)
    if np.isfinite(table.numeric(PREDICTION_CORRECT)).any():
        fields.append(PREDICTION_CORRECT)
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


def build_explorer(ctx: AppContext, controls: MapControls, search: SearchControls) -> None:
    """The Explorer tab's components and every explorer callback (call inside a gr.Tab)."""
    table = ctx.table
    count = gr.HTML(elem_id="es-count")
    with gr.Column(visible=False) as detail_box:
        detail = gr.HTML(elem_id="es-detail", js_on_load=CLICK_JS)
        with gr.Row():
            more = gr.Button("More like this", size="sm", elem_id="es-more")
            close = gr.Button("Close", size="sm", elem_id="es-close")
    with gr.Row(equal_height=True):
        prev = gr.Button("◀ Prev", size="sm", scale=0, min_width=80, elem_id="es-prev")
        pager = gr.Markdown(elem_id="es-pager")
        nxt = gr.Button("Next ▶", size="sm", scale=0, min_width=80, elem_id="es-next")
    with gr.Row(equal_height=True):
        sort_field = gr.Dropdown([("selection order", ""), *colour_fields(table)], value="", label="Sort grid by",
                                 elem_id="es-sort", scale=3)
        descending = gr.Checkbox(label="Descending", value=False, elem_id="es-sort-desc", scale=1)
    grid = gr.HTML(elem_id="es-grid", js_on_load=CLICK_JS)
    gr.Markdown("**Class distribution**: selection (blue) beside the whole dataset (grey)")
    distribution = gr.HTML(elem_id="es-dist")
    with gr.Row(equal_height=True):
        tag = gr.Dropdown(list(table.tag_counts()), value=None, allow_custom_value=True, label="Tag",
                          elem_id="es-tag", scale=2)
        add = gr.Button("Add to selection", elem_id="es-tag-add", scale=1, variant="primary")
        remove = gr.Button("Remove from selection", elem_id="es-tag-remove", scale=1)
    status = gr.Markdown(elem_id="es-tag-status")
    tag_list = gr.Radio(_tag_choices(table.tag_counts()), value=None, label="Tags (pick one to select its points)",
                        elem_id="es-tag-list")

    # --- following the selection ------------------------------------------------------
    def refresh(state: MapState) -> tuple[str, str, str, str]:
        rows = state.shown_rows(table)
        scores = state.selection.scores if state.selection.active else None
        grid_rows, grid_scores = ordered(table, state, rows, scores)
        return (count_line(table, state), pager_text(state, len(rows)),
                grid_html(table, grid_rows, state.page, grid_scores), distribution_html(table, rows, state.visible))

    ctx.on_selection_change(refresh, outputs=[count, pager, grid, distribution])

    # --- map: box / lasso / double-click, colour, filters -------------------------------
    def on_map_select(state: MapState, payload: dict[str, Any]) -> MapState:
        rows = payload.get("rows")
        if rows is None:
            return state.clear(from_map=True)
        rows = np.unique(np.asarray([r for r in rows if isinstance(r, int)], dtype=np.int64))
        rows = rows[(rows >= 0) & (rows < len(table))]
        return state.select(rows, str(payload.get("kind") or "map"), from_map=True)

    ctx.map_select_event(on_map_select)
    ctx.map_event(controls.colour.input, lambda s, c: s.set_view(table, colour_by=c), [controls.colour])
    ctx.map_event(controls.labels.input, lambda s, v: s.set_view(table, labels=v or []), [controls.labels])
    ctx.map_event(controls.tags.input, lambda s, v: s.set_view(table, tags=v or []), [controls.tags])
    ctx.map_event(controls.field.input, lambda s, f: s.set_view(table, colour_by=f"field:{f}" if f else "label"),
                  [controls.field])

    # --- paging and the detail view -------------------------------------------------------
    def turn(state: MapState, step: int) -> tuple[MapState, str, str]:
        rows = state.shown_rows(table)
        state.page = int(np.clip(state.page + step, 0, page_count(len(rows)) - 1))
        scores = state.selection.scores if state.selection.active else None
        grid_rows, grid_scores = ordered(table, state, rows, scores)
        return state, pager_text(state, len(rows)), grid_html(table, grid_rows, state.page, grid_scores)

    prev.click(lambda s: turn(s, -1), [ctx.state], [ctx.state, pager, grid], show_progress="hidden")
    nxt.click(lambda s: turn(s, 1), [ctx.state], [ctx.state, pager, grid], show_progress="hidden")

    def sort_grid(state: MapState, field: str | None, desc: bool) -> tuple[MapState, str, str]:
        state.sort_field, state.sort_descending, state.page = field or None, bool(desc), 0
        return turn(state, 0)

    for control in (sort_field, descending):
        control.input(sort_grid, [ctx.state, sort_field, descending], [ctx.state, pager, grid],
                      show_progress="hidden")

    def open_detail(state: MapState, evt: gr.EventData) -> tuple[MapState, str, Any]:
        point = str(evt._data.get("id", ""))
        if point not in table.row_of:
            return state, gr.skip(), gr.skip()
        state.detail_id = point
        return state, detail_html(table, point, _neighbours(ctx, point, NEIGHBOURS)), gr.Column(visible=True)

    grid.click(open_detail, [ctx.state], [ctx.state, detail, detail_box], show_progress="hidden")
    detail.click(open_detail, [ctx.state], [ctx.state, detail, detail_box], show_progress="hidden")
    close.click(lambda s: (s, gr.Column(visible=False)), [ctx.state], [ctx.state, detail_box],
                show_progress="hidden")

    # --- search: "more like this" and text ----------------------------------------------
    def more_like_this(state: MapState, k: float) -> MapState:
        if state.detail_id is None:
            return state
        records = ctx.collection.retrieve([state.detail_id], [], with_vectors=True)
        if not records or records[0].vector is None:
            return state
        return _select_hits(ctx, state, records[0].vector, int(k), f"like {table.paths[table.row_of[state.detail_id]]}")

    ctx.map_event(more.click, more_like_this, [search.k])

    def text_search(state: MapState, text: str, k: float) -> MapState:
        if ctx.text_encoder is None or not (text or "").strip():
            return state
        vector = np.asarray(ctx.text_encoder(text.strip()), dtype=np.float32)
        return _select_hits(ctx, state, vector, int(k), f"text: {text.strip()}")

    ctx.map_event(search.button.click, text_search, [search.text, search.k])
    ctx.map_event(search.text.submit, text_search, [search.text, search.k])

    # --- tagging ------------------------------------------------------------------------
    def edit(state: MapState, name: str | None, add: bool) -> tuple[Any, ...]:
        rows = state.selected_rows()
        if not (name or "").strip():
            return state, "Type a new tag or pick one first.", gr.skip(), gr.skip(), gr.skip()
        try:
            name = validate_tag(name)
        except InvalidTag as error:
            return state, str(error), gr.skip(), gr.skip(), gr.skip()
        if rows is None or len(rows) == 0:
            return state, "Select points on the map first.", gr.skip(), gr.skip(), gr.skip()
        changed = table.edit_tags(rows, name, add)
        if state.colour_by == "tag" or state.filter_tags:
            state.set_view(table)
        verb = f"Added '{name}' to" if add else f"Removed '{name}' from"
        message = f"{verb} {changed:,} of {len(rows):,} selected points (saved to Qdrant)."
        counts = table.tag_counts()
        return (state, message, gr.Dropdown(choices=list(counts), value=name),
                gr.Radio(choices=_tag_choices(counts), value=None), gr.Dropdown(choices=list(counts)))

    tag_outputs = [status, tag, tag_list, controls.tags]
    ctx.map_event(add.click, lambda s, n: edit(s, n, True), [tag], tag_outputs, name="tag_add")
    ctx.map_event(remove.click, lambda s, n: edit(s, n, False), [tag], tag_outputs, name="tag_remove")

    def pick_tag(state: MapState, name: str | None) -> MapState:
        if not name:
            return state
        return state.select(table.rows_with_tags([name]), f"tag: {name}")

    ctx.map_event(tag_list.input, pick_tag, [tag_list])


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
