"""Label-error scores: hand-computed pieces (vote shares, noise matrix, posterior, probe) and
the whole rule on synthetic data with planted flips, symmetric and pair-wise."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.sparse import csr_matrix

from analysis.knn import KnnGraph, build_knn_graph
from analysis.linear_probe import cross_validated_probe, first_occurrence, nearest_class_distance
from analysis.mislabels import (
    NoiseModel, _Beliefs, _neighbour_votes, _posterior, confident_joint, fit_noise, mislabel_scores,
)
from test_analysis_label_quality import clusters


def hand_graph(indices: list[list[int]], similarities: list[list[float]]) -> KnnGraph:
    rows = np.array(indices, dtype=np.int32)
    return KnnGraph(np.arange(len(rows)).astype(str), rows, np.array(similarities, dtype=np.float32))


def blobs(n_classes: int, per_class: int, dim: int = 16, spread: float = 0.35,
          seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian classes around orthogonal directions, looser than the label-quality tests'
    clusters by default; (vectors, class per point)."""
    return clusters(n_classes, per_class, dim, spread, seed)


def flip_labels(truth: np.ndarray, count: int, n_classes: int, seed: int) -> np.ndarray:
    """`truth` with `count` random points moved to another class, uniformly (symmetric noise)."""
    rng = np.random.default_rng(seed)
    flips = rng.choice(len(truth), count, replace=False)
    noisy = truth.copy()
    noisy[flips] = (truth[flips] + rng.integers(1, n_classes, len(flips))) % n_classes
    return noisy


def graph_of(vectors: np.ndarray, k: int = 10) -> KnnGraph:
    return build_knn_graph(np.arange(len(vectors)).astype(str), vectors, k=k)


