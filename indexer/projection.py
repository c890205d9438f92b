"""The 2D map: UMAP over the collection's saved kNN graph, fitted on a sample when large.

The neighbour search is the expensive half of UMAP. It runs once (`analysis.knn`) and the
same graph feeds UMAP here and the quality scores later, instead of UMAP searching again.

Up to `ProjectionConfig.full_fit_max_points` points UMAP fits every point ("umap"). Above
that, a full fit would take hours (its layout is single-threaded for reproducibility), so
("umap-sample"):
1. UMAP fits a seeded random sample of `sample_size` points (over the sample's own graph);
2. every other point is placed at the membership-weighted mean of its already placed
   neighbours in the saved graph, pass after pass outwards from the sample (a point with no
   path to the sample takes its nearest sample points by exact search instead);
3. a few epochs of UMAP's own layout optimisation over the whole graph, starting from that
   placement, spread the placed points out the way a full fit would.
Both are reproducible: the same vectors, graph and seed give the same map.
"""
from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass

import numpy as np
import scipy.sparse

from analysis.knn import KnnGraph, build_knn_graph, normalise

METHOD_FULL = "umap"
METHOD_SAMPLED = "umap-sample"
REFINE_LEARNING_RATE = 0.25  # what umap-learn's transform uses to settle new points (a quarter of fit's)
_INT32 = np.iinfo(np.int32)


@dataclass(frozen=True)
class ProjectionConfig:
    n_neighbors: int = 15
    min_dist: float = 0.1
    metric: str = "cosine"
    seed: int = 0
    n_epochs: int | None = None  # None: UMAP's own default (200 above 10k points, else 500)
    full_fit_max_points: int = 100_000  # above this, fit a sample and place the rest
    sample_size: int = 50_000
    refine_epochs: int = 30  # layout epochs over all points after placing them (0: none)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def projection_method(points: int, config: ProjectionConfig = ProjectionConfig()) -> str:
    """The name of the method `project` uses for this many points (saved in the metadata)."""
    return METHOD_FULL if points <= max(config.full_fit_max_points, config.sample_size) else METHOD_SAMPLED


def project(vectors: np.ndarray, graph: KnnGraph, config: ProjectionConfig = ProjectionConfig()) -> np.ndarray:
    """(n, 2) float32 map coordinates, reproducible for the same inputs and seed."""
    n = len(vectors)
    if n < 4:
        # UMAP needs a few points; tiny collections get a deterministic line instead.
        return np.column_stack([np.arange(n, dtype=np.float32), np.zeros(n, np.float32)])
    if projection_method(n, config) == METHOD_FULL:
        coords = _umap_fit(vectors, graph, config)
    else:
        coords = _fit_sample_and_place(vectors, graph, config)
    return _normalise_extent(np.asarray(coords, dtype=np.float32))


