"""The embedded backend: Qdrant's own engine in-process (qdrant-edge-py), one shard per collection.

Layout under the store root (QDRANT_PATH, default ./data/qdrant):
    <root>/<collection>/shard/            the Qdrant Edge shard (vectors, payloads, indexes)
    <root>/<collection>/collection.json   collection metadata
    <root>/<collection>/pending-writes/   tag edits acknowledged but not yet in the shard
                                          (store/write_behind.py)
    <root>/<collection>/columns-cache.npys, start-answers.json
                                          what a start reads, for a start before the shard is
                                          open (store/columns_cache.py, store/start_answers.py)
    <root>/<collection>/...               artifacts: kNN graph, index report, thumbnails

Opening: `EdgeStore.open` returns at once; the engine loads the shard on a thread of its own
when a read or write first needs it, or when the app's start is over (`finish_start`). Until
then the columns cache and the start answers answer what a start reads. The shard's load holds
Python's GIL (the engine does not release it), so it is started once the page is served rather
than at once: a load beside the start would hold the start up as long as doing it first.
One event (`_opened`) says the engine is open; every engine call waits on it (`_shard`).
"""
from __future__ import annotations

import fcntl
import logging
import os
import shutil
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
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
from store.start_answers import Key, StartAnswers
from store.write_behind import APPLY_DELAY_S, PendingWrites

SHARD_DIR = "shard"
IN_USE_FILE = "in-use.lock"  # locked (flock) by the process that has the collection open
METADATA_FILE = "collection.json"
# Edits are flushed once the collection has had no edit for FLUSH_IDLE_S, and at the latest
# FLUSH_MAX_DELAY_S after the first unflushed one (a Qdrant server flushes every 5 s). Until
# then the write-ahead log holds them (see `flush_soon`).
FLUSH_IDLE_S = 5.0
FLUSH_MAX_DELAY_S = 30.0
FLUSH_JOB, APPLY_JOB = "flush", "apply journaled edits"
# A read the start's answers cannot answer, made while the app starts, waits this long for the
# start to end before it starts the engine's load itself.
OPEN_GRACE_S = 3.0
EARLY_PAGE_MAX = 1000  # a first scroll page this big or smaller is a start's read (a sample)
log = logging.getLogger(__name__)


