"""The Label quality tab's three detector queues (likely missing labels, badly placed boxes,
possibly spurious boxes; evaluation/review_queues.py): the queues of the explorer's run beside the
label-quality book, one interface for the tab, and the decisions' edits and their undo.

    A  missing label: add the predicted box as a labelled box   badly placed: move the box
    E  spurious box: exclude it (tag `excluded`)                 S skip   U undo the last decision

The edits are evaluation/review_queues.py's functions (the same as the command line's `--accept`); a
spurious box's tag goes through the shared PointTable so the map sees it at once. After each
edit the caller reads the collection again (the live table), so added, moved and deleted boxes
show on the map.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from review import EXCLUDED, QueueFilter, QueueItem, ReviewBook
from evaluation.review_queues import (
    BADLY_PLACED, DETECTOR_ISSUES, MISSING_LABEL, SPURIOUS, DetectorQueues, accept_missing_label, forget_decision,
    move_box, record_decision, spurious_entry, undo_missing_label, undo_move_box,
)
from evaluation.evaluate import evaluate_run
from store import StoreError
from store.schema import EXCLUDED_TAG
from ui.review_cards import detector_card_html
from ui.table import PointTable
from ui.text import markdown_text

DETECTOR_CHOICES = [("Likely missing labels (detector)", MISSING_LABEL),
                    ("Badly placed boxes (detector)", BADLY_PLACED),
                    ("Possibly spurious boxes (detector)", SPURIOUS)]


class QueueBooks:
    """The label-quality book (None: no analysis) and the detector run's queues (a callable
    giving the current DetectorQueues, None without a run), answering the tab's questions for
    either kind of issue."""

    def __init__(self, labels: ReviewBook | None, detector: Callable[[], DetectorQueues | None]) -> None:
        self.labels, self._detector = labels, detector

    def detector(self) -> DetectorQueues:
        queues = self._detector()
        if queues is None:
            raise LookupError("no detector run on this collection")
        return queues

    def _of(self, issue: str) -> Any:
        return self.detector() if issue in DETECTOR_ISSUES else self.labels

    def items(self, issue: str) -> list[QueueItem]:
        return self._of(issue).items(issue)

    def queue(self, issue: str, flt: QueueFilter, skipped: Sequence[str] = ()) -> list[QueueItem]:
        return self._of(issue).queue(issue, flt, skipped)

    def progress(self, issue: str, flt: QueueFilter) -> tuple[int, int]:
        return self._of(issue).progress(issue, flt)

    def item(self, issue: str, key: str) -> QueueItem | None:
        return self._of(issue).item(issue, key)

    def entry(self, issue: str, point: str) -> dict[str, Any] | None:
        return self._of(issue).entry(issue, point)

    def payload(self, point: str) -> dict[str, Any]:
        return self.labels.payload(point) if self.labels is not None else {}

    # the label-quality book's writes (ui/quality_page.py's Reviewer)
    def decide(self, *args: Any, **kwargs: Any) -> int:
        return self.labels.decide(*args, **kwargs)  # type: ignore[union-attr]

    def undo(self, issue: str, ids: Sequence[str]) -> int:
        return self.labels.undo(issue, ids)  # type: ignore[union-attr]

    @property
    def collection(self) -> Any:
        return self.labels.collection  # type: ignore[union-attr]


def detector_card(table: PointTable, books: QueueBooks, item: QueueItem) -> str:
    queues = books.detector()
    evidence = queues.evidence(item.issue, item.key)
    if evidence is None:
        return '<div class="es-rq-card es-rq-empty" data-key="">That card is no longer in the queue.</div>'

    def label(point: str) -> str:
        row = table.row_of.get(point)
        return table.label_of(row) if row is not None else "?"

    return detector_card_html(item, evidence, books.entry(item.issue, item.ids[0]),
                              queues.neighbours(item.issue, item.key), label)


class DetectorReviewer:
    """Carries out a detector card's decision and its undo; `embedder()` gives the collection's
    model (loaded on the first edit that needs a crop embedded)."""

    def __init__(self, table: PointTable, books: QueueBooks, embedder: Callable[[], Any]) -> None:
        self.table, self.books, self.embedder = table, books, embedder

    def decide(self, item: QueueItem, action: str) -> str:
        try:
            return self._decide(item, action)
        except StoreError as error:  # e.g. the image is gone: nothing was written
            return f"Not done: {markdown_text(error)}"

    def _decide(self, item: QueueItem, action: str) -> str:
        queues = self.books.detector()
        objects = queues.objects
        if item.issue == MISSING_LABEL and action == "accept":
            accept_missing_label(objects, queues.evaluation, int(item.key), self.embedder())
            return f"Added a {markdown_text(item.label)} box (U undoes it)."
        if item.issue == BADLY_PLACED and action == "accept":
            move_box(objects, evaluate_run(objects, None, queues.run), item.key, self.embedder())
            return "Moved the box onto the prediction (the old box is kept in original_bbox; U undoes it)."
        if item.issue == SPURIOUS and action == "exclude":
            rows = self.table.rows_for_ids(item.ids)
            added = bool(len(rows)) and EXCLUDED_TAG not in self.table.tags_of(rows[:1])[0]
            if added:
                self.table.edit_tags(rows, EXCLUDED_TAG, True)
            record_decision(objects, item.key, SPURIOUS, spurious_entry(queues.run, item, added))
            return f"Excluded (tag '{EXCLUDED_TAG}': exports leave it out; U undoes it)."
        return ""

    def undo(self, issue: str, ids: Sequence[str]) -> int:
        objects = self.books.detector().objects
        for point in ids:
            if issue == MISSING_LABEL:
                undo_missing_label(objects, point, self.embedder())
            elif issue == BADLY_PLACED:
                undo_move_box(objects, point, self.embedder())
            else:
                entry = forget_decision(objects, point, SPURIOUS)
                if entry and entry.get("decision") == EXCLUDED and entry.get("tag"):
                    self.table.edit_tags(self.table.rows_for_ids([point]), str(entry["tag"]), False)
        return len(ids)
