"""The points of one collection as in-memory columns, shared by every browser session.

The map, the grid and the distribution all work on row numbers into this table, so a
selection of 70,000 points is one numpy array, not 70,000 payload reads. Tag edits go through
`edit_tags`, which writes to the store and updates the in-memory tags under one lock, so what
sessions see stays what Qdrant holds.

A table is read from the store at start-up and read again when other writers change the
collection (ui/live_table.py). A re-read table keeps every row of the one before it: a point
that is still there keeps its row, a deleted point keeps its row as a dead one (`alive` False:
hidden, counted nowhere), and new points get rows at the end. So a row number held by a
browser's map or a session's selection means the same point in every version of the table.
"""
from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from store import Collection
from store.schema import LABEL, NOT_SHOWN, PATH, TAGS, X, Y

FIELDS = (PATH, LABEL, TAGS, X, Y)
NO_LABEL = "(no label)"


class PointTable:
    """Row-indexed columns: ids, path, label (as codes), tags, x, y, and which rows are alive."""

    def __init__(self, collection: Collection, previous: PointTable | None = None) -> None:
        """Read the columns from `collection`; with `previous`, keep its rows (see the module)."""
        self.collection = collection
        self._lock = threading.RLock()
        columns = collection.columns(FIELDS)
        source, self.ids = _row_sources(columns.ids, previous)
        self.alive: np.ndarray = source >= 0
        self.version = previous.version + 1 if previous is not None else 0
        self.row_of: dict[str, int] = {pid: row for row, pid in enumerate(self.ids) if self.alive[row]}
        column = _ColumnReader(columns, source, previous)
        self.paths: list[str] = column.text(PATH, lambda row: previous.paths[row] if previous else "")
        self.x: np.ndarray = column.number(X, previous.x if previous else None)
        self.y: np.ndarray = column.number(Y, previous.y if previous else None)
        labels = column.text(LABEL, lambda row: previous.label_of(row) if previous else NO_LABEL)
        self.label_names, self.label_codes = _encode([label or NO_LABEL for label in labels])
        # Tuples, not lists: the garbage collector stops tracking tuples of strings, so 70,000
        # of them add nothing to its passes. Dead rows have none.
        self.tags: list[tuple[str, ...]] = [tuple(tags or ()) for tags in column.values(TAGS)]
        # Tag -> occurrences, kept current by the edits: the tag lists are redrawn after every
        # edit, and recounting all rows for each list cost ~15 ms at 70,000 points.
        self._tag_counts: Counter[str] = Counter(tag for tags in self.tags for tag in tags)
        # Bumped on every tag edit so caches keyed on it (tag colouring) know to recompute.
        self.tags_version = 0
        self._numeric: dict[str, np.ndarray] = {}  # numeric payload columns, converted on first use
        self._extra: dict[str, list[Any]] | None = None  # see payload_columns

    @property
    def size(self) -> int:
        """How many points the collection holds (rows that are alive)."""
        return int(self.alive.sum())

    @property
    def all_alive(self) -> bool:
        return bool(self.alive.all())

    def __len__(self) -> int:
        return len(self.ids)

    # --- lookups ------------------------------------------------------------------
    def rows_for_ids(self, ids: Iterable[str]) -> np.ndarray:
        """Rows of the given ids, in the given order; unknown ids are skipped."""
        rows = [self.row_of[i] for i in ids if i in self.row_of]
        return np.asarray(rows, dtype=np.int64)

    def ids_for_rows(self, rows: Sequence[int] | np.ndarray) -> list[str]:
        return [str(i) for i in self.ids[np.asarray(rows, dtype=np.int64)]]

    def label_of(self, row: int) -> str:
        return self.label_names[int(self.label_codes[row])]

    def label_counts(self, rows: np.ndarray | None = None) -> dict[str, int]:
        """Label -> count over `rows` (every live point when None), largest first."""
        codes = self.label_codes[self.alive] if rows is None else self.label_codes[rows]
        counts = np.bincount(codes, minlength=len(self.label_names))
        order = np.argsort(-counts, kind="stable")
        return {self.label_names[i]: int(counts[i]) for i in order if counts[i]}

    def tag_counts(self) -> dict[str, int]:
        """Tag -> number of points having it, most used first."""
        with self._lock:
            counts = [(tag, n) for tag, n in self._tag_counts.items() if n > 0]
        return dict(sorted(counts, key=lambda kv: (-kv[1], kv[0])))

    def rows_with_tags(self, tags: Iterable[str]) -> np.ndarray:
        """Rows having any of `tags`."""
        wanted = set(tags)
        with self._lock:
            return np.fromiter((r for r, t in enumerate(self.tags) if wanted.intersection(t)), dtype=np.int64)

    def mask(self, labels: Sequence[str] | None = None, tags: Sequence[str] | None = None) -> np.ndarray:
        """Boolean row mask of live points with one of `labels` and one of `tags` (None/empty: any)."""
        keep = self.alive.copy()
        if labels:
            codes = [i for i, name in enumerate(self.label_names) if name in set(labels)]
            keep &= np.isin(self.label_codes, codes)
        if tags:
            tagged = np.zeros(len(self), dtype=bool)
            tagged[self.rows_with_tags(tags)] = True
            keep &= tagged
        return keep

    def tags_of(self, rows: Sequence[int] | np.ndarray) -> list[list[str]]:
        with self._lock:
            return [list(self.tags[int(r)]) for r in rows]

    # --- writes -------------------------------------------------------------------
    def edit_tags(self, rows: np.ndarray, tag: str, add: bool) -> int:
        """Add or remove `tag` on every row, in Qdrant and here; returns points changed.

        The store serialises tag writes per collection; holding our lock around the store
        call as well keeps the in-memory copy in the same order as Qdrant's writes. That is
        what lets the store take our copy as the points' current tags instead of reading
        them back (where nothing outside this process writes: `Collection.exclusive`).
        """
        rows = np.unique(np.asarray(rows, dtype=np.int64))
        ids = self.ids_for_rows(rows)
        write = self.collection.add_tag if add else self.collection.remove_tag
        with self._lock:
            current = [self.tags[row] for row in rows]
            try:
                changed = write(ids, tag, current)
            except Exception:
                # Qdrant may hold part of the edit: take the rows' tags from it again.
                self._reload_tags(ids)
                raise
            self._apply_tag_edit(rows, current, tag, add)
            self.tags_version += 1
        return changed

    def _apply_tag_edit(self, rows: np.ndarray, current: list[tuple[str, ...]], tag: str, add: bool) -> None:
        """The store's edit on our copy (new tuples: `current` went to the store as they were)."""
        delta = 0
        for row, old in zip(rows, current):
            if add and tag not in old:
                self.tags[row] = (*old, tag)
                delta += 1
            elif not add and tag in old:
                self.tags[row] = tuple(t for t in old if t != tag)
                delta -= old.count(tag)
        self._tag_counts[tag] += delta

    def _reload_tags(self, ids: list[str]) -> None:
        """Take the tags of `ids` from the store again (after a write that may have half-happened)."""
        for record in self.collection.retrieve(ids, [TAGS]):
            row = self.row_of[record.id]
            new = tuple(record.payload.get(TAGS) or ())
            self._tag_counts.subtract(self.tags[row])
            self._tag_counts.update(new)
            self.tags[row] = new
        self.tags_version += 1

    # --- other payload fields (metrics, scores, predictions), read once on first use ----
    def payload_columns(self, names: Sequence[str]) -> dict[str, list[Any]]:
        """Row-aligned values of payload fields outside FIELDS (None where a point has none).

        The first call reads every such field of every point in one scan (1.5 s at 70,000
        points, where each page asking for its own fields took ~0.9 s a scan, five times over
        at start-up). Like the rest of the table, later writes by other tools show after a
        restart.
        """
        with self._lock:
            if self._extra is None:
                self._extra = self._read_extra_fields()
            extra = self._extra
            return {name: extra[name] if name in extra else [None] * len(self) for name in names}

    def _read_extra_fields(self) -> dict[str, list[Any]]:
        extra: dict[str, list[Any]] = {}
        for records in self.collection.scroll(None):
            for record in records:
                row = self.row_of.get(record.id)
                if row is None:
                    continue
                for name, value in record.payload.items():
                    if name in FIELDS or name in NOT_SHOWN:
                        continue
                    if name not in extra:
                        extra[name] = [None] * len(self)
                    extra[name][row] = value
        return extra

    def numeric_columns(self, names: Sequence[str]) -> dict[str, np.ndarray]:
        """float64 columns (NaN where missing) of numeric payload fields, aligned to rows."""
        with self._lock:
            for name, values in self.payload_columns([n for n in names if n not in self._numeric]).items():
                # Booleans count as 0 / 1 so yes/no fields (prediction_correct) can colour the map.
                self._numeric[name] = np.fromiter(
                    (float(v) if isinstance(v, (int, float)) else np.nan for v in values),
                    dtype=np.float64, count=len(values))
            return {n: self._numeric[n] for n in names}

    def numeric(self, name: str) -> np.ndarray:
        return self.numeric_columns([name])[name]

    # --- labels ---------------------------------------------------------------------
    def set_labels(self, rows: Sequence[int] | np.ndarray, labels: Sequence[str] | str) -> None:
        """Change the in-memory label of `rows` (a name not seen yet gets a new code)."""
        rows = np.asarray(rows, dtype=np.int64)
        names = [labels] * len(rows) if isinstance(labels, str) else list(labels)
        with self._lock:
            index = {name: i for i, name in enumerate(self.label_names)}
            codes = self.label_codes.copy()
            for row, name in zip(rows, names):
                name = name or NO_LABEL
                if name not in index:
                    index[name] = len(self.label_names)
                    self.label_names.append(name)
                codes[row] = index[name]
            self.label_codes = codes

    def relabel(self, rows: Sequence[int] | np.ndarray, label: str) -> int:
        """Set `label` in the store (keeping `original_label`) and here; returns points changed."""
        with self._lock:
            changed = self.collection.relabel(self.ids_for_rows(rows), label)
            self.set_labels(rows, label)
        return changed

    def restore_labels(self, rows: Sequence[int] | np.ndarray) -> int:
        """Give the rows back their `original_label` in the store, then re-read their labels."""
        ids = self.ids_for_rows(rows)
        with self._lock:
            restored = self.collection.restore_labels(ids)
            records = self.collection.retrieve(ids, [LABEL])
            self.set_labels(self.rows_for_ids(r.id for r in records),
                            [str(r.payload.get(LABEL) or "") for r in records])
        return restored


