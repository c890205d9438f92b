"""The review state of one collection, over the Collection API: read the candidates once,
write each decision into the points' `review` payload field, answer queue questions.

    book = ReviewBook(collection)
    book.queue("mislabel", QueueFilter(statuses=(PENDING,)))   # the cards still to review
    book.decide("mislabel", [point], ACCEPTED, previous_label="shirt")   # after the relabel itself
    book.undo("mislabel", [point])

The book does not change labels or tags itself: the caller (the app, through its PointTable)
does the decision's edit first, then records it here, and the book reads the point back from
the store, so the decision is recorded against the payload as it now is.
`matching_ids(collection, "mislabel", "kept")` serves the command line's `--review` filter.
"""
from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from review.decisions import (
    DETECTION_DECISIONS, DUPLICATE_FLAG, ISSUES, PENDING, check_decision, entry_of, group_fingerprint,
    merged_review, new_entry,
    status, status_matches,
)
from review.detection import detection_statuses
from review.queue import WIDEST_MIN_SCORE, QueueItem, QueueReads, queue_items, vector_view
from store import Collection
from store.schema import (
    DUPLICATE_GROUP, LABEL, MISLABEL_FLAGGED_BY, MISLABEL_SCORE, NEIGHBOUR_AGREEMENT, OUTLIER_SCORE, PROBE_AGREEMENT,
    QUALITY_FLAGS, REVIEW, SCORES_BY_VECTOR, SHA1, SUGGESTED_LABEL,
)

FIELDS = (LABEL, SUGGESTED_LABEL, MISLABEL_SCORE, NEIGHBOUR_AGREEMENT, PROBE_AGREEMENT, OUTLIER_SCORE,
          DUPLICATE_GROUP, QUALITY_FLAGS, SHA1, REVIEW, MISLABEL_FLAGGED_BY, SCORES_BY_VECTOR)


def _candidate(payload: dict[str, Any]) -> bool:
    """Worth keeping in memory: flagged, in a duplicate group, decided, or within the widest
    queue a filter can open."""
    if payload.get(QUALITY_FLAGS) or payload.get(REVIEW):
        return True
    group = payload.get(DUPLICATE_GROUP)
    if isinstance(group, int) and group >= 0:
        return True
    mislabel, outlier = payload.get(MISLABEL_SCORE), payload.get(OUTLIER_SCORE)
    return ((isinstance(mislabel, (int, float)) and mislabel >= WIDEST_MIN_SCORE["mislabel"])
            or (isinstance(outlier, (int, float)) and outlier >= WIDEST_MIN_SCORE["outlier"]))


class ReviewBook(QueueReads):
    """Candidates' payloads (id -> the FIELDS above) and the queues built from them. One book
    per collection per process; decisions from every session go through it (one lock).
    `vector`: whose scores the queues follow ("": the default vector's; a named vector's: its
    `analyze --vector` scores), and so whose suggestion a decision is recorded against."""

    def __init__(self, collection: Collection, vector: str = "") -> None:
        self.collection = collection
        self.vector = vector
        self._lock = threading.RLock()
        self._payloads: dict[str, dict[str, Any]] = {}
        self._items: dict[str, list[QueueItem]] = {}
        for batch in collection.scroll(list(FIELDS)):
            for record in batch:
                payload = vector_view(record.payload, vector)
                if _candidate(payload):
                    self._payloads[record.id] = payload

    def _read(self, ids: Sequence[str]) -> list[tuple[str, dict[str, Any]]]:
        """(id, payload as this book's vector scored it) of `ids`, read from the store now."""
        return [(r.id, vector_view(r.payload, self.vector)) for r in self.collection.retrieve(list(ids), list(FIELDS))]

    # --- reading ---------------------------------------------------------------------
    def items(self, issue: str) -> list[QueueItem]:
        with self._lock:
            if issue not in self._items:
                self._items[issue] = queue_items(self._payloads, issue)
            return self._items[issue]

    def payload(self, point: str) -> dict[str, Any]:
        with self._lock:
            return dict(self._payloads.get(point, {}))

    def entry(self, issue: str, point: str) -> dict[str, Any] | None:
        return entry_of(self.payload(point), issue)

    # --- writing ---------------------------------------------------------------------
    def decide(self, issue: str, ids: Sequence[str], decision: str, group: str = "", tag: str = "",
               previous_label: str | None = None) -> int:
        """Record `decision` on `ids` (read back from the store first, so the decision is made
        on what the store now holds); returns how many were recorded."""
        check_decision(issue, decision)
        with self._lock:
            records = self._read(ids)
            reviews = []
            for _, payload in records:
                entry = new_entry(issue, decision, payload, group, tag, previous_label)
                reviews.append(merged_review(payload, issue, entry))
            self._write(records, reviews)
            return len(records)

    def undo(self, issue: str, ids: Sequence[str]) -> int:
        """Forget the `issue` decision of `ids` (pending again); returns how many had one."""
        with self._lock:
            records = [(pid, payload) for pid, payload in self._read(ids) if entry_of(payload, issue)]
            self._write(records, [merged_review(payload, issue, None) for _, payload in records])
            return len(records)

    def refresh(self, ids: Sequence[str]) -> None:
        """Read `ids` again (after an edit made elsewhere, e.g. a relabel)."""
        with self._lock:
            for pid, payload in self._read(ids):
                self._payloads[pid] = payload
            self._items.clear()

    def _write(self, records: Sequence[tuple[str, dict[str, Any]]], reviews: list[dict[str, Any]]) -> None:
        if not records:
            return
        written = [(pid, review) for (pid, _), review in zip(records, reviews) if review]
        emptied = [pid for (pid, _), review in zip(records, reviews) if not review]
        if written:
            self.collection.set_payloads([pid for pid, _ in written], [{REVIEW: review} for _, review in written])
        if emptied:  # no decision left: no review field at all
            self.collection.delete_payload_keys(emptied, [REVIEW])
        self.collection.flush_soon()
        for (pid, before), review in zip(records, reviews):
            payload = {**before, REVIEW: review}
            if not review:
                payload.pop(REVIEW)
            self._payloads[pid] = payload
        self._items.clear()


def statuses(collection: Collection) -> dict[str, dict[str, str]]:
    """issue -> {point id: status} for every point flagged for the issue or with a decision
    that applies (points neither flagged nor decided are absent). Reads the whole collection:
    a duplicate group's status depends on all its members."""
    payloads = {r.id: dict(r.payload) for batch in collection.scroll(list(FIELDS)) for r in batch}
    found: dict[str, dict[str, str]] = {}
    for issue in ISSUES:
        found[issue] = {}
        for item in queue_items(payloads, issue):
            if issue == DUPLICATE_FLAG:
                group = group_fingerprint(item.ids)
                for point in item.ids:
                    found[issue][point] = status(DUPLICATE_FLAG, payloads[point], True, group) or PENDING
            elif item.flagged or item.status != PENDING:
                found[issue][item.key] = item.status
    return found


def matching_ids(collection: Collection, issue: str, wanted: str) -> list[str]:
    """Ids whose `issue` review status is `wanted`: "pending" (flagged and undecided),
    "reviewed" (any decision that applies) or a decision ("accepted", "kept", ...)."""
    found_statuses = (detection_statuses(collection, issue) if issue in DETECTION_DECISIONS
                      else statuses(collection)[issue])
    return [point for point, found in found_statuses.items() if status_matches(found, wanted)]
