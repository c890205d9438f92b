"""The backend-neutral surface of the store: one collection of image points.

Two backends implement `Collection`: Qdrant's own engine in-process (`store.edge`) and a
Qdrant server through qdrant-client (`store.server`). Everything above `store/` sees only
this module's types, so the same code and the same contract tests run on both.
"""
from __future__ import annotations

import hashlib
import json
import threading
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from store.point_ids import PointIds
from store.schema import (
    EXCLUDED_TAG, LABEL, ORIGINAL_LABEL, PREDICTION, PREDICTION_CORRECT, TAGS, index_kind, validate_tag,
)

# Point ids are UUID5 of the dataset-relative path under this fixed namespace, so indexing
# the same file again updates its point instead of adding a second one.
POINT_ID_NAMESPACE = uuid.UUID("6f1e2c3a-9d1b-5e7f-8a2b-3c4d5e6f7a8b")
_NAMESPACE_BYTES = POINT_ID_NAMESPACE.bytes
SCROLL_BATCH = 10_000
# Qdrant's name for a collection's unnamed vector; the vectors added later (`add_vector`) are
# named ones, as every Qdrant client sees them.
DEFAULT_VECTOR = ""
WRITE_BATCH = 1_000
ListEdit = Callable[[list[str]], list[str]]  # a point's old list (tags, subsets) -> its new list


def point_id(relative_path: str) -> str:
    """The stable id of the image at `relative_path` (POSIX, relative to the source root):
    `str(uuid.uuid5(POINT_ID_NAMESPACE, relative_path))`, computed directly (3x faster, which
    counts at millions of points)."""
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + relative_path.encode("utf-8")).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    text = digest.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


class StoreError(RuntimeError):
    """A store problem the user can act on; the message says what to do."""


class CollectionNotFound(StoreError):
    pass


@dataclass
class PointFilter:
    """Which points to act on. Every given part must hold (AND); None means no constraint.

    labels:      label is any of these
    tags_any:    has at least one of these tags
    tags_all:    has every one of these tags
    tags_none:   has none of these tags
    ids:         id is one of these
    ranges:      field -> (low, high), inclusive, either end may be None
    values:      field -> value or list of values the keyword field must match (any of)
    lacks_vector: the point has no vector of this name (a named vector not yet added to it)
    """

    labels: list[str] | None = None
    tags_any: list[str] | None = None
    tags_all: list[str] | None = None
    tags_none: list[str] | None = None
    ids: list[str] | None = None
    ranges: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
    values: dict[str, list[str]] = field(default_factory=dict)
    lacks_vector: str | None = None

    def is_empty(self) -> bool:
        return not (self.labels or self.tags_any or self.tags_all or self.tags_none
                    or self.ids is not None or self.ranges or self.values or self.lacks_vector is not None)


def default_filter(include_excluded: bool = False) -> PointFilter:
    """What the map, exports and analyses show by default: everything not tagged `excluded`.
    Here, beside the tag, so that filters/ and subsets/ share the one rule."""
    return PointFilter() if include_excluded else PointFilter(tags_none=[EXCLUDED_TAG])


@dataclass
class PointRecord:
    id: str
    payload: dict[str, Any]
    vector: np.ndarray | None = None
    score: float | None = None


def to_point_record(record: Any, with_vectors: bool, using: str = DEFAULT_VECTOR) -> PointRecord:
    """A point as either engine returns it (qdrant-edge `Record`, qdrant-client `Record`), with
    its vector `using` (a point with named vectors comes back with a dict of them)."""
    raw = record.vector if with_vectors else None
    if isinstance(raw, dict):
        raw = raw.get(using) or None
    vector = np.asarray(raw, dtype=np.float32) if raw is not None else None
    return PointRecord(str(record.id), record.payload or {}, vector)


def validate_vector_name(name: str) -> str:
    """A named vector's name: it becomes part of artifact file names and payload field names."""
    if not name or len(name) > 64 or not all(c.isalnum() or c in "-_" for c in name):
        raise StoreError(f"invalid vector name {name!r}: use 1-64 letters, digits, '-' and '_'")
    return name


TextColumn = tuple[np.ndarray, np.ndarray]  # (distinct values, int32 code per point, -1: absent)


