"""The Duplicate boxes tab of an object explorer: two boxes of one image that overlap heavily
(IoU >= 0.7, same class or not), a classic annotation error: one object labelled twice.

Reads what `analyze` writes into each box (analysis/boxes.py): `duplicate_box_group` (boxes
of one image linked by IoU >= 0.7, -1 for none) and `max_box_iou`. The other label-quality
views (mislabels with their suggested class, confused class pairs, outliers, near-duplicate
crops) are the Label quality tab's, which works on boxes as it does on images.

    groups       the image of each group with every box drawn (ui/images.py /boxes), the
                 group's classes and IoU, most overlapping first; choosing one selects its
                 boxes on the map, to tag or relabel them in the Explorer and Metrics tabs
    select all   every box of every group
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np

from store.schema import DUPLICATE_BOX_GROUP, MAX_BOX_IOU
from ui.context import AppContext
from ui.state import MapState
from ui.table import PointTable
from ui.text import html_text

SHOWN_GROUPS = 30
ASSETS = Path(__file__).parent / "assets"  # the page's script, style and markup, as files
CSS = "<style>\n" + (ASSETS / "box-quality.css").read_text(encoding="utf-8") + "</style>\n"


def box_groups(table: PointTable) -> list[np.ndarray] | None:
    """Rows of each duplicate-box group (live rows, two or more), most overlapping first;
    None when the collection has no duplicate-box analysis."""
    group = table.numeric(DUPLICATE_BOX_GROUP)
    if not np.isfinite(group).any():
        return None
    iou = np.nan_to_num(table.numeric(MAX_BOX_IOU))
    rows = np.flatnonzero((group >= 0) & table.alive)
    found: dict[int, list[int]] = {}
    for row in rows[np.argsort(group[rows], kind="stable")]:
        found.setdefault(int(group[row]), []).append(int(row))
    groups = [np.asarray(members, dtype=np.int64) for members in found.values() if len(members) > 1]
    return sorted(groups, key=lambda g: (-float(iou[g].max()), int(g[0])))


def group_choices(table: PointTable, groups: list[np.ndarray]) -> list[tuple[str, str]]:
    """(text, group id) of the groups shown."""
    iou, group = np.nan_to_num(table.numeric(MAX_BOX_IOU)), table.numeric(DUPLICATE_BOX_GROUP)
    return [(f"{table.paths[g[0]]} · {' / '.join(table.label_of(r) for r in g)} · IoU {iou[g].max():.2f}",
             str(int(group[g[0]]))) for g in groups[:SHOWN_GROUPS]]


def group_rows(table: PointTable, group_id: str | None) -> np.ndarray | None:
    """Live rows of the duplicate-box group `group_id` (None for no / an unknown group)."""
    try:
        wanted = int(group_id)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    rows = np.flatnonzero((table.numeric(DUPLICATE_BOX_GROUP) == wanted) & table.alive)
    return rows if wanted >= 0 and len(rows) else None


def groups_html(table: PointTable, groups: list[np.ndarray] | None) -> str:
    if groups is None:
        return ('<p class="es-db-none">No duplicate-box analysis for this collection yet: run '
                '<code>python app.py analyze</code> on it and reload.</p>')
    if not groups:
        return '<p class="es-db-none">No two boxes of one image overlap at IoU 0.7 or more.</p>'
    iou = np.nan_to_num(table.numeric(MAX_BOX_IOU))
    lines = [f'<p class="es-db-count" data-groups="{len(groups)}">{len(groups):,} groups, '
             f'{sum(len(g) for g in groups):,} boxes.</p>']
    for g in groups[:SHOWN_GROUPS]:
        first = str(table.ids[g[0]])
        boxes = "".join(f'<span class="es-db-box"><img class="es-db-crop" loading="lazy" src="/thumb/{table.ids[r]}" '
                        f'alt=""><span>{html_text(table.label_of(r))}</span></span>' for r in g)
        lines.append(f'<div class="es-db-group" data-ids="{" ".join(str(table.ids[r]) for r in g)}">'
                     f'<img class="es-db-image" loading="lazy" src="/boxes/{first}" alt="" '
                     f'title="{html_text(table.paths[g[0]])}">{boxes}<span>IoU {iou[g].max():.2f}</span></div>')
    return CSS + "".join(lines)


def build(ctx: AppContext) -> None:
    gr.Markdown("Two boxes of one image overlapping at IoU 0.7 or more usually label one object twice "
                "(same class or not). Pick a group to select its boxes, then tag or relabel them.")
    with gr.Row(equal_height=True):
        choice = gr.Dropdown([], value=None, label="Group (selects its boxes)", elem_id="es-db-choice", scale=3)
        select_all = gr.Button("Select all duplicate boxes", size="sm", scale=1, elem_id="es-db-all")
    listing = gr.HTML(elem_id="es-db-groups")

    def follow(state: MapState) -> tuple[Any, str]:
        groups = box_groups(ctx.table)
        return gr.Dropdown(choices=group_choices(ctx.table, groups or [])), groups_html(ctx.table, groups)

    def pick(state: MapState, group_id: str | None) -> MapState:
        rows = group_rows(ctx.table, group_id)
        return state if rows is None else state.select(rows, f"duplicate boxes of {ctx.table.paths[rows[0]]}")

    def pick_all(state: MapState) -> MapState:
        groups = box_groups(ctx.table) or []
        rows = np.concatenate(groups) if groups else np.zeros(0, dtype=np.int64)
        return state.select(rows, "duplicate boxes")

    ctx.on_selection_change(follow, outputs=[choice, listing])
    ctx.map_event(choice.input, pick, [choice], name="duplicate_box_group")
    ctx.map_event(select_all.click, pick_all, name="duplicate_boxes_all")
