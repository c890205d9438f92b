"""Several embedding models of one collection in the explorer (named vectors added with
`index --add-vector`): which model's 2D map a session shows, and the second map of the
side-by-side view.

The default vector's map is the table's own x / y; a named vector's map is its artifact
(`map-NAME.npz`, indexer/named_vectors.py) aligned to the table's rows once per table and
vector. Rows keep their meaning whichever map is shown, so a selection made on one map is the
same points on the other: switching maps keeps it, and the side-by-side map highlights it.
"""
from __future__ import annotations

import weakref
from typing import Any

import numpy as np

from indexer.named_vectors import load_map
from scoring.model_compare import DEFAULT_NAME, saved_clusters, saved_overlap
from store.schema import MODEL, VECTORS
from ui.table import PointTable

DEFAULT = ""  # the unnamed vector: the table's own map
MODEL_CLUSTERS = "model-cluster:"  # colour_by prefix: a model's clusters from the last compare-models
_cache: weakref.WeakKeyDictionary[PointTable, dict[str, tuple[np.ndarray, np.ndarray]]] = weakref.WeakKeyDictionary()


def map_choices(table: PointTable) -> list[tuple[str, str]]:
    """(shown name, vector) of every map the collection has, the default one first; one entry
    when it has a single model."""
    collection = table.collection
    if collection is None:
        return [("default", DEFAULT)]
    metadata = collection.read_metadata()
    choices = [(f"default · {metadata.get(MODEL) or '?'}", DEFAULT)]
    for name, about in sorted((metadata.get(VECTORS) or {}).items()):
        if (collection.artifact_dir / str((about.get("projection") or {}).get("map_file", ""))).is_file():
            choices.append((f"{name} · {short_model(about.get(MODEL))}", name))
    return choices


def short_model(model: Any) -> str:
    """A model name as a label: a local folder's last part."""
    text = str(model or "?")
    return text.rstrip("/").rsplit("/", 1)[-1] if "/" in text else text


def coordinates(table: PointTable, vector: str = DEFAULT) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) per table row on the map of `vector`; NaN for rows the vector's map lacks."""
    if not vector:
        return table.x, table.y
    maps = _cache.setdefault(table, {})
    if vector not in maps:
        maps[vector] = _aligned(table, vector)
    return maps[vector]


def _aligned(table: PointTable, vector: str) -> tuple[np.ndarray, np.ndarray]:
    x = np.full(len(table), np.nan, dtype=np.float32)
    y = np.full(len(table), np.nan, dtype=np.float32)
    loaded = load_map(table.collection, vector) if table.collection is not None else None
    if loaded is not None:
        ids, coords = loaded
        for point, (px, py) in zip(ids.tolist(), coords.tolist()):
            row = table.row_of.get(point)
            if row is not None:
                x[row], y[row] = px, py
    return x, y


def placed(table: PointTable, vector: str = DEFAULT) -> np.ndarray | None:
    """Rows that have a place on `vector`'s map (None: every row, the default map)."""
    if not vector:
        return None
    x, _ = coordinates(table, vector)
    return np.isfinite(x)


def row_clusters(table: PointTable, vector: str) -> np.ndarray | None:
    """(n,) cluster of each table row under `vector` (-1: none), from the last comparison."""
    saved = saved_clusters(table.collection, vector) if table.collection is not None else None
    if saved is None:
        return None
    out = np.full(len(table), -1, dtype=np.int64)
    for point, cluster in zip(saved[0].tolist(), saved[1].tolist()):
        row = table.row_of.get(point)
        if row is not None:
            out[row] = cluster
    return out


def cluster_colourings(table: PointTable) -> list[tuple[str, str]]:
    """Colour-by choices for each model whose clusters the last `compare-models` kept."""
    out = []
    for name, vector in map_choices(table):
        if table.collection is not None and saved_clusters(table.collection, vector) is not None:
            out.append((f"Clusters of {vector or DEFAULT_NAME}", MODEL_CLUSTERS + vector))
    return out


def model_cluster_codes(table: PointTable, vector: str) -> tuple[np.ndarray, list[str]] | None:
    """(code per row, names): the clusters of `vector`, the last code "no cluster"; None without."""
    clusters = row_clusters(table, vector)
    if clusters is None:
        return None
    count = int(clusters.max(initial=-1)) + 1
    names = [f"{vector or DEFAULT_NAME} cluster {c}" for c in range(count)] + ["no cluster"]
    return np.where(clusters >= 0, clusters, count), names


def most_different_rows(table: PointTable, count: int) -> np.ndarray | None:
    """The `count` live rows whose neighbourhoods the two models of the last comparison share
    least (lowest `model_overlap`; equal overlaps by point id, so the choice is stable); None
    before any comparison."""
    saved = saved_overlap(table.collection) if table.collection is not None else None
    if saved is None:
        return None
    ids, overlap = saved
    rows = np.array([table.row_of.get(str(point), -1) for point in ids.tolist()], dtype=np.int64)
    keep = rows >= 0
    keep[keep] = table.alive[rows[keep]]
    rows, overlap, ids = rows[keep], overlap[keep], ids[keep]
    order = np.lexsort((ids, overlap))[:max(int(count), 0)]
    return np.sort(rows[order])