def _encode(values: list[str]) -> tuple[list[str], np.ndarray]:
    """Distinct values (largest class first) and each row's code into them."""
    counts = Counter(values)
    names = sorted(counts, key=lambda v: (-counts[v], v))
    index = {name: i for i, name in enumerate(names)}
    return names, np.fromiter((index[v] for v in values), dtype=np.int32, count=len(values))


def _row_sources(ids: np.ndarray, previous: PointTable | None) -> tuple[np.ndarray, np.ndarray]:
    """(source, row ids): for each row, the index of its point in `ids` (-1: a dead row, its
    point deleted since `previous`), and the row's id. Without `previous`, rows are sorted by
    id (independent of the backend's scroll order); with it, `previous`'s rows come first in
    their order, then the new points sorted by id."""
    if previous is None:
        source = np.argsort(ids, kind="stable")
        return source, ids[source].astype(object)
    position = {pid: i for i, pid in enumerate(ids.tolist())}
    kept = np.fromiter((position.get(pid, -1) for pid in previous.ids), dtype=np.int64, count=len(previous.ids))
    known = set(previous.ids.tolist())
    new = np.array([i for pid, i in position.items() if pid not in known], dtype=np.int64)
    new = new[np.argsort(ids[new], kind="stable")] if len(new) else new
    return np.concatenate([kept, new]), np.concatenate([previous.ids, ids[new].astype(object)])


class _ColumnReader:
    """Values of the read columns in row order; a dead row takes its value from the table
    before (its point is gone from the store)."""

    def __init__(self, columns: Any, source: np.ndarray, previous: PointTable | None) -> None:
        self.columns, self.source, self.previous = columns, source, previous

    def values(self, name: str) -> list[Any]:
        column = self.columns.values[name]
        return [column[i] if i >= 0 else None for i in self.source.tolist()]

    def text(self, name: str, dead: Callable[[int], str]) -> list[str]:
        column = self.columns.values[name]
        return [(column[i] or "") if i >= 0 else dead(row) for row, i in enumerate(self.source.tolist())]

    def number(self, name: str, dead: np.ndarray | None) -> np.ndarray:
        read = np.nan_to_num(self.columns.array(name)).astype(np.float32)
        out = read[np.maximum(self.source, 0)] if len(read) else np.zeros(len(self.source), np.float32)
        if dead is not None:
            gone = np.flatnonzero(self.source < 0)
            out[gone] = dead[gone]
        return out
