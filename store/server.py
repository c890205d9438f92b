"""The server backend: a Qdrant server (or qdrant-client's local mode) through qdrant-client.

Collection metadata lives in Qdrant's own collection metadata, so other tools see it.
Artifacts that are files (kNN graph, index report, thumbnails) live in a local folder,
one per collection, under `artifact_root`.
"""
from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from qdrant_client import QdrantClient, models

from store.base import (
    DEFAULT_VECTOR, SCROLL_BATCH, WRITE_BATCH, Collection, PointFilter, PointRecord, Store, StoreError, chunked,
    to_point_record, validate_collection_name, validate_vector_name,
)
from store.point_filter import Dialect, to_qdrant_filter


class ServerCollection(Collection):
    def __init__(self, name: str, artifact_dir: Path, client: QdrantClient, lock: threading.RLock) -> None:
        super().__init__(name, artifact_dir)
        self._client = client
        # qdrant-client's local mode is not thread-safe; a server would not need this.
        self._lock = lock

    @property
    def dimension(self) -> int:
        return self._vector_sizes()[DEFAULT_VECTOR]

    def _vector_sizes(self) -> dict[str, int]:
        """Every vector of the collection, the default one under DEFAULT_VECTOR: name -> size."""
        with self._lock:
            params = self._client.get_collection(self.name).config.params.vectors
        if isinstance(params, dict):
            return {name: int(p.size) for name, p in params.items()}
        return {DEFAULT_VECTOR: int(params.size)}

    def vector_names(self) -> dict[str, int]:
        return {name: size for name, size in self._vector_sizes().items() if name != DEFAULT_VECTOR}

    def add_vector(self, name: str, dimension: int) -> None:
        validate_vector_name(name)
        known = self.vector_names()
        if name in known:
            if known[name] != dimension:
                raise StoreError(f"collection '{self.name}' holds {known[name]}-d vectors named '{name}', "
                                 f"not {dimension}-d; choose another vector name")
            return
        config = models.DenseVectorNameConfig(
            dense=models.DenseVectorConfig(size=dimension, distance=models.Distance.COSINE))
        with self._lock:
            self._client.create_vector_name(self.name, vector_name=name, vector_name_config=config)

    def set_vectors(self, name: str, ids: Sequence[str], vectors: np.ndarray) -> None:
        rows = np.asarray(vectors, dtype=np.float32).tolist()
        points = [models.PointVectors(id=i, vector={name: v}) for i, v in zip(ids, rows)]
        for chunk in chunked(points, WRITE_BATCH):
            with self._lock:
                self._client.update_vectors(self.name, points=list(chunk), wait=True)

    def count(self, flt: PointFilter | None = None) -> int:
        with self._lock:
            return self._client.count(self.name, count_filter=to_client_filter(flt), exact=True).count

    def upsert(self, ids: Sequence[str], vectors: np.ndarray, payloads: Sequence[dict[str, Any]]) -> None:
        rows = np.asarray(vectors, dtype=np.float32)
        for start in range(0, len(ids), WRITE_BATCH):
            stop = start + WRITE_BATCH
            batch = models.Batch(ids=list(ids[start:stop]), vectors=rows[start:stop].tolist(),
                                 payloads=list(payloads[start:stop]))
            with self._lock:
                self._client.upsert(self.name, points=batch, wait=True)

    def set_payload(self, ids: Sequence[str], payload: dict[str, Any]) -> None:
        if ids:
            with self._lock:
                self._client.set_payload(self.name, payload=payload, points=list(ids), wait=True)

    def set_payloads(self, ids: Sequence[str], payloads: Sequence[dict[str, Any]]) -> None:
        operations = [models.SetPayloadOperation(set_payload=models.SetPayload(payload=p, points=[i]))
                      for i, p in zip(ids, payloads)]
        for chunk in chunked(operations, WRITE_BATCH):
            with self._lock:
                self._client.batch_update_points(self.name, list(chunk), wait=True)

    def delete_payload_keys(self, ids: Sequence[str], keys: Sequence[str]) -> None:
        if ids:
            with self._lock:
                self._client.delete_payload(self.name, keys=list(keys), points=list(ids), wait=True)

    def delete(self, ids: Sequence[str]) -> None:
        for chunk in chunked(list(ids), WRITE_BATCH):
            with self._lock:
                self._client.delete(self.name, points_selector=models.PointIdsList(points=list(chunk)), wait=True)

    def scroll(self, fields: Sequence[str] | None = None, flt: PointFilter | None = None,
               with_vectors: bool = False, batch: int = SCROLL_BATCH,
               using: str = DEFAULT_VECTOR) -> Iterator[list[PointRecord]]:
        offset = None
        client_filter = to_client_filter(flt)
        while True:
            with self._lock:
                records, offset = self._client.scroll(
                    self.name, scroll_filter=client_filter, limit=batch, offset=offset,
                    with_payload=_payload_selector(fields), with_vectors=[using] if with_vectors else False)
            yield [to_point_record(r, with_vectors, using) for r in records]
            if offset is None:
                return

    def retrieve(self, ids: Sequence[str], fields: Sequence[str] | None = None,
                 with_vectors: bool = False, using: str = DEFAULT_VECTOR) -> list[PointRecord]:
        out: list[PointRecord] = []
        for chunk in chunked(list(ids), SCROLL_BATCH):
            with self._lock:
                records = self._client.retrieve(self.name, ids=list(chunk), with_payload=_payload_selector(fields),
                                                with_vectors=[using] if with_vectors else False)
            out.extend(to_point_record(r, with_vectors, using) for r in records)
        return out

    def search(self, vector: np.ndarray, limit: int = 10, flt: PointFilter | None = None,
               fields: Sequence[str] | None = None, using: str = DEFAULT_VECTOR) -> list[PointRecord]:
        with self._lock:
            hits = self._client.query_points(
                self.name, query=np.asarray(vector, dtype=np.float32).tolist(), limit=limit, using=using or None,
                query_filter=to_client_filter(flt), with_payload=_payload_selector(fields)).points
        return [PointRecord(str(h.id), h.payload or {}, score=float(h.score)) for h in hits]

    def facet(self, field_name: str, flt: PointFilter | None = None, limit: int = 10_000) -> dict[str, int]:
        with self._lock:
            response = self._client.facet(self.name, key=field_name, facet_filter=to_client_filter(flt),
                                          limit=limit, exact=True)
        return {str(hit.value): int(hit.count) for hit in response.hits}

    def create_index(self, field_name: str, kind: str) -> None:
        schema = {"keyword": models.PayloadSchemaType.KEYWORD, "float": models.PayloadSchemaType.FLOAT,
                  "integer": models.PayloadSchemaType.INTEGER, "bool": models.PayloadSchemaType.BOOL}[kind]
        with self._lock:
            self._client.create_payload_index(self.name, field_name=field_name, field_schema=schema, wait=True)

    def drop_index(self, field_name: str) -> None:
        if field_name in self.indexed_fields():
            with self._lock:
                self._client.delete_payload_index(self.name, field_name=field_name, wait=True)

    def indexed_fields(self) -> set[str]:
        with self._lock:
            return set(self._client.get_collection(self.name).payload_schema or {})

    def read_metadata(self) -> dict[str, Any]:
        with self._lock:
            info = self._client.get_collection(self.name)
        metadata = dict(info.config.metadata or {})
        vectors = info.config.params.vectors
        size = vectors[DEFAULT_VECTOR].size if isinstance(vectors, dict) else vectors.size
        metadata.setdefault("dimension", int(size))
        return metadata

    def write_metadata(self, metadata: dict[str, Any]) -> None:
        with self._lock:
            self._client.update_collection(self.name, metadata=_jsonable(metadata))


