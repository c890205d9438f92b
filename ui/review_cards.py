"""HTML of the review queue: the card (one suspicious point, or one duplicate group, with its
evidence), the progress line and the paged strip of what comes next.

Pure functions of the shared `PointTable`, a `ReviewBook` item and the evidence (the point's
nearest neighbours as the analysis saw them), so they are fast and testable without a browser.
Buttons carry `data-action`; the page's key and click handler (ui/quality_page.py) turns them
into review commands.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from review import ACCEPTED, EXCLUDED, KEPT, PENDING, TAGGED, QueueItem
from evaluation.review_queues import BADLY_PLACED, MISSING_LABEL, SPURIOUS, Evidence
from store.schema import (
    DUPLICATE_FLAG, MISLABEL_FLAG, MISLABEL_FLAGGED_BY, NEIGHBOUR_AGREEMENT, OUTLIER_FLAG, PROBE_AGREEMENT,
)
from ui.table import PointTable
from ui.text import html_text

STRIP_PAGE = 12  # queue items per page of the strip under the card
KEYS = {"accept": "A", "keep": "K", "tag": "T", "exclude": "E", "skip": "S", "undo": "U", "separate": "N"}
ACTIONS = {
    MISLABEL_FLAG: (("accept", "Accept suggestion"), ("keep", "Keep label"), ("tag", "Tag")),
    OUTLIER_FLAG: (("keep", "Keep (not an outlier)"), ("exclude", "Exclude"), ("tag", "Tag")),
    DUPLICATE_FLAG: (("keep", "Keep the chosen, tag the rest"), ("separate", "Not duplicates")),
    MISSING_LABEL: (("accept", "Add as a labelled box"),),
    BADLY_PLACED: (("accept", "Move the box onto the prediction"),),
    SPURIOUS: (("exclude", "Exclude the box"),),
}
DECIDED = {ACCEPTED: "accepted", KEPT: "kept", TAGGED: "tagged", EXCLUDED: "excluded"}
ASSETS = Path(__file__).parent / "assets"  # the page's script, style and markup, as files
CSS = "<style>\n" + (ASSETS / "review-cards.css").read_text(encoding="utf-8") + "</style>\n"


@dataclass(frozen=True)
class Neighbour:
    id: str
    similarity: float


NeighbourLookup = Callable[[str], list[Neighbour]]


def keys_line(issue: str) -> str:
    actions = [*ACTIONS[issue], ("skip", "skip"), ("undo", "undo last")]
    parts = " · ".join(f"<kbd>{KEYS[action]}</kbd> {html_text(text.lower())}" for action, text in actions)
    return f'<div class="es-rq-keys">Keys: {parts} (not while typing in a text box)</div>'


def progress_html(reviewed: int, total: int, counts: dict[str, int]) -> str:
    detail = ", ".join(f"{n:,} {html_text(DECIDED.get(k, k))}" for k, n in counts.items() if n and k != PENDING)
    return (f'<div class="es-rq-progress" data-reviewed="{reviewed}" data-total="{total}">'
            f'<b>{reviewed:,} of {total:,} reviewed</b>{f" ({detail})" if detail else ""}</div>')


def _thumb(point: str, css: str = "", title: str = "") -> str:
    return (f'<img loading="lazy" src="/thumb/{html_text(point)}" class="{css}" alt="" title="{html_text(title)}" '
            f'data-id="{html_text(point)}">')


def _status_line(item: QueueItem, entry: dict[str, Any] | None) -> str:
    if item.status == PENDING:
        return '<div class="es-rq-status">Not reviewed yet.</div>'
    when = html_text(str((entry or {}).get("at", "")).replace("T", " ")[:16])
    tag = f" '{html_text(str(entry['tag']))}'" if entry and entry.get("tag") else ""
    return (f'<div class="es-rq-status">Reviewed: <b>{html_text(DECIDED.get(item.status, item.status))}{tag}</b>'
            f'{f" on {when} UTC" if when else ""} (<kbd>U</kbd> undoes your last decision).</div>')


def _buttons(item: QueueItem) -> str:
    buttons = []
    for i, (action, text) in enumerate(ACTIONS[item.issue]):
        css = "es-rq-primary" if i == 0 else ""
        buttons.append(f'<button class="{css}" data-action="{action}" data-key="{html_text(item.key)}">'
                       f'{html_text(text)}<kbd>{KEYS[action]}</kbd></button>')
    for action, text in (("skip", "Skip"), ("undo", "Undo")):
        buttons.append(f'<button data-action="{action}" data-key="{html_text(item.key)}">{text}'
                       f"<kbd>{KEYS[action]}</kbd></button>")
    return f'<div class="es-rq-actions">{"".join(buttons)}</div>'


def empty_card(message: str) -> str:
    return f'<div class="es-rq-card es-rq-empty" data-key="">{html_text(message)}</div>'


def card_html(table: PointTable, item: QueueItem, payload: dict[str, Any], entry: dict[str, Any] | None,
              neighbours: Sequence[Neighbour], keep_choice: str | None = None, objects: bool = False,
              source: str = "") -> str:
    """The card for `item`: image(s), labels and score, why it was suggested, the actions.
    `objects` (the points are boxes): the box's crop, and beside it its whole image with every
    box drawn, this one in red (/boxes/{id}), as the explorer's detail view shows it. `source`:
    the embedding model whose neighbours and scores the card shows (collections with several)."""
    if item.issue == DUPLICATE_FLAG:
        return _duplicate_card(table, item, entry, keep_choice, objects)
    point = item.ids[0]
    row = table.row_of.get(point)
    path = table.paths[row] if row is not None else point
    facts = (_mislabel_facts(table, item, payload, neighbours) if item.issue == MISLABEL_FLAG
             else _outlier_facts(table, item, row, neighbours))
    if source:
        facts += f'<div class="es-rq-source">Neighbours and scores by {html_text(source)}.</div>'
    flagged_by = payload.get(MISLABEL_FLAGGED_BY) or []
    if item.issue == MISLABEL_FLAG and len(flagged_by) > 1:
        facts += (f'<div class="es-rq-both">Flagged by {len(flagged_by)} models: '
                  f'{html_text(", ".join(map(str, flagged_by)))}.</div>')
    context = (f'<a href="/boxes/{html_text(point)}" target="_blank" title="the whole image, every box drawn">'
               f'<img class="es-rq-context" src="/boxes/{html_text(point)}" alt=""></a>') if objects else ""
    return (f'<div class="es-rq-card" data-key="{html_text(item.key)}" data-issue="{item.issue}" '
            f'data-status="{html_text(item.status)}"><div class="es-rq-main">{_thumb(point, "es-rq-image", path)}'
            f'{context}<div class="es-rq-facts"><div class="es-rq-path">{html_text(path)}</div>{facts}'
            f'{_status_line(item, entry)}{_buttons(item)}</div></div>'
            f'{_evidence(table, item, neighbours)}</div>')


def _box(values: Any) -> str:
    return html_text(str([round(float(v), 1) for v in values])) if values else "–"


def _detector_facts(item: QueueItem, evidence: Evidence) -> str:
    if item.issue == MISSING_LABEL:
        return (f'<div class="es-rq-labels"><span class="es-rq-suggested">{html_text(item.label)}</span> predicted, '
                f'no labelled box there</div><div class="es-rq-score">Missing-label score <b>{item.score:.2f}</b> '
                f'· detector score {item.tie:.2f}</div><div class="es-rq-why">Predicted box {_box(evidence.predicted)} '
                "(dashed). The score is the neighbours' similarity-weighted vote for its class among the labelled "
                "boxes (below): a real object sits among labelled objects of its class.</div>")
    if item.issue == BADLY_PLACED:
        return (f'<div class="es-rq-labels"><span class="es-rq-given">{html_text(item.label)}</span></div>'
                f'<div class="es-rq-score">Detector score <b>{item.score:.2f}</b> · IoU {item.tie:.2f}</div>'
                f'<div class="es-rq-why">Labelled box {_box(evidence.bbox)} (red) → predicted '
                f'{_box(evidence.predicted)} (dashed): the detector saw this object elsewhere.</div>')
    return (f'<div class="es-rq-labels"><span class="es-rq-given">{html_text(item.label)}</span></div>'
            f'<div class="es-rq-score">Mislabel score <b>{f"{item.score:.2f}" if item.score else "–"}</b> · look-alikes found '
            f'{100 * item.tie:.0f}%</div><div class="es-rq-why">No prediction of any class overlaps box '
            f"{_box(evidence.bbox)} (red), while the detector finds most boxes that look like it (below).</div>")


def detector_card_html(item: QueueItem, evidence: Evidence, entry: dict[str, Any] | None,
                       neighbours: Sequence[tuple[str, float, bool]], labels: Callable[[str], str]) -> str:
    """A detector queue's card: the image with the labelled boxes solid and the run's predictions
    dashed (/boxes/), the scores, why, and the neighbours (labelled boxes nearest the crop, each
    with its class, similarity and whether the run found it). `labels`: a box's label by id."""
    picture = html_text(evidence.picture)
    crop = evidence.vector_point or item.ids[0]  # the prediction's or the box's crop, as the map's point
    figures = "".join(
        f'<figure class="{"es-rq-votes-suggested" if labels(point) == item.label else ""}" '
        f'data-label="{html_text(labels(point))}">{_thumb(point, title=labels(point))}'
        f'<figcaption>{html_text(labels(point))}</figcaption><figcaption>{similarity:.2f}'
        f'{" found" if found else " missed"}</figcaption></figure>' for point, similarity, found in neighbours)
    evidence_html = (f'<div class="es-rq-evidence" title="nearest labelled boxes: label, cosine similarity, '
                     f'found by the run">{figures}</div>') if figures else ""
    return (f'<div class="es-rq-card" data-key="{html_text(item.key)}" data-issue="{item.issue}" '
            f'data-status="{html_text(item.status)}"><div class="es-rq-main es-rq-wrap">'
            f'{_thumb(crop, "es-rq-image", item.label)}<a href="/boxes/{picture}" target="_blank" title="the whole image: labelled boxes solid, '
            f'predictions dashed"><img class="es-rq-context es-rq-detector" src="/boxes/{picture}" alt=""></a>'
            f'<div class="es-rq-facts">{_detector_facts(item, evidence)}{_status_line(item, entry)}'
            f'{_buttons(item)}</div></div>{evidence_html}</div>')