class EdgeCollection(Collection):
    # The engine locks the shard's write-ahead log: no other process (nor a second load in
    # this one) can load the shard while it is open ("Can't init WAL: WouldBlock"), so every
    # write goes through this object.
    exclusive = True

    def __init__(self, name: str, folder: Path, shard: qe.EdgeShard | None = None, held: int = -1) -> None:
        """`shard`: the engine's shard, open; None: loaded from `folder` when first needed.
        `held`: the descriptor of the collection's lock (`_hold_folder`), closed at `close`."""
        super().__init__(name, folder)
        self._held = held
        # Set once the shard is loaded (or failed to load); the only thing an engine call waits on.
        self._opened = threading.Event()
        self._open_started = threading.Lock()  # taken for good by the thread that loads the shard
        self._open_error: Exception | None = None
        self._engine: Any = None
        self._starting = False  # between `begin_start` and `finish_start`
        if shard is not None:
            self._shard = shard
        # Serialises engine calls: the engine is shared by every Gradio worker thread of the app.
        self._lock = threading.RLock()
        self._metadata_path = folder / METADATA_FILE
        # Deferred work (journaled edits, the columns cache file, the flush) on one thread.
        self._scheduler = Scheduler(name)
        self._closed = False
        # label/path/x/y of every point as columns, so opening the app does not scroll them all.
        self._cache = ColumnCache(folder, self._lock, self._scheduler, self._count_for_cache, self._stored_fields)
        self._answers = StartAnswers(folder, self._scheduler, self._answer_now)
        self._early: dict[Key, Any] = {}  # reads answered before the engine opened, checked once it has
        self._pending = PendingWrites(folder, self._set_payload_in_chunks, self._apply_journal_soon)

    # --- opening the engine ------------------------------------------------------------------
    @property
    def _shard(self) -> qe.EdgeShard:
        """The engine's shard; waits for it to load (and starts the load if nobody has)."""
        self._wait_for_engine()
        if self._open_error is not None:
            raise StoreError(str(self._open_error)) from self._open_error
        return self._engine

    def _wait_for_engine(self) -> None:
        """Wait until the engine has loaded the shard, starting the load if nobody has."""
        if self._opened.is_set():
            return
        log.info("waiting for the engine of collection '%s' to open", self.name)
        if self._starting:  # give the start its moment: the load holds the GIL (module docstring)
            self._opened.wait(OPEN_GRACE_S)
        self.open_engine()
        self._opened.wait()

    @contextmanager
    def _engine_locked(self) -> Iterator[None]:
        """The engine lock, taken once the engine is open: a call waiting for the engine must
        not hold the lock, or reads the start's answers can answer would wait behind it."""
        self._wait_for_engine()
        with self._lock:
            yield

    @_shard.setter
    def _shard(self, shard: Any) -> None:
        self._engine = shard
        self._opened.set()

    @property
    def engine_open(self) -> bool:
        """Whether the engine has loaded the shard (reads before that come from the start's files)."""
        return self._opened.is_set()

    def open_engine(self) -> None:
        """Start loading the shard on a thread of its own, unless that has begun; returns at once."""
        if self._opened.is_set() or not self._open_started.acquire(blocking=False):
            return
        threading.Thread(target=self._load_engine, name=f"open {self.name}", daemon=True).start()

    def begin_start(self) -> None:
        """The app starts: a read the saved answers cannot answer waits up to OPEN_GRACE_S for
        the start to end (`finish_start`) before it starts the engine's load itself (a
        thumbnail asked for by the first page: better after the map than before it)."""
        self._starting = True

    def finish_start(self) -> None:
        """The start is over (the app is served): its reads are the ones to answer early next
        time, and the engine opens now, in the background."""
        self._answers.recording = False
        self._starting = False
        self.open_engine()

    def _load_engine(self) -> None:
        started = time.monotonic()
        try:
            engine = _load_shard(self.artifact_dir)
        except Exception as error:  # the engine raises plain Exception
            self._open_error = StoreError(_open_failed(self.artifact_dir, self.name, error))
            log.error("%s", self._open_error)
            self._opened.set()
            return
        self._shard = engine
        log.info("engine of collection '%s' open in %.1f s", self.name, time.monotonic() - started)
        with self._lock:
            self._check_early_answers()

    def _check_early_answers(self) -> None:
        """Ask the engine the reads that were answered before it opened; a different answer means
        the shard was written around store/: say so and drop the start's files (engine lock held).
        Only where nothing was written since this process opened the collection: a write (a tag
        edit made while the engine opened) changes the answers for good reason."""
        early, self._early = self._early, {}
        if self._answers.generation != 0:
            return
        # The count from the engine itself, not from the columns copy it was checked against.
        wrong = [key for key, answer in list(early.items())
                 if answer != (self._count_now() if key == ("count",) else self._answer_now(key))]
        if wrong:
            log.error("collection '%s': the start's saved answers did not match the engine (%s); they are "
                      "deleted, and the app shows what it read before: restart it to read the engine's",
                      self.name, ", ".join(map(repr, wrong)))
            self._answers.changed()
            self._cache.invalidate()

    # --- reads a start makes, answered before the engine opened ------------------------------
    def _answer(self, key: Key) -> Any:
        """The answer to the read `key`: recorded, before the engine opened, where there is one;
        else from the engine (recorded if the start is still reading)."""
        if not self._opened.is_set():
            found, answer = self._answers.get(key)
            if found and not self._pending.queued:
                self._early[key] = answer
                return answer
        generation = self._answers.generation
        self._wait_for_engine()  # (not holding the engine lock, unless the caller does)
        answer = self._answer_now(key)
        self._answers.record(key, answer, generation)
        return answer

    def _answer_now(self, key: Key) -> Any:
        """The engine's answer to the read `key`, as JSON values (what the start file holds)."""
        kind, *args = key
        with self._lock:
            self._bring_engine_up_to_date()
            if kind == "count":
                # The copy in memory follows every write: its length is the engine's count
                # without an exact count's full pass (2.7 s at 10M).
                snapshot = self._cache.held()
                return len(snapshot) if snapshot is not None else self._count_now()
            if kind == "facet":
                field_name, limit = args
                try:
                    return {"counts": self._facet_now(field_name, None, limit)}
                except Exception as error:  # noqa: BLE001  (the engine raises plain Exception)
                    return {"error": str(error)}
            if kind == "tagged":
                return [[pid, tags] for pid, tags in self._tagged()]
            if kind == "indexed_fields":
                return sorted(self._shard.info().payload_schema)
            if kind == "page":
                fields, batch = args
                records, offset = self._page_now(None if fields is None else list(fields), None, batch)
                return {"records": [[str(r.id), r.payload or {}] for r in records],
                        "next": None if offset is None else str(offset)}  # a UUID or an int id
        raise ValueError(f"unknown read {kind!r}")

    # --- bringing the engine up to date ---------------------------------------------------
    def _bring_engine_up_to_date(self) -> None:
        """Apply the journaled (acknowledged) tag edits to the engine, oldest first. Every engine
        call runs this first, under the engine lock, so no read through store/ ever misses an
        acknowledged edit (store/write_behind.py)."""
        self._pending.apply_all()

    def _apply_journal_soon(self) -> None:
        self._scheduler.schedule(APPLY_JOB, APPLY_DELAY_S, self._apply_journal, max_delay=APPLY_DELAY_S)

    def _apply_journal(self) -> None:
        with self._engine_locked():
            if not self._closed:
                self._bring_engine_up_to_date()

    # --- the Collection primitives -----------------------------------------------------------
    @property
    def dimension(self) -> int:
        return int(self.read_metadata()["dimension"])

    def count(self, flt: PointFilter | None = None) -> int:
        if flt is None or flt.is_empty():
            return int(self._answer(("count",)))
        with self._engine_locked():
            self._bring_engine_up_to_date()
            return self._count_now(flt)

    def _count_for_cache(self) -> int:
        """The point count the columns cache file is checked against (engine lock held; called
        inside writes, so it must not apply the journal as `_answer` does)."""
        if not self._opened.is_set():
            found, answer = self._answers.get(("count",))
            if found and not self._pending.queued:
                self._early[("count",)] = answer
                return int(answer)
        generation = self._answers.generation
        count = self._count_now()
        self._answers.record(("count",), count, generation)
        return count

    def _count_now(self, flt: PointFilter | None = None) -> int:
        return self._shard.count(qe.CountRequest(exact=True, filter=to_edge_filter(flt)))

    def upsert(self, ids: Sequence[str], vectors: np.ndarray, payloads: Sequence[dict[str, Any]]) -> None:
        rows = np.asarray(vectors, dtype=np.float32).tolist()
        points = [qe.Point(i, v, p) for i, v, p in zip(ids, rows, payloads)]
        self._answers.changed()  # before the engine sees the write
        with self._engine_locked():
            self._bring_engine_up_to_date()
            with self._cache.writing(ids):
                for chunk in chunked(points, WRITE_BATCH):
                    self._shard.update(qe.UpdateOperation.upsert_points(list(chunk)))

    def set_payload(self, ids: Sequence[str], payload: dict[str, Any]) -> None:
        self._answers.changed()  # before the engine sees the write
        with self._engine_locked():
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
        self._answers.changed()  # before the edit is acknowledged
        self._pending.submit([({field_name: list(new_list)}, ids) for new_list, ids in groups.items()])

    def set_payloads(self, ids: Sequence[str], payloads: Sequence[dict[str, Any]]) -> None:
        ids, payloads = list(ids), list(payloads)  # read by the column cache and the engine both
        self._answers.changed()  # before the engine sees the write
        with self._engine_locked():
            self._bring_engine_up_to_date()
            with self._cache.writing(ids, payloads):
                for point, payload in zip(ids, payloads):
                    self._shard.update(qe.UpdateOperation.set_payload([point], payload))

    def delete_payload_keys(self, ids: Sequence[str], keys: Sequence[str]) -> None:
        if ids:
            ids = list(ids)
            self._answers.changed()  # before the engine sees the write
            with self._engine_locked():
                self._bring_engine_up_to_date()
                # A deleted key reads back as None, as a key set to None does.
                with self._cache.writing(ids, dict.fromkeys(keys)):
                    self._shard.update(qe.UpdateOperation.delete_payload(ids, list(keys)))

    def delete(self, ids: Sequence[str]) -> None:
        ids = list(ids)
        self._answers.changed()  # before the engine sees the write
        with self._engine_locked():
            self._bring_engine_up_to_date()
            with self._cache.writing(ids, delete=True):
                for chunk in chunked(ids, WRITE_BATCH):
                    self._shard.update(qe.UpdateOperation.delete_points(list(chunk)))

    def scroll(self, fields: Sequence[str] | None = None, flt: PointFilter | None = None,
               with_vectors: bool = False, batch: int = SCROLL_BATCH,
               using: str = DEFAULT_VECTOR) -> Iterator[list[PointRecord]]:
        offset = None
        if not with_vectors and (flt is None or flt.is_empty()) and batch <= EARLY_PAGE_MAX:
            # A sample of payloads (which fields exist): a start's read, answered early.
            page = self._answer(("page", None if fields is None else tuple(fields), batch))
            yield [PointRecord(pid, payload) for pid, payload in page["records"]]
            if page["next"] is None:
                return
            offset = page["next"]
        selector: Any = [using] if with_vectors else False
        for records in self._pages(fields, to_edge_filter(flt), selector, batch, offset):
            yield [to_point_record(r, with_vectors, using) for r in records]

    def _pages(self, fields: Sequence[str] | None, edge_filter: qe.Filter | None, with_vectors: Any = False,
               batch: int = SCROLL_BATCH, offset: Any = None) -> Iterator[list[Any]]:
        """The engine's records, a page at a time from `offset`; the lock is let go between pages
        so other threads' calls are not held up by a long scan."""
        while True:
            with self._engine_locked():
                self._bring_engine_up_to_date()
                records, offset = self._page_now(fields, edge_filter, batch, offset, with_vectors)
            yield records
            if offset is None:
                return

    def _page_now(self, fields: Sequence[str] | None, edge_filter: qe.Filter | None, batch: int,
                  offset: Any = None, with_vectors: Any = False) -> tuple[list[Any], Any]:
        return self._shard.scroll(qe.ScrollRequest(offset=offset, limit=batch, filter=edge_filter,
                                                   with_payload=_payload_selector(fields), with_vector=with_vectors))

    def columns(self, fields: Sequence[str], flt: PointFilter | None = None) -> Columns:
        """As `Collection.columns`. Unfiltered reads of label/path/x/y/tags come from the column
        cache plus the tagged points' tags (store/columns_cache.py); a scan builds the cache
        when there is none that matches the engine."""
        if (flt is not None and not flt.is_empty()) or not cacheable(fields):
            return self._scan_columns(fields, flt)
        if self._pending.queued:
            self._wait_for_engine()  # the journal goes to the engine first (not holding the lock)
        with self._lock:
            self._bring_engine_up_to_date()
            snapshot = self._cache.current()
            if snapshot is not None:
                tagged = [(pid, tags) for pid, tags in self._answer(("tagged",))] if TAGS in fields else []
                columns = snapshot.columns(fields, tagged)
                if columns is not None:
                    return columns
                self._cache.invalidate()  # a tagged point it lacks: it is not the engine's points
            generation = self._cache.generation
        return self._rebuild_cache(fields, generation)

    def cached_columns(self, fields: Sequence[str]) -> Columns | None:
        """As `Collection.cached_columns`: from the column cache (memory-mapped), never the
        engine; None for tags (their source is the engine), a cache that is not current, or
        journaled edits not yet in it."""
        if TAGS in fields or not cacheable(fields) or self._pending.queued:
            return None
        with self._lock:
            snapshot = self._cache.current()
            return snapshot.columns(fields, []) if snapshot is not None else None

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
            # (Asked as a start's read: the next start asks it of the saved answers.)
            if (generation == self._cache.generation
                    and {pid for pid, _ in self._answer(("tagged",))} == {pid for pid, _ in builder.tagged}):
                self._cache.adopt(snapshot, generation)
                self._count_for_cache()  # the next start checks the file against this answer
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

    def _persist_answers(self) -> None:
        """Write the start answers a write this session deleted, so the next start has them."""
        try:
            if not self._answers.complete():
                self._answers.save()
        except Exception:  # noqa: BLE001  (the engine raises plain Exception; only an optimisation)
            log.exception("could not write the start answers of collection '%s'", self.name)

    def retrieve(self, ids: Sequence[str], fields: Sequence[str] | None = None,
                 with_vectors: bool = False, using: str = DEFAULT_VECTOR) -> list[PointRecord]:
        with self._engine_locked():
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
        with self._engine_locked():
            self._bring_engine_up_to_date()
            hits = self._shard.query(request)
        return [PointRecord(str(h.id), h.payload or {}, score=float(h.score)) for h in hits]

    def facet(self, field_name: str, flt: PointFilter | None = None, limit: int = 10_000) -> dict[str, int]:
        if flt is None or flt.is_empty():
            answer = self._answer(("facet", field_name, limit))
            if "error" in answer:  # not an indexed field: the engine refuses the facet
                raise StoreError(answer["error"])
            return dict(answer["counts"])
        with self._engine_locked():
            self._bring_engine_up_to_date()
            return self._facet_now(field_name, to_edge_filter(flt), limit)

    def _facet_now(self, field_name: str, edge_filter: qe.Filter | None, limit: int) -> dict[str, int]:
        response = self._shard.facet(qe.FacetRequest(key=field_name, limit=limit, filter=edge_filter))
        return {str(hit.value): int(hit.count) for hit in response.hits}

    def create_index(self, field_name: str, kind: str) -> None:
        schema = {"keyword": qe.PayloadSchemaType.Keyword, "float": qe.PayloadSchemaType.Float,
                  "integer": qe.PayloadSchemaType.Integer, "bool": qe.PayloadSchemaType.Bool}[kind]
        self._answers.changed()  # before the engine sees the write
        with self._engine_locked():
            self._bring_engine_up_to_date()
            self._shard.update(qe.UpdateOperation.create_field_index(field_name, schema))

    def drop_index(self, field_name: str) -> None:
        if field_name in self.indexed_fields():
            self._answers.changed()  # before the engine sees the write
            with self._engine_locked():
                self._bring_engine_up_to_date()
                self._shard.update(qe.UpdateOperation.delete_field_index(field_name))

    def indexed_fields(self) -> set[str]:
        # A start read (the Splits row asks whether `split` has an index): answered early too.
        return set(self._answer(("indexed_fields",)))

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
        self._answers.changed()  # before the engine sees the write
        with self._engine_locked():
            self._bring_engine_up_to_date()
            self._shard.update(qe.UpdateOperation.create_dense_vector(name, dimension, qe.Distance.Cosine))
            metadata = self.read_metadata()
            metadata.setdefault(VECTORS, {})[name] = {"dimension": dimension}
            self.write_metadata(metadata)
            self._shard.flush()

    def set_vectors(self, name: str, ids: Sequence[str], vectors: np.ndarray) -> None:
        rows = np.asarray(vectors, dtype=np.float32).tolist()
        points = [qe.PointVectors(i, {name: v}) for i, v in zip(ids, rows)]
        self._answers.changed()  # before the engine sees the write
        with self._engine_locked():
            self._bring_engine_up_to_date()
            for chunk in chunked(points, WRITE_BATCH):
                self._shard.update(qe.UpdateOperation.update_vectors(list(chunk)))

    def read_metadata(self) -> dict[str, Any]:
        return read_json(self._metadata_path)

    def write_metadata(self, metadata: dict[str, Any]) -> None:
        write_json(self._metadata_path, metadata)

    def flush(self) -> None:
        with self._engine_locked():
            self._bring_engine_up_to_date()
            self._shard.flush()
            self._cache.save()

    def optimize(self) -> None:
        with self._engine_locked():
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
        if not self._opened.is_set() and not self._open_started.locked() and not self._pending.queued:
            self._close_unopened()
            return
        self._scheduler.close()  # no deferred job starts after this; close does their work now
        try:
            with self._engine_locked():
                self._bring_engine_up_to_date()
        except StoreError:
            log.exception("closing collection '%s' with journaled edits not applied", self.name)
            self._pending.forget()  # they stay in the journal: the next open applies them
        with self._lock:
            if self._closed:
                return
            self._persist_cache()
            self._persist_answers()
            self._closed = True
            self._shard.flush()
            self._shard.close()
            self._let_go()

    def _let_go(self) -> None:
        if self._held >= 0:
            os.close(self._held)  # closing the descriptor lets go of its lock
            self._held = -1

    def _close_unopened(self) -> None:
        """Close a collection whose engine never opened: nothing to flush, no shard to load."""
        self._scheduler.close()
        with self._lock:
            if not self._closed:
                self._cache.save()
                self._closed = True
                self._let_go()


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
            held = _hold_folder(folder, name)
            try:  # the shard loads when first needed (see the module docstring)
                collection = EdgeCollection(name, folder, held=held)
            except StoreError:
                os.close(held)  # let go, so a retry in this process can open it
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
        held = _hold_folder(folder, name)
        shard = qe.EdgeShard.create(str(folder / SHARD_DIR), _shard_config(dimension))
        write_json(folder / METADATA_FILE, {**metadata, "dimension": dimension, "distance": "cosine"})
        collection = EdgeCollection(name, folder, shard, held=held)
        with self._lock:
            self._open[name] = collection
        return collection

    def drop(self, name: str) -> None:
        validate_collection_name(name)
        with self._lock:
            if name in self._open:
                collection = self._open.pop(name)
                collection._cache.discard()  # no point writing a cache that rmtree removes next
                collection._answers.forget()
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


