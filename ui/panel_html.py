"""HTML of the panels beside the map (the views linked to its selection): the count line, the image
grid, the distribution chart, the detail card.

Pure functions of the table and a list of rows, so they are fast (no store access) and
testable without a browser. Images are referenced by point id through /thumb and /image;
the grid only ever points at thumbnails.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from store import PointRecord
from ui.state import MapState
from ui.table import NO_LABEL, PointTable
from ui.text import html_text

PAGE_SIZE = 40
DISTRIBUTION_ROWS = 15


def page_count(total: int) -> int:
    return max(1, -(-total // PAGE_SIZE))


def count_line(table: PointTable, state: MapState, noun: str = "") -> str:
    """"N of M selected" (with `noun`: "N of M objects selected"), or what is shown without one."""
    visible = table.size if state.visible is None else int(state.visible.sum())
    filtered = bool(state.filter_labels or state.filter_tags)
    things = noun or "points"
    scope = f"{visible:,} {things} passing the filter" if filtered else f"{visible:,} {things}"
    if not state.selection.active:
        return f'<p class="es-count" data-selected="" data-total="{visible}">No selection: showing all {scope}.</p>'
    n = len(state.selection)
    source = f" ({html_text(state.selection.source)})" if state.selection.source else ""
    selected = f"{html_text(noun)} selected" if noun else "selected"
    return (f'<p class="es-count" data-selected="{n}" data-total="{visible}"><b>{n:,} of {visible:,}</b> '
            f'{selected}{source}.</p>')


def pager_text(state: MapState, total: int, noun: str = "images") -> str:
    first = state.page * PAGE_SIZE
    return (f"Page {state.page + 1} of {page_count(total)} · {noun} {min(first + 1, total):,}-"
            f"{min(first + PAGE_SIZE, total):,} of {total:,}")


def grid_html(table: PointTable, rows: np.ndarray, page: int, scores: np.ndarray | None = None) -> str:
    start = page * PAGE_SIZE
    page_rows = rows[start:start + PAGE_SIZE]
    if len(page_rows) == 0:
        return '<div class="es-grid es-empty">Nothing selected here. Draw a box or lasso on the map.</div>'
    page_scores = None if scores is None else scores[start:start + PAGE_SIZE]
    cards = [_card(table, int(row), None if page_scores is None else float(page_scores[i]))
             for i, row in enumerate(page_rows)]
    return f'<div class="es-grid" data-page="{page}">{"".join(cards)}</div>'


def _card(table: PointTable, row: int, score: float | None) -> str:
    point = str(table.ids[row])
    label = table.label_of(row)
    tags = "".join(f'<span class="es-tag">{html_text(t)}</span>' for t in table.tags_of([row])[0])
    score_html = f'<span class="es-score">{score:.3f}</span>' if score is not None else ""
    return (f'<figure class="es-card" data-id="{point}" title="{html_text(table.paths[row])}">'
            f'<img loading="lazy" src="/thumb/{point}" alt="{html_text(label)}">'
            f'<figcaption><span class="es-label">{html_text(label)}</span>{score_html}'
            f'<span class="es-tags">{tags}</span></figcaption></figure>')


def distribution_html(table: PointTable, rows: np.ndarray, visible: np.ndarray | None) -> str:
    """Class counts of the shown points beside the whole (filtered) dataset, as share bars."""
    selected = table.label_counts(rows)
    everything = table.label_counts(None if visible is None else np.flatnonzero(visible))
    n_sel, n_all = max(1, sum(selected.values())), max(1, sum(everything.values()))
    # Unlabelled points are never folded into "other": their bar comes last, always shown.
    names = sorted((k for k in everything if k != NO_LABEL), key=lambda k: (-selected.get(k, 0), -everything[k], k))
    shown, rest = names[:DISTRIBUTION_ROWS], names[DISTRIBUTION_ROWS:]
    lines = [_bar_row(name, selected.get(name, 0), everything[name], n_sel, n_all) for name in shown]
    if rest:
        lines.append(_bar_row(f"other ({len(rest)} classes)", sum(selected.get(k, 0) for k in rest),
                              sum(everything[k] for k in rest), n_sel, n_all, grouped=True))
    if NO_LABEL in everything:
        lines.append(_bar_row(NO_LABEL, selected.get(NO_LABEL, 0), everything[NO_LABEL], n_sel, n_all))
    legend = ('<div class="es-dist-legend"><span class="es-key es-sel"></span>selection '
              '<span class="es-key es-all"></span>whole dataset (share of each)</div>')
    return f'<div class="es-dist">{labelled_line(table, rows, visible)}{legend}{"".join(lines)}</div>'


def labelled_line(table: PointTable, rows: np.ndarray, visible: np.ndarray | None) -> str:
    """"Selection: 12 labelled · 30 unlabelled · whole dataset: ..." when any shown point is
    unlabelled ("" otherwise: a fully labelled dataset needs no such line)."""
    unlabelled_code = table.label_names.index(NO_LABEL) if NO_LABEL in table.label_names else -1
    whole = np.flatnonzero(table.alive if visible is None else visible & table.alive)
    whole_unlabelled = int((table.label_codes[whole] == unlabelled_code).sum())
    if not whole_unlabelled:
        return ""
    chosen_unlabelled = int((table.label_codes[rows] == unlabelled_code).sum())
    return (f'<p class="es-labelled" data-labelled="{len(rows) - chosen_unlabelled}" '
            f'data-unlabelled="{chosen_unlabelled}" data-total-labelled="{len(whole) - whole_unlabelled}" '
            f'data-total-unlabelled="{whole_unlabelled}">Shown: <b>{len(rows) - chosen_unlabelled:,} labelled · '
            f'{chosen_unlabelled:,} unlabelled</b> · whole dataset: {len(whole) - whole_unlabelled:,} labelled · '
            f'{whole_unlabelled:,} unlabelled</p>')


def _bar_row(name: str, selected: int, total: int, n_sel: int, n_all: int, grouped: bool = False) -> str:
    sel_pct, all_pct = 100 * selected / n_sel, 100 * total / n_all
    attr = "data-group" if grouped else "data-label"
    return (f'<div class="es-dist-row" {attr}="{html_text(name)}" data-selected="{selected}" data-total="{total}">'
            f'<span class="es-dist-name" title="{html_text(name)}">{html_text(name)}</span>'
            f'<span class="es-bars"><span class="es-bar es-sel" style="width:{sel_pct:.1f}%"></span>'
            f'<span class="es-bar es-all" style="width:{all_pct:.1f}%"></span></span>'
            f'<span class="es-dist-num">{selected:,} · {total:,}</span></div>')


def detail_html(table: PointTable, point: str | None, neighbours: Sequence[PointRecord],
                boxes: Sequence[tuple[str, str]] | None = None) -> str:
    """The clicked point: its picture, path, label, tags and nearest neighbours. With `boxes`
    (detection datasets: (point id, class) of every box of its image) the picture is the whole
    image with those boxes drawn and named (/boxes/{id}; a box's own one highlighted), and the
    classes are listed."""
    if point is None or point not in table.row_of:
        return ""
    row = table.row_of[point]
    tags = ", ".join(html_text(t) for t in table.tags_of([row])[0]) or "none"
    near = "".join(_card(table, table.row_of[n.id], n.score) for n in neighbours if n.id in table.row_of)
    route, top, extra = "image", "es-detail-top", ""
    if boxes is not None:
        route, top = "boxes", "es-detail-top es-detail-boxes"
        extra = (f'<dt>boxes</dt><dd class="es-detail-boxlist" data-count="{len(boxes)}">'
                 + (", ".join(f'<span class="es-box{" es-box-this" if pid == point else ""}" data-id="{pid}">'
                              f'{html_text(name)}</span>' for pid, name in boxes) or "none") + "</dd>")
    return (f'<div class="es-detail" data-id="{point}"><div class="{top}">'
            f'<a href="/{route}/{point}" target="_blank"><img class="es-full" src="/{route}/{point}" alt=""></a>'
            f'<dl><dt>path</dt><dd class="es-path">{html_text(table.paths[row])}</dd>'
            f'<dt>label</dt><dd class="es-detail-label">{html_text(table.label_of(row))}</dd>'
            f'<dt>tags</dt><dd class="es-detail-tags">{tags}</dd>{extra}</dl></div>'
            f'<div class="es-near-title">Nearest neighbours in Qdrant (cosine similarity)</div>'
            f'<div class="es-grid es-near">{near}</div></div>')


ASSETS = Path(__file__).parent / "assets"  # the page's script, style and markup, as files
CSS = (ASSETS / "panels.css").read_text(encoding="utf-8")
