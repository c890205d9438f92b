"""A columnar copy of the payload fields every app start reads, kept beside an embedded collection.

Why: `columns(["label", "tags", "x", "y"])` over 70,000 points through the engine's scroll costs
~1.5 s (each payload is decompressed and becomes a dict, each id a uuid.UUID, then a str). The
same columns load from this file in tens of milliseconds.

What is cached: every point id, in the engine's scroll order, and the fields in CACHED_FIELDS.
`tags` is not cached: tagging is the most frequent edit, and caching it would make every tag
edit rewrite the file. Each `columns()` reads the tags of the points that have any from the
engine (`must_not: is_empty(tags)`, answered by the tags index); for the other points the cache
only remembers whether `tags` is `[]` or absent (both are "empty" to the engine).

The rules that keep a stale copy from ever being used:
  * The file exists only while it matches the shard. A write through store/ that could change
    what it holds deletes the file *before* the engine sees the write; the copy in memory is
    updated once the write succeeded (or dropped where it cannot be) and written back shortly
    after, at flush() or at close(). A process killed in between leaves no file, so the next
    start scans the engine (and writes a new file).
  * Only one process can load an embedded shard (the engine locks its write-ahead log), so no
    other process writes while this one holds a copy in memory.
  * A file read back must hold exactly as many points as the engine, and every point the engine
    reports as tagged must be in it; otherwise it is deleted and rebuilt from a scan.
Not detected: a tool that writes the shard with qdrant-edge-py directly (bypassing store/) and
keeps the number of points. After such a write delete `columns-cache.npys` in the collection folder.
"""
from __future__ import annotations

import json
import logging
import math
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from store.base import Columns
from store.point_ids import PointIds
from store.scheduler import Scheduler
from store.schema import LABEL, PATH, TAGS, X, Y

# A JSON header (a 0-d str array) then the arrays it names, each in .npy format, back to back:
# read without the zip layer and CRC of an .npz (a third of the time at 70,000 points).
FILE_NAME = "columns-cache.npys"
# 2: ids as 16-byte UUID keys (store/point_ids.py) where every id is a UUID, else as a str array.
FORMAT = 2
# field -> the one Python type its values may have (or None); anything else is not cached.
CACHED_FIELDS: dict[str, type] = {LABEL: str, PATH: str, X: float, Y: float}
# The engine may store a written float one unit in the last place off (its JSON number parsing
# is not exactly rounded: ~1 in 9 map coordinates), so floats are taken from what it stores.
FLOAT_FIELDS = frozenset(name for name, kind in CACHED_FIELDS.items() if kind is float)
SCAN_FIELDS = (*CACHED_FIELDS, TAGS)
# A burst of edits (a relabel is several writes) writes the file once, this long after the first.
SAVE_DELAY_S = 2.0
SAVE_JOB = "save columns cache"
# JSON values a tags write may carry; anything else might be stored in a way we cannot predict.
_JSON_TYPES = (list, tuple, dict, str, int, float, bool)
_JSON_OR_NONE = (*_JSON_TYPES, type(None))
_FOLLOWED = {*CACHED_FIELDS, TAGS}  # the fields a write must be followed in
log = logging.getLogger(__name__)

Payloads = Mapping[str, Any] | Sequence[Mapping[str, Any]]  # one payload for all ids, or one each


def cacheable(fields: Sequence[str]) -> bool:
    """Whether `columns(fields)` can be answered from the cache (plus the live tags)."""
    return len(set(fields)) == len(fields) and all(f in CACHED_FIELDS or f == TAGS for f in fields)


def tags_are_empty(value: Any) -> bool:
    """The engine's `is_empty`: absent, null or []. ("", {}, [None] are values.)"""
    return value is None or (isinstance(value, (list, tuple)) and len(value) == 0)


