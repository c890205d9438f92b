"""The one k-nearest-neighbour graph of a collection, built once and reused.

UMAP, the mislabel / outlier / duplicate scores and the uniqueness metric all read the
same graph, so it is computed once at indexing time and saved beside the collection.
Similarities are cosine similarities of L2-normalised vectors.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

GRAPH_FILE = "knn.npz"  # the file name a collection keeps its graph under


def graph_file(vector: str = "") -> str:
    """The graph file of the collection's vector `vector` ("": the default vector)."""
    return f"knn-{vector}.npz" if vector else GRAPH_FILE
EXACT_SEARCH_MAX_POINTS = 20_000
PCA_DIMENSIONS = 64


@dataclass(frozen=True)
class KnnGraph:
    """Neighbours of every point, nearest first, the point itself excluded.

    ids:          (n,) point ids (strings), row i of the arrays belongs to ids[i]
    indices:      (n, k) int32 row numbers of the neighbours
    similarities: (n, k) float32 cosine similarities, descending along each row
    """

    ids: np.ndarray
    indices: np.ndarray
    similarities: np.ndarray

    @property
    def k(self) -> int:
        return int(self.indices.shape[1])

    def __len__(self) -> int:
        return int(self.indices.shape[0])

    def distances(self) -> np.ndarray:
        """Cosine distances (1 - similarity), the form UMAP expects."""
        return np.clip(1.0 - self.similarities, 0.0, 2.0).astype(np.float32)

    def truncated(self, k: int) -> "KnnGraph":
        if k > self.k:
            raise ValueError(f"graph holds {self.k} neighbours per point, {k} asked for")
        return KnnGraph(self.ids, self.indices[:, :k], self.similarities[:, :k])

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, ids=self.ids.astype(str), indices=self.indices, similarities=self.similarities)
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> "KnnGraph":
        with np.load(path, allow_pickle=False) as data:
            return cls(data["ids"], data["indices"], data["similarities"])


def normalise(vectors: np.ndarray) -> np.ndarray:
    """L2-normalise rows (zero rows stay zero)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def build_knn_graph(
    ids: np.ndarray, vectors: np.ndarray, k: int = 15, seed: int = 0, exact: bool | None = None
) -> KnnGraph:
    """Cosine kNN graph of `vectors`.

    Up to EXACT_SEARCH_MAX_POINTS points the search is exact (blocked matrix products).
    Above that, NN-descent runs on a PCA projection for speed, and the candidate
    neighbours it returns are re-scored with exact cosine similarity in the full space.
    """
    n = len(vectors)
    if n < 2:
        raise ValueError("a neighbour graph needs at least 2 points")
    k = min(k, n - 1)
    unit = normalise(vectors)
    if exact is None:
        exact = n <= EXACT_SEARCH_MAX_POINTS
    if exact:
        indices, sims = _exact_knn(unit, k)
    else:
        indices, sims = _approximate_knn(unit, k, seed)
    return KnnGraph(np.asarray(ids).astype(str), indices.astype(np.int32), sims.astype(np.float32))


def _exact_knn(unit: np.ndarray, k: int, block: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    n = len(unit)
    indices = np.empty((n, k), dtype=np.int32)
    sims = np.empty((n, k), dtype=np.float32)
    for start in range(0, n, block):
        stop = min(start + block, n)
        scores = unit[start:stop] @ unit.T
        scores[np.arange(stop - start), np.arange(start, stop)] = -np.inf
        top = np.argpartition(-scores, k, axis=1)[:, :k]
        top_scores = np.take_along_axis(scores, top, axis=1)
        order = np.argsort(-top_scores, axis=1)
        indices[start:stop] = np.take_along_axis(top, order, axis=1)
        sims[start:stop] = np.take_along_axis(top_scores, order, axis=1)
    return indices, sims


def _approximate_knn(unit: np.ndarray, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from pynndescent import NNDescent

    reduced = _pca(unit, min(PCA_DIMENSIONS, unit.shape[1]), seed)
    # Ask for extra candidates in the reduced space, then re-rank them exactly.
    candidates = min(2 * k + 1, len(unit) - 1)
    index = NNDescent(reduced, n_neighbors=candidates + 1, metric="cosine", random_state=seed,
                      low_memory=True, n_jobs=-1, compressed=True)
    cand, _ = index.neighbor_graph
    rows = np.arange(len(unit))[:, None]
    cand = np.where(cand < 0, rows, cand)
    scores = _rowwise_scores(unit, cand)
    scores[cand == rows] = -np.inf
    order = np.argsort(-scores, axis=1)[:, :k]
    return np.take_along_axis(cand, order, axis=1), np.take_along_axis(scores, order, axis=1)


def _rowwise_scores(unit: np.ndarray, cand: np.ndarray, block: int = 4096) -> np.ndarray:
    out = np.empty(cand.shape, dtype=np.float32)
    for start in range(0, len(unit), block):
        stop = min(start + block, len(unit))
        out[start:stop] = np.einsum("nd,nkd->nk", unit[start:stop], unit[cand[start:stop]])
    return out


def _pca(x: np.ndarray, dims: int, seed: int) -> np.ndarray:
    from sklearn.decomposition import PCA

    if dims >= x.shape[1]:
        return x
    return PCA(n_components=dims, svd_solver="randomized", random_state=seed).fit_transform(x).astype(np.float32)