class Columns:
    """Payload fields of many points as parallel columns (`ids[i]` owns row i).

    Made from lists (a scan: `Columns(ids, values)`) or from arrays (`Columns.from_arrays`, the
    embedded store's column cache). Either way `point_ids()`, `text(name)`, `floats(name)` and
    `tagged()` answer with numpy arrays, and where the columns came as arrays they make no
    Python object per point (ten million points as lists are gigabytes); `ids` and `values`
    give the same data as a str array and lists, decoded on first use.
    """

    def __init__(self, ids: np.ndarray, values: Mapping[str, list[Any]]) -> None:
        self._ids: np.ndarray | None = ids
        self._point_ids: PointIds | None = None
        self._lists: dict[str, list[Any]] = dict(values)
        self._text: dict[str, TextColumn] = {}
        self._floats: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._tags: tuple[np.ndarray, list[Any], np.ndarray] | None = None
        self._tags_field: str | None = None
        self._order: list[str] = []

    @classmethod
    def from_arrays(cls, point_ids: PointIds, text: Mapping[str, TextColumn],
                    floats: Mapping[str, tuple[np.ndarray, np.ndarray]],
                    tags: tuple[str, np.ndarray, list[Any], np.ndarray] | None = None,
                    order: Sequence[str] = ()) -> Columns:
        """`text`: name -> (distinct values, codes); `floats`: name -> (values, missing mask);
        `tags`: (field, rows that have a non-empty value, their values, mask of the other rows
        whose value is absent rather than []); `order`: the fields' order in `values`."""
        columns = cls(None, {})  # type: ignore[arg-type]
        columns._order = list(order)
        columns._point_ids = point_ids
        columns._text, columns._floats = dict(text), dict(floats)
        if tags is not None:
            columns._tags_field, columns._tags = tags[0], tags[1:]
        return columns

    def __len__(self) -> int:
        return len(self._ids) if self._ids is not None else len(self.point_ids())

    @property
    def ids(self) -> np.ndarray:
        if self._ids is None:
            self._ids = self.point_ids().strings()
        return self._ids

    @property
    def values(self) -> Mapping[str, list[Any]]:
        return _DecodedValues(self)

    def names(self) -> list[str]:
        return list(dict.fromkeys([*self._order, *self._lists, *self._text, *self._floats,
                                   *([self._tags_field] if self._tags_field else [])]))

    def decoded(self, name: str) -> list[Any]:
        """One field as a list (None where absent)."""
        if name not in self._lists:
            if name in self._text:
                distinct, codes = self._text[name]
                self._lists[name] = np.array([*distinct.tolist(), None], dtype=object)[codes].tolist()
            elif name in self._floats:
                values, missing = self._floats[name]
                out: list[Any] = values.tolist()
                for row in np.flatnonzero(missing).tolist():
                    out[row] = None
                self._lists[name] = out
            elif name == self._tags_field and self._tags is not None:
                rows, tagged, absent = self._tags
                lists: list[Any] = [None if none else [] for none in absent.tolist()]
                for row, value in zip(rows.tolist(), tagged):
                    lists[row] = value
                self._lists[name] = lists
            else:
                raise KeyError(name)
        return self._lists[name]

    # --- as arrays ---------------------------------------------------------------------
    def point_ids(self) -> PointIds:
        if self._point_ids is None:
            self._point_ids = PointIds.from_strings(self._ids if self._ids is not None else np.array([], str))
        return self._point_ids

    def text(self, name: str) -> TextColumn:
        """(distinct values, each point's code into them, -1 where absent)."""
        if name not in self._text:
            index: dict[Any, int] = {}
            codes = np.fromiter((-1 if v is None else index.setdefault(v, len(index)) for v in self.decoded(name)),
                                dtype=np.int32, count=len(self))
            self._text[name] = (np.array(list(index), dtype=object), codes)
        return self._text[name]

    def floats(self, name: str) -> np.ndarray:
        """float64 values, NaN where absent (possibly read-only: the cache's own, when none is)."""
        if name in self._floats and name not in self._lists:
            values, missing = self._floats[name]
            # No copy where nothing is missing: at 10M points each copy cost 0.15 s of a start.
            return np.where(missing, np.nan, values) if missing.any() else values
        return self.array(name, np.float64)

    def tagged(self, name: str) -> tuple[np.ndarray, list[Any]]:
        """(rows whose list field `name` is not empty, their values)."""
        if name == self._tags_field and self._tags is not None and name not in self._lists:
            return self._tags[0], list(self._tags[1])
        values = self.decoded(name)
        rows = [row for row, value in enumerate(values) if value not in (None, [], ())]
        return np.asarray(rows, dtype=np.int64), [values[row] for row in rows]

    def array(self, name: str, dtype: Any = np.float32, missing: Any = np.nan) -> np.ndarray:
        if name in self._floats and name not in self._lists:
            values, absent = self._floats[name]
            return np.where(absent, missing, values).astype(dtype)
        return np.array([missing if v is None else v for v in self.decoded(name)], dtype=dtype)


