"""The embedded backend: Qdrant's own engine in-process (qdrant-edge-py), one shard per collection.

Layout under the store root (QDRANT_PATH, default ./data/qdrant):
    <root>/<collection>/shard/            the Qdrant Edge shard (vectors, payloads, indexes)
    <root>/<collection>/collection.json   collection metadata
    <root>/<collection>/pending-writes/   tag edits acknowledged but not yet in the shard
                                          (store/write_behind.py)
    <root>/<collection>/...               artifacts: kNN graph, index report, thumbnails
"""
from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import qdrant_edge as qe

from store.base import (
    DEFAULT_VECTOR, SCROLL_BATCH, WRITE_BATCH, Collection, Columns, PointFilter, PointRecord, Store, StoreError, chunked,
    read_json, to_point_record, validate_collection_name, validate_vector_name, write_json,
)
from store.columns_cache import FILE_NAME as CACHE_FILE
from store.columns_cache import SCAN_FIELDS, ColumnCache, SnapshotBuilder, cacheable
from store.point_filter import Dialect, to_qdrant_filter
from store.scheduler import Scheduler
from store.schema import TAGS, VECTORS
from store.write_behind import APPLY_DELAY_S, PendingWrites

SHARD_DIR = "shard"
METADATA_FILE = "collection.json"
# Edits are flushed once the collection has had no edit for FLUSH_IDLE_S, and at the latest
# FLUSH_MAX_DELAY_S after the first unflushed one (a Qdrant server flushes every 5 s). Until
# then the write-ahead log holds them (see `flush_soon`).
FLUSH_IDLE_S = 5.0
FLUSH_MAX_DELAY_S = 30.0
FLUSH_JOB, APPLY_JOB = "flush", "apply journaled edits"
log = logging.getLogger(__name__)