def _open_failed(folder: Path, name: str, error: Exception) -> str:
    return (f"cannot open the collection at {folder}: {error}. Is another embedscape process using "
            "it? Stop it and retry. An embedded collection can be open in one process at a time; "
            "to share a collection between the app, the command line and other tools at once, "
            "serve it from a Qdrant server: `docker compose up -d qdrant`, "
            f"`python app.py push --collection {name} --url http://localhost:6333`, then set "
            "QDRANT_URL=http://localhost:6333 (README: Sharing a collection).")


def _hold_folder(folder: Path, name: str) -> int:
    """Lock the collection for this process (a descriptor to close at its close), failing now,
    not at the first read, where another process has it: the engine locks its write-ahead log
    folder only once it has loaded the shard, so the collection takes a lock of its own
    (IN_USE_FILE) from its open. The engine's lock is tried too (a tool holding the shard)
    and let go at once, for the engine to take."""
    held = os.open(folder / IN_USE_FILE, os.O_RDONLY | os.O_CREAT, 0o644)
    wal = folder / SHARD_DIR / "wal"
    try:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if wal.is_dir():
            probe = os.open(wal, os.O_RDONLY)
            try:
                fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.flock(probe, fcntl.LOCK_UN)
            finally:
                os.close(probe)
    except BlockingIOError as error:
        os.close(held)
        raise StoreError(_open_failed(folder, name, error)) from error
    return held


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