def vote_shares(table: PointTable, neighbours: Sequence[Neighbour]) -> dict[str, float]:
    """Similarity-weighted share of each label among `neighbours` (their labels as they are now)."""
    weights: dict[str, float] = {}
    for neighbour in neighbours:
        row = table.row_of.get(neighbour.id)
        if row is not None:
            label = table.label_of(row)
            weights[label] = weights.get(label, 0.0) + max(neighbour.similarity, 0.0)
    total = sum(weights.values()) or 1.0
    return {label: weight / total for label, weight in weights.items()}


def _mislabel_facts(table: PointTable, item: QueueItem, payload: dict[str, Any],
                    neighbours: Sequence[Neighbour]) -> str:
    shares = vote_shares(table, neighbours)
    probe = payload.get(PROBE_AGREEMENT)
    agreement = payload.get(NEIGHBOUR_AGREEMENT)
    probe_text = f"; linear probe: {float(probe):.2f} for {html_text(item.label)}" if isinstance(probe, float) else ""
    vote_text = (f"{float(agreement):.2f}" if isinstance(agreement, float)
                 else f"{shares.get(item.label, 0.0):.2f}")
    return (f'<div class="es-rq-labels"><span class="es-rq-given">{html_text(item.label)}</span> → '
            f'<span class="es-rq-suggested">{html_text(item.suggested)}</span></div>'
            f'<div class="es-rq-score">P(label wrong) <b>{item.score:.2f}</b></div>'
            f'<div class="es-rq-why">Neighbours\' vote: {vote_text} for {html_text(item.label)}, '
            f'{shares.get(item.suggested, 0.0):.2f} for {html_text(item.suggested)}{probe_text}.</div>')


