"""The review queues: which points (or duplicate groups) await a decision, in what order, and
how far the review has got. Pure functions of point payloads (id -> payload dict).

    items = queue_items(payloads, "mislabel")          # every candidate, with its status
    shown = select(items, QueueFilter(pair=("shirt", "t-shirt"), statuses=(PENDING,)))
    reviewed, total = progress(items, QueueFilter(pair=("shirt", "t-shirt")))

A candidate is a point flagged for the issue (`quality_flags`), or, when the filter widens
the queue, any point whose score reaches `QueueFilter.min_score`. Duplicates are reviewed a
group at a time. Order: highest score first; equal scores go to the point whose neighbours
back its label least (mislabels) and then by id, so the order is stable across restarts. On a
collection with several embedding models (`analyze --vector`), a label that more of the models
flag (`mislabel_flagged_by`) comes before all the others.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from review.decisions import (
    DUPLICATE_FLAG, MISLABEL_FLAG, OUTLIER_FLAG, PENDING, group_fingerprint, status, status_matches,
)
from store.schema import (
    CLUSTER, DUPLICATE_GROUP, LABEL, MISLABEL_FLAGGED_BY, MISLABEL_SCORE, NEIGHBOUR_AGREEMENT, OUTLIER_SCORE,
    QUALITY_FLAGS, SCORE_FIELDS, SCORES_BY_VECTOR, SUGGESTED_LABEL,
)

SCORE_FIELD = {MISLABEL_FLAG: MISLABEL_SCORE, OUTLIER_FLAG: OUTLIER_SCORE}
# The widest a queue can be opened beyond the flagged points (what the app keeps in memory).
WIDEST_MIN_SCORE = {MISLABEL_FLAG: 0.2, OUTLIER_FLAG: 1.5}


@dataclass(frozen=True)
class QueueItem:
    """One card: a point (mislabel, outlier) or a duplicate group.

    key: the point id, or the group's fingerprint; ids: the points; label / suggested: given
    and suggested label (mislabels); score: the issue's score (duplicates: group size);
    tie: the second sort key (higher first); flagged: the analysis flagged it; status:
    pending or the decision that applies (a group: pending unless every member is decided);
    models: how many embedding models' analyses flag the label (mislabels; 0 when not recorded)."""

    key: str
    issue: str
    ids: tuple[str, ...]
    label: str
    suggested: str
    score: float
    tie: float
    flagged: bool
    status: str
    models: int = 0


@dataclass(frozen=True)
class QueueFilter:
    """pair: an unordered (label, suggested) class pair; label: given or suggested label is
    this class; score_range: inclusive (low, high), either None; min_score: also unflagged
    points scoring at least this (None: flagged only); statuses: keep these (None: all)."""

    pair: tuple[str, str] | None = None
    label: str | None = None
    score_range: tuple[float | None, float | None] = (None, None)
    min_score: float | None = None
    statuses: tuple[str, ...] | None = None


def vector_view(payload: Mapping[str, Any], vector: str = "") -> dict[str, Any]:
    """The payload as the analysis of `vector` scored it: the default vector ("") reads the plain
    score fields; a named one its entry of SCORES_BY_VECTOR in their place (none: unscored)."""
    if not vector:
        return dict(payload)
    scores = (payload.get(SCORES_BY_VECTOR) or {}).get(vector)
    view = {k: v for k, v in payload.items() if k not in SCORE_FIELDS and k not in (CLUSTER, SCORES_BY_VECTOR)}
    if isinstance(scores, Mapping):
        view.update(scores)
    return view


def _number(value: Any, default: float = float("nan")) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else default


def _flags(payload: Mapping[str, Any]) -> list[str]:
    return list(payload.get(QUALITY_FLAGS) or [])


def queue_items(payloads: Mapping[str, Mapping[str, Any]], issue: str) -> list[QueueItem]:
    """Every candidate of `issue` in `payloads`, ordered (see the module docstring)."""
    if issue == DUPLICATE_FLAG:
        items = _group_items(payloads)
    else:
        items = [item for pid, payload in payloads.items() if (item := _point_item(pid, payload, issue)) is not None]
    return order(items)


def _point_item(pid: str, payload: Mapping[str, Any], issue: str) -> QueueItem | None:
    score = _number(payload.get(SCORE_FIELD[issue]))
    flagged = issue in _flags(payload)
    label, suggested = str(payload.get(LABEL) or ""), str(payload.get(SUGGESTED_LABEL) or "")
    wide = score >= WIDEST_MIN_SCORE[issue] and (issue != MISLABEL_FLAG or (suggested and suggested != label))
    found = status(issue, payload, in_queue=flagged or bool(wide))
    if found is None:
        return None
    tie = 1.0 - _number(payload.get(NEIGHBOUR_AGREEMENT), 0.0) if issue == MISLABEL_FLAG else 0.0
    models = len(payload.get(MISLABEL_FLAGGED_BY) or []) if issue == MISLABEL_FLAG else 0
    return QueueItem(pid, issue, (pid,), label, suggested if issue == MISLABEL_FLAG else "",
                     score if score == score else 0.0, tie, flagged, found, models)


