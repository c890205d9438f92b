"""Reviewing suggested data issues (likely mislabels, outliers, duplicate groups): decisions
stored in the points' `review` payload field, when they still apply, and the review queues.

    decisions.py  the decision record, the "data changed" rule, statuses
    queue.py      queue items, filters, order, progress (pure functions of payloads)
    book.py       ReviewBook over a Collection (the app), matching_ids (the --review filter)
    detection.py  a detector run's missing_label / badly_placed / spurious statuses (--review, exports)
    detector.py   a detector run's three queues (QueueItems) and each accept's edit with its undo
"""
from review.book import ReviewBook, matching_ids
from review.decisions import (
    ACCEPTED, DECISIONS, EXCLUDED, ISSUES, KEPT, PENDING, REVIEWED, STATUSES, TAGGED, ReviewError,
    parse_status_filter,
)
from review.queue import QueueFilter, QueueItem

__all__ = ["ACCEPTED", "DECISIONS", "EXCLUDED", "ISSUES", "KEPT", "PENDING", "REVIEWED", "STATUSES", "TAGGED",
           "QueueFilter", "QueueItem", "ReviewBook", "ReviewError", "matching_ids", "parse_status_filter"]