class _Text:
    """A str field as codes into a list of distinct values (-1: absent)."""

    def __init__(self, names: list[str] | np.ndarray, codes: np.ndarray) -> None:
        # As read from the file, a str array: made a list only when the field is read or
        # written (a path per point is 70,000 str objects that most reads do not ask for).
        self._names = names
        self.codes = codes
        self._code_of: dict[str, int] | None = None  # built on the first write: reads never need it

    @property
    def names(self) -> list[str]:
        if isinstance(self._names, np.ndarray):
            self._names = self._names.tolist()
        return self._names

    def names_array(self) -> np.ndarray:
        return self._names if isinstance(self._names, np.ndarray) else np.array(self._names, dtype=str)

    def code(self, value: Any) -> int | None:
        """The code of `value`, added if new; None where the value cannot be stored exactly."""
        if value is None:
            return -1
        # numpy's str arrays drop trailing NULs, so such a value would not read back the same.
        if type(value) is not str or value.endswith("\x00"):
            return None
        if self._code_of is None:
            self._code_of = {name: i for i, name in enumerate(self.names)}
        code = self._code_of.get(value)
        if code is None:
            code = self._code_of[value] = len(self.names)
            self.names.append(value)
        return code

    def forget_index(self) -> None:
        """Drop the value -> code dict (made again by the next write) and keep the values as a
        numpy array, as a copy read from the file holds them."""
        self._code_of = None
        if not isinstance(self._names, np.ndarray):
            self._names = np.array(self._names, dtype=str) if self._names else np.array([], dtype="<U1")

    def decode(self) -> list[str | None]:
        table = np.array([*self.names, None], dtype=object)  # code -1 picks the trailing None
        return table[self.codes].tolist()


class _Numbers:
    """A float field as float64 values plus a mask of absent ones."""

    def __init__(self, values: np.ndarray, missing: np.ndarray) -> None:
        self.values = values
        self.missing = missing

    @classmethod
    def build(cls, values: Sequence[Any]) -> _Numbers | None:
        if not all(v is None or _exact_float(v) for v in values):
            return None
        missing = np.fromiter((v is None for v in values), dtype=bool, count=len(values))
        numbers = np.fromiter((0.0 if v is None else v for v in values), dtype=np.float64, count=len(values))
        return cls(numbers, missing)

    def decode(self) -> list[float | None]:
        out: list[float | None] = self.values.tolist()
        for row in np.flatnonzero(self.missing).tolist():
            out[row] = None
        return out


def _exact_float(value: Any) -> bool:
    # ints are not cached: a float64 would hand back 3.0 where the payload holds 3.
    return type(value) is float and math.isfinite(value)


