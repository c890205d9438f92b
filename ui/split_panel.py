"""The splits on the Filter & Export tab: compare two splits in one click, select the leaks.

    build(ctx)    # inside the tab, below "Compare two subsets"

"Compare splits" runs the subsets comparison (subsets/compare.py `compare_splits`, what
`python app.py compare --split train test` prints) for two values of `split`, preset to the
first two (train and val / test when present), and colours the map by them. "Select leaks"
selects the near-duplicate groups whose members sit in different splits (`split_leak_group`,
written by `analyze`) on the map, so the grid, tagging and exports act on them.
"""
from __future__ import annotations

from typing import Any

import gradio as gr

from filters import default_filter
from store import PointFilter, StoreError
from store.schema import SPLIT, SPLIT_LEAK_GROUP
from subsets.compare import compare_splits
from ui.context import AppContext
from ui.state import MapState
from ui.text import html_text

PREFERRED = ("train", "val", "validation", "test")  # the usual pair first


def split_names(collection: Any) -> list[str]:
    """The collection's splits, the usual ones first (train, val, validation, test), then by size
    (none where `split` has no index: a facet needs one, and a scan at start-up would cost a
    minute at ten million points; `index` creates it)."""
    if SPLIT not in collection.indexed_fields():
        return []
    counts = collection.facet(SPLIT)
    known = [name for name in PREFERRED if name in counts]
    return known + sorted((n for n in counts if n not in known and n), key=lambda n: (-counts[n], n))


def leak_filter() -> PointFilter:
    """The points of a near-duplicate group that crosses splits (not `excluded` ones)."""
    flt = default_filter()
    flt.ranges = {SPLIT_LEAK_GROUP: (0, None)}
    return flt


def leak_line(collection: Any) -> str:
    """How many leak groups `analyze` found (its metadata) and how many points they hold."""
    groups = (collection.read_metadata().get("analysis") or {}).get("split_leak_groups")
    if groups is None:
        return '<p class="es-leaks">Leaks between splits: not looked for yet (run <code>analyze</code>).</p>'
    points = collection.count(leak_filter())
    return (f'<p class="es-leaks" data-points="{points}" data-groups="{int(groups)}">Leaks: {points:,} points in '
            f"{int(groups):,} near-duplicate groups that cross splits</p>")


def _split_rows(state: MapState, ctx: AppContext, a: str, b: str) -> MapState:
    """Colour the map by split `a` and split `b` (as two compared subsets)."""
    ids = [ctx.collection.ids(PointFilter(values={SPLIT: [name]})) for name in (a, b)]
    state.compare_rows = (ctx.table.rows_for_ids(ids[0]), ctx.table.rows_for_ids(ids[1]))
    return state.set_view(ctx.table, colour_by="compare")


def build(ctx: AppContext) -> None:
    from ui.export_page import comparison_html  # the subsets comparison's table, shared

    names = split_names(ctx.collection)
    if len(names) < 2:
        return
    gr.Markdown("**Splits**: compare two, or select the near-duplicates that leak between them")
    with gr.Row(equal_height=True):
        split_a = gr.Dropdown(names, value=names[0], label="Split A", elem_id="es-x-split-a", scale=2)
        split_b = gr.Dropdown(names, value=names[1], label="Split B", elem_id="es-x-split-b", scale=2)
        compare = gr.Button("Compare splits", elem_id="es-x-split-compare", scale=1)
    with gr.Row(equal_height=True):
        leaks = gr.HTML(leak_line(ctx.collection), elem_id="es-x-leaks")
        select = gr.Button("Select leaks", elem_id="es-x-leaks-select", scale=0)
    comparison = gr.HTML(elem_id="es-x-split-comparison")

    def do_compare(state: MapState, a: str | None, b: str | None) -> tuple[MapState, str]:
        if not a or not b or a == b:
            return state, "<p>Pick two different splits.</p>"
        try:
            result = compare_splits(ctx.collection, a, b)
        except (StoreError, ValueError) as error:
            return state, f"<p>{html_text(str(error))}</p>"
        return _split_rows(state, ctx, a, b), comparison_html(result, a, b)

    def select_leaks(state: MapState) -> tuple[MapState, str]:
        rows = ctx.table.rows_for_ids(ctx.collection.ids(leak_filter()))
        state.select(rows, "split leaks")
        return state, leak_line(ctx.collection)

    ctx.map_event(compare.click, do_compare, [split_a, split_b], [comparison], name="compare_splits")
    ctx.map_event(select.click, select_leaks, [], [leaks], name="select_leaks")
