"""The embedded backend: Qdrant's own engine in-process (qdrant-edge-py), one shard per collection.

Layout under the store root (QDRANT_PATH, default ./data/qdrant):
    <root>/<collection>/shard/            the Qdrant Edge shard (vectors, payloads, indexes)
    <root>/<collection>/collection.json   collection metadata
    <root>/<collection>/...               artifacts: kNN graph, index report, thumbnails
"""
from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import qdrant_edge as qe

from store.base import (
    SCROLL_BATCH, WRITE_BATCH, Collection, PointFilter, PointRecord, Store, StoreError, chunked,
    read_json, to_point_record, validate_collection_name, write_json,
)

SHARD_DIR = "shard"
METADATA_FILE = "collection.json"


class EdgeCollection(Collection):
    def __init__(self, name: str, folder: Path, shard: qe.EdgeShard) -> None:
        super().__init__(name, folder)
        self._shard = shard
        # The engine is shared by every Gradio worker thread of the app; serialise calls.
        self._lock = threading.RLock()
        self._metadata_path = folder / METADATA_FILE

    @property
    def dimension(self) -> int:
        return int(self.read_metadata()["dimension"])

    def count(self, flt: PointFilter | None = None) -> int:
        with self._lock:
            return self._shard.count(qe.CountRequest(exact=True, filter=to_edge_filter(flt)))

    def upsert(self, ids: Sequence[str], vectors: np.ndarray, payloads: Sequence[dict[str, Any]]) -> None:
        rows = np.asarray(vectors, dtype=np.float32).tolist()
        points = [qe.Point(i, v, p) for i, v, p in zip(ids, rows, payloads)]
        with self._lock:
            for chunk in chunked(points, WRITE_BATCH):
                self._shard.update(qe.UpdateOperation.upsert_points(list(chunk)))

    def set_payload(self, ids: Sequence[str], payload: dict[str, Any]) -> None:
        if ids:
            with self._lock:
                self._shard.update(qe.UpdateOperation.set_payload(list(ids), payload))

    def set_payloads(self, ids: Sequence[str], payloads: Sequence[dict[str, Any]]) -> None:
        with self._lock:
            for point, payload in zip(ids, payloads):
                self._shard.update(qe.UpdateOperation.set_payload([point], payload))

    def delete_payload_keys(self, ids: Sequence[str], keys: Sequence[str]) -> None:
        if ids:
            with self._lock:
                self._shard.update(qe.UpdateOperation.delete_payload(list(ids), list(keys)))

    def delete(self, ids: Sequence[str]) -> None:
        with self._lock:
            for chunk in chunked(list(ids), WRITE_BATCH):
                self._shard.update(qe.UpdateOperation.delete_points(list(chunk)))

    def scroll(self, fields: Sequence[str] | None = None, flt: PointFilter | None = None,
               with_vectors: bool = False, batch: int = SCROLL_BATCH) -> Iterator[list[PointRecord]]:
        offset = None
        edge_filter = to_edge_filter(flt)
        while True:
            with self._lock:
                records, offset = self._shard.scroll(qe.ScrollRequest(
                    offset=offset, limit=batch, filter=edge_filter,
                    with_payload=_payload_selector(fields), with_vector=with_vectors))
            yield [to_point_record(r, with_vectors) for r in records]
            if offset is None:
                return

    def retrieve(self, ids: Sequence[str], fields: Sequence[str] | None = None,
                 with_vectors: bool = False) -> list[PointRecord]:
        out: list[PointRecord] = []
        with self._lock:
            for chunk in chunked(list(ids), SCROLL_BATCH):
                records = self._shard.retrieve(list(chunk), _payload_selector(fields), with_vectors)
                out.extend(to_point_record(r, with_vectors) for r in records)
        return out

    def search(self, vector: np.ndarray, limit: int = 10, flt: PointFilter | None = None,
               fields: Sequence[str] | None = None) -> list[PointRecord]:
        request = qe.QueryRequest(
            limit=limit, query=qe.Query.Nearest(np.asarray(vector, dtype=np.float32).tolist()),
            filter=to_edge_filter(flt), with_payload=_payload_selector(fields))
        with self._lock:
            hits = self._shard.query(request)
        return [PointRecord(str(h.id), h.payload or {}, score=float(h.score)) for h in hits]

    def facet(self, field_name: str, flt: PointFilter | None = None, limit: int = 10_000) -> dict[str, int]:
        with self._lock:
            response = self._shard.facet(qe.FacetRequest(key=field_name, limit=limit, filter=to_edge_filter(flt)))
        return {str(hit.value): int(hit.count) for hit in response.hits}

    def create_index(self, field_name: str, kind: str) -> None:
        schema = {"keyword": qe.PayloadSchemaType.Keyword, "float": qe.PayloadSchemaType.Float,
                  "integer": qe.PayloadSchemaType.Integer}[kind]
        with self._lock:
            self._shard.update(qe.UpdateOperation.create_field_index(field_name, schema))

    def read_metadata(self) -> dict[str, Any]:
        return read_json(self._metadata_path)

    def write_metadata(self, metadata: dict[str, Any]) -> None:
        write_json(self._metadata_path, metadata)

    def flush(self) -> None:
        with self._lock:
            self._shard.flush()

    def close(self) -> None:
        with self._lock:
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
                shard = qe.EdgeShard.load(str(folder / SHARD_DIR))
            except Exception as error:  # the engine raises plain Exception
                raise StoreError(f"cannot open the collection at {folder}: {error}. "
                                 "Is another embedscape process using it? Stop it and retry.") from error
            collection = self._open[name] = EdgeCollection(name, folder, shard)
            return collection

    def create(self, name: str, dimension: int, metadata: dict[str, Any]) -> Collection:
        validate_collection_name(name)
        folder = self.root / name
        if (folder / SHARD_DIR).exists():
            raise StoreError(f"collection '{name}' already exists at {folder}")
        folder.mkdir(parents=True, exist_ok=True)
        config = qe.EdgeConfig(vectors=qe.EdgeVectorParams(size=dimension, distance=qe.Distance.Cosine))
        shard = qe.EdgeShard.create(str(folder / SHARD_DIR), config)
        write_json(folder / METADATA_FILE, {**metadata, "dimension": dimension, "distance": "cosine"})
        collection = EdgeCollection(name, folder, shard)
        with self._lock:
            self._open[name] = collection
        return collection

    def drop(self, name: str) -> None:
        validate_collection_name(name)
        with self._lock:
            if name in self._open:
                self._open.pop(name).close()
        shutil.rmtree(self.root / name, ignore_errors=True)

    def close(self) -> None:
        with self._lock:
            for collection in self._open.values():
                collection.close()
            self._open.clear()


