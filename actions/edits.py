"""The one module that edits points: tags (add / remove, exclude / restore), labels (relabel /
restore the original) and review decisions (the edit a decision makes, then its record).

The app (the explorer's tag buttons, the Export tab's exclude, the Metrics tab's relabel, the
reviewer in ui/quality_page.py, the labelling tab) and the command line (`tag`, through
actions/tagging.py) all edit through a `PointEditor`, and the tag rule is applied here, once
per edit, before anything is written (the store keeps its own check for other callers).

Where the edits are written is a `PointWriter`: the collection itself (`CollectionWriter`,
the command line), or the app's `PointTable` (ui/table.py), which writes to the store and keeps
its in-memory copy in step. A writer names points its own way (ids for the collection, table
rows for the app, so the app never turns a million selected rows into ids and back);
`points_of(ids)` gives its handle for a list of ids.

    editor = PointEditor(CollectionWriter(collection))
    editor.add_tag(editor.writer.points_of(ids), "snowy")      # -> (tag as stored, points changed)
    PointEditor(table, book).decide(item, "accept")            # relabel, then the review record
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from review import ACCEPTED, EXCLUDED, KEPT, TAGGED, QueueItem, ReviewBook
from store import Collection
from store.schema import DUPLICATE_FLAG, EXCLUDED_TAG, MISLABEL_FLAG, ORIGINAL_LABEL, OUTLIER_FLAG, validate_tag

DUPLICATE_TAG = "duplicate"  # the copies of a duplicate group not kept


class PointWriter(Protocol):
    """Writes edits to points named by the writer's own handle (`points_of`)."""

    def points_of(self, ids: Sequence[str]) -> Any: ...

    def add_tag(self, points: Any, tag: str) -> int: ...

    def remove_tag(self, points: Any, tag: str) -> int: ...

    def relabel(self, points: Any, label: str) -> int: ...

    def restore_labels(self, points: Any) -> int: ...


class CollectionWriter:
    """Edits written straight to the collection; points are ids (the command line)."""

    def __init__(self, collection: Collection) -> None:
        self.collection = collection

    def points_of(self, ids: Sequence[str]) -> list[str]:
        return list(ids)

    def add_tag(self, points: list[str], tag: str) -> int:
        return self.collection.add_tag(points, tag)

    def remove_tag(self, points: list[str], tag: str) -> int:
        return self.collection.remove_tag(points, tag)

    def relabel(self, points: list[str], label: str) -> int:
        return self.collection.relabel(points, label)

    def restore_labels(self, points: list[str]) -> int:
        return self.collection.restore_labels(points)


@dataclass(frozen=True)
class Decided:
    """What a review decision did: its decision, the tag it added, how many points it tagged."""

    decision: str
    tag: str = ""
    tagged: int = 0
    separate: bool = False  # a duplicate group marked as not duplicates