def precision_recall(flagged: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    hits = (flagged & truth).sum()
    return hits / max(flagged.sum(), 1), hits / max(truth.sum(), 1)


# ---------------------------------------------------------------- pieces, by hand


def test_vote_shares_are_similarity_weighted_and_unlabelled_neighbours_abstain() -> None:
    # point 0: neighbours 1, 2 ("b", similarity 0.9 each), 3 ("a", 0.3), 4 (unlabelled, 0.8)
    graph = hand_graph([[1, 2, 3, 4]] + [[0, 1, 2, 3]] * 4, [[0.9, 0.9, 0.3, 0.8]] + [[0.5] * 4] * 4)
    codes = np.array([0, 1, 1, 0, -1])
    votes = _neighbour_votes(graph, codes)
    assert votes.classes[0].tolist() == [1, -1, 0, -1]  # b once (first slot), a, the unlabelled slot empty
    assert votes.at(np.array([0]))[0] == pytest.approx(0.3 / 2.1, abs=1e-6)
    assert votes.at(np.array([1]))[0] == pytest.approx(1.8 / 2.1, abs=1e-6)


def test_noise_model_shrinks_toward_uniform_by_hand() -> None:
    # 3 classes; confident joint: true 0 -> given 1 at rate 0.2, otherwise clean.
    rates = csr_matrix(np.array([[0, 0.2, 0], [0, 0, 0], [0, 0, 0]]))
    stay = np.array([0.8, 1.0, 1.0])
    uniform = 0.2 / 3 / 2  # (1000 * 0.2) / (3000 * (C - 1)) with equal class sizes
    noise = NoiseModel(rates, stay, uniform, shrinkage=0.5)
    t = noise.dense()
    assert t[0, 1] == pytest.approx(0.5 * uniform + 0.5 * 0.2)
    assert t[0, 2] == pytest.approx(0.5 * uniform)
    assert t[1, 1] == pytest.approx(1 - 0.5 * 2 * uniform)
    assert t[0, 0] == pytest.approx(1 - 0.5 * 2 * uniform - 0.5 * 0.2)
    assert t.sum(axis=1) == pytest.approx(np.ones(3))


def test_posterior_by_hand() -> None:
    # Q(a) = 0.6, Q(b) = 0.4, given a; T[a, a] = 0.9, T[b, a] = 0.3 -> P(a | x, a) = 0.54 / 0.66
    noise = NoiseModel(csr_matrix(np.array([[0, 0.1], [0.3, 0]])), np.array([0.9, 0.7]), 0.2, 0.0)
    beliefs = _Beliefs(np.array([[0, 1], [0, 1]]), np.array([[0.6, 0.4], [0.6, 0.4]]))
    posterior = _posterior(beliefs, noise, np.array([0, 1]))
    assert posterior.belief[0] == pytest.approx([0.54 / 0.66, 0.12 / 0.66])
    # given b: Q(a) T[a, b] = 0.06, Q(b) T[b, b] = 0.28
    assert posterior.belief[1] == pytest.approx([0.06 / 0.34, 0.28 / 0.34])


def test_confident_joint_by_hand() -> None:
    # Thresholds: class 0 = mean own belief of points labelled 0 = (0.9 + 0.8 + 0.2) / 3.
    classes = np.array([[0, 1]] * 5)
    belief = np.array([[0.9, 0.1], [0.8, 0.2], [0.2, 0.8], [0.1, 0.9], [0.3, 0.7]])
    codes = np.array([0, 0, 0, 1, 1])
    joint = confident_joint(_Beliefs(classes, belief), codes, 2).toarray()
    # point 2 (labelled 0) is confidently class 1 (0.8 >= 0.8 = threshold of class 1)
    assert joint.tolist() == [[2.0, 0.0], [1.0, 2.0]]


def test_shrinkage_is_chosen_by_held_out_likelihood() -> None:
    rng = np.random.default_rng(0)
    n, n_classes = 6000, 6
    truth = rng.integers(0, n_classes, n)
    beliefs = _Beliefs(np.tile(np.arange(n_classes), (n, 1)), np.eye(n_classes)[truth] * 0.9 + 0.1 / n_classes)
    uniform = truth.copy()
    flips = rng.random(n) < 0.2
    uniform[flips] = (truth[flips] + rng.integers(1, n_classes, flips.sum())) % n_classes
    assert fit_noise(beliefs, uniform, n_classes).shrinkage >= 0.75
    pairwise = truth.copy()
    pairwise[flips] = truth[flips] ^ 1  # 0 <-> 1, 2 <-> 3, 4 <-> 5
    noise = fit_noise(beliefs, pairwise, n_classes)
    assert noise.shrinkage <= 0.1
    assert noise.dense()[0, 1] == pytest.approx(0.2, abs=0.03) and noise.dense()[0, 2] < 0.02


def test_first_occurrence() -> None:
    classes = np.array([[3, 1, 3, -1, 1], [2, 2, 2, 0, -1]])
    assert first_occurrence(classes).tolist() == [[True, True, False, False, False],
                                                   [True, False, False, True, False]]


# ---------------------------------------------------------------- the linear probe


def test_probe_is_out_of_fold_and_calibrated() -> None:
    vectors, truth = blobs(4, 150, spread=0.45, seed=1)
    noisy = truth.copy()
    noisy[:10] = 3  # ten class-0 points labelled 3
    probe = cross_validated_probe(vectors, noisy)
    assert probe is not None and probe.classes.shape[0] == len(truth)
    p_true = probe.probability_of(truth)
    # The wrong labels did not teach the model that judges them: it still backs class 0.
    assert (p_true[:10] > probe.probability_of(noisy)[:10]).all()
    # Calibrated: the mean probability of the predicted class is close to the accuracy.
    best = np.where(probe.classes >= 0, probe.log_probs, -np.inf).argmax(axis=1)
    predicted = probe.classes[np.arange(len(truth)), best]
    confidence = np.exp(probe.log_probs[np.arange(len(truth)), best])
    assert abs(confidence.mean() - (predicted == noisy).mean()) < 0.06
    assert (probe.log_probs <= 1e-9).all()


def test_probe_needs_two_classes() -> None:
    vectors, _ = blobs(2, 20)
    assert cross_validated_probe(vectors, np.zeros(40, dtype=np.int64)) is None
    assert cross_validated_probe(vectors, np.full(40, -1)) is None


def test_nearest_class_distance_by_hand() -> None:
    # Two classes in 2-d with identity within-class covariance (up to estimation): the
    # distance of a point at a class mean is ~0, of a point far from both is large.
    rng = np.random.default_rng(2)
    a = rng.normal(size=(500, 2)) + [5, 0]
    b = rng.normal(size=(500, 2)) + [-5, 0]
    far = np.array([[0.0, 12.0]])
    vectors = np.vstack([a, b, far]).astype(np.float32)
    codes = np.r_[np.zeros(500, int), np.ones(500, int), -1]
    distance = nearest_class_distance(vectors, codes, shrinkage=0.0)
    assert distance[-1] == pytest.approx(25 + 144, rel=0.15)  # (0 - 5)^2 + 12^2 in unit variance
    assert np.median(distance[:1000]) == pytest.approx(2 * np.log(2), rel=0.25)  # chi-square(2) median


# ---------------------------------------------------------------- the whole rule


def test_flipped_labels_are_flagged_with_the_true_class_suggested() -> None:
    vectors, truth = blobs(3, 40, spread=0.1)
    names = np.array(["cat", "dog", "fox"])
    labels = names[truth]
    flipped = [3, 45, 87]
    labels[3], labels[45], labels[87] = "dog", "fox", "cat"
    for vectors_given in (None, vectors):
        result = mislabel_scores(graph_of(vectors, 5), labels, k=5, vectors=vectors_given)
        assert np.flatnonzero(result.flagged).tolist() == flipped
        assert result.suggested_label[flipped].tolist() == ["cat", "dog", "fox"]
        assert (result.score[flipped] > 0.5).all()
        clean = np.setdiff1d(np.arange(120), flipped)
        assert result.score[clean].max() < 0.5
        assert (result.suggested_label[clean] == labels[clean]).all()
    assert result.classes.tolist() == ["cat", "dog", "fox"]


def test_symmetric_noise_is_recovered_and_scores_spread() -> None:
    vectors, truth = blobs(6, 150, spread=0.3, seed=2)
    noisy = flip_labels(truth, 90, 6, seed=3)
    result = mislabel_scores(graph_of(vectors), np.array(list("uvwxyz"))[noisy], vectors=vectors)
    precision, recall = precision_recall(result.flagged, noisy != truth)
    assert precision >= 0.95 and recall >= 0.85
    votes_only = mislabel_scores(graph_of(vectors), np.array(list("uvwxyz"))[noisy])
    assert recall > precision_recall(votes_only.flagged, noisy != truth)[1] + 0.1  # the probe's second opinion
    assert result.noise.shrinkage >= 0.5  # uniform noise: T shrunk toward uniform
    flagged_scores = result.score[result.flagged]
    assert len(np.unique(np.round(flagged_scores, 4))) > 0.8 * len(flagged_scores)  # not all 1.00


def test_pairwise_noise_between_look_alike_classes() -> None:
    # Classes 0 and 1 overlap (look-alikes); 15 % of each is swapped with the other.
    rng = np.random.default_rng(4)
    vectors, truth = blobs(4, 300, spread=0.3, seed=5)
    vectors[truth == 1] += np.eye(16)[0] * 0.6  # class 1 leans toward class 0
    pair = np.flatnonzero(truth <= 1)
    flips = rng.choice(pair, int(0.15 * len(pair)), replace=False)
    noisy = truth.copy()
    noisy[flips] = 1 - truth[flips]
    result = mislabel_scores(graph_of(vectors), np.array(list("abcd"))[noisy], vectors=vectors)
    precision, recall = precision_recall(result.flagged, noisy != truth)
    assert precision >= 0.7 and recall >= 0.6
    assert result.noise.shrinkage <= 0.25  # the pair structure is kept
    assert not result.flagged[truth >= 2].any()  # clean classes stay clean


def test_unlabelled_points_get_no_score_and_do_not_vote() -> None:
    graph = hand_graph([[1, 2], [0, 2], [0, 1], [0, 1]], [[0.9, 0.8]] * 4)
    labels = np.array(["", "", "a", "b"])
    result = mislabel_scores(graph, labels, k=2)
    assert result.score[0] == 0.0 and not result.flagged[0]
    assert result.suggested_label[0] == "a"  # only point 2 votes
    assert result.suggested_label[3] == "" and result.score[3] == 0.0  # both neighbours unlabelled
    assert np.isnan(result.probe_agreement).all()


def test_all_unlabelled_is_harmless() -> None:
    graph = hand_graph([[1], [0]], [[0.5], [0.5]])
    result = mislabel_scores(graph, np.array(["", ""]))
    assert result.score.tolist() == [0.0, 0.0] and not result.flagged.any()
    assert result.suggested_label.tolist() == ["", ""]


def test_wrong_sizes_are_refused() -> None:
    vectors, truth = blobs(2, 12)
    with pytest.raises(ValueError):
        mislabel_scores(graph_of(vectors, 4), np.array(["p", "q"])[truth][:-1])
    with pytest.raises(ValueError):
        mislabel_scores(graph_of(vectors, 4), np.array(["p", "q"])[truth], vectors=vectors[:-1])


def test_many_classes_stay_sparse() -> None:
    rng = np.random.default_rng(8)
    n, k = 5000, 5
    indices = np.array([rng.choice(np.delete(np.arange(n), i), k, replace=False) for i in range(n)], np.int32)
    graph = KnnGraph(np.arange(n).astype(str), indices, np.full((n, k), 0.9, np.float32))
    labels = np.char.add("class-", (np.arange(n) // 2).astype(str))  # 2,500 classes
    result = mislabel_scores(graph, labels, k=k)
    assert len(result.classes) == 2500 and result.score.shape == (n,)
    assert result.noise.rates.shape == (2500, 2500) and result.noise.rates.nnz <= n


def test_labels_unrelated_to_the_vectors_are_not_judged() -> None:
    vectors, _ = blobs(3, 60, spread=0.3, seed=9)
    random_labels = np.array(list("abc"))[np.random.default_rng(10).integers(0, 3, 180)]
    result = mislabel_scores(graph_of(vectors), random_labels, vectors=vectors)
    assert not result.flagged.any() and (result.score == 0).all()


def test_heavy_noise_is_still_judged() -> None:
    # 30 % wrong labels make the given labels' likelihood poor; the evidence is still good.
    vectors, truth = blobs(6, 150, spread=0.3, seed=11)
    noisy = flip_labels(truth, 270, 6, seed=12)
    result = mislabel_scores(graph_of(vectors), np.array(list("uvwxyz"))[noisy], vectors=vectors)
    precision, recall = precision_recall(result.flagged, noisy != truth)
    assert precision >= 0.9 and recall >= 0.85
