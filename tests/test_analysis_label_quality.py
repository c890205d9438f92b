"""Duplicates and confused class pairs on small graphs with known answers (mislabels and outliers:
tests/test_analysis_mislabels.py, tests/test_analysis_outliers.py)."""
from __future__ import annotations

import numpy as np
import pytest

from analysis.knn import KnnGraph, build_knn_graph
from analysis.label_quality import confused_class_pairs, exact_duplicate_groups, near_duplicate_groups


def clusters(n_clusters: int, per_cluster: int, dim: int = 16, spread: float = 0.05,
             seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Tight clusters around orthogonal directions; returns (vectors, integer class per point)."""
    rng = np.random.default_rng(seed)
    truth = np.repeat(np.arange(n_clusters), per_cluster)
    vectors = np.eye(dim)[truth] + spread * rng.normal(size=(len(truth), dim))
    return vectors.astype(np.float32), truth


def graph_of(vectors: np.ndarray, k: int) -> KnnGraph:
    return build_knn_graph(np.arange(len(vectors)).astype(str), vectors, k=k)


def hand_graph(indices: list[list[int]], similarities: list[list[float]]) -> KnnGraph:
    indices_array = np.array(indices, dtype=np.int32)
    return KnnGraph(np.arange(len(indices_array)).astype(str), indices_array,
                    np.array(similarities, dtype=np.float32))


# ---------------------------------------------------------------- duplicates


def test_near_duplicates_form_connected_components() -> None:
    base = np.eye(6, dtype=np.float32)
    vectors = np.vstack([
        base[0], base[0] + [0, 0.05, 0, 0, 0, 0], base[0] + [0, 0.1, 0, 0, 0, 0],  # a chain
        base[2], base[2] + [0, 0, 0, 0.3, 0, 0],  # cosine 0.958
        base[4], base[3] + [0, 0, 0, 0, 0, 0.02], base[3]])
    graph = graph_of(vectors, 3)
    assert near_duplicate_groups(graph, 0.97).tolist() == [0, 0, 0, -1, -1, -1, 1, 1]
    assert near_duplicate_groups(graph, 0.95).tolist() == [0, 0, 0, 1, 1, -1, 2, 2]
    assert (near_duplicate_groups(graph, 1.01) == -1).all()


def test_exact_duplicate_groups() -> None:
    hashes = np.array(["h1", "h2", "h1", "", "", "h3", "h2", "h1"])
    assert exact_duplicate_groups(hashes).tolist() == [0, 1, 0, -1, -1, -1, 1, 0]
    assert exact_duplicate_groups(np.array(["x", "y"])).tolist() == [-1, -1]


# ---------------------------------------------------------------- confused pairs


def test_confused_class_pairs_ranked_with_members() -> None:
    # k = 2. Points 0-2 "a", 3-5 "b", 6-7 "c". 0 and 1 lean to b, 3 leans to a, 6 leans to a.
    indices = [[3, 4], [4, 5], [0, 1], [0, 1], [3, 5], [3, 4], [0, 2], [6, 0]]
    graph = hand_graph(indices, [[0.9, 0.8]] * 8)
    labels = np.array(["a", "a", "a", "b", "b", "b", "c", "c"])
    pairs = confused_class_pairs(graph, labels, k=2)
    assert [(p.class_a, p.class_b) for p in pairs] == [("a", "b"), ("a", "c")]
    ab, ac = pairs
    assert (ab.a_to_b, ab.b_to_a, ab.count) == (2, 1, 3)
    assert ab.indices.tolist() == [0, 1, 3]
    assert ab.share == pytest.approx(3 / 6)
    assert (ac.a_to_b, ac.b_to_a, ac.count, ac.indices.tolist()) == (0, 1, 1, [6])
    assert ac.share == pytest.approx(1 / 5)
    assert [(p.class_a, p.class_b) for p in confused_class_pairs(graph, labels, k=2, min_count=2)] == [("a", "b")]


def test_no_confusion_gives_no_pairs() -> None:
    vectors, truth = clusters(3, 10, seed=7)
    assert confused_class_pairs(graph_of(vectors, 4), np.array(list("xyz"))[truth]) == []