class ColumnSnapshot:
    """The cached columns of every point of a collection at one moment."""

    def __init__(self, ids: PointIds, text: dict[str, _Text], numbers: dict[str, _Numbers],
                 tags_none: np.ndarray) -> None:
        self.ids = ids
        self.text = text
        self.numbers = numbers
        self.tags_none = tags_none  # where tags is empty: absent/null (True) or [] (False)

    def __len__(self) -> int:
        return len(self.ids)

    # --- building and answering -------------------------------------------------------
    def columns(self, fields: Sequence[str], tagged: Sequence[tuple[str, Any]]) -> Columns | None:
        """The columns of `fields`, with `tagged` (id, tags) from the engine for the points that
        have tags; None when one of those is not here (the copy is not the engine's points).
        Arrays, copied (writes change this copy in place), with no Python object per point."""
        tags = None
        if TAGS in fields:
            rows = self.ids.rows(pid for pid, _ in tagged)
            if (rows < 0).any():
                return None
            tags = (TAGS, rows, [value for _, value in tagged], self.tags_none.copy())
        text = {name: (self.text[name].names_array(), self.text[name].codes.copy())
                for name in fields if name in self.text}
        floats = {name: (self.numbers[name].values.copy(), self.numbers[name].missing.copy())
                  for name in fields if name in self.numbers}
        return Columns.from_arrays(self.ids, text, floats, tags, order=fields)

    # --- following writes ---------------------------------------------------------------
    def changed_by(self, ids: Sequence[str], payloads: Payloads) -> bool:
        """Whether setting `payloads` on `ids` changes what this copy answers."""
        keys = set(payloads) if isinstance(payloads, Mapping) else set().union(*payloads)
        if keys & CACHED_FIELDS.keys():
            return True
        if TAGS not in keys:
            return False
        if isinstance(payloads, Mapping) and not tags_are_empty(payloads[TAGS]):
            return not isinstance(payloads[TAGS], _JSON_TYPES)  # tagged points are read live
        rows = self._rows(ids)
        if rows is None:
            return True
        for row, payload in zip(rows.tolist(), _each(payloads, len(ids))):
            if TAGS not in payload:
                continue
            value = payload[TAGS]
            if not isinstance(value, _JSON_OR_NONE):
                return True
            if tags_are_empty(value) and bool(self.tags_none[row]) != (value is None):
                return True
        return False

    def apply(self, ids: Sequence[str], payloads: Payloads) -> bool:
        """Set `payloads` on `ids` (a None value: the field is absent); False if this copy cannot
        follow (it must then be dropped)."""
        rows = self._rows(ids)
        if rows is None:
            return False
        if isinstance(payloads, Mapping):
            return all(self._store(rows, name, [value] * len(rows))
                       for name, value in payloads.items() if name in _FOLLOWED)
        pairs = list(zip(rows.tolist(), payloads))
        if len(set(ids)) < len(ids):  # a point twice: its later payload wins, so go in order
            return all(self._store(np.array([row]), name, [value])
                       for row, payload in pairs for name, value in payload.items())
        for name in set().union(*(payload for _, payload in pairs)) & _FOLLOWED:
            picked = [(row, payload[name]) for row, payload in pairs if name in payload]
            if not self._store(np.array([row for row, _ in picked]), name, [value for _, value in picked]):
                return False
        return True

    def _store(self, rows: np.ndarray, name: str, values: list[Any]) -> bool:
        """values[i] as field `name` of row rows[i] (one numpy store per field, not per point)."""
        if name in self.text:
            codes = [self.text[name].code(value) for value in values]
            if None in codes:
                return False
            self.text[name].codes[rows] = codes
        elif name in self.numbers:
            if not all(value is None or _exact_float(value) for value in values):
                return False
            self.numbers[name].missing[rows] = [value is None for value in values]
            self.numbers[name].values[rows] = [0.0 if value is None else value for value in values]
        elif name == TAGS:
            if not all(isinstance(value, _JSON_OR_NONE) for value in values):
                return False
            empty = [(row, value is None) for row, value in zip(rows.tolist(), values) if tags_are_empty(value)]
            if empty:
                self.tags_none[[row for row, _ in empty]] = [none for _, none in empty]
        return True

    def delete(self, ids: Sequence[str]) -> bool:
        keep = np.ones(len(self.ids), dtype=bool)
        rows = self.ids.rows(ids)
        keep[rows[rows >= 0]] = False  # the engine ignores unknown ids too
        self.ids = self.ids.take(keep)
        for text in self.text.values():
            text.codes = text.codes[keep]
        for numbers in self.numbers.values():
            numbers.values, numbers.missing = numbers.values[keep], numbers.missing[keep]
        self.tags_none = self.tags_none[keep]
        return True

    def _rows(self, ids: Sequence[str]) -> np.ndarray | None:
        rows = self.ids.rows(ids)
        return None if (rows < 0).any() else rows

    # --- the file -----------------------------------------------------------------------
    def save(self, path: Path) -> None:
        arrays: dict[str, np.ndarray] = {"ids": self.ids.keys, "tags_none": self.tags_none}
        for name, text in self.text.items():
            arrays[f"{name}.names"], arrays[f"{name}.codes"] = text.names_array(), text.codes
        for name, numbers in self.numbers.items():
            arrays[f"{name}.values"], arrays[f"{name}.missing"] = numbers.values, numbers.missing
        header = json.dumps({"format": FORMAT, "arrays": list(arrays)})
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as handle:
            for array in (np.array(header), *arrays.values()):
                np.save(handle, array, allow_pickle=False)
        tmp.replace(path)  # readers see the old file or the new one, never half of one

    @classmethod
    def load(cls, path: Path) -> ColumnSnapshot | None:
        """The copy in `path`; None where it is missing, unreadable or of another format."""
        try:
            with open(path, "rb") as handle:
                header = json.loads(str(np.load(handle, allow_pickle=False)))
                if header.get("format") != FORMAT:
                    return None
                data = {name: _mapped(path, handle) for name in header["arrays"]}
            text = {name: _Text(data[f"{name}.names"], data[f"{name}.codes"])
                    for name, kind in CACHED_FIELDS.items() if kind is str}
            numbers = {name: _Numbers(data[f"{name}.values"], data[f"{name}.missing"])
                       for name, kind in CACHED_FIELDS.items() if kind is float}
            snapshot = cls(PointIds(data["ids"]), text, numbers, data["tags_none"])
        except (OSError, EOFError, KeyError, TypeError, ValueError, AttributeError):
            return None
        return snapshot if snapshot._consistent() else None

    def _consistent(self) -> bool:
        n = len(self.ids)
        arrays = [self.tags_none, *(t.codes for t in self.text.values()),
                  *(a for x in self.numbers.values() for a in (x.values, x.missing))]
        return (all(len(a) == n for a in arrays)
                and all(not n or -1 <= int(t.codes.min()) <= int(t.codes.max()) < len(t._names)
                        for t in self.text.values()))