def _umap_fit(vectors: np.ndarray, graph: KnnGraph, config: ProjectionConfig) -> np.ndarray:
    import umap

    n = len(vectors)
    k = min(config.n_neighbors, graph.k + 1, n - 1)
    indices, distances = _with_self(graph.truncated(k - 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # n_jobs / random_state and precomputed-knn notices
        reducer = umap.UMAP(
            n_neighbors=k, min_dist=config.min_dist, metric=config.metric, random_state=config.seed,
            n_epochs=config.n_epochs, precomputed_knn=(indices, distances, None), init="spectral",
            verbose=False)
        return reducer.fit_transform(vectors)


def _fit_sample_and_place(vectors: np.ndarray, graph: KnnGraph, config: ProjectionConfig) -> np.ndarray:
    n = len(vectors)
    sample = np.sort(np.random.default_rng(config.seed).choice(n, config.sample_size, replace=False))
    sample_vectors = vectors[sample]
    sample_graph = build_knn_graph(graph.ids[sample], sample_vectors, k=graph.k, seed=config.seed)
    sample_coords = _umap_fit(sample_vectors, sample_graph, config).astype(np.float32)
    fuzzy = fuzzy_graph(graph, config)
    coords, placed = place_from_neighbours(fuzzy, sample, sample_coords)
    if not placed.all():
        rows = np.flatnonzero(~placed)
        coords[rows] = _place_by_search(vectors[rows], sample_vectors, sample_coords, graph.k)
    if config.refine_epochs:
        coords = _refine(fuzzy, coords, config)
    return coords


def fuzzy_graph(graph: KnnGraph, config: ProjectionConfig) -> scipy.sparse.csr_matrix:
    """UMAP's symmetric membership strengths (0..1) over the kNN graph, (n, n) sparse."""
    from umap.umap_ import fuzzy_simplicial_set

    n = len(graph)
    k = min(config.n_neighbors, graph.k + 1, n - 1)
    indices, distances = _with_self(graph.truncated(k - 1))
    # With the neighbours given, UMAP reads nothing from the data but its number of rows.
    strengths, _, _ = fuzzy_simplicial_set(np.zeros((n, 1), np.float32), k, np.random.RandomState(config.seed),
                                           config.metric, knn_indices=indices, knn_dists=distances)
    return strengths.tocsr()


def place_from_neighbours(fuzzy: scipy.sparse.csr_matrix, sample: np.ndarray,
                          sample_coords: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates for every row from the sample's, and which rows could be placed.

    Each pass places every unplaced point that has a placed neighbour at the strength-weighted
    mean of its placed neighbours. All points of a pass read the previous pass only, so the
    result does not depend on the order of the rows."""
    n = fuzzy.shape[0]
    coords = np.zeros((n, 2), np.float32)  # unplaced rows stay at 0 and so add nothing below
    placed = np.zeros(n, bool)
    coords[sample], placed[sample] = sample_coords, True
    while not placed.all():
        todo = np.flatnonzero(~placed)
        rows = fuzzy[todo]
        weight = rows @ placed.astype(np.float32)
        reached = weight > 0
        if not reached.any():
            break
        coords[todo[reached]] = (rows[reached] @ coords) / weight[reached, None]
        placed[todo[reached]] = True
    return coords, placed


def _place_by_search(vectors: np.ndarray, sample_vectors: np.ndarray, sample_coords: np.ndarray, k: int,
                     block: int = 1024) -> np.ndarray:
    """Mean position of each vector's k most similar sample vectors, weighted by similarity
    (for the rare points the graph does not connect to the sample, e.g. a closed group of
    duplicates)."""
    k = min(k, len(sample_vectors))
    units, sample_units = normalise(vectors), normalise(sample_vectors)
    out = np.empty((len(vectors), 2), np.float32)
    for start in range(0, len(vectors), block):
        scores = units[start:start + block] @ sample_units.T
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        weight = np.maximum(np.take_along_axis(scores, top, axis=1), 0.0) + 1e-6
        out[start:start + block] = (weight[:, :, None] * sample_coords[top]).sum(1) / weight.sum(1, keepdims=True)
    return out


def _refine(fuzzy: scipy.sparse.csr_matrix, coords: np.ndarray, config: ProjectionConfig) -> np.ndarray:
    """UMAP's layout optimisation over all points from `coords`, single-threaded (reproducible)."""
    from umap.layouts import optimize_layout_euclidean
    from umap.umap_ import find_ab_params, make_epochs_per_sample

    epochs = config.refine_epochs
    edges = fuzzy.tocoo()
    # As UMAP does: an edge too weak to be sampled once in `epochs` epochs is dropped.
    keep = edges.data >= edges.data.max() / epochs
    head, tail, strengths = edges.row[keep], edges.col[keep], edges.data[keep]
    a, b = find_ab_params(1.0, config.min_dist)
    rng_state = np.random.RandomState(config.seed).randint(_INT32.min + 1, _INT32.max, 3).astype(np.int64)
    embedding = np.ascontiguousarray(coords, dtype=np.float32)
    return optimize_layout_euclidean(
        embedding, embedding, head, tail, epochs, len(embedding), make_epochs_per_sample(strengths, epochs),
        a, b, rng_state, gamma=1.0, initial_alpha=REFINE_LEARNING_RATE, negative_sample_rate=5.0,
        parallel=False, move_other=True)


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