def _group_items(payloads: Mapping[str, Mapping[str, Any]]) -> list[QueueItem]:
    members: dict[int, list[str]] = {}
    for pid, payload in payloads.items():
        group = _number(payload.get(DUPLICATE_GROUP), -1.0)
        if group >= 0:
            members.setdefault(int(group), []).append(pid)
    items = []
    for ids in members.values():
        if len(ids) < 2:
            continue
        ids = sorted(ids)
        key = group_fingerprint(ids)
        statuses = [status(DUPLICATE_FLAG, payloads[i], True, key) for i in ids]
        decided = PENDING not in statuses
        labels = Counter(str(payloads[i].get(LABEL) or "") for i in ids)
        items.append(QueueItem(key, DUPLICATE_FLAG, tuple(ids), labels.most_common(1)[0][0], "",
                               float(len(ids)), float(len(labels)), True, _group_status(statuses) if decided else PENDING))
    return items


def _group_status(statuses: Sequence[str | None]) -> str:
    """A decided group reads as "tagged" when it tagged any member, else "kept"."""
    return "tagged" if "tagged" in statuses else "kept"


def order(items: Iterable[QueueItem]) -> list[QueueItem]:
    return sorted(items, key=lambda item: (-item.models, -item.score, -item.tie, item.key))


def matches(item: QueueItem, flt: QueueFilter, with_status: bool = True) -> bool:
    if flt.min_score is None and not item.flagged:
        return False
    if flt.min_score is not None and not item.flagged and item.score < flt.min_score:
        return False
    if flt.pair is not None and {item.label, item.suggested} != set(flt.pair):
        return False
    if flt.label is not None and flt.label not in (item.label, item.suggested):
        return False
    low, high = flt.score_range
    if (low is not None and item.score < low) or (high is not None and item.score > high):
        return False
    if with_status and flt.statuses is not None:
        return any(status_matches(item.status, wanted) for wanted in flt.statuses)
    return True


def select(items: Sequence[QueueItem], flt: QueueFilter, skipped: Sequence[str] = ()) -> list[QueueItem]:
    """The items the filter keeps, in queue order; `skipped` keys move to the end (in the
    order they were skipped), so "skip" shows the next card without deciding."""
    kept = [item for item in items if matches(item, flt)]
    later = {key: i for i, key in enumerate(skipped)}
    return sorted(kept, key=lambda item: later.get(item.key, -1))  # stable: queue order otherwise


def progress(items: Sequence[QueueItem], flt: QueueFilter) -> tuple[int, int]:
    """(reviewed, total) among the items the filter keeps, whatever their status."""
    scope = [item for item in items if matches(item, flt, with_status=False)]
    return sum(item.status != PENDING for item in scope), len(scope)


def pair_counts(items: Sequence[QueueItem], flt: QueueFilter | None = None) -> list[tuple[str, str, int, int]]:
    """(class a, class b, items, pending) for each unordered (label, suggested) pair among
    the flagged (or widened) mislabel items, most items first."""
    base = QueueFilter(min_score=None if flt is None else flt.min_score)
    totals: Counter[tuple[str, str]] = Counter()
    pending: Counter[tuple[str, str]] = Counter()
    for item in items:
        if item.issue != MISLABEL_FLAG or not item.suggested or not matches(item, base, with_status=False):
            continue
        pair = tuple(sorted((item.label, item.suggested)))
        totals[pair] += 1  # type: ignore[index]
        pending[pair] += item.status == PENDING  # type: ignore[index]
    return [(a, b, n, pending[(a, b)]) for (a, b), n in sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))]


class QueueReads:
    """The reads every queue keeper answers the same way over its own `items(issue)` (the
    label-quality ReviewBook and a detector run's DetectorQueues): the filtered queue, its
    progress and one item by key."""

    def items(self, issue: str) -> list[QueueItem]:
        raise NotImplementedError

    def queue(self, issue: str, flt: QueueFilter, skipped: Sequence[str] = ()) -> list[QueueItem]:
        return select(self.items(issue), flt, skipped)

    def progress(self, issue: str, flt: QueueFilter) -> tuple[int, int]:
        return progress(self.items(issue), flt)

    def item(self, issue: str, key: str) -> QueueItem | None:
        return next((item for item in self.items(issue) if item.key == key), None)