def _mapped(path: Path, handle: BinaryIO) -> np.ndarray:
    """The next .npy array of the open file `handle`, memory-mapped copy-on-write: the pages are
    read when used and writes stay in this process. At 10M points the path names alone are
    ~1 GB that the map never reads (a path is read for the few points shown), so they stay on
    disk instead of in RSS; the file is replaced by rename, never rewritten in place, so a
    mapping keeps the file it was made from."""
    read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                   (2, 0): np.lib.format.read_array_header_2_0}.get(np.lib.format.read_magic(handle))
    if read_header is None:
        raise ValueError("unknown .npy version")
    shape, fortran, dtype = read_header(handle)
    if dtype.hasobject:
        raise ValueError("object arrays are not cached")
    offset = handle.tell()
    count = math.prod(shape)
    handle.seek(offset + count * dtype.itemsize)
    if count == 0:
        return np.empty(shape, dtype=dtype)
    mapped = np.memmap(path, dtype=dtype, mode="c", offset=offset, shape=shape, order="F" if fortran else "C")
    return mapped.view(np.ndarray)  # a plain array over the mapping (which its .base keeps open)


class SnapshotBuilder:
    """A `ColumnSnapshot` built page by page from a scan, each page turned into arrays at once.

    Building it from whole-scan lists held ten million ids, paths and floats as
    Python objects (11 GB at peak); here only the distinct text values stay objects (the
    path dict, until `finish`), and the tags of the tagged points.
    """

    def __init__(self) -> None:
        self.text = {name: _Text([], np.empty(0, np.int32)) for name, kind in CACHED_FIELDS.items() if kind is str}
        self._codes: dict[str, list[np.ndarray]] = {name: [] for name in self.text}
        self._numbers: dict[str, list[_Numbers]] = {name: [] for name, kind in CACHED_FIELDS.items()
                                                    if kind is float}
        self._ids: list[np.ndarray] = []
        self._tags_none: list[np.ndarray] = []
        self.tagged: list[tuple[str, Any]] = []  # (id, tags) of the points whose tags are not empty
        self.cacheable = True

    def add(self, ids: Sequence[str], payloads: Sequence[Mapping[str, Any]]) -> None:
        """One page of the scan: ids and their payloads (SCAN_FIELDS)."""
        self._ids.append(PointIds.from_strings(np.array(ids, dtype=str)).keys if ids else np.empty(0, "S16"))
        self._tags_none.append(np.fromiter((p.get(TAGS) is None for p in payloads), dtype=bool, count=len(ids)))
        self.tagged.extend((pid, p[TAGS]) for pid, p in zip(ids, payloads) if not tags_are_empty(p.get(TAGS)))
        if not self.cacheable:
            return
        for name, text in self.text.items():
            codes = [text.code(p.get(name)) for p in payloads]
            if None in codes:
                self.cacheable = False
                return
            self._codes[name].append(np.asarray(codes, dtype=np.int32))
        for name, parts in self._numbers.items():
            numbers = _Numbers.build([p.get(name) for p in payloads])
            if numbers is None:
                self.cacheable = False
                return
            parts.append(numbers)

    def finish(self) -> ColumnSnapshot | None:
        """The snapshot, or None where some value would not read back identically."""
        if not self.cacheable:
            return None
        for name, text in self.text.items():
            text.codes = np.concatenate(self._codes[name]) if self._codes[name] else np.empty(0, np.int32)
            text.forget_index()
        numbers = {name: _Numbers(np.concatenate([n.values for n in parts]) if parts else np.empty(0),
                                  np.concatenate([n.missing for n in parts]) if parts else np.empty(0, bool))
                   for name, parts in self._numbers.items()}
        chunks = self._ids
        if any(chunk.dtype != np.dtype("S16") for chunk in chunks):  # some ids are not UUIDs
            chunks = [PointIds(chunk).strings() for chunk in chunks]
            keys = PointIds.from_strings(np.concatenate(chunks)).keys if chunks else np.empty(0, "U1")
        else:
            keys = np.concatenate(chunks) if chunks else np.empty(0, "S16")
        tags_none = np.concatenate(self._tags_none) if self._tags_none else np.empty(0, bool)
        return ColumnSnapshot(PointIds(keys), dict(self.text), numbers, tags_none)


def _each(payloads: Payloads, n: int) -> Iterator[Mapping[str, Any]]:
    if isinstance(payloads, Mapping):
        return iter([payloads] * n)
    return iter(payloads)