class PointEditor:
    """Every edit of points, over one writer (and the review book, for decisions)."""

    def __init__(self, writer: PointWriter, book: ReviewBook | None = None) -> None:
        self.writer, self.book = writer, book

    # --- tags -------------------------------------------------------------------------------
    def edit_tag(self, points: Any, tag: str | None, add: bool) -> tuple[str, int]:
        """Add or remove `tag` (checked against the tag rule first: InvalidTag, nothing written);
        returns (the tag as stored, points changed). No points: nothing is written."""
        name = validate_tag(tag)
        if len(points) == 0:
            return name, 0
        return name, (self.writer.add_tag if add else self.writer.remove_tag)(points, name)

    def add_tag(self, points: Any, tag: str | None) -> tuple[str, int]:
        return self.edit_tag(points, tag, True)

    def remove_tag(self, points: Any, tag: str | None) -> tuple[str, int]:
        return self.edit_tag(points, tag, False)

    def exclude(self, points: Any) -> int:
        """Hide points from the map, exports and analyses (reversible: `restore`)."""
        return self.edit_tag(points, EXCLUDED_TAG, True)[1]

    def restore(self, points: Any) -> int:
        return self.edit_tag(points, EXCLUDED_TAG, False)[1]

    # --- labels -----------------------------------------------------------------------------
    def relabel(self, points: Any, label: str) -> int:
        """Set `label` (the point keeps the one it came with as `original_label`)."""
        return self.writer.relabel(points, label)

    def restore_labels(self, points: Any) -> int:
        return self.writer.restore_labels(points)

    # --- review decisions ---------------------------------------------------------------------
    def decide(self, item: QueueItem, action: str, tag: str = "", keep: str | None = None,
               replace: bool = False) -> Decided | None:
        """Carry out a card's decision: the edit (relabel, tag), then its record in the review
        book. `replace`: an earlier decision on the card is undone first (after the tag was
        checked, so a bad tag loses nothing). None when the action does not apply to the card."""
        if action == "tag":
            tag = validate_tag(tag)
        if replace:
            self.undo(item.issue, item.ids)
        if item.issue == DUPLICATE_FLAG:
            return self._duplicates(item, action, keep)
        book, points = self._book(), self.writer.points_of(item.ids)
        if action == "accept" and item.issue == MISLABEL_FLAG and item.suggested:
            self.writer.relabel(points, item.suggested)
            book.decide(item.issue, item.ids, ACCEPTED, previous_label=item.label)
            return Decided(ACCEPTED)
        if action == "keep":
            book.decide(item.issue, item.ids, KEPT)
            return Decided(KEPT)
        if action == "exclude" and item.issue == OUTLIER_FLAG:
            self.writer.add_tag(points, EXCLUDED_TAG)
            book.decide(item.issue, item.ids, EXCLUDED, tag=EXCLUDED_TAG)
            return Decided(EXCLUDED, EXCLUDED_TAG)
        if action == "tag":
            self.writer.add_tag(points, tag)
            book.decide(item.issue, item.ids, TAGGED, tag=tag)
            return Decided(TAGGED, tag)
        return None

    def _duplicates(self, item: QueueItem, action: str, keep: str | None) -> Decided | None:
        book = self._book()
        if action == "separate":
            book.decide(item.issue, item.ids, KEPT, group=item.key)
            return Decided(KEPT, separate=True)
        if action != "keep":
            return None
        keeper = keep if keep in item.ids else item.ids[0]
        rest = [point for point in item.ids if point != keeper]
        self.writer.add_tag(self.writer.points_of(rest), DUPLICATE_TAG)
        book.decide(item.issue, [keeper], KEPT, group=item.key)
        book.decide(item.issue, rest, TAGGED, group=item.key, tag=DUPLICATE_TAG)
        return Decided(KEPT, DUPLICATE_TAG, len(rest))

    def undo(self, issue: str, ids: Sequence[str]) -> int:
        """Reverse the recorded decision on `ids`: restore the label, remove the tag it added."""
        book = self._book()
        for point in ids:
            entry = book.entry(issue, point)
            if entry is None:
                continue
            points = self.writer.points_of([point])
            if entry["decision"] == ACCEPTED:
                self._restore_label(points, point, entry.get("previous"))
            if entry.get("tag") and entry["decision"] in (TAGGED, EXCLUDED):
                self.writer.remove_tag(points, str(entry["tag"]))
        return book.undo(issue, ids)

    def _restore_label(self, points: Any, point: str, previous: Any) -> None:
        original = self._book().collection.retrieve([point], [ORIGINAL_LABEL])
        stored = original[0].payload.get(ORIGINAL_LABEL) if original else None
        if isinstance(previous, str) and previous and previous != stored:
            self.writer.relabel(points, previous)  # relabelled before this review: back to that label
        else:
            self.writer.restore_labels(points)

    def _book(self) -> ReviewBook:
        if self.book is None:
            raise ValueError("review decisions need the collection's ReviewBook")
        return self.book