class ServerStore(Store):
    """Collections on a Qdrant server (`url`), or in qdrant-client's local mode (`path`)."""

    def __init__(self, artifact_root: Path, url: str | None = None, api_key: str | None = None,
                 path: str | None = None) -> None:
        self.artifact_root = Path(artifact_root)
        self.description = f"the Qdrant server at {url}" if url else f"qdrant-client local mode at {path}"
        self._lock = threading.RLock()
        try:
            self._client = QdrantClient(url=url, api_key=api_key) if url else QdrantClient(path=path)
            self._client.get_collections()
        except Exception as error:
            raise StoreError(
                f"cannot reach {self.description}: {error}. Start Qdrant (e.g. `docker compose up qdrant`), "
                "check QDRANT_URL / QDRANT_API_KEY, or unset QDRANT_URL to use the embedded store.") from error

    def list_collections(self) -> list[str]:
        with self._lock:
            return sorted(c.name for c in self._client.get_collections().collections)

    def open(self, name: str) -> Collection:
        validate_collection_name(name)
        if not self.exists(name):
            raise self._not_found(name)
        return ServerCollection(name, self.artifact_root / name, self._client, self._lock)

    def create(self, name: str, dimension: int, metadata: dict[str, Any]) -> Collection:
        validate_collection_name(name)
        if self.exists(name):
            raise StoreError(f"collection '{name}' already exists in {self.description}")
        with self._lock:
            self._client.create_collection(
                name, vectors_config=models.VectorParams(size=dimension, distance=models.Distance.COSINE),
                metadata=_jsonable({**metadata, "dimension": dimension, "distance": "cosine"}))
        return ServerCollection(name, self.artifact_root / name, self._client, self._lock)

    def drop(self, name: str) -> None:
        validate_collection_name(name)
        with self._lock:
            self._client.delete_collection(name)

    def close(self) -> None:
        with self._lock:
            self._client.close()


def _jsonable(metadata: dict[str, Any]) -> dict[str, Any]:
    import json

    return json.loads(json.dumps(metadata, default=str))


def _payload_selector(fields: Sequence[str] | None) -> Any:
    if fields is None:
        return True
    if not fields:
        return False
    return list(fields)


CLIENT = Dialect(
    has_id=lambda ids: models.HasIdCondition(has_id=list(ids)),
    match_any=lambda key, values: models.FieldCondition(key=key, match=models.MatchAny(any=values)),
    match_value=lambda key, value: models.FieldCondition(key=key, match=models.MatchValue(value=value)),
    in_range=lambda key, low, high: models.FieldCondition(key=key, range=models.Range(gte=low, lte=high)),
    has_vector=lambda name: models.HasVectorCondition(has_vector=name),
    combine=lambda must, must_not: models.Filter(must=must, must_not=must_not),
)


def to_client_filter(flt: PointFilter | None) -> models.Filter | None:
    return to_qdrant_filter(flt, CLIENT)
