"""Mislabels, outliers, duplicates and confused class pairs on small graphs with known answers."""
from __future__ import annotations

import numpy as np
import pytest

from analysis.knn import KnnGraph, build_knn_graph
from analysis.label_quality import (
    confused_class_pairs, exact_duplicate_groups, mislabel_scores, near_duplicate_groups, outlier_scores)


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


# ---------------------------------------------------------------- mislabels


def test_flipped_labels_are_flagged_with_the_true_class_suggested() -> None:
    vectors, truth = clusters(3, 20)
    names = np.array(["cat", "dog", "fox"])
    labels = names[truth]
    flipped = [3, 25, 47]
    labels[3], labels[25], labels[47] = "dog", "fox", "cat"
    result = mislabel_scores(graph_of(vectors, 5), labels, k=5)
    assert np.flatnonzero(result.flagged).tolist() == flipped
    assert result.suggested_label[flipped].tolist() == ["cat", "dog", "fox"]
    assert np.all(result.score[flipped] == pytest.approx(1.0))
    clean = np.setdiff1d(np.arange(60), flipped)
    assert result.score[clean].max() <= 0.25  # at most one flipped neighbour of five
    assert (result.suggested_label[clean] == labels[clean]).all()
    assert result.classes.tolist() == ["cat", "dog", "fox"]


def test_clean_labels_give_no_flags() -> None:
    vectors, truth = clusters(4, 15, seed=1)
    result = mislabel_scores(graph_of(vectors, 5), np.array(list("abcd"))[truth], k=5)
    assert not result.flagged.any()
    assert np.all(result.score == 0.0)
    assert result.noise_matrix.nnz == 0 and result.noise_matrix.shape == (4, 4)


def test_symmetric_noise_is_recovered_on_separable_clusters() -> None:
    vectors, truth = clusters(6, 100, dim=16, spread=0.08, seed=2)
    rng = np.random.default_rng(3)
    flips = rng.choice(len(truth), 60, replace=False)
    noisy = truth.copy()
    noisy[flips] = (truth[flips] + rng.integers(1, 6, len(flips))) % 6
    result = mislabel_scores(graph_of(vectors, 10), np.array(list("uvwxyz"))[noisy])
    is_flip = noisy != truth
    true_positives = (result.flagged & is_flip).sum()
    precision, recall = true_positives / result.flagged.sum(), true_positives / is_flip.sum()
    assert precision >= 0.95 and recall >= 0.95
    # the noise matrix estimates about 10 % noise per class
    assert result.noise_matrix.toarray().sum(axis=1).mean() == pytest.approx(0.1, abs=0.04)
    assert np.diag(result.noise_matrix.toarray()).max() == 0.0


def test_votes_are_weighted_by_similarity() -> None:
    # point 0 (label "a"): two "b" neighbours at 0.9, three "a" neighbours at 0.1
    graph = hand_graph([[1, 2, 3, 4, 5]] + [[0, 1, 2, 3, 4]] * 5,
                       [[0.9, 0.9, 0.1, 0.1, 0.1]] + [[0.5] * 5] * 5)
    labels = np.array(["a", "b", "b", "a", "a", "a"])
    result = mislabel_scores(graph, labels, k=5)
    assert result.suggested_label[0] == "b"
    assert result.score[0] == pytest.approx(1.8 / 2.1, abs=1e-6)


def test_empty_labels_get_no_score_and_do_not_vote() -> None:
    graph = hand_graph([[1, 2], [0, 2], [0, 1], [0, 1]], [[0.9, 0.8]] * 4)
    labels = np.array(["", "", "a", "b"])
    result = mislabel_scores(graph, labels, k=2)
    assert result.score[0] == 0.0 and not result.flagged[0]  # unlabelled
    assert result.suggested_label[3] == ""  # both neighbours unlabelled
    assert result.score[3] == 0.0 and not result.flagged[3]
    assert result.suggested_label[0] == "a"  # only point 2 votes


def test_all_unlabelled_is_harmless() -> None:
    graph = hand_graph([[1], [0]], [[0.5], [0.5]])
    result = mislabel_scores(graph, np.array(["", ""]))
    assert result.score.tolist() == [0.0, 0.0]
    assert not result.flagged.any()
    assert result.suggested_label.tolist() == ["", ""]


def test_graph_is_truncated_to_k() -> None:
    vectors, truth = clusters(2, 12, seed=4)
    graph = graph_of(vectors, 11)
    labels = np.array(["p", "q"])[truth]
    labels[0] = "q"
    assert mislabel_scores(graph, labels, k=4).score[0] == pytest.approx(1.0)
    with pytest.raises(ValueError):
        mislabel_scores(graph, labels[:-1])


# ---------------------------------------------------------------- outliers


def test_isolated_point_and_isolated_small_group_are_outliers() -> None:
    vectors, _ = clusters(2, 40, dim=8, spread=0.05, seed=5)
    rng = np.random.default_rng(6)
    far_group = np.array([0, 0, 0, 0, 1, 1, 0, 0], np.float32) + 0.5 * rng.normal(size=(3, 8)).astype(np.float32)
    lone = np.array([[0, 0, 0, 0, 0, 0, 1, -1]], np.float32)
    graph = graph_of(np.vstack([vectors, far_group, lone]), 5)
    result = outlier_scores(graph, k=5)
    assert result.flagged[80:].all()
    assert result.flagged[:80].sum() <= 2  # Tukey's fence may catch a cluster's edge point
    assert set(np.argsort(result.score)[-4:]) == {80, 81, 82, 83}
    assert result.score[80:].min() > 10 * np.median(result.score[:80])


def test_outlier_score_formula() -> None:
    # k = 2; the k-th distance of each point is 1 - its 2nd similarity
    graph = hand_graph([[1, 2], [0, 2], [1, 0]], [[0.9, 0.5], [0.9, 0.7], [0.7, 0.5]])
    kth = np.array([0.5, 0.3, 0.5])
    expected = 0.5 * (kth + np.array([kth[[1, 2]].mean(), kth[[0, 2]].mean(), kth[[1, 0]].mean()]))
    assert outlier_scores(graph, k=2).score == pytest.approx(expected, abs=1e-6)


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


def test_a_tied_vote_goes_to_the_nearer_neighbours_class() -> None:
    graph = hand_graph([[1, 2], [0, 2], [0, 1]], [[0.8, 0.8], [0.8, 0.8], [0.8, 0.8]])
    result = mislabel_scores(graph, np.array(["x", "z", "y"]), k=2)
    assert result.suggested_label.tolist() == ["z", "x", "x"]
    assert result.score.tolist() == pytest.approx([1.0, 1.0, 1.0])


def test_many_classes_stay_sparse() -> None:
    rng = np.random.default_rng(8)
    n, k = 5000, 5
    indices = np.array([rng.choice(np.delete(np.arange(n), i), k, replace=False) for i in range(0, n)], np.int32)
    graph = KnnGraph(np.arange(n).astype(str), indices, np.full((n, k), 0.9, np.float32))
    labels = np.char.add("class-", (np.arange(n) // 2).astype(str))  # 2,500 classes
    result = mislabel_scores(graph, labels, k=k)
    assert len(result.classes) == 2500
    assert result.score.shape == (n,) and (result.score >= 0.8).all()
    assert result.noise_matrix.shape == (2500, 2500) and result.noise_matrix.nnz <= n
