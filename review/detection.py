"""Review statuses of a detector run's three box issues, for the `--review` filter and exports.

    missing_label   candidates: the run's prediction points (`source: prediction`) that the
                    missing-label ranking scored (`missing_label_score`); decided: the boxes
                    accepted as labels (`review.missing_label`, written by evaluation/accept.py
                    on the new labelled box)
    badly_placed    candidates: labelled boxes the run missed with `detection_reason:
                    badly_placed`; decided: the boxes moved onto their prediction
                    (`review.badly_placed`)
    spurious        candidates: labelled boxes no prediction overlaps (`detection_reason:
                    unseen`) whose look-alikes the run mostly found (`lookalikes_found` >= 0.5,
                    written with the outcomes by evaluation/evaluate.py); decided: the boxes
                    excluded (`review.spurious`, decision "excluded")

The decision is recorded with the run, prediction and scores (not the image's content hash a
label decision keeps): it holds as long as it is in the payload. Each issue has one decision
("accepted", a spurious box's "excluded"); a candidate not decided is pending.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from review.decisions import DETECTION_DECISIONS, PENDING, entry_of
from store import Collection
from store.schema import DETECTION_REASON, LOOKALIKES_FOUND, MISSING_LABEL_SCORE, PREDICTION_SOURCE, REVIEW, SOURCE

MISSING_LABEL, BADLY_PLACED, SPURIOUS = DETECTION_DECISIONS
DETECTOR_ISSUES = tuple(DETECTION_DECISIONS)  # the three queues, in the order the tab lists them
FIELDS = (SOURCE, MISSING_LABEL_SCORE, DETECTION_REASON, LOOKALIKES_FOUND, REVIEW)
SPURIOUS_MIN_FOUND = 0.5  # possibly spurious: the run found at least this share of the box's look-alikes


def _candidate(issue: str, payload: Mapping[str, Any]) -> bool:
    if issue == MISSING_LABEL:
        return payload.get(SOURCE) == PREDICTION_SOURCE and isinstance(payload.get(MISSING_LABEL_SCORE), (int, float))
    if issue == BADLY_PLACED:
        return payload.get(DETECTION_REASON) == BADLY_PLACED and payload.get(SOURCE) != PREDICTION_SOURCE
    found = payload.get(LOOKALIKES_FOUND)
    return (payload.get(DETECTION_REASON) == "unseen" and payload.get(SOURCE) != PREDICTION_SOURCE
            and isinstance(found, (int, float)) and found >= SPURIOUS_MIN_FOUND)


def detection_status(issue: str, payload: Mapping[str, Any]) -> str | None:
    """The decision when there is one, "pending" for an undecided candidate, else None."""
    entry = entry_of(payload, issue)
    if entry is not None:
        return str(entry["decision"])
    return PENDING if _candidate(issue, payload) else None


def detection_statuses(collection: Collection, issue: str) -> dict[str, str]:
    """point id -> status for every candidate or decided point of `issue`."""
    found: dict[str, str] = {}
    for batch in collection.scroll(list(FIELDS)):
        for record in batch:
            state = detection_status(issue, record.payload)
            if state is not None:
                found[record.id] = state
    return found

