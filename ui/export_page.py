"""The Filter & Export tab: state a filter, see how many points it keeps, download them.

Filters (all given must hold): tags any / all / none, labels, the current map selection,
a saved subset, and whether points tagged `excluded` count. The count is live; the
download is `export.export_to_tempfile` in the chosen format. The selection can be saved
as a subset (`subsets.saved`) and excluded from / restored to the exports. Two subsets, or two
splits (ui/split_panel.py, with the leaks between them), are compared side by side.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from actions.edits import PointEditor
from export import FORMATS, ExportError, export_to_tempfile
from filters import FilterSpec, SelectionError, count_matching
from store import StoreError
from store.schema import EXCLUDED_TAG
from subsets.compare import class_rows, compare_saved_subsets, field_rows
from subsets.saved import list_subsets, save_subset, subset_ids
from ui import split_panel
from ui.context import AppContext
from ui.state import MapState
from ui.table import NO_LABEL, PointTable
from ui.text import html_text, markdown_code, markdown_text

NO_SUBSET = "(any)"


def filter_spec(state: MapState | None, table: PointTable, tags_any: list[str] | None, tags_all: list[str] | None,
                tags_none: list[str] | None, labels: list[str] | None, selection_only: bool,
                subset: str | None, include_excluded: bool) -> FilterSpec:
    """The FilterSpec the tab's controls describe (selection only: the map's selected ids)."""
    ids = None
    if selection_only:
        ids = [] if state is None else state.selected_ids(table)
    return FilterSpec(tags_any=list(tags_any or []), tags_all=list(tags_all or []), tags_none=list(tags_none or []),
                      labels=["" if name == NO_LABEL else name for name in labels or []],
                      subset=None if not subset or subset == NO_SUBSET else subset, ids=ids,
                      include_excluded=bool(include_excluded))


def count_text(collection: Any, spec: FilterSpec) -> str:
    try:
        n = 0 if spec.ids == [] else count_matching(collection, spec)
    except (SelectionError, StoreError) as error:
        return f'<p class="es-export-count" data-count="">{html_text(error)}</p>'
    return (f'<p class="es-export-count" data-count="{n}"><b>{n:,}</b> points match '
            f'({html_text(spec.describe())}).</p>')


def subsets_markdown(collection: Any) -> str:
    subsets = list_subsets(collection)
    if not subsets:
        return "No saved subsets yet."
    return "\n".join(f"- **{markdown_text(info.name)}**: {info.count:,} points"
                     + (f" · {markdown_text(info.created_at)}" if info.created_at else "")
                     for info in subsets.values())


def comparison_html(result: Any, a: str, b: str) -> str:
    """Sizes and overlap, class shares side by side, and a KS p-value per numeric field."""
    classes = "".join(f"<tr><td>{html_text(r['class'])}</td><td>{r['share_a']:.1%}</td><td>{r['share_b']:.1%}</td>"
                      f"<td>{r['difference']:+.1%}</td></tr>" for r in class_rows(result))
    fields = "".join(f"<tr><td>{html_text(r['field'])}</td><td>{r['mean_a']:.4g}</td><td>{r['mean_b']:.4g}</td>"
                     f"<td>{r['statistic']:.3f}</td><td>{r['p_value']:.3g}</td></tr>" for r in field_rows(result))
    return (f'<div class="es-compare"><p><b style="color:#1f77b4">A: {html_text(a)}</b> {result.size_a:,} points · '
            f'<b style="color:#ff7f0e">B: {html_text(b)}</b> {result.size_b:,} points · overlap {result.overlap:,}</p>'
            f"<table><tr><th>class</th><th>share A</th><th>share B</th><th>B − A</th></tr>{classes}</table>"
            f"<table><tr><th>field</th><th>mean A</th><th>mean B</th><th>KS statistic</th><th>p-value</th></tr>"
            f"{fields}</table></div>")


def highlight_subsets(state: MapState, table: PointTable, collection: Any, a: str, b: str) -> MapState:
    """Colour the map by membership of subsets `a` and `b`."""
    state.compare_rows = (table.rows_for_ids(subset_ids(collection, a)), table.rows_for_ids(subset_ids(collection, b)))
    return state.set_view(table, colour_by="compare")


def subset_choices(collection: Any) -> list[str]:
    return [NO_SUBSET, *list_subsets(collection)]


@dataclass
class FilterControls:
    tags_any: gr.Dropdown
    tags_all: gr.Dropdown
    tags_none: gr.Dropdown
    labels: gr.Dropdown
    subset: gr.Dropdown
    selection_only: gr.Checkbox
    include_excluded: gr.Checkbox
    refresh: gr.Button

    def inputs(self) -> list[Any]:
        """In the order `filter_spec` takes them."""
        return [self.tags_any, self.tags_all, self.tags_none, self.labels, self.selection_only, self.subset,
                self.include_excluded]


@dataclass
class SubsetControls:
    listing: gr.Markdown
    compare_a: gr.Dropdown
    compare_b: gr.Dropdown


def build(ctx: AppContext) -> None:
    """The tab: filters with a live count, the download, saving / excluding the selection, and
    comparing two subsets."""
    filters = _filter_panel(ctx)
    _download_panel(ctx, filters)
    gr.Markdown("**Selection**: save it as a subset, or exclude it from exports and analyses")
    subset_name, save, action_status = _selection_panel(ctx)
    listing = gr.Markdown(subsets_markdown(ctx.collection), elem_id="es-x-subsets")
    gr.Markdown("**Compare two subsets**: side by side, and in two colours on the map")
    subsets = SubsetControls(listing, *_compare_panel(ctx))
    split_panel.build(ctx)
    _wire_refresh(ctx, filters, subsets)
    _wire_save(ctx, subset_name, save, action_status, filters, subsets)


def _filter_panel(ctx: AppContext) -> FilterControls:
    """The filter controls and the live count of the points they keep."""
    tags, labels, subsets = list(ctx.table.tag_counts()), list(ctx.table.label_names), subset_choices(ctx.collection)
    with gr.Row():
        tags_any = gr.Dropdown(tags, multiselect=True, value=[], label="Has any of tags", elem_id="es-x-tags-any")
        tags_all = gr.Dropdown(tags, multiselect=True, value=[], label="Has all of tags", elem_id="es-x-tags-all")
        tags_none = gr.Dropdown(tags, multiselect=True, value=[], label="Has none of tags", elem_id="es-x-tags-none")
    with gr.Row():
        label_filter = gr.Dropdown(labels, multiselect=True, value=[], label="Labels", elem_id="es-x-labels")
        subset = gr.Dropdown(subsets, value=NO_SUBSET, label="Subset", elem_id="es-x-subset")
    with gr.Row():
        selection_only = gr.Checkbox(False, label="Current selection only", elem_id="es-x-selection")
        include_excluded = gr.Checkbox(False, label=f"Include points tagged '{EXCLUDED_TAG}'", elem_id="es-x-excluded")
        refresh = gr.Button("↻ Refresh choices", size="sm", elem_id="es-x-refresh")
    controls = FilterControls(tags_any, tags_all, tags_none, label_filter, subset, selection_only, include_excluded,
                              refresh)
    count = gr.HTML(elem_id="es-x-count")

    def live_count(state: MapState, *values: Any) -> str:
        return count_text(ctx.collection, filter_spec(state, ctx.table, *values))

    for control in controls.inputs():
        ctx.event(control.change, live_count, controls.inputs(), [count])
    ctx.on_selection_change(live_count, controls.inputs(), [count])
    return controls


def _download_panel(ctx: AppContext, filters: FilterControls) -> None:
    """Export the filtered points in a chosen format as a download."""
    with gr.Row(equal_height=True):
        fmt = gr.Dropdown(list(FORMATS), value="csv", label="Format", elem_id="es-x-format", scale=1)
        export = gr.Button("Export", variant="primary", elem_id="es-x-export", scale=1)
    download = gr.File(label="Download", elem_id="es-x-download", interactive=False)
    status = gr.Markdown(elem_id="es-x-status")

    def do_export(state: MapState, name: str, *values: Any) -> tuple[Any, str]:
        spec = filter_spec(state, ctx.table, *values)
        if spec.ids == []:
            return None, "Nothing is selected on the map."
        try:
            path = export_to_tempfile(ctx.collection, name, spec.resolve(ctx.collection), name=spec.subset)
        except (ExportError, SelectionError, StoreError) as error:
            return None, f"Export failed: {markdown_text(error)}"
        return str(path), f"Exported as {markdown_text(name)}: {markdown_code(path.name)}."

    ctx.event(export.click, do_export, [fmt, *filters.inputs()], [download, status], show_progress="full")


def _selection_panel(ctx: AppContext) -> tuple[gr.Textbox, gr.Button, gr.Markdown]:
    """Save the selection as a subset (wired in `_wire_save`), exclude it or restore it."""
    with gr.Row(equal_height=True):
        subset_name = gr.Textbox(label="Subset name", elem_id="es-x-subset-name", scale=2, max_lines=1)
        save = gr.Button("Save selection as subset", elem_id="es-x-save", scale=1)
    with gr.Row():
        exclude = gr.Button("Exclude selection", elem_id="es-x-exclude")
        restore = gr.Button("Restore selection", elem_id="es-x-restore")
    status = gr.Markdown(elem_id="es-x-action-status")

    def edit_excluded(state: MapState, add: bool) -> tuple[MapState, str]:
        rows = state.selected_rows()
        if rows is None or len(rows) == 0:
            return state, "Select points on the map first."
        editor = PointEditor(ctx.table)
        changed = editor.exclude(rows) if add else editor.restore(rows)
        if state.colour_by == "tag" or state.filter_tags:
            state.set_view(ctx.table)
        verb = "Excluded" if add else "Restored"
        return state, f"{verb} {changed:,} of {len(rows):,} selected points."

    ctx.map_event(exclude.click, lambda s: edit_excluded(s, True), [], [status], name="exclude")
    ctx.map_event(restore.click, lambda s: edit_excluded(s, False), [], [status], name="restore")
    return subset_name, save, status


def _compare_panel(ctx: AppContext) -> tuple[gr.Dropdown, gr.Dropdown]:
    """Pick two saved subsets: their comparison, and the map coloured by membership."""
    names = subset_choices(ctx.collection)[1:]
    with gr.Row(equal_height=True):
        subset_a = gr.Dropdown(names, label="Subset A", elem_id="es-x-compare-a", scale=2)
        subset_b = gr.Dropdown(names, label="Subset B", elem_id="es-x-compare-b", scale=2)
        compare = gr.Button("Compare", elem_id="es-x-compare", scale=1)
    comparison = gr.HTML(elem_id="es-x-comparison")

    def do_compare(state: MapState, a: str | None, b: str | None) -> tuple[MapState, str]:
        if not a or not b:
            return state, "<p>Pick two saved subsets.</p>"
        try:
            result = compare_saved_subsets(ctx.collection, a, b)
        except (StoreError, ValueError) as error:
            return state, f"<p>{html_text(str(error))}</p>"
        return highlight_subsets(state, ctx.table, ctx.collection, a, b), comparison_html(result, a, b)

    ctx.map_event(compare.click, do_compare, [subset_a, subset_b], [comparison], name="compare")
    return subset_a, subset_b


def _wire_refresh(ctx: AppContext, filters: FilterControls, subsets: SubsetControls) -> None:
    """"Refresh choices": the tags, labels and subsets as they are now."""

    def refresh_choices() -> tuple[Any, ...]:
        tags_now, choices = list(ctx.table.tag_counts()), subset_choices(ctx.collection)
        return (gr.Dropdown(choices=tags_now), gr.Dropdown(choices=tags_now), gr.Dropdown(choices=tags_now),
                gr.Dropdown(choices=list(ctx.table.label_names)), gr.Dropdown(choices=choices),
                subsets_markdown(ctx.collection))

    filters.refresh.click(refresh_choices, [], [filters.tags_any, filters.tags_all, filters.tags_none, filters.labels,
                                                filters.subset, subsets.listing])


def _wire_save(ctx: AppContext, name_box: gr.Textbox, save: gr.Button, status: gr.Markdown,
               filters: FilterControls, subsets: SubsetControls) -> None:
    """Save the selection as a subset; every list of subsets on the tab follows."""

    def save_selection(state: MapState, name: str) -> tuple[Any, ...]:
        ids = state.selected_ids(ctx.table)
        if not ids:
            return "Select points on the map first.", gr.skip(), gr.skip(), gr.skip(), gr.skip()
        try:
            size = save_subset(ctx.collection, (name or "").strip(), ids, description="saved from the explorer")
        except StoreError as error:
            return f"Not saved: {markdown_text(error)}", gr.skip(), gr.skip(), gr.skip(), gr.skip()
        names = subset_choices(ctx.collection)
        return (f"Saved subset '{markdown_text(name.strip())}' ({size:,} points).", gr.Dropdown(choices=names),
                subsets_markdown(ctx.collection), gr.Dropdown(choices=names[1:]), gr.Dropdown(choices=names[1:]))

    ctx.event(save.click, save_selection, [name_box],
              [status, filters.subset, subsets.listing, subsets.compare_a, subsets.compare_b], show_progress="full")