class ColumnCache:
    """The cache file of one collection and its copy in memory.

    Every method runs under the collection's engine lock (`lock`, re-entrant; the deferred save
    takes it on the scheduler's thread), which also serialises engine calls, so the copy and
    the engine change in the same order.
    """

    def __init__(self, folder: Path, lock: threading.RLock, scheduler: Scheduler, count_points: Callable[[], int],
                 read_back: Callable[[Sequence[str], Sequence[str]], dict[str, Mapping[str, Any]]]) -> None:
        self.path = folder / FILE_NAME
        self._lock = lock
        self._scheduler = scheduler
        self._count_points = count_points
        self._read_back = read_back  # (ids, fields) -> id -> those fields as the engine holds them
        self._snapshot: ColumnSnapshot | None = None
        self._saved = False  # the file holds _snapshot
        self._may_exist = True  # until we look, a file may be there from an earlier process
        # Bumped by every write: a scan becomes the copy only if no write ran while it scrolled.
        self.generation = 0
        # This process dropped a copy it had (a write it could not follow): rebuild before closing.
        self.lost = False

    def current(self) -> ColumnSnapshot | None:
        """The copy in memory, else the file's if it matches the engine's point count."""
        if self._snapshot is None and self._may_exist:
            snapshot = ColumnSnapshot.load(self.path)
            if snapshot is not None and len(snapshot) == self._count_points():
                self._snapshot, self._saved = snapshot, True
            else:
                self.lost = self.lost or snapshot is not None
                self._discard_file()
        return self._snapshot

    def held(self) -> ColumnSnapshot | None:
        """The copy in memory, if there is one (no file read, no engine call)."""
        return self._snapshot

    def adopt(self, snapshot: ColumnSnapshot, generation: int) -> bool:
        """Take a scan's snapshot as the copy, if no write ran since `generation`; write the file."""
        if generation != self.generation:
            return False
        self._snapshot, self._saved, self.lost = snapshot, False, False
        self.save()
        return True

    @contextmanager
    def writing(self, ids: Sequence[str], payloads: Payloads | None = None,
                delete: bool = False) -> Iterator[None]:
        """Wraps one engine write: set `payloads` on `ids`, delete `ids`, or (neither) an upsert,
        which replaces whole payloads and so drops the copy."""
        self.generation += 1
        snapshot = self.current()
        if snapshot is not None and payloads is not None and not snapshot.changed_by(ids, payloads):
            yield
            return
        self._discard_file()  # before the engine write: from here on a crash leaves no stale file
        try:
            yield
        except BaseException:
            self.drop()
            raise
        if snapshot is None:
            return
        if delete:
            followed = snapshot.delete(ids)
        else:
            followed = payloads is not None and self._follow(snapshot, ids, payloads)
        if followed:
            self._save_soon()
        else:
            self.drop()

    def _follow(self, snapshot: ColumnSnapshot, ids: Sequence[str], payloads: Payloads) -> bool:
        """Apply a payload write to the copy, its floats as the engine stored them."""
        if not snapshot.apply(ids, payloads):
            return False
        keys = set(payloads) if isinstance(payloads, Mapping) else set().union(*payloads)
        floats = sorted(keys & FLOAT_FIELDS)
        if not floats:
            return True
        stored = self._read_back(list(dict.fromkeys(ids)), floats)
        if len(stored) != len(set(ids)):
            return False
        as_stored = [{name: payload.get(name) for name in floats} for payload in stored.values()]
        return snapshot.apply(list(stored), as_stored)

    def save(self) -> None:
        """Write the copy to the file if the file does not hold it yet."""
        self._scheduler.cancel(SAVE_JOB)
        if self._snapshot is None or self._saved:
            return
        try:
            self._snapshot.save(self.path)
        except OSError as error:  # a read-only folder: the cache is only an optimisation
            log.warning("cannot write %s: %s", self.path, error)
            return
        self._saved = self._may_exist = True

    def drop(self) -> None:
        """Forget the copy (the file is already gone)."""
        self._scheduler.cancel(SAVE_JOB)
        self.lost = self.lost or self._snapshot is not None
        self._snapshot, self._saved = None, False

    def invalidate(self) -> None:
        """Delete the file and forget the copy: it turned out not to match the engine."""
        self._discard_file()
        self.drop()

    def discard(self) -> None:
        """Delete the file and forget the copy, for good (the collection is being dropped)."""
        self._discard_file()
        self.drop()
        self.lost = False

    def _discard_file(self) -> None:
        if self._may_exist:
            self.path.unlink(missing_ok=True)
            self._may_exist = self._saved = False

    def _save_soon(self) -> None:
        # A burst of writes saves once, SAVE_DELAY_S after its first write.
        self._scheduler.schedule(SAVE_JOB, SAVE_DELAY_S, self._save_later, max_delay=SAVE_DELAY_S)

    def _save_later(self) -> None:
        with self._lock:
            self.save()
