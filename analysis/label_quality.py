"""Data-quality scores from the shared kNN graph: duplicates and confused classes, and the label
encoding and graph helpers that analysis/mislabels.py and analysis/outliers.py share.

Everything here reads one `KnnGraph` (built once at indexing time) and numpy arrays; nothing
talks to Qdrant or loads a model. The setting follows cleanlab's Datalab run on features
(k = 10 neighbours); the neighbour votes are weighted by cosine similarity. Label errors
themselves are scored in analysis/mislabels.py (neighbour vote plus a linear probe).
bench/bench_label_quality.py compares everything with cleanlab on Fashion-MNIST.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from analysis.knn import KnnGraph

DEFAULT_K = 10
NEAR_DUPLICATE_THRESHOLD = 0.97
_EPS = 1e-12


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


def encode_labels(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Class names (sorted, empty label excluded) and a code per point (-1 = no label)."""
    labels = np.asarray(labels).astype(str)
    classes, codes = np.unique(labels, return_inverse=True)
    codes = codes.reshape(-1).astype(np.int64)
    if len(classes) and classes[0] == "":
        return classes[1:], codes - 1
    return classes, codes


def truncated_graph(graph: KnnGraph, k: int) -> KnnGraph:
    return graph.truncated(k) if k < graph.k else graph


def _majority_votes(graph: KnnGraph, codes: np.ndarray) -> np.ndarray:
    """(n,) each point's similarity-weighted neighbour majority class (-1 when no neighbour is
    labelled; a tie goes to the class of the nearer neighbour). Unlabelled neighbours do not
    vote. Works per neighbour slot with an (n, k, k) comparison, so memory does not grow with
    the number of classes."""
    neighbour_codes = codes[graph.indices]
    weights = np.where(neighbour_codes >= 0, np.clip(graph.similarities, 0.0, None).astype(np.float64) + _EPS, 0.0)
    same_class = neighbour_codes[:, :, None] == neighbour_codes[:, None, :]
    slot_votes = np.einsum("nij,nj->ni", same_class, weights)  # vote mass of each slot's class
    best_slot = slot_votes.argmax(axis=1)
    majority = neighbour_codes[np.arange(len(codes)), best_slot]
    return np.where(weights.sum(axis=1) > 0, majority, -1)


# ---------------------------------------------------------------- confused class pairs


def confused_class_pairs(graph: KnnGraph, labels: np.ndarray, k: int = DEFAULT_K,
                         min_count: int = 1) -> list[ConfusedPair]:
    """Class pairs whose points' neighbour votes go to each other, most confused first.

    A point of class a "leans to" b when its neighbours' similarity-weighted majority label is
    b. Pairs are unordered (class_a < class_b by name), ranked by count, then share."""
    classes, codes = encode_labels(labels)
    if len(codes) != len(graph):
        raise ValueError(f"{len(codes)} labels for a graph of {len(graph)} points")
    majority = _majority_votes(truncated_graph(graph, k), codes)
    lean = np.flatnonzero((codes >= 0) & (majority >= 0) & (majority != codes))
    if len(lean) == 0:
        return []
    n_classes = len(classes)
    given, toward = codes[lean], majority[lean]
    low, high = np.minimum(given, toward), np.maximum(given, toward)
    unique_keys, inverse = np.unique(low * n_classes + high, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    members = np.split(lean[order], np.cumsum(np.bincount(inverse))[:-1])
    forward = np.bincount(inverse, weights=given < toward, minlength=len(unique_keys)).astype(np.int64)  # a -> b
    sizes = np.bincount(codes[codes >= 0], minlength=n_classes)
    pairs = [_pair(classes, key, n_classes, rows, int(a_to_b), sizes)
             for key, rows, a_to_b in zip(unique_keys, members, forward)]
    pairs = [pair for pair in pairs if pair.count >= min_count]
    return sorted(pairs, key=lambda pair: (-pair.count, -pair.share, pair.class_a, pair.class_b))


def _pair(classes: np.ndarray, key: int, n_classes: int, rows: np.ndarray, a_to_b: int,
          sizes: np.ndarray) -> ConfusedPair:
    a, b = divmod(int(key), n_classes)
    count = len(rows)
    return ConfusedPair(class_a=str(classes[a]), class_b=str(classes[b]), a_to_b=a_to_b, b_to_a=count - a_to_b,
                        count=count, share=count / max(int(sizes[a] + sizes[b]), 1), indices=np.sort(rows))


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
