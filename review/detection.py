"""Review statuses of a detector run's three box issues, for the `--review` filter and exports.

    missing_label   candidates: the run's prediction points (`source: prediction`) that the
                    missing-label ranking scored (`missing_label_score`); decided: the boxes
                    accepted as labels (`review.missing_label`, written by evaluation/accept.py
                    on the new labelled box)
    badly_placed    candidates: labelled boxes the run missed with `detection_reason:
                    badly_placed`; decided: the boxes moved onto their prediction
                    (`review.badly_placed`)
    spurious        candidates: the active run's possibly spurious boxes (review/detector.py
                    matches the run to find them); decided: the boxes excluded
                    (`review.spurious`, decision "excluded")

The decision is recorded with the run, prediction and scores (not the image's content hash a
label decision keeps): it holds as long as it is in the payload. Each issue has one decision
("accepted", a spurious box's "excluded"); a candidate not decided is pending.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from review.decisions import DETECTION_DECISIONS, PENDING, entry_of
from store import Collection
from store.schema import DETECTION_REASON, MISSING_LABEL_SCORE, PREDICTION_SOURCE, REVIEW, SOURCE

MISSING_LABEL, BADLY_PLACED, SPURIOUS = DETECTION_DECISIONS
FIELDS = (SOURCE, MISSING_LABEL_SCORE, DETECTION_REASON, REVIEW)


def _candidate(issue: str, payload: Mapping[str, Any]) -> bool:
    if issue == MISSING_LABEL:
        return payload.get(SOURCE) == PREDICTION_SOURCE and isinstance(payload.get(MISSING_LABEL_SCORE), (int, float))
    if issue == BADLY_PLACED:
        return payload.get(DETECTION_REASON) == BADLY_PLACED and payload.get(SOURCE) != PREDICTION_SOURCE
    return False  # spurious: the run's matching finds the candidates (_spurious_candidates)


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
    if issue == SPURIOUS:
        found = {**_spurious_candidates(collection), **found}
    return found


def _spurious_candidates(collection: Collection) -> dict[str, str]:
    """The active run's possibly spurious boxes (none without a run), each "pending"."""
    from evaluation.runs import active_run
    from review.detector import DetectorQueues  # matches the run: only when asked

    if active_run(collection) is None:
        return {}
    return {item.key: PENDING for item in DetectorQueues(collection).items(SPURIOUS)}
