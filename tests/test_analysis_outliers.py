"""Outlier scores and the data-chosen flag rule, on hand-made graphs and planted outliers."""
from __future__ import annotations

import numpy as np
import pytest

from analysis.knn import KnnGraph, build_knn_graph
from analysis.outliers import local_fdr, neighbour_isolation, outlier_scores, robust_z


def hand_graph(indices: list[list[int]], similarities: list[list[float]]) -> KnnGraph:
    rows = np.array(indices, dtype=np.int32)
    return KnnGraph(np.arange(len(rows)).astype(str), rows, np.array(similarities, dtype=np.float32))


def test_neighbour_isolation_formula() -> None:
    # k = 2; the k-th distance of each point is 1 - its 2nd similarity
    graph = hand_graph([[1, 2], [0, 2], [1, 0]], [[0.9, 0.5], [0.9, 0.7], [0.7, 0.5]])
    kth = np.array([0.5, 0.3, 0.5])
    expected = 0.5 * (kth + np.array([kth[[1, 2]].mean(), kth[[0, 2]].mean(), kth[[1, 0]].mean()]))
    assert neighbour_isolation(graph, k=2) == pytest.approx(expected, abs=1e-6)


def test_robust_z_by_hand() -> None:
    values = np.array([1.0, 2.0, 3.0, 4.0, 100.0])  # median 3, MAD 1
    assert robust_z(values) == pytest.approx((values - 3.0) / 1.4826)


def test_local_fdr_flags_only_a_heavier_tail() -> None:
    rng = np.random.default_rng(0)
    bulk = rng.normal(size=5000)
    assert (1 - local_fdr(bulk) > 0.5).sum() <= 5  # a normal sample has (almost) nothing to flag
    planted = np.r_[bulk, rng.normal(7.0, 0.5, 60)]
    probability = 1 - local_fdr(planted)
    flagged = probability > 0.5
    assert flagged[-60:].mean() >= 0.95 and flagged[:5000].sum() <= 5
    assert probability[np.argsort(planted)[2500]] < 0.05  # the middle of the bulk


def test_planted_points_far_from_every_class_are_flagged() -> None:
    rng = np.random.default_rng(1)
    dim = 12
    truth = np.repeat(np.arange(3), 300)
    vectors = np.eye(dim)[truth] * 3 + rng.normal(size=(900, dim))
    strangers = rng.normal(size=(12, dim)) + np.eye(dim)[7] * 9  # a batch from another domain
    mixed = np.vstack([vectors, strangers]).astype(np.float32)
    labels = np.r_[np.array(["a", "b", "c"])[truth], np.full(12, "")]
    graph = build_knn_graph(np.arange(len(mixed)).astype(str), mixed, k=10)
    result = outlier_scores(graph, vectors=mixed, labels=labels)
    assert result.method == "class-distance"
    assert result.flagged[900:].all() and result.flagged[:900].sum() <= 9
    assert set(np.argsort(-result.score)[:12]) == set(range(900, 912))
    assert result.cutoff == pytest.approx(result.score[result.flagged].min())
    # Without labels the kNN isolation is used, and a tight batch is not isolated in cosine
    # distance: the reason the class distance is preferred where there are labels.
    plain = outlier_scores(graph)
    assert plain.method == "neighbours"
    assert len(set(np.argsort(-plain.score)[:12]) & set(range(900, 912))) < 12


def test_isolated_point_is_an_outlier_by_neighbours() -> None:
    rng = np.random.default_rng(5)
    clusters = np.repeat(np.eye(8)[:2], 200, axis=0) + 0.05 * rng.normal(size=(400, 8))
    lone = np.array([[0, 0, 0, 0, 0, 0, 1, -1]], np.float32)
    graph = build_knn_graph(np.arange(401).astype(str), np.vstack([clusters, lone]).astype(np.float32), k=5)
    result = outlier_scores(graph, k=5)
    assert result.flagged[400] and result.flagged[:400].sum() <= 4
    assert int(np.argmax(result.score)) == 400
