"""Tag writes to an embedded collection, acknowledged once journaled and applied just after.

Why: writing tags on 10,000 points costs the embedded engine 0.15-0.3 s (each payload is read,
merged and rewritten, and the engine holds Python's GIL throughout), which the user would wait
for on every tag click. A Qdrant server answers an update with `wait=false` as soon as the
operation is in its write-ahead log and applies it in the background; this module gives the
embedded engine the same contract:

  * `PendingWrites.submit` writes the edit (each group of points and the payload they get) to a
    journal file in the collection folder, queues it and returns. What the edit sets is absolute
    (the points' new lists), so applying it twice gives the same payloads.
  * `apply_all` writes the queued edits to the engine, oldest first. The collection calls it,
    under its engine lock, as the first step of every engine call (`EdgeCollection.
    _bring_engine_up_to_date`), so nothing in this process ever sees Qdrant without an
    acknowledged edit; and its scheduler calls it APPLY_DELAY_S after an edit, so the reply
    that the edit is done is sent before the engine call holds the GIL.
  * A journal file is deleted right after its edit is applied. A process killed in between
    leaves the file: the next open queues it again (before any other write can reach the
    engine), so an acknowledged edit is never lost.

Only for embedded collections: a server can be written by other tools at any time, so edits
there read the current tags back and wait for the write.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from store.base import StoreError

JOURNAL_DIR = "pending-writes"
# Long enough for the Gradio reply that follows an edit to be sent before the engine holds the
# GIL (the handler returns within tens of ms); short enough that the edit is in Qdrant before
# the user's next action.
APPLY_DELAY_S = 0.25
Group = tuple[dict[str, Any], list[str]]  # (payload to set, point ids)
ApplyGroup = Callable[[list[str], dict[str, Any]], None]
log = logging.getLogger(__name__)


class PendingWrites:
    """The journal of acknowledged, not yet applied payload writes of one collection."""

    def __init__(self, folder: Path, apply_group: ApplyGroup, on_submit: Callable[[], None]) -> None:
        """`apply_group(ids, payload)` writes one group to the engine; `on_submit()` runs after each
        acknowledged edit (the collection schedules `apply_all` from it)."""
        self.folder = folder / JOURNAL_DIR
        self._apply_group = apply_group
        self._on_submit = on_submit
        self._queue: list[tuple[Path, list[Group], float]] = []  # in submission order
        # Guards the journal's file numbering and the queue, so the journal's order is the
        # queue's; held over a journal file write (small), never over an engine call.
        self._lock = threading.Lock()
        self._next = 0
        self._requeue_journal()

    def submit(self, groups: Sequence[Group]) -> None:
        """Journal `groups` (set payload on ids) and queue them; returns before the engine has them."""
        groups = [(dict(payload), list(ids)) for payload, ids in groups if ids]
        if not groups:
            return
        with self._lock:
            path = self.folder / f"{self._next:010d}.json"
            self.folder.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps([[payload, ids] for payload, ids in groups]))
            # The rename makes the file appear whole or not at all: a file under its final name
            # is an edit that was acknowledged.
            tmp.replace(path)
            self._next += 1
            self._queue.append((path, groups, time.monotonic()))
        self._on_submit()

    def apply_all(self) -> None:
        """Apply every queued write in order; the caller holds the collection's engine lock."""
        while True:
            with self._lock:
                if not self._queue:
                    return
                path, groups, acknowledged = self._queue[0]
            started = time.monotonic()
            try:
                for payload, ids in groups:
                    self._apply_group(ids, payload)
            except Exception as error:  # the engine raises plain Exception; keep the edit, retry later
                raise StoreError(f"a tag edit could not be written to Qdrant ({error}); it is kept in "
                                 f"{path} and retried at the next access or start") from error
            path.unlink(missing_ok=True)
            with self._lock:
                self._queue.pop(0)
            log.info("applied journaled write %s (%d points) in %.0f ms, %.0f ms after it was acknowledged",
                     path.name, sum(len(ids) for _, ids in groups), (time.monotonic() - started) * 1000,
                     (time.monotonic() - acknowledged) * 1000)

    @property
    def queued(self) -> bool:
        """Whether an acknowledged edit is not yet in the engine."""
        with self._lock:
            return bool(self._queue)

    def forget(self) -> None:
        """Drop the queue in memory (the journal keeps it for the next open)."""
        with self._lock:
            self._queue.clear()

    def _requeue_journal(self) -> None:
        """Queue the edits a previous process acknowledged but did not apply, oldest first."""
        if not self.folder.is_dir():
            return
        for tmp in self.folder.glob("*.tmp"):  # never acknowledged: the rename did not happen
            tmp.unlink(missing_ok=True)
        paths = sorted(self.folder.glob("*.json"))
        for path in paths:
            try:
                groups = [(payload, ids) for payload, ids in json.loads(path.read_text())]
            except (OSError, ValueError, TypeError) as error:
                raise StoreError(f"the journaled tag edit {path} cannot be read ({error}). Move it "
                                 "out of the way to open the collection without that edit.") from error
            self._queue.append((path, groups, time.monotonic()))
        if paths:
            self._next = int(paths[-1].stem) + 1
            log.info("%d journaled write(s) in %s will be applied before the collection is used",
                     len(paths), self.folder)
