"""The 2D map: UMAP over the collection's saved kNN graph.

The neighbour search is the expensive half of UMAP. It runs once (`analysis.knn`) and the
same graph feeds UMAP here and the quality scores later, instead of UMAP searching again.
"""
from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass

import numpy as np

from analysis.knn import KnnGraph


@dataclass(frozen=True)
class ProjectionConfig:
    n_neighbors: int = 15
    min_dist: float = 0.1
    metric: str = "cosine"
    seed: int = 0
    n_epochs: int | None = None  # None: UMAP's own default (200 above 10k points, else 500)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def project(vectors: np.ndarray, graph: KnnGraph, config: ProjectionConfig = ProjectionConfig()) -> np.ndarray:
    """(n, 2) float32 map coordinates, reproducible for the same inputs and seed."""
    n = len(vectors)
    if n < 4:
        # UMAP needs a few points; tiny collections get a deterministic line instead.
        return np.column_stack([np.arange(n, dtype=np.float32), np.zeros(n, np.float32)])
    import umap

    k = min(config.n_neighbors, graph.k + 1, n - 1)
    indices, distances = _with_self(graph.truncated(k - 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # n_jobs / random_state and precomputed-knn notices
        reducer = umap.UMAP(
            n_neighbors=k, min_dist=config.min_dist, metric=config.metric, random_state=config.seed,
            n_epochs=config.n_epochs, precomputed_knn=(indices, distances, None), init="spectral",
            verbose=False)
        coords = reducer.fit_transform(vectors)
    return _normalise_extent(np.asarray(coords, dtype=np.float32))


def _with_self(graph: KnnGraph) -> tuple[np.ndarray, np.ndarray]:
    """UMAP's kNN arrays include each point as its own first neighbour at distance 0."""
    n = len(graph)
    indices = np.concatenate([np.arange(n, dtype=np.int32)[:, None], graph.indices], axis=1)
    distances = np.concatenate([np.zeros((n, 1), np.float32), graph.distances()], axis=1)
    return indices, distances


def _normalise_extent(coords: np.ndarray) -> np.ndarray:
    """Centre the map and scale it to about [-10, 10] so every collection looks alike."""
    coords = coords - coords.mean(axis=0)
    extent = float(np.abs(coords).max()) or 1.0
    return coords * (10.0 / extent)
