"""Review decisions: what a person decided about a suggested issue, and when it still holds.

A decision lives in the point's payload, under `review.<issue>` (issue: "mislabel",
"outlier", "duplicate"), so it survives restarts and any tool that reads Qdrant sees it:

    review.mislabel  = {"decision": "kept", "at": "2026-12-01T10:00:00+00:00",
                        "label": "shirt", "suggested": "t-shirt", "sha1": "..."}
    review.outlier   = {"decision": "excluded", "at": ..., "sha1": ...}
    review.duplicate = {"decision": "tagged", "at": ..., "sha1": ..., "group": "g-1a2b3c4d5e6f"}

"The data change" — when a decision stops applying and the point is pending again:
  * every issue: the image changed (its content hash `sha1` differs from the recorded one);
  * mislabel: the label differs from the recorded `label` (the label the decision left the
    point with: the suggestion for "accepted", the given label for "kept" / "tagged"), or a
    new analysis suggests a class that is neither the recorded `suggested` nor that label;
  * duplicate: the group's members differ (`group` is a fingerprint of the member ids).
A decision that no longer applies stays in the payload (history) but counts as pending.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

from store.schema import DUPLICATE_FLAG, LABEL, MISLABEL_FLAG, OUTLIER_FLAG, REVIEW, SHA1, SUGGESTED_LABEL

ISSUES = (MISLABEL_FLAG, OUTLIER_FLAG, DUPLICATE_FLAG)
PENDING, REVIEWED = "pending", "reviewed"
ACCEPTED, KEPT, TAGGED, EXCLUDED = "accepted", "kept", "tagged", "excluded"
DECISIONS: dict[str, tuple[str, ...]] = {
    MISLABEL_FLAG: (ACCEPTED, KEPT, TAGGED),  # accept the suggested label / keep the label / tag for later
    OUTLIER_FLAG: (KEPT, EXCLUDED, TAGGED),  # it belongs / leave it out (tag `excluded`) / tag it
    DUPLICATE_FLAG: (KEPT, TAGGED),  # the one kept / the others, tagged `duplicate`
}
STATUSES = (PENDING, ACCEPTED, KEPT, TAGGED, EXCLUDED)
# A detector run's box issues (review/detection.py, evaluation/review_queues.py): an accept adds the box,
# moves it onto the prediction, or excludes a spurious one.
DETECTION_DECISIONS: dict[str, tuple[str, ...]] = {"missing_label": (ACCEPTED,), "badly_placed": (ACCEPTED,),
                                                   "spurious": (EXCLUDED,)}


class ReviewError(ValueError):
    """An unknown issue, decision or status; the message lists the known ones."""


def check_decision(issue: str, decision: str) -> None:
    if issue not in DECISIONS:
        raise ReviewError(f"unknown issue {issue!r}; issues: {', '.join(ISSUES)}")
    if decision not in DECISIONS[issue]:
        raise ReviewError(f"a {issue} decision is one of {', '.join(DECISIONS[issue])}, not {decision!r}")


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def group_fingerprint(member_ids: Iterable[str]) -> str:
    """A short name for a duplicate group that changes whenever its members do."""
    digest = hashlib.sha1("\n".join(sorted(member_ids)).encode()).hexdigest()
    return f"g-{digest[:12]}"


def new_entry(issue: str, decision: str, payload: Mapping[str, Any], group: str = "", tag: str = "",
              previous_label: str | None = None, at: str | None = None) -> dict[str, Any]:
    """The `review.<issue>` value for a decision on a point whose payload is now `payload`
    (after the decision's own edits, e.g. an accepted relabel)."""
    check_decision(issue, decision)
    entry: dict[str, Any] = {"decision": decision, "at": at or now(), "sha1": str(payload.get(SHA1) or "")}
    if issue == MISLABEL_FLAG:
        entry["label"] = str(payload.get(LABEL) or "")
        entry["suggested"] = str(payload.get(SUGGESTED_LABEL) or "")
        if previous_label is not None:
            entry["previous"] = previous_label
    if issue == DUPLICATE_FLAG:
        entry["group"] = group
    if tag:
        entry["tag"] = tag
    return entry


def entry_of(payload: Mapping[str, Any], issue: str) -> dict[str, Any] | None:
    review = payload.get(REVIEW)
    entry = review.get(issue) if isinstance(review, Mapping) else None
    return dict(entry) if isinstance(entry, Mapping) and entry.get("decision") else None


def applies(issue: str, entry: Mapping[str, Any], payload: Mapping[str, Any], group: str = "") -> bool:
    """Whether a recorded decision still holds for the point as it is now (see the module
    docstring for the rule)."""
    if str(entry.get("sha1") or "") != str(payload.get(SHA1) or ""):
        return False
    if issue == MISLABEL_FLAG:
        label = str(payload.get(LABEL) or "")
        suggested = str(payload.get(SUGGESTED_LABEL) or "")
        return label == entry.get("label") and suggested in (entry.get("suggested"), entry.get("label"))
    if issue == DUPLICATE_FLAG:
        return entry.get("group") == group
    return True


def status(issue: str, payload: Mapping[str, Any], in_queue: bool, group: str = "") -> str | None:
    """The point's review status for `issue`: the decision when one applies, "pending" when
    the issue is suggested for it and undecided, None when neither."""
    entry = entry_of(payload, issue)
    if entry is not None and applies(issue, entry, payload, group):
        return str(entry["decision"])
    return PENDING if in_queue else None


def merged_review(payload: Mapping[str, Any], issue: str, entry: dict[str, Any] | None) -> dict[str, Any]:
    """The point's whole `review` object with `issue` set to `entry` (None: removed)."""
    review = payload.get(REVIEW)
    merged = {k: v for k, v in review.items()} if isinstance(review, Mapping) else {}
    if entry is None:
        merged.pop(issue, None)
    else:
        merged[issue] = entry
    return merged


def parse_status_filter(text: str) -> tuple[str, str]:
    """'accepted' -> ('mislabel', 'accepted'); 'outlier:pending' -> ('outlier', 'pending').
    Statuses: pending, reviewed (any decision that applies), or a decision."""
    issue, _, wanted = text.rpartition(":")
    issue = issue or MISLABEL_FLAG
    known = {**DECISIONS, **DETECTION_DECISIONS}
    if issue not in known:
        raise ReviewError(f"unknown issue {issue!r} in --review {text!r}; issues: {', '.join(known)}")
    allowed = (PENDING, REVIEWED, *known[issue])
    if wanted not in allowed:
        raise ReviewError(f"--review {text!r}: a {issue} status is one of {', '.join(allowed)}")
    return issue, wanted


def status_matches(found: str | None, wanted: str) -> bool:
    if found is None:
        return False
    return found != PENDING if wanted == REVIEWED else found == wanted