class EdgeCollection(Collection):
    # The engine locks the shard's write-ahead log: no other process (nor a second load in
    # this one) can load the shard while it is open ("Can't init WAL: WouldBlock"), so every
    # write goes through this object.
    exclusive = True

    def __init__(self, name: str, folder: Path, shard: qe.EdgeShard) -> None:
        super().__init__(name, folder)
        self._shard = shard
        # Serialises engine calls: the engine is shared by every Gradio worker thread of the app.
        self._lock = threading.RLock()
        self._metadata_path = folder / METADATA_FILE
        # Deferred work (journaled edits, the columns cache file, the flush) on one thread.
        self._scheduler = Scheduler(name)
        self._closed = False
        # label/path/x/y of every point as columns, so opening the app does not scroll them all.
        self._cache = ColumnCache(folder, self._lock, self._scheduler, self._count_now, self._stored_fields)
        self._pending = PendingWrites(folder, self._set_payload_in_chunks, self._apply_journal_soon)

    # --- bringing the engine up to date ---------------------------------------------------
    def _bring_engine_up_to_date(self) -> None:
        """Apply the journaled (acknowledged) tag edits to the engine, oldest first. Every engine
        call runs this first, under the engine lock, so no read through store/ ever misses an
        acknowledged edit (store/write_behind.py)."""
        self._pending.apply_all()

    def _apply_journal_soon(self) -> None:
        self._scheduler.schedule(APPLY_JOB, APPLY_DELAY_S, self._apply_journal, max_delay=APPLY_DELAY_S)

    def _apply_journal(self) -> None:
        with self._lock:
            if not self._closed:
                self._bring_engine_up_to_date()

    # --- the Collection primitives -----------------------------------------------------------
    @property
    def dimension(self) -> int:
        return int(self.read_metadata()["dimension"])

    def count(self, flt: PointFilter | None = None) -> int:
        with self._lock:
            self._bring_engine_up_to_date()
            return self._count_now(flt)

    def _count_now(self, flt: PointFilter | None = None) -> int:
        return self._shard.count(qe.CountRequest(exact=True, filter=to_edge_filter(flt)))

    def upsert(self, ids: Sequence[str], vectors: np.ndarray, payloads: Sequence[dict[str, Any]]) -> None:
        rows = np.asarray(vectors, dtype=np.float32).tolist()
        points = [qe.Point(i, v, p) for i, v, p in zip(ids, rows, payloads)]
        with self._lock:
            self._bring_engine_up_to_date()
            with self._cache.writing(ids):
                for chunk in chunked(points, WRITE_BATCH):
                    self._shard.update(qe.UpdateOperation.upsert_points(list(chunk)))

    def set_payload(self, ids: Sequence[str], payload: dict[str, Any]) -> None:
        with self._lock:
            self._bring_engine_up_to_date()
            self._set_payload_now(ids, payload)

    def _set_payload_now(self, ids: Sequence[str], payload: dict[str, Any]) -> None:
        """Called with the engine lock held."""
        if ids:
            ids = list(ids)  # read by the column cache and the engine both
            with self._cache.writing(ids, payload):
                self._shard.update(qe.UpdateOperation.set_payload(ids, payload))

    def _set_payload_in_chunks(self, ids: list[str], payload: dict[str, Any]) -> None:
        """Applies one journaled group (engine lock held); the GIL is let go between chunks."""
        for chunk in chunked(ids, WRITE_BATCH):
            self._set_payload_now(chunk, payload)

    def _write_lists(self, field_name: str, groups: dict[tuple[str, ...], list[str]]) -> None:
        """Journal the edit and return; the engine gets it just after (store/write_behind.py)."""
        self._pending.submit([({field_name: list(new_list)}, ids) for new_list, ids in groups.items()])

    def set_payloads(self, ids: Sequence[str], payloads: Sequence[dict[str, Any]]) -> None:
        ids, payloads = list(ids), list(payloads)  # read by the column cache and the engine both
        with self._lock:
            self._bring_engine_up_to_date()
            with self._cache.writing(ids, payloads):
                for point, payload in zip(ids, payloads):
                    self._shard.update(qe.UpdateOperation.set_payload([point], payload))

    def delete_payload_keys(self, ids: Sequence[str], keys: Sequence[str]) -> None:
        if ids:
            ids = list(ids)
            with self._lock:
                self._bring_engine_up_to_date()
                # A deleted key reads back as None, as a key set to None does.
                with self._cache.writing(ids, dict.fromkeys(keys)):
                    self._shard.update(qe.UpdateOperation.delete_payload(ids, list(keys)))

    def delete(self, ids: Sequence[str]) -> None:
        ids = list(ids)
        with self._lock:
            self._bring_engine_up_to_date()
            with self._cache.writing(ids, delete=True):
                for chunk in chunked(ids, WRITE_BATCH):
                    self._shard.update(qe.UpdateOperation.delete_points(list(chunk)))

    def scroll(self, fields: Sequence[str] | None = None, flt: PointFilter | None = None,
               with_vectors: bool = False, batch: int = SCROLL_BATCH,
               using: str = DEFAULT_VECTOR) -> Iterator[list[PointRecord]]:
        selector: Any = [using] if with_vectors else False
        for records in self._pages(fields, to_edge_filter(flt), selector, batch):
            yield [to_point_record(r, with_vectors, using) for r in records]

    def _pages(self, fields: Sequence[str] | None, edge_filter: qe.Filter | None, with_vectors: Any = False,
               batch: int = SCROLL_BATCH) -> Iterator[list[Any]]:
        """The engine's records, a page at a time; the lock is let go between pages so other
        threads' calls are not held up by a long scan."""
        offset = None
        while True:
            with self._lock:
                self._bring_engine_up_to_date()
                records, offset = self._shard.scroll(qe.ScrollRequest(
                    offset=offset, limit=batch, filter=edge_filter,
                    with_payload=_payload_selector(fields), with_vector=with_vectors))
            yield records
            if offset is None:
                return

    def columns(self, fields: Sequence[str], flt: PointFilter | None = None) -> Columns:
        """As `Collection.columns`. Unfiltered reads of label/path/x/y/tags come from the column
        cache plus the tagged points' tags (store/columns_cache.py); a scan builds the cache
        when there is none that matches the engine."""
        if (flt is not None and not flt.is_empty()) or not cacheable(fields):
            return self._scan_columns(fields, flt)
        with self._lock:
            self._bring_engine_up_to_date()
            snapshot = self._cache.current()
            if snapshot is not None:
                columns = snapshot.columns(fields, self._tagged() if TAGS in fields else [])
                if columns is not None:
                    return columns
                self._cache.invalidate()  # a tagged point it lacks: it is not the engine's points
            generation = self._cache.generation
        return self._rebuild_cache(fields, generation)

    def _scan_columns(self, fields: Sequence[str], flt: PointFilter | None = None) -> Columns:
        if len(set(fields)) != len(fields):
            return super().columns(fields, flt)  # the shared behaviour, repeated names included
        ids, values = self._scan(fields, to_edge_filter(flt))
        return Columns(np.array(ids, dtype=str), values)

    def _scan(self, fields: Sequence[str],
              edge_filter: qe.Filter | None = None) -> tuple[list[str], dict[str, list[Any]]]:
        """Ids and fields of every matching point, read off the engine's records (a PointRecord
        per point would only add time)."""
        ids: list[str] = []
        values: dict[str, list[Any]] = {name: [] for name in fields}
        for records in self._pages(fields, edge_filter):
            for record in records:
                ids.append(str(record.id))
                payload = record.payload or {}
                for name, column in values.items():
                    column.append(payload.get(name))
        return ids, values

    def _tagged(self) -> list[tuple[str, Any]]:
        """(id, tags) of the points whose tags are not empty, found through the tags index."""
        ids, values = self._scan([TAGS], qe.Filter(must_not=[qe.IsEmptyCondition(TAGS)]))
        return list(zip(ids, values[TAGS]))

    def _stored_fields(self, ids: Sequence[str], fields: Sequence[str]) -> dict[str, dict[str, Any]]:
        """What the engine holds now (the cache reads back floats it wrote; engine lock held)."""
        return {record.id: record.payload for record in self._retrieve_now(ids, fields)}

    def _rebuild_cache(self, fields: Sequence[str], generation: int) -> Columns:
        """Answer `columns(fields)` from a scan of every cached field, turned into arrays page by
        page, and keep it as the cache if no write ran while it scrolled."""
        builder = SnapshotBuilder()
        for records in self._pages(SCAN_FIELDS, None):
            builder.add([str(r.id) for r in records], [r.payload or {} for r in records])
        snapshot = builder.finish()
        if snapshot is None:  # a value the cache cannot hold exactly: answer from a plain scan
            return self._scan_columns(fields)
        with self._lock:
            # Live tags are matched to the copy by the engine's is_empty filter: it must pick
            # exactly the points the scan saw with tags.
            if (generation == self._cache.generation
                    and {pid for pid, _ in self._tagged()} == {pid for pid, _ in builder.tagged}):
                self._cache.adopt(snapshot, generation)
        columns = snapshot.columns(fields, builder.tagged)
        assert columns is not None  # the scan's own tagged points are in its snapshot
        return columns

    def _persist_cache(self) -> None:
        """Write the column cache before closing; rebuild it first where a write this session
        could not follow dropped it (an upsert), so the next start reads it instead of scanning."""
        try:
            if self._cache.lost and self._cache.current() is None:
                self._rebuild_cache([], self._cache.generation)
            self._cache.save()
        except Exception:  # the engine raises plain Exception; the cache must not stop a close
            log.exception("could not write the column cache of collection '%s'", self.name)

    def retrieve(self, ids: Sequence[str], fields: Sequence[str] | None = None,
                 with_vectors: bool = False, using: str = DEFAULT_VECTOR) -> list[PointRecord]:
        with self._lock:
            self._bring_engine_up_to_date()
            return self._retrieve_now(ids, fields, with_vectors, using)

    def _retrieve_now(self, ids: Sequence[str], fields: Sequence[str] | None,
                      with_vectors: bool = False, using: str = DEFAULT_VECTOR) -> list[PointRecord]:
        out: list[PointRecord] = []
        for chunk in chunked(list(ids), SCROLL_BATCH):
            records = self._shard.retrieve(list(chunk), _payload_selector(fields), [using] if with_vectors else False)
            out.extend(to_point_record(r, with_vectors, using) for r in records)
        return out

    def search(self, vector: np.ndarray, limit: int = 10, flt: PointFilter | None = None,
               fields: Sequence[str] | None = None, using: str = DEFAULT_VECTOR) -> list[PointRecord]:
        request = qe.QueryRequest(
            limit=limit, query=qe.Query.Nearest(np.asarray(vector, dtype=np.float32).tolist(), using=using or None),
            filter=to_edge_filter(flt), with_payload=_payload_selector(fields))
        with self._lock:
            self._bring_engine_up_to_date()
            hits = self._shard.query(request)
        return [PointRecord(str(h.id), h.payload or {}, score=float(h.score)) for h in hits]

    def facet(self, field_name: str, flt: PointFilter | None = None, limit: int = 10_000) -> dict[str, int]:
        with self._lock:
            self._bring_engine_up_to_date()
            response = self._shard.facet(qe.FacetRequest(key=field_name, limit=limit, filter=to_edge_filter(flt)))
        return {str(hit.value): int(hit.count) for hit in response.hits}

    def create_index(self, field_name: str, kind: str) -> None:
        schema = {"keyword": qe.PayloadSchemaType.Keyword, "float": qe.PayloadSchemaType.Float,
                  "integer": qe.PayloadSchemaType.Integer, "bool": qe.PayloadSchemaType.Bool}[kind]
        with self._lock:
            self._bring_engine_up_to_date()
            self._shard.update(qe.UpdateOperation.create_field_index(field_name, schema))

    def drop_index(self, field_name: str) -> None:
        if field_name in self.indexed_fields():
            with self._lock:
                self._bring_engine_up_to_date()
                self._shard.update(qe.UpdateOperation.delete_field_index(field_name))

    def indexed_fields(self) -> set[str]:
        with self._lock:
            return set(self._shard.info().payload_schema)

    def vector_names(self) -> dict[str, int]:
        """From the metadata: the engine's shard info does not list its vectors."""
        return {name: int(about["dimension"]) for name, about in self.read_metadata().get(VECTORS, {}).items()}

    def add_vector(self, name: str, dimension: int) -> None:
        validate_vector_name(name)
        known = self.vector_names()
        if name in known:
            if known[name] != dimension:
                raise StoreError(f"collection '{self.name}' holds {known[name]}-d vectors named '{name}', "
                                 f"not {dimension}-d; choose another vector name")
            return
        with self._lock:
            self._bring_engine_up_to_date()
            self._shard.update(qe.UpdateOperation.create_dense_vector(name, dimension, qe.Distance.Cosine))
            metadata = self.read_metadata()
            metadata.setdefault(VECTORS, {})[name] = {"dimension": dimension}
            self.write_metadata(metadata)
            self._shard.flush()

    def set_vectors(self, name: str, ids: Sequence[str], vectors: np.ndarray) -> None:
        rows = np.asarray(vectors, dtype=np.float32).tolist()
        points = [qe.PointVectors(i, {name: v}) for i, v in zip(ids, rows)]
        with self._lock:
            self._bring_engine_up_to_date()
            for chunk in chunked(points, WRITE_BATCH):
                self._shard.update(qe.UpdateOperation.update_vectors(list(chunk)))

    def read_metadata(self) -> dict[str, Any]:
        return read_json(self._metadata_path)

    def write_metadata(self, metadata: dict[str, Any]) -> None:
        write_json(self._metadata_path, metadata)

    def flush(self) -> None:
        with self._lock:
            self._bring_engine_up_to_date()
            self._shard.flush()
            self._cache.save()

    def optimize(self) -> None:
        with self._lock:
            self._bring_engine_up_to_date()
            self._shard.optimize()

    def flush_soon(self) -> None:
        """Flush once edits pause (FLUSH_IDLE_S), and at the latest FLUSH_MAX_DELAY_S after the
        first unflushed edit, on the scheduler's thread.

        `update` writes each operation to the shard's write-ahead log before applying it, and
        a reload replays the log, so an edit survives a killed process without a flush (as in
        a Qdrant server, the log is synced by the flush: a power cut may lose the last edits).
        The flush writes the segments (50-700 ms at 70,000 points) holding the engine lock and
        Python's GIL, so anything the server does meanwhile waits: flushing while the user is
        still tagging would stall their next edit, hence the wait for a pause.
        """
        self._scheduler.schedule(FLUSH_JOB, FLUSH_IDLE_S, self._flush_when_due, max_delay=FLUSH_MAX_DELAY_S)

    def _flush_when_due(self) -> None:
        with self._lock:
            if not self._closed:
                self._shard.flush()

    def close(self) -> None:
        self._scheduler.close()  # no deferred job starts after this; close does their work now
        try:
            with self._lock:
                self._bring_engine_up_to_date()
        except StoreError:
            log.exception("closing collection '%s' with journaled edits not applied", self.name)
            self._pending.forget()  # they stay in the journal: the next open applies them
        with self._lock:
            if self._closed:
                return
            self._persist_cache()
            self._closed = True
            self._shard.flush()
            self._shard.close()