def _outlier_facts(table: PointTable, item: QueueItem, row: int | None, neighbours: Sequence[Neighbour]) -> str:
    label = table.label_of(row) if row is not None else ""
    nearest = max((n.similarity for n in neighbours), default=float("nan"))
    return (f'<div class="es-rq-labels"><span class="es-rq-given">{html_text(label)}</span></div>'
            f'<div class="es-rq-score">Outlier score <b>{item.score:.2f}</b> (robust z; 0 is typical)</div>'
            f'<div class="es-rq-why">Nearest neighbour similarity {nearest:.2f}.</div>')


def _evidence(table: PointTable, item: QueueItem, neighbours: Sequence[Neighbour]) -> str:
    if not neighbours:
        return ""
    figures = []
    for neighbour in neighbours:
        row = table.row_of.get(neighbour.id)
        label = table.label_of(row) if row is not None else "?"
        css = ("es-rq-votes-suggested" if item.suggested and label == item.suggested
               else "es-rq-votes-given" if label == item.label else "")
        figures.append(f'<figure class="{css}" data-label="{html_text(label)}">{_thumb(neighbour.id, title=label)}'
                       f'<figcaption>{html_text(label)}</figcaption><figcaption>{neighbour.similarity:.2f}'
                       "</figcaption></figure>")
    return f'<div class="es-rq-evidence" title="nearest neighbours: label, cosine similarity">{"".join(figures)}</div>'