class _DecodedValues(Mapping[str, list[Any]]):
    """`Columns.values`: each field decoded to a list when first read."""

    def __init__(self, columns: Columns) -> None:
        self._columns = columns

    def __getitem__(self, name: str) -> list[Any]:
        return self._columns.decoded(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._columns.names())

    def __len__(self) -> int:
        return len(self._columns.names())


class Collection(ABC):
    """One Qdrant collection of image points, with its metadata and artifact folder."""

    # True where no other process can write the collection while this one has it open, so
    # payloads this process has seen (and written since) are still what Qdrant holds.
    exclusive: bool = False

    def __init__(self, name: str, artifact_dir: Path) -> None:
        self.name = name
        self.artifact_dir = artifact_dir
        # Tag, subset and label edits are read-modify-write; one lock per collection keeps
        # concurrent sessions from overwriting each other's edits.
        self._edit_lock = threading.Lock()

    # --- primitives each backend provides -------------------------------------------
    @property
    @abstractmethod
    def dimension(self) -> int: ...

    @abstractmethod
    def count(self, flt: PointFilter | None = None) -> int: ...

    @abstractmethod
    def upsert(self, ids: Sequence[str], vectors: np.ndarray, payloads: Sequence[dict[str, Any]]) -> None: ...

    @abstractmethod
    def set_payload(self, ids: Sequence[str], payload: dict[str, Any]) -> None:
        """Set the same fields on every given point (other fields are kept)."""

    @abstractmethod
    def set_payloads(self, ids: Sequence[str], payloads: Sequence[dict[str, Any]]) -> None:
        """Set per-point fields (`payloads[i]` on `ids[i]`), other fields kept."""

    @abstractmethod
    def delete_payload_keys(self, ids: Sequence[str], keys: Sequence[str]) -> None: ...

    @abstractmethod
    def delete(self, ids: Sequence[str]) -> None: ...

    @abstractmethod
    def scroll(self, fields: Sequence[str] | None = None, flt: PointFilter | None = None,
               with_vectors: bool = False, batch: int = SCROLL_BATCH,
               using: str = DEFAULT_VECTOR) -> Iterator[list[PointRecord]]:
        """Batches of all matching points; `fields=None` returns the whole payload; with
        `with_vectors`, each point's vector `using` (None where it has none)."""

    @abstractmethod
    def retrieve(self, ids: Sequence[str], fields: Sequence[str] | None = None,
                 with_vectors: bool = False, using: str = DEFAULT_VECTOR) -> list[PointRecord]: ...

    @abstractmethod
    def search(self, vector: np.ndarray, limit: int = 10, flt: PointFilter | None = None,
               fields: Sequence[str] | None = None, using: str = DEFAULT_VECTOR) -> list[PointRecord]:
        """Nearest points by cosine similarity of the vector `using`, best first (`score` set)."""

    @abstractmethod
    def vector_names(self) -> dict[str, int]:
        """The named vectors besides the default one: name -> dimension."""

    @abstractmethod
    def add_vector(self, name: str, dimension: int) -> None:
        """Declare the named cosine vector `name` (points get it through `set_vectors`)."""

    @abstractmethod
    def set_vectors(self, name: str, ids: Sequence[str], vectors: np.ndarray) -> None:
        """Write the named vector `name` of existing points; their payload and other vectors stay."""

    @abstractmethod
    def facet(self, field_name: str, flt: PointFilter | None = None, limit: int = 10_000) -> dict[str, int]:
        """Value -> number of points, for an indexed keyword field."""

    @abstractmethod
    def create_index(self, field_name: str, kind: str) -> None:
        """Payload index; kind is 'keyword', 'float', 'integer' or 'bool'."""

    @abstractmethod
    def drop_index(self, field_name: str) -> None:
        """Remove the payload index on `field_name`, if there is one (the values stay)."""

    @abstractmethod
    def indexed_fields(self) -> set[str]:
        """Payload fields that have an index."""

    @abstractmethod
    def read_metadata(self) -> dict[str, Any]: ...

    @abstractmethod
    def write_metadata(self, metadata: dict[str, Any]) -> None: ...

    def flush(self) -> None:
        """Make every write so far durable."""

    def optimize(self) -> None:
        """Reorganise storage after a bulk write (the embedded engine merges its segments into
        one memory-mapped segment); a server optimises by itself."""

    def begin_start(self) -> None:
        """The app starts serving this collection: until `finish_start`, a backend that opens
        its engine lazily (store/edge.py) lets a read it cannot answer yet wait a moment for the
        start to end before it opens the engine itself."""

    def finish_start(self) -> None:
        """The app has started (its pages are built and served): a backend that deferred
        opening its engine (store/edge.py) opens it now, in the background."""

    def flush_soon(self) -> None:
        """Flush, or arrange a flush shortly, where each write is already crash-safe on its own.

        Edits call this instead of `flush`; a backend whose writes survive a killed process
        before any flush (a write-ahead log) may defer it off the caller's path. `close` flushes.
        """
        self.flush()

    def close(self) -> None:
        """Release the collection's resources."""

    # --- conveniences built on the primitives ---------------------------------------
    def update_metadata(self, **changes: Any) -> dict[str, Any]:
        metadata = self.read_metadata()
        metadata.update(changes)
        self.write_metadata(metadata)
        return metadata

    def index_fields(self, names: Iterable[str]) -> None:
        """Create the payload index the schema (store/schema.py) declares for each of `names`;
        names it declares without an index are skipped."""
        for name in names:
            kind = index_kind(name)
            if kind is not None:
                self.create_index(name, kind)

    def columns(self, fields: Sequence[str], flt: PointFilter | None = None) -> Columns:
        ids: list[str] = []
        values: dict[str, list[Any]] = {f: [] for f in fields}
        for batch in self.scroll(fields, flt):
            for record in batch:
                ids.append(record.id)
                for f in fields:
                    values[f].append(record.payload.get(f))
        return Columns(np.array(ids, dtype=str), values)

    def cached_columns(self, fields: Sequence[str]) -> Columns | None:
        """Every point's `fields` from a copy kept beside the store, without reading the store
        itself, or None where there is none (this base: never). Cheap where it answers: the
        app's first page draws its picture of the map from it (ui/first_page.py)."""
        return None

    def ids(self, flt: PointFilter | None = None) -> list[str]:
        return [r.id for batch in self.scroll([], flt) for r in batch]

    def vectors(self, flt: PointFilter | None = None,
                using: str = DEFAULT_VECTOR) -> tuple[np.ndarray, np.ndarray]:
        """(ids, float32 vectors `using`) of every matching point that has that vector."""
        ids: list[str] = []
        rows: list[np.ndarray] = []
        for batch in self.scroll([], flt, with_vectors=True, using=using):
            kept = [r for r in batch if r.vector is not None]
            ids.extend(r.id for r in kept)
            rows.extend(r.vector for r in kept)
        dimension = self.dimension if using == DEFAULT_VECTOR else self.vector_names()[using]
        vectors = np.vstack(rows).astype(np.float32) if rows else np.zeros((0, dimension), np.float32)
        return np.array(ids, dtype=str), vectors

    def add_tag(self, ids: Sequence[str], tag: str, current: Sequence[Sequence[str]] | None = None) -> int:
        """Add `tag` (checked against the tag rule) to every given point; returns how many gained it.

        `current[i]` is what the caller knows `ids[i]` holds now (see `edit_list`).
        """
        tag = validate_tag(tag)
        return self.edit_list(TAGS, ids, lambda tags: tags if tag in tags else [*tags, tag], current)

    def remove_tag(self, ids: Sequence[str], tag: str, current: Sequence[Sequence[str]] | None = None) -> int:
        """Remove `tag` from every given point; returns how many points lost it."""
        return self.edit_list(TAGS, ids, lambda tags: [t for t in tags if t != tag], current)

    def edit_list(self, field_name: str, ids: Sequence[str], edit: ListEdit,
                  current: Sequence[Sequence[str]] | None = None) -> int:
        """Write `edit(old list)` into the keyword-list field `field_name` (tags, subsets) of each
        point where it changes it, one write per distinct new list; returns how many changed.

        The old lists are read from Qdrant, except on an `exclusive` collection when the caller
        passes `current`: there nothing outside this process writes, and every writer in it
        holds `_edit_lock`, so a caller that updates its copy under the same lock (`PointTable`)
        knows the payloads exactly and reading 10,000 of them back would only cost time.
        """
        with self._edit_lock:
            if current is None or not self.exclusive:
                old = ((r.id, r.payload.get(field_name)) for r in self.retrieve(list(ids), [field_name]))
            else:
                old = zip(ids, current)
            groups = _group_by_new_list(old, edit)
            self._write_lists(field_name, groups)
            self.flush_soon()
        return sum(len(group) for group in groups.values())

    def _write_lists(self, field_name: str, groups: dict[tuple[str, ...], list[str]]) -> None:
        """Give each group of points its new list; returns once the store has the edit."""
        for new_list, group in groups.items():
            for chunk in chunked(group, WRITE_BATCH * 10):
                self.set_payload(chunk, {field_name: list(new_list)})

    def relabel(self, ids: Sequence[str], label: str) -> int:
        """Set `label` on every given point, keeping the label it came with as `original_label`
        (set once, so a later relabel or re-index never loses the source's label)."""
        changed = 0
        with self._edit_lock:
            groups: dict[tuple[str, bool | None], list[str]] = {}
            for record in self.retrieve(list(ids), [LABEL, ORIGINAL_LABEL, PREDICTION]):
                payload = record.payload
                if payload.get(LABEL) == label:
                    continue
                original = payload.get(ORIGINAL_LABEL) or payload.get(LABEL) or ""
                correct = payload[PREDICTION] == label if PREDICTION in payload else None
                groups.setdefault((original, correct), []).append(record.id)
            for (original, correct), group in groups.items():
                fields: dict[str, Any] = {LABEL: label, ORIGINAL_LABEL: original}
                if correct is not None:
                    fields[PREDICTION_CORRECT] = correct
                self.set_payload(group, fields)
                changed += len(group)
            self.flush_soon()
        return changed

    def restore_labels(self, ids: Sequence[str]) -> int:
        """Undo `relabel`: give back each point's `original_label`."""
        restored = 0
        with self._edit_lock:
            for record in self.retrieve(list(ids), [ORIGINAL_LABEL, PREDICTION]):
                original = record.payload.get(ORIGINAL_LABEL)
                if not original:
                    continue
                fields: dict[str, Any] = {LABEL: original}
                if PREDICTION in record.payload:
                    fields[PREDICTION_CORRECT] = record.payload[PREDICTION] == original
                self.set_payload([record.id], fields)
                self.delete_payload_keys([record.id], [ORIGINAL_LABEL])
                restored += 1
            self.flush_soon()
        return restored

    def tag_counts(self) -> dict[str, int]:
        return self.facet(TAGS)

    def label_counts(self) -> dict[str, int]:
        return self.facet(LABEL)


