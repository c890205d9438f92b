"""Data-quality scores from the shared kNN graph: mislabels, outliers, duplicates, confused classes.

Everything here reads one `KnnGraph` (built once at indexing time) and numpy arrays; nothing
talks to Qdrant or loads a model. The ideas follow cleanlab's Datalab run on features
(k = 10 neighbours, confident learning), with the neighbour votes weighted by cosine similarity.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from analysis.knn import KnnGraph

DEFAULT_K = 10
NEAR_DUPLICATE_THRESHOLD = 0.97
OUTLIER_IQR_FACTOR = 1.5
# A point keeps its given label unless its best other class wins the neighbour vote by more
# than this share of the vote mass (see `mislabel_scores`).
MIN_MARGIN = 0.0
_EPS = 1e-12


@dataclass(frozen=True)
class MislabelResult:
    """score: (n,) similarity-weighted share of the neighbours' vote against the given label, 0..1.
    suggested_label: (n,) str, the similarity-weighted majority label of the neighbours ("" if none).
    flagged: (n,) bool, likely label errors (rule in `mislabel_scores`).
    classes: the class names, sorted; thresholds: (len(classes),) the per-class confidence
    thresholds the rule used."""

    score: np.ndarray
    suggested_label: np.ndarray
    flagged: np.ndarray
    classes: np.ndarray
    thresholds: np.ndarray


@dataclass(frozen=True)
class OutlierResult:
    """score: (n,) mean cosine distance to the k nearest neighbours (higher = more isolated).
    flagged: (n,) bool, score above `cutoff` = Q3 + 1.5 * IQR of the scores."""

    score: np.ndarray
    flagged: np.ndarray
    cutoff: float


@dataclass(frozen=True)
class ConfusedPair:
    """Two classes whose points lean toward each other in the neighbour vote.

    a_to_b: points labelled class_a whose neighbours' weighted vote goes to class_b; b_to_a the
    reverse; count = a_to_b + b_to_a; share = count / (size of a + size of b);
    indices: the rows involved, ascending."""

    class_a: str
    class_b: str
    a_to_b: int
    b_to_a: int
    count: int
    share: float
    indices: np.ndarray


# ---------------------------------------------------------------- neighbour votes


def _encode(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Class names (sorted, empty label excluded) and a code per point (-1 = no label)."""
    labels = np.asarray(labels).astype(str)
    classes, codes = np.unique(labels, return_inverse=True)
    codes = codes.reshape(-1).astype(np.int64)
    if len(classes) and classes[0] == "":
        return classes[1:], codes - 1
    return classes, codes


def _graph_k(graph: KnnGraph, k: int) -> KnnGraph:
    return graph.truncated(k) if k < graph.k else graph


def _vote_shares(graph: KnnGraph, codes: np.ndarray, n_classes: int) -> np.ndarray:
    """(n, n_classes) share of each class in a point's neighbour vote, each neighbour weighted
    by its cosine similarity (clipped at 0); unlabelled neighbours do not vote.
    Rows with no voting neighbour are all zero."""
    n = len(graph)
    neighbour_codes = codes[graph.indices]
    weights = np.clip(graph.similarities, 0.0, None).astype(np.float64) + _EPS
    voting = neighbour_codes >= 0
    rows = np.broadcast_to(np.arange(n)[:, None], neighbour_codes.shape)
    flat = rows[voting] * n_classes + neighbour_codes[voting]
    votes = np.bincount(flat, weights=weights[voting], minlength=n * n_classes).reshape(n, n_classes)
    total = votes.sum(axis=1, keepdims=True)
    return np.divide(votes, total, out=np.zeros_like(votes), where=total > 0)


# ---------------------------------------------------------------- outliers


def outlier_scores(graph: KnnGraph, k: int = DEFAULT_K, iqr_factor: float = OUTLIER_IQR_FACTOR) -> OutlierResult:
    """Mean cosine distance of each point to its k nearest neighbours.

    Rule: flagged when the score is above Q3 + iqr_factor * IQR of all scores (Tukey's fence).
    """
    distances = _graph_k(graph, k).distances().astype(np.float64)
    score = distances.mean(axis=1)
    q1, q3 = np.percentile(score, [25, 75])
    cutoff = float(q3 + iqr_factor * (q3 - q1))
    return OutlierResult(score=score, flagged=score > cutoff, cutoff=cutoff)


# ---------------------------------------------------------------- duplicates


def _component_groups(n: int, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Group id per point for the connected components of the given edges; points alone in
    their component get -1. Groups are numbered 0, 1, ... in order of their first row."""
    adjacency = coo_matrix((np.ones(len(rows), dtype=np.int8), (rows, cols)), shape=(n, n)).tocsr()
    _, component = connected_components(adjacency, directed=True, connection="weak")
    return _renumber_groups(component)


def _renumber_groups(component: np.ndarray) -> np.ndarray:
    """Map component labels to 0..g-1 by first appearance; singleton components become -1."""
    _, first, inverse, counts = np.unique(component, return_index=True, return_inverse=True,
                                          return_counts=True)
    shared = counts > 1
    order = np.argsort(first[shared], kind="stable")
    new_id = np.full(len(counts), -1, dtype=np.int64)
    new_id[np.flatnonzero(shared)[order]] = np.arange(int(shared.sum()))
    return new_id[inverse.reshape(-1)]


def near_duplicate_groups(graph: KnnGraph, threshold: float = NEAR_DUPLICATE_THRESHOLD) -> np.ndarray:
    """(n,) group id per point (-1 = no near duplicate): connected components of the graph's
    edges with cosine similarity >= threshold. All k neighbours of the graph are considered."""
    rows, slots = np.nonzero(graph.similarities >= threshold)
    return _component_groups(len(graph), rows, graph.indices[rows, slots].astype(np.int64))


def exact_duplicate_groups(hashes: np.ndarray) -> np.ndarray:
    """(n,) group id per point (-1 = unique or empty hash): points sharing a content hash."""
    hashes = np.asarray(hashes).astype(str)
    _, key = np.unique(hashes, return_inverse=True)
    key = key.reshape(-1).astype(np.int64)
    empty = np.flatnonzero(hashes == "")
    key[empty] = key.max(initial=0) + 1 + np.arange(len(empty))  # each empty hash on its own
    return _renumber_groups(key)
