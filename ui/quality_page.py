"""The Label quality tab: likely mislabels, confused class pairs, outliers and near-duplicates.

Reads the scores `python app.py analyze` writes into the payloads (mislabel_score,
suggested_label, outlier_score, duplicate_group, quality_flags) and the ranked confused
pairs (scoring.analyze.confused_pairs). Every edit goes through the shared `PointTable`
(`relabel`, `restore_labels`, `edit_tags`), which writes to the store and keeps the
in-memory columns in step, so the map and the other tabs see it at once.

    mislabels   ranked by mislabel_score; on the chosen rows (none chosen: all shown):
                tag `mislabeled`, accept the suggested label (original kept), undo (restore),
                dismiss (tag `mislabel-dismissed`, hidden from the list)
    pairs       choosing a pair selects its points on the map
    outliers    flagged first, then by outlier_score; tag `outlier` or exclude (tag `excluded`,
                hidden from the list)
    duplicates  groups with duplicate_group >= 0; "keep one, tag the rest `duplicate`"

The helpers above `build` are plain functions of the table and numpy arrays (tested alone).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

import gradio as gr
import numpy as np

from store import Collection
from store.schema import (
    DUPLICATE_GROUP, EXCLUDED_TAG, MISLABEL_SCORE, ORIGINAL_LABEL, OUTLIER_FLAG, OUTLIER_SCORE, QUALITY_FLAGS,
    SUGGESTED_LABEL,
)
from ui.context import AppContext
from ui.state import MapState
from ui.table import PointTable

MISLABEL_TAG = "mislabeled"
DISMISSED_TAG = "mislabel-dismissed"
OUTLIER_TAG = "outlier"
DUPLICATE_TAG = "duplicate"
SHOWN = 50            # rows per list
SHOWN_GROUPS = 30     # duplicate groups shown
DEFAULT_MIN_SCORE = 0.5
CSS = """
<style>
.es-q-table { border-collapse: collapse; width: 100%; font-size: 13px; }
.es-q-table td, .es-q-table th { padding: 2px 6px; border-bottom: 1px solid #eee; text-align: left; }
.es-q-table img { width: 48px; height: 48px; object-fit: cover; border-radius: 3px; }
.es-q-group { display: flex; gap: 4px; align-items: center; margin: 4px 0; flex-wrap: wrap; }
.es-q-group img { width: 56px; height: 56px; object-fit: cover; border-radius: 3px; }
.es-q-group .es-q-kept { outline: 2px solid #2a9d4a; }
</style>
"""


# --- loading ---------------------------------------------------------------------------
@dataclass
class QualityData:
    """The analysis scores aligned to the table's rows (NaN / "" / [] where missing)."""

    mislabel: np.ndarray
    suggested: list[str]
    outlier: np.ndarray
    duplicate: np.ndarray     # int64, -1 = none
    flags: list[list[str]]

    @property
    def analysed(self) -> bool:
        return bool(np.isfinite(self.mislabel).any() or np.isfinite(self.outlier).any())


def load_quality(table: PointTable) -> QualityData:
    numbers = table.numeric_columns([MISLABEL_SCORE, OUTLIER_SCORE, DUPLICATE_GROUP])
    columns = table.payload_columns([SUGGESTED_LABEL, QUALITY_FLAGS])
    suggested = [str(label or "") for label in columns[SUGGESTED_LABEL]]
    flags = [list(flag or []) for flag in columns[QUALITY_FLAGS]]
    groups = numbers[DUPLICATE_GROUP]
    duplicate = np.where(np.isfinite(groups), groups, -1).astype(np.int64)
    return QualityData(numbers[MISLABEL_SCORE], suggested, numbers[OUTLIER_SCORE], duplicate, flags)


def load_pairs(collection: Collection) -> list[dict[str, Any]]:
    """The ranked confused class pairs of the last analysis ([] before any)."""
    from scoring.analyze import confused_pairs  # reads a JSON file; no models, no Qdrant client

    try:
        return list(confused_pairs(collection))
    except (OSError, ValueError):
        return []


# --- ranking ---------------------------------------------------------------------------
def mislabel_rows(table: PointTable, data: QualityData, min_score: float = DEFAULT_MIN_SCORE,
                  limit: int = SHOWN) -> np.ndarray:
    """Rows with a suggested label and mislabel_score >= min_score, highest first; dismissed
    rows (tag `mislabel-dismissed`) are left out."""
    score = data.mislabel
    keep = np.isfinite(score) & (score >= min_score)
    keep &= np.fromiter((bool(s) for s in data.suggested), dtype=bool, count=len(table))
    keep &= ~table.mask(tags=[DISMISSED_TAG])
    rows = np.flatnonzero(keep)
    return rows[np.argsort(-score[rows], kind="stable")][:limit]


def outlier_rows(table: PointTable, data: QualityData, limit: int = SHOWN) -> np.ndarray:
    """Flagged outliers first, then by outlier_score, highest first; excluded rows left out."""
    score = data.outlier
    keep = np.isfinite(score) & ~table.mask(tags=[EXCLUDED_TAG])
    rows = np.flatnonzero(keep)
    flagged = np.fromiter((OUTLIER_FLAG in data.flags[r] for r in rows), dtype=bool, count=len(rows))
    order = np.lexsort((-score[rows], ~flagged))
    return rows[order][:limit]


def duplicate_groups(data: QualityData, limit: int = SHOWN_GROUPS) -> list[np.ndarray]:
    """Rows of each near-duplicate group (duplicate_group >= 0), largest group first."""
    groups: dict[int, list[int]] = {}
    for row in np.flatnonzero(data.duplicate >= 0):
        groups.setdefault(int(data.duplicate[row]), []).append(int(row))
    ordered = sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    return [np.asarray(rows, dtype=np.int64) for _, rows in ordered if len(rows) > 1][:limit]


def pair_choices(pairs: Sequence[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(f"{p['class_a']} ↔ {p['class_b']} ({p['count']}: {p['a_to_b']} → / ← {p['b_to_a']})", str(i))
            for i, p in enumerate(pairs)]


def pair_rows(table: PointTable, pairs: Sequence[dict[str, Any]], choice: str | None) -> np.ndarray | None:
    """Rows of the chosen pair's points (None for no / an unknown choice)."""
    try:
        pair = pairs[int(choice)]  # type: ignore[arg-type]
    except (TypeError, ValueError, IndexError):
        return None
    return np.unique(table.rows_for_ids(str(i) for i in pair.get("ids", [])))


def chosen_rows(table: PointTable, chosen: Sequence[str] | None, shown: np.ndarray) -> np.ndarray:
    """The rows of the chosen ids, or every shown row when none is chosen."""
    if chosen:
        return np.asarray(sorted(set(table.rows_for_ids(chosen).tolist())), dtype=np.int64)
    return np.asarray(shown, dtype=np.int64)


# --- actions (write to the store through the table) -----------------------------------------
def accept_suggestions(table: PointTable, data: QualityData, rows: np.ndarray) -> int:
    """Relabel each row to its suggested label (the store keeps `original_label`)."""
    by_label: dict[str, list[int]] = {}
    for row in np.asarray(rows, dtype=np.int64):
        if data.suggested[row]:
            by_label.setdefault(data.suggested[row], []).append(int(row))
    return sum(table.relabel(np.asarray(group), label) for label, group in by_label.items())


def keep_one(table: PointTable, groups: Sequence[np.ndarray]) -> tuple[int, int]:
    """In each group keep the first row and tag the others `duplicate`; returns (groups, tagged)."""
    rest = [np.sort(g)[1:] for g in groups if len(g) > 1]
    if not rest:
        return 0, 0
    return len(rest), table.edit_tags(np.concatenate(rest), DUPLICATE_TAG, True)


# --- HTML ------------------------------------------------------------------------------
def _thumb(table: PointTable, row: int, css: str = "") -> str:
    pid = str(table.ids[row])
    return (f'<img loading="lazy" class="{css}" src="/thumb/{pid}" alt="{escape(table.label_of(row))}" '
            f'width="48" height="48" style="width:48px;height:48px;min-width:48px;max-width:none;object-fit:cover" '
            f'title="{escape(table.paths[row])}">')


def _tags(table: PointTable, row: int) -> str:
    return escape(", ".join(table.tags_of([row])[0]))


def mislabel_table(table: PointTable, data: QualityData, rows: np.ndarray,
                   originals: dict[str, str] | None = None) -> str:
    if len(rows) == 0:
        return '<p class="es-q-empty">No likely mislabels at this score.</p>'
    originals = originals or {}
    body = []
    for row in rows:
        row = int(row)
        pid = str(table.ids[row])
        was = originals.get(pid)
        status = f"relabelled (was {escape(was)})" if was else ""
        body.append(f'<tr data-id="{pid}"><td>{_thumb(table, row)}</td><td>{escape(table.paths[row])}</td>'
                    f'<td class="es-q-label">{escape(table.label_of(row))}</td>'
                    f'<td class="es-q-suggested">{escape(data.suggested[row])}</td>'
                    f'<td>{data.mislabel[row]:.2f}</td><td>{_tags(table, row)}</td><td>{status}</td></tr>')
    return ('<table class="es-q-table" id="es-q-mislabel-table"><tr><th></th><th>path</th><th>label</th>'
            '<th>suggested</th><th>score</th><th>tags</th><th></th></tr>' + "".join(body) + "</table>")


def outlier_table(table: PointTable, data: QualityData, rows: np.ndarray) -> str:
    if len(rows) == 0:
        return '<p class="es-q-empty">No outliers.</p>'
    body = "".join(
        f'<tr data-id="{table.ids[r]}"><td>{_thumb(table, int(r))}</td><td>{escape(table.paths[r])}</td>'
        f'<td>{escape(table.label_of(int(r)))}</td><td>{data.outlier[r]:.3f}</td>'
        f'<td>{"flagged" if OUTLIER_FLAG in data.flags[r] else ""}</td><td>{_tags(table, int(r))}</td></tr>'
        for r in rows)
    return ('<table class="es-q-table" id="es-q-outlier-table"><tr><th></th><th>path</th><th>label</th>'
            '<th>outlier score</th><th></th><th>tags</th></tr>' + body + "</table>")


def duplicates_html(table: PointTable, groups: Sequence[np.ndarray]) -> str:
    if not groups:
        return '<p class="es-q-empty">No near-duplicate groups.</p>'
    parts = []
    for group in groups:
        group = np.sort(group)
        images = "".join(_thumb(table, int(r), "es-q-kept" if i == 0 else "") for i, r in enumerate(group))
        tagged = sum(DUPLICATE_TAG in t for t in table.tags_of(group[1:]))
        parts.append(f'<div class="es-q-group" data-size="{len(group)}">{images}'
                     f'<span>{len(group)} images · {tagged} tagged duplicate</span></div>')
    return "".join(parts)


def pairs_table(pairs: Sequence[dict[str, Any]]) -> str:
    if not pairs:
        return '<p class="es-q-empty">No confused class pairs.</p>'
    body = "".join(f"<tr><td>{escape(str(p['class_a']))}</td><td>{escape(str(p['class_b']))}</td>"
                   f"<td>{p['a_to_b']}</td><td>{p['b_to_a']}</td><td>{p['count']}</td>"
                   f"<td>{100 * float(p.get('share', 0)):.1f} %</td></tr>" for p in pairs)
    return ('<table class="es-q-table" id="es-q-pairs-table"><tr><th>class A</th><th>class B</th><th>A→B</th>'
            '<th>B→A</th><th>points</th><th>share</th></tr>' + body + "</table>")


def row_choices(table: PointTable, rows: np.ndarray, data: QualityData | None = None) -> list[tuple[str, str]]:
    choices = []
    for row in rows:
        row = int(row)
        text = f"{table.paths[row]} · {table.label_of(row)}"
        if data is not None:
            text += f" → {data.suggested[row]} ({data.mislabel[row]:.2f})"
        choices.append((text, str(table.ids[row])))
    return choices


# --- the tab ---------------------------------------------------------------------------
def build(ctx: AppContext) -> None:
    table = ctx.table
    data = load_quality(table)
    if not data.analysed:
        gr.Markdown(f"No label-quality analysis for this collection yet. Run "
                    f"`python app.py analyze --collection {ctx.collection.name}` and restart the explorer.",
                    elem_id="es-q-missing")
        return
    pairs = load_pairs(ctx.collection)
    gr.HTML(CSS)

    def originals_of(rows: np.ndarray) -> dict[str, str]:
        ids = table.ids_for_rows(rows)
        return {r.id: str(r.payload[ORIGINAL_LABEL]) for r in ctx.collection.retrieve(ids, [ORIGINAL_LABEL])
                if r.payload.get("original_label")}

    def tags_changed(state: MapState) -> None:
        if state.colour_by == "tag" or state.filter_tags:
            state.set_view(table)

    # --- likely mislabels ------------------------------------------------------------------
    with gr.Accordion("Likely mislabels", open=True):
        with gr.Row(equal_height=True):
            min_score = gr.Slider(0.0, 1.0, value=DEFAULT_MIN_SCORE, step=0.05, label="Minimum mislabel score",
                                  elem_id="es-q-min-score", scale=3)
            show_mis = gr.Button("Select shown on map", elem_id="es-q-mis-select", scale=1)
        first = mislabel_rows(table, data)
        mis_choose = gr.CheckboxGroup(row_choices(table, first, data), value=[], elem_id="es-q-mis-choose",
                                      label="Choose rows (none chosen: actions apply to every row shown)")
        with gr.Row():
            mis_tag = gr.Button(f"Tag '{MISLABEL_TAG}'", size="sm", elem_id="es-q-mis-tag")
            mis_accept = gr.Button("Accept suggestion", size="sm", variant="primary", elem_id="es-q-mis-accept")
            mis_undo = gr.Button("Undo (restore label)", size="sm", elem_id="es-q-mis-undo")
            mis_dismiss = gr.Button("Dismiss", size="sm", elem_id="es-q-mis-dismiss")
        mis_status = gr.Markdown(elem_id="es-q-mis-status")
        mis_html = gr.HTML(mislabel_table(table, data, first, originals_of(first)), elem_id="es-q-mislabels")

    def mis_views(score: float) -> tuple[Any, str]:
        rows = mislabel_rows(table, data, float(score))
        return (gr.CheckboxGroup(choices=row_choices(table, rows, data), value=[]),
                mislabel_table(table, data, rows, originals_of(rows)))

    min_score.release(mis_views, [min_score], [mis_choose, mis_html], show_progress="hidden")

    def mis_action(state: MapState, chosen: list[str] | None, score: float, action: str) -> tuple[Any, ...]:
        rows = chosen_rows(table, chosen, mislabel_rows(table, data, float(score)))
        if len(rows) == 0:
            return (state, "Nothing to act on.", *mis_views(score))
        if action == "tag":
            changed = table.edit_tags(rows, MISLABEL_TAG, True)
            tags_changed(state)
            message = f"Tagged {changed:,} of {len(rows):,} points '{MISLABEL_TAG}'."
        elif action == "accept":
            changed = accept_suggestions(table, data, rows)
            state.dirty.add("colour")
            message = f"Relabelled {changed:,} of {len(rows):,} points to their suggested label (saved)."
        elif action == "undo":
            changed = table.restore_labels(rows)
            state.dirty.add("colour")
            message = f"Restored the original label of {changed:,} of {len(rows):,} points."
        else:
            changed = table.edit_tags(rows, DISMISSED_TAG, True)
            tags_changed(state)
            message = f"Dismissed {changed:,} of {len(rows):,} points (tag '{DISMISSED_TAG}')."
        return (state, message, *mis_views(score))

    mis_outputs = [mis_status, mis_choose, mis_html]
    for button, action in ((mis_tag, "tag"), (mis_accept, "accept"), (mis_undo, "undo"), (mis_dismiss, "dismiss")):
        ctx.map_event(button.click, lambda s, c, m, a=action: mis_action(s, c, m, a), [mis_choose, min_score],
                      mis_outputs, name=f"mislabel_{action}")
    ctx.map_event(show_mis.click, lambda s, m: s.select(mislabel_rows(table, data, float(m)), "likely mislabels"),
                  [min_score], name="mislabel_select")

    # --- confused pairs -----------------------------------------------------------------
    with gr.Accordion("Confused class pairs", open=True):
        pair_pick = gr.Radio(pair_choices(pairs), value=None, elem_id="es-q-pairs",
                             label="Choose a pair to select its points on the map")
        gr.HTML(pairs_table(pairs))

    def pick_pair(state: MapState, choice: str | None) -> MapState:
        rows = pair_rows(table, pairs, choice)
        if rows is None:
            return state
        pair = pairs[int(choice)]  # type: ignore[arg-type]
        return state.select(rows, f"confused: {pair['class_a']} ↔ {pair['class_b']}")

    ctx.map_event(pair_pick.input, pick_pair, [pair_pick], name="confused_pair")

    # --- outliers -----------------------------------------------------------------------
    with gr.Accordion("Outliers", open=False):
        first_out = outlier_rows(table, data)
        out_choose = gr.CheckboxGroup(row_choices(table, first_out), value=[], elem_id="es-q-out-choose",
                                      label="Choose rows (none chosen: actions apply to every row shown)")
        with gr.Row():
            out_tag = gr.Button(f"Tag '{OUTLIER_TAG}'", size="sm", elem_id="es-q-out-tag")
            out_exclude = gr.Button(f"Exclude (tag '{EXCLUDED_TAG}')", size="sm", elem_id="es-q-out-exclude")
            out_select = gr.Button("Select shown on map", size="sm", elem_id="es-q-out-select")
        out_status = gr.Markdown(elem_id="es-q-out-status")
        out_html = gr.HTML(outlier_table(table, data, first_out), elem_id="es-q-outliers")

    def out_action(state: MapState, chosen: list[str] | None, tag: str) -> tuple[Any, ...]:
        rows = chosen_rows(table, chosen, outlier_rows(table, data))
        changed = table.edit_tags(rows, tag, True) if len(rows) else 0
        tags_changed(state)
        shown = outlier_rows(table, data)
        return (state, f"Tagged {changed:,} of {len(rows):,} points '{tag}'.",
                gr.CheckboxGroup(choices=row_choices(table, shown), value=[]), outlier_table(table, data, shown))

    for button, tag in ((out_tag, OUTLIER_TAG), (out_exclude, EXCLUDED_TAG)):
        ctx.map_event(button.click, lambda s, c, t=tag: out_action(s, c, t), [out_choose],
                      [out_status, out_choose, out_html], name=f"outlier_{tag}")
    ctx.map_event(out_select.click, lambda s: s.select(outlier_rows(table, data), "outliers"), name="outlier_select")

    # --- duplicates ---------------------------------------------------------------------
    with gr.Accordion("Near-duplicate groups", open=False):
        with gr.Row():
            dup_keep = gr.Button(f"Keep one per group, tag the rest '{DUPLICATE_TAG}'", size="sm",
                                 elem_id="es-q-dup-keep")
            dup_select = gr.Button("Select all duplicates on map", size="sm", elem_id="es-q-dup-select")
        dup_status = gr.Markdown(elem_id="es-q-dup-status")
        dup_html = gr.HTML(duplicates_html(table, duplicate_groups(data)), elem_id="es-q-duplicates")

    def keep_first(state: MapState) -> tuple[Any, ...]:
        groups = duplicate_groups(data, limit=len(table))
        count, tagged = keep_one(table, groups)
        tags_changed(state)
        return (state, f"Kept one image in each of {count:,} groups; tagged {tagged:,} others '{DUPLICATE_TAG}'.",
                duplicates_html(table, duplicate_groups(data)))

    ctx.map_event(dup_keep.click, keep_first, [], [dup_status, dup_html], name="duplicates_keep_one")
    ctx.map_event(dup_select.click, lambda s: s.select(np.flatnonzero(data.duplicate >= 0), "near-duplicates"),
                  name="duplicates_select")