def _duplicate_card(table: PointTable, item: QueueItem, entry: dict[str, Any] | None, keep_choice: str | None,
                    objects: bool = False) -> str:
    keep = keep_choice if keep_choice in item.ids else item.ids[0]
    figures = []
    for point in item.ids[:24]:
        row = table.row_of.get(point)
        label = table.label_of(row) if row is not None else "?"
        css = "es-rq-keep" if point == keep else ""
        figures.append(f'<figure class="{css}" data-choose="{html_text(point)}">{_thumb(point, title=label)}'
                       f'<figcaption>{html_text(label)}</figcaption>'
                       f'<figcaption>{"keep" if point == keep else ""}</figcaption></figure>')
    return (f'<div class="es-rq-card" data-key="{html_text(item.key)}" data-issue="{item.issue}" '
            f'data-status="{html_text(item.status)}" data-keep="{html_text(keep)}">'
            f'<div class="es-rq-labels">{len(item.ids)} near-identical {"objects" if objects else "images"}</div>'
            f'<div class="es-rq-why">Click the one to keep (outlined); the others get the tag.</div>'
            f'<div class="es-rq-evidence">{"".join(figures)}</div>{_status_line(item, entry)}{_buttons(item)}</div>')


def strip_html(items: Sequence[QueueItem], current: str | None, page: int) -> str:
    """One page of the queue as small thumbnails (click: show that card), with a pager."""
    pages = max(1, -(-len(items) // STRIP_PAGE))
    page = int(np.clip(page, 0, pages - 1))
    shown = items[page * STRIP_PAGE:(page + 1) * STRIP_PAGE]
    thumbs = []
    for item in shown:
        css = " ".join(c for c in ("es-rq-current" if item.key == current else "",
                                   "es-rq-done" if item.status != PENDING else "") if c)
        title = f"{item.label} → {item.suggested} ({item.score:.2f})" if item.suggested else f"{item.score:.2f}"
        thumbs.append(f'<img loading="lazy" src="/thumb/{html_text(item.ids[0])}" class="{css}" '
                      f'title="{html_text(title)}" '
                      f'data-goto="{html_text(item.key)}" alt="">')
    return (f'<div class="es-rq-strip" data-page="{page}" data-pages="{pages}">'
            f'<button data-action="page-prev">‹</button><span>Queue page {page + 1} of {pages}</span>'
            f'<button data-action="page-next">›</button>{"".join(thumbs)}</div>')
