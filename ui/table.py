"""The points of one collection as in-memory columns, shared by every browser session.

The map, the grid and the distribution all work on row numbers into this table, so a
selection of 70,000 points is one numpy array, not 70,000 payload reads. The table is
loaded from the store once; tag edits go through `edit_tags`, which writes to the store
and updates the in-memory tags under one lock, so what sessions see stays what Qdrant holds.
Row order is fixed for the life of the process (the browser's map refers to rows).
"""
from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from store import Collection
from store.schema import LABEL, NOT_SHOWN, PATH, TAGS, X, Y

FIELDS = (PATH, LABEL, TAGS, X, Y)
NO_LABEL = "(no label)"


class PointTable:
    """Row-indexed columns: ids, path, label (as codes), tags, x, y."""

    def __init__(self, collection: Collection) -> None:
        self.collection = collection
        self._lock = threading.RLock()
        columns = collection.columns(FIELDS)
        # Sorting by id makes the row order independent of the scroll order of the backend.
        order = np.argsort(columns.ids, kind="stable")
        self.ids: np.ndarray = columns.ids[order].astype(object)
        self.row_of: dict[str, int] = {pid: row for row, pid in enumerate(self.ids)}
        self.paths: list[str] = [columns.values[PATH][i] or "" for i in order]
        self.x: np.ndarray = np.nan_to_num(columns.array(X)[order]).astype(np.float32)
        self.y: np.ndarray = np.nan_to_num(columns.array(Y)[order]).astype(np.float32)
        labels = [columns.values[LABEL][i] or NO_LABEL for i in order]
        self.label_names, self.label_codes = _encode(labels)
        # Tuples, not lists: the garbage collector stops tracking tuples of strings, so 70,000
        # of them add nothing to its passes.
        self.tags: list[tuple[str, ...]] = [tuple(columns.values[TAGS][i] or ()) for i in order]
        # Tag -> occurrences, kept current by the edits: the tag lists are redrawn after every
        # edit, and recounting all rows for each list cost ~15 ms at 70,000 points.
        self._tag_counts: Counter[str] = Counter(tag for tags in self.tags for tag in tags)
        # Bumped on every tag edit so caches keyed on it (tag colouring) know to recompute.
        self.tags_version = 0
        self._numeric: dict[str, np.ndarray] = {}  # numeric payload columns, converted on first use
        self._extra: dict[str, list[Any]] | None = None  # see payload_columns

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
        """Label -> count over `rows` (all rows when None), largest first."""
        codes = self.label_codes if rows is None else self.label_codes[rows]
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
        """Boolean row mask of points with one of `labels` and one of `tags` (None/empty: any)."""
        keep = np.ones(len(self), dtype=bool)
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