class Store(ABC):
    """A place holding collections: an embedded engine folder or a Qdrant server."""

    description: str = ""

    @abstractmethod
    def list_collections(self) -> list[str]: ...

    @abstractmethod
    def open(self, name: str) -> Collection:
        """An existing collection; raises CollectionNotFound with what to do."""

    @abstractmethod
    def create(self, name: str, dimension: int, metadata: dict[str, Any]) -> Collection: ...

    @abstractmethod
    def drop(self, name: str) -> None: ...

    def exists(self, name: str) -> bool:
        return name in self.list_collections()

    def open_or_create(self, name: str, dimension: int, metadata: dict[str, Any]) -> Collection:
        if self.exists(name):
            collection = self.open(name)
            if collection.dimension != dimension:
                raise StoreError(
                    f"collection '{name}' holds {collection.dimension}-d vectors but the model gives "
                    f"{dimension}-d; index into a new --collection or drop this one first")
            return collection
        return self.create(name, dimension, metadata)

    def close(self) -> None:
        """Release every open collection."""

    def _not_found(self, name: str) -> CollectionNotFound:
        known = ", ".join(self.list_collections()) or "none"
        return CollectionNotFound(
            f"no collection '{name}' in {self.description} (collections there: {known}). "
            f"Create it with: python app.py index PATH --collection {name}")


def validate_collection_name(name: str) -> str:
    """Collection names become folder names: refuse anything that could escape the store."""
    if not name or len(name) > 100 or not all(c.isalnum() or c in "-_" for c in name):
        raise StoreError(
            f"invalid collection name {name!r}: use letters, digits, '-' and '_' only (at most 100)")
    return name


def _group_by_new_list(current: Iterable[tuple[str, Any]], edit: ListEdit) -> dict[tuple[str, ...], list[str]]:
    """Points whose list `edit` changes, grouped by their new list. Grouped by old list first,
    so `edit` runs once per distinct list: a selection mostly shares a few."""
    by_old: dict[tuple[str, ...], list[str]] = {}
    for pid, tags in current:
        by_old.setdefault(tuple(tags) if tags else (), []).append(pid)
    groups: dict[tuple[str, ...], list[str]] = {}
    for old, pids in by_old.items():
        new = tuple(edit(list(old)))
        if new != old:
            groups.setdefault(new, []).extend(pids)
    return groups


def chunked(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.exists() else {}


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str))
    tmp.replace(path)
