"""The answers to the reads an app start makes, kept beside an embedded collection so that the
next start can answer them before the engine has opened its shard.

Why: opening the shard of a 10M-point collection takes the engine 15-70 s, and its load holds
Python's GIL throughout (qdrant-edge-py does not release it), so nothing else in the process,
the HTTP server included, runs meanwhile. The map needs only the columns cache
(store/columns_cache.py); the rest of what building the pages reads is a few small answers: the
number of points, some facets, the first page of payloads (which fields exist), the tagged
points. So the collection opens its engine only once the start is over (`EdgeCollection.
finish_start`) or a read needs it, and until then answers those reads from here.

What is kept: each read made during a start (before `finish_start`), keyed by the call and its
arguments, with its answer as the engine gave it; only JSON values (what payloads are).

The rules that keep a stale answer from ever being used (those of the columns cache):
  * The file exists only while it matches the shard: every write through store/ calls
    `changed()` *before* the engine sees it (a tag edit: before it is journaled), which deletes
    the file and forgets the answers (their keys stay). The answers are computed again from the
    engine and written back SAVE_DELAY_S after the last write. A process killed in between
    leaves no file: the next start waits for the engine, as before.
  * Only one process can load an embedded shard, so no other writer changes it meanwhile.
  * Once the engine has opened, every answer given early is asked again and compared
    (`EdgeCollection._check_early_answers`); a difference (a tool that wrote the shard around
    store/) is logged and the file deleted.
"""
from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any

from store.scheduler import Scheduler

FILE_NAME = "start-answers.json"
FORMAT = 1
SAVE_DELAY_S = 5.0
SAVE_JOB = "save start answers"
MAX_KEYS = 64  # a start makes about ten such reads; more means reads that are not a start's
log = logging.getLogger(__name__)

Key = tuple[Hashable, ...]


def _encode(key: Key) -> str:
    return json.dumps(list(key))


def _decode(encoded: str) -> Key:
    return tuple(tuple(part) if isinstance(part, list) else part for part in json.loads(encoded))


class StartAnswers:
    """The recorded answers of one collection: `get` before the engine opened, `record` while
    a start reads, `changed` before every write, `save_soon` to write them back."""

    def __init__(self, folder: Path, scheduler: Scheduler, compute: Callable[[Key], Any]) -> None:
        """`compute(key)` asks the engine again (the caller's engine lock is taken inside it)."""
        self.path = folder / FILE_NAME
        self._scheduler = scheduler
        self._compute = compute
        # Guards everything below; held over the file's write and unlink, never over an engine call.
        self._lock = threading.Lock()
        self._answers, keys = self._load()
        # Every read of a start, answered or not yet: the file's (an earlier start's) and this one's.
        self._keys: dict[str, Key] = {encoded: _decode(encoded) for encoded in keys}
        self._may_exist = self.path.exists()
        self.generation = 0  # bumped by `changed`: an answer computed before it is stale
        self.recording = True  # until the start is over

    def _load(self) -> tuple[dict[str, Any], list[str]]:
        """(answers, the keys of a start's reads) from the file."""
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}, []
        except (OSError, ValueError) as error:
            log.warning("ignoring %s: %s", self.path, error)
            return {}, []
        if (not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("answers"), dict)
                or not isinstance(data.get("keys", []), list)):
            return {}, []
        return data["answers"], [*data.get("keys", []), *data["answers"]]

    def get(self, key: Key) -> tuple[bool, Any]:
        """(found, answer) as recorded; the key is remembered for the next file either way."""
        encoded = _encode(key)
        with self._lock:
            if self.recording and len(self._keys) < MAX_KEYS:
                self._keys.setdefault(encoded, key)
            if encoded in self._answers:
                return True, self._answers[encoded]
        return False, None

    def record(self, key: Key, answer: Any, generation: int) -> None:
        """Keep `answer` (computed at `generation`) if this is a start's read and nothing was
        written since; the file is written shortly after."""
        encoded = _encode(key)
        with self._lock:
            if not self.recording or generation != self.generation:
                return
            if encoded not in self._keys and len(self._keys) >= MAX_KEYS:
                return
            self._keys[encoded] = key
            if self._answers.get(encoded, _MISSING) == answer:
                return
            self._answers[encoded] = answer
        self.save_soon()

    def changed(self) -> None:
        """A write is about to reach the engine (or the journal): forget the answers, and replace
        the file by one with the keys alone (the next process that has the engine open then
        answers them again, at its close if not before)."""
        with self._lock:
            self.generation += 1
            self._answers.clear()
            if self._may_exist:
                self._may_exist = False
                self._write({"format": FORMAT, "keys": list(self._keys), "answers": {}})
        if self._keys:
            self.save_soon()

    def complete(self) -> bool:
        """Whether the file holds an answer to every kept read."""
        with self._lock:
            return self._may_exist and all(encoded in self._answers for encoded in self._keys)

    def save_soon(self) -> None:
        self._scheduler.schedule(SAVE_JOB, SAVE_DELAY_S, self.save, max_delay=4 * SAVE_DELAY_S)

    def save(self) -> None:
        """Ask the engine every kept read again and write the file, unless a write came meanwhile."""
        with self._lock:
            generation, keys = self.generation, dict(self._keys)
        if not keys:
            return
        answers = {encoded: self._compute(key) for encoded, key in keys.items()}
        with self._lock:
            if generation != self.generation:
                return  # a write came in: the next save (scheduled by it) has the new answers
            self._answers = answers
            self._may_exist = self._write({"format": FORMAT, "answers": answers})

    def _write(self, data: dict[str, Any]) -> bool:
        """Replace the file by `data` (whole or not at all); whether it was written."""
        try:
            text = json.dumps(data)
        except (TypeError, ValueError) as error:  # a payload value JSON cannot hold
            log.info("start answers of %s not kept: %s", self.path.parent.name, error)
            self.path.unlink(missing_ok=True)
            return False
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            tmp.write_text(text)
            tmp.replace(self.path)
        except OSError as error:  # a read-only folder: only an optimisation
            log.warning("cannot write %s: %s", self.path, error)
            self.path.unlink(missing_ok=True)
            return False
        return True

    def forget(self) -> None:
        """Delete the file for good (the collection is being dropped)."""
        with self._lock:
            self.recording = False
            self._keys.clear()
            self._answers.clear()
            self.path.unlink(missing_ok=True)
            self._may_exist = False
        self._scheduler.cancel(SAVE_JOB)


_MISSING = object()
