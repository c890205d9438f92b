"""The app's current `PointTable`, read again when other writers change the collection.

With a Qdrant server, other tools (qdrant-client scripts, a second embedscape, a labelling
tool) write the same collection while the app runs. `LiveTable.check()` compares what the
collection holds with the table the app shows and, when they differ, reads a new table that
keeps the old one's rows (ui/table.py), so sessions keep their selection and grid page:

  * the collection's metadata (a re-index or an analysis elsewhere rewrites it: map
    positions and scores may all have changed), the number of points, and the label and tag
    counts (facets on indexed fields, cheap at any size) are compared first;
  * up to FULL_CHECK_MAX points, every point's id, label and tags are compared too, so a
    relabel or a tag moved between points with the counts unchanged, or a point replaced by
    another, are seen as well. Above that, those go unnoticed until the Reload control
    (`check(force=True)` reads the table again whatever the checks say).

`start()` runs the check every `interval` seconds on a thread of its own, for collections
other processes can write (a server); an embedded collection is written by this process only
(`Collection.exclusive`), so there is nothing to poll. Sessions pick a new table up at their
next event, or at the page's own timer tick (ui/explorer.py), through `MapState.catch_up`.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from store import Collection
from store.schema import LABEL, TAGS
from ui.table import NO_LABEL, PointTable

FULL_CHECK_MAX = 500_000
log = logging.getLogger(__name__)


@dataclass
class Change:
    """What a new table brought, for the page's status line."""

    version: int
    added: int
    removed: int
    at: float  # time.time()

    def describe(self) -> str:
        stamp = time.strftime("%H:%M:%S", time.localtime(self.at))
        parts = [f"+{self.added:,} points" if self.added else "", f"−{self.removed:,} points" if self.removed else ""]
        what = ", ".join(p for p in parts if p) or "labels, tags or map changed"
        return f"Updated from Qdrant at {stamp}: {what}."


class LiveTable:
    def __init__(self, collection: Collection, table: PointTable | None = None,
                 read_table: Callable[[Collection, PointTable | None], PointTable] = PointTable) -> None:
        self.collection = collection
        self._read_table = read_table
        self.table = table if table is not None else read_table(collection, None)
        self.last_change: Change | None = None
        self._metadata = _metadata_key(collection)
        self._check_lock = threading.Lock()  # one check at a time; sessions read `table` freely
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.checked_at = time.monotonic()

    @property
    def version(self) -> int:
        return self.table.version

    def check(self, force: bool = False) -> bool:
        """Read a new table if the collection changed (always with `force`); whether it did."""
        with self._check_lock:
            return self._check_now(force)

    def check_since(self, asked_at: float) -> bool:
        """`check()`, unless a check began after `asked_at` (a `time.monotonic()` reading):
        that one saw every write made before then. Page loads come in bursts; this gives each
        the writes made before it without checking once per page."""
        with self._check_lock:
            return self.checked_at < asked_at and self._check_now(False)

    def _check_now(self, force: bool) -> bool:
        self.checked_at = time.monotonic()
        metadata = _metadata_key(self.collection)
        if not force and metadata == self._metadata and not self._differs(self.table):
            return False
        old = self.table
        new = self._read_table(self.collection, old)
        self._metadata = metadata
        self.table = new
        self.last_change = Change(new.version, added=len(new) - len(old),
                                  removed=int(old.alive.sum() - new.alive[:len(old)].sum()), at=time.time())
        log.info("collection '%s' changed: table version %d (%+d rows)", self.collection.name, new.version,
                 len(new) - len(old))
        return True

    def start(self, interval: float) -> None:
        """Check every `interval` seconds on a daemon thread (nothing to do for exclusive collections)."""
        if self.collection.exclusive or interval <= 0 or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._poll, args=(interval,), name="embedscape-live-table",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _poll(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                self.check()
            except Exception:  # a server that is briefly away: try again at the next tick
                log.exception("checking collection '%s' for changes failed", self.collection.name)

    def _differs(self, table: PointTable) -> bool:
        collection = self.collection
        if collection.count() != table.size:
            return True
        if _named(collection.label_counts()) != _named(table.label_counts()) or \
                collection.tag_counts() != table.tag_counts():
            return True
        return table.size <= FULL_CHECK_MAX and not _same_points(collection, table)


def _same_points(collection: Collection, table: PointTable) -> bool:
    """Whether every point's id, label and tags are what the table holds."""
    columns = collection.columns([LABEL, TAGS])
    rows = np.array([table.row_of.get(pid, -1) for pid in columns.ids.tolist()], dtype=np.int64)
    if (rows < 0).any() or len(rows) != table.size:
        return False
    labels, tags = columns.values[LABEL], columns.values[TAGS]
    return all(table.label_of(row) == (label or NO_LABEL) and table.tags[row] == tuple(tag or ())
               for row, label, tag in zip(rows.tolist(), labels, tags))


def _named(counts: dict[str, int]) -> dict[str, int]:
    """Counts of real labels: unlabelled points are "" or have no label field in the store and
    NO_LABEL in the table, so they are left out of the comparison on both sides."""
    return {name: count for name, count in counts.items() if name not in ("", NO_LABEL)}


def _metadata_key(collection: Collection) -> Any:
    import json

    return json.dumps(collection.read_metadata(), sort_keys=True, default=str)