def _payload_selector(fields: Sequence[str] | None) -> Any:
    if fields is None:
        return True
    if not fields:
        return False
    return qe.PayloadSelector.Include(list(fields))


def to_edge_filter(flt: PointFilter | None) -> qe.Filter | None:
    if flt is None or flt.is_empty():
        return None
    must: list[Any] = []
    must_not: list[Any] = []
    if flt.ids is not None:
        must.append(qe.HasIdCondition(set(flt.ids)))
    if flt.labels:
        must.append(qe.FieldCondition("label", match=qe.MatchAny(list(flt.labels))))
    if flt.tags_any:
        must.append(qe.FieldCondition("tags", match=qe.MatchAny(list(flt.tags_any))))
    for tag in flt.tags_all or []:
        must.append(qe.FieldCondition("tags", match=qe.MatchValue(tag)))
    if flt.tags_none:
        must_not.append(qe.FieldCondition("tags", match=qe.MatchAny(list(flt.tags_none))))
    for key, values in flt.values.items():
        must.append(qe.FieldCondition(key, match=qe.MatchAny(list(values))))
    for key, (low, high) in flt.ranges.items():
        must.append(qe.FieldCondition(key, range=qe.RangeFloat(gte=low, lte=high)))
    return qe.Filter(must=must or None, must_not=must_not or None)