class EdgeStore(Store):
    """Collections as folders of Qdrant Edge shards under one root folder."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.description = f"the embedded store at {self.root}"
        self._open: dict[str, EdgeCollection] = {}
        self._lock = threading.Lock()

    def list_collections(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if (p / SHARD_DIR).is_dir() and (p / METADATA_FILE).exists())

    def open(self, name: str) -> Collection:
        validate_collection_name(name)
        with self._lock:
            if name in self._open:
                return self._open[name]
            folder = self.root / name
            if not (folder / SHARD_DIR).is_dir() or not (folder / METADATA_FILE).exists():
                raise self._not_found(name)
            try:
                shard = _load_shard(folder)
            except Exception as error:  # the engine raises plain Exception
                raise StoreError(
                    f"cannot open the collection at {folder}: {error}. Is another embedscape process using "
                    "it? Stop it and retry. An embedded collection can be open in one process at a time; "
                    "to share a collection between the app, the command line and other tools at once, "
                    "serve it from a Qdrant server: `docker compose up -d qdrant`, "
                    f"`python app.py push --collection {name} --url http://localhost:6333`, then set "
                    "QDRANT_URL=http://localhost:6333 (README: Sharing a collection).") from error
            try:
                collection = EdgeCollection(name, folder, shard)
            except StoreError:
                shard.close()  # let go of the write-ahead log, so a retry in this process can load it
                raise
            self._open[name] = collection
            return collection

    def create(self, name: str, dimension: int, metadata: dict[str, Any]) -> Collection:
        validate_collection_name(name)
        folder = self.root / name
        if (folder / SHARD_DIR).exists():
            raise StoreError(f"collection '{name}' already exists at {folder}")
        folder.mkdir(parents=True, exist_ok=True)
        # A cache left by an earlier collection of this name must not describe this one.
        (folder / CACHE_FILE).unlink(missing_ok=True)
        shard = qe.EdgeShard.create(str(folder / SHARD_DIR), _shard_config(dimension))
        write_json(folder / METADATA_FILE, {**metadata, "dimension": dimension, "distance": "cosine"})
        collection = EdgeCollection(name, folder, shard)
        with self._lock:
            self._open[name] = collection
        return collection

    def drop(self, name: str) -> None:
        validate_collection_name(name)
        with self._lock:
            if name in self._open:
                collection = self._open.pop(name)
                collection._cache.discard()  # no point writing a cache that rmtree removes next
                collection.close()
        shutil.rmtree(self.root / name, ignore_errors=True)

    def close(self) -> None:
        with self._lock:
            for collection in self._open.values():
                collection.close()
            self._open.clear()


def _shard_config(dimension: int, named: dict[str, int] | None = None) -> qe.EdgeConfig:
    """Vectors memory-mapped (`Cold`) and no HNSW graph: opening a 70,000 x 1280 collection
    then reads no vectors (0.15 s instead of 0.6 s to load the shard), exact search over the
    mapped vectors takes ~45 ms at 70,000 points, and `optimize` after indexing is a few
    seconds of copying instead of a minute of graph building. `named`: the named vectors
    (name -> dimension) added since, which the engine wants listed to load the shard."""
    def params(size: int) -> qe.EdgeVectorParams:
        return qe.EdgeVectorParams(size=size, distance=qe.Distance.Cosine, memory=qe.Memory.Cold)

    vectors: Any = params(dimension)
    if named:
        vectors = {DEFAULT_VECTOR: vectors, **{name: params(size) for name, size in named.items()}}
    return qe.EdgeConfig(vectors=vectors, optimizers=qe.EdgeOptimizersConfig(indexing_threshold=0))


def _load_shard(folder: Path) -> qe.EdgeShard:
    """Load with the current shard settings, so a collection made by an earlier version takes
    them on (they apply at its next `optimize`); as stored when the engine refuses that."""
    metadata = read_json(folder / METADATA_FILE)
    dimension = metadata.get("dimension")
    if isinstance(dimension, int):
        named = {name: int(about["dimension"]) for name, about in metadata.get(VECTORS, {}).items()}
        try:
            return qe.EdgeShard.load(str(folder / SHARD_DIR), _shard_config(dimension, named))
        except Exception:  # noqa: BLE001  (incompatible settings: keep the stored ones)
            log.info("collection at %s keeps its stored shard settings", folder)
    return qe.EdgeShard.load(str(folder / SHARD_DIR))


def _payload_selector(fields: Sequence[str] | None) -> Any:
    if fields is None:
        return True
    if not fields:
        return False
    return qe.PayloadSelector.Include(list(fields))


EDGE = Dialect(
    has_id=lambda ids: qe.HasIdCondition(set(ids)),
    match_any=lambda key, values: qe.FieldCondition(key, match=qe.MatchAny(values)),
    match_value=lambda key, value: qe.FieldCondition(key, match=qe.MatchValue(value)),
    in_range=lambda key, low, high: qe.FieldCondition(key, range=qe.RangeFloat(gte=low, lte=high)),
    has_vector=qe.HasVectorCondition,
    combine=lambda must, must_not: qe.Filter(must=must, must_not=must_not),
)


def to_edge_filter(flt: PointFilter | None) -> qe.Filter | None:
    return to_qdrant_filter(flt, EDGE)
