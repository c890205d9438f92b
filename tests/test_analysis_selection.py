"""The selection strategies (analysis/selection) on data whose right answer is known."""
from __future__ import annotations

import numpy as np
import pytest

from analysis.knn import build_knn_graph
from analysis.selection import Pool, RunBoxes, SelectionInputError, STRATEGIES, probe_probabilities, select
from analysis.selection.boxes import box_uncertainty
from analysis.selection import diversity
from analysis.selection.uncertainty import entropy_scores, least_confidence_scores, margin_scores


def blobs(per: int = 40, clusters: int = 5, dim: int = 16, spread: float = 0.05, seed: int = 0):
    """Unit vectors in `clusters` tight, well separated groups; (vectors, cluster of each)."""
    rng = np.random.default_rng(seed)
    centres = np.eye(dim)[:clusters] * 3 + rng.normal(size=(clusters, dim)) * 0.1
    group = np.repeat(np.arange(clusters), per)
    vectors = centres[group] + rng.normal(size=(len(group), dim)) * spread
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32), group


def test_k_center_goes_to_the_clusters_nobody_labelled() -> None:
    vectors, group = blobs()
    labelled = np.isin(group, [0, 1])
    batch = select("k-center", Pool(vectors, labelled, ~labelled), budget=3)
    assert sorted(group[batch.rows].tolist()) == [2, 3, 4]
    assert not labelled[batch.rows].any()
    assert np.all(np.diff(batch.scores) <= 1e-6)  # each pick is no farther than the one before


def test_k_center_without_labels_spreads_from_a_seeded_start() -> None:
    vectors, group = blobs()
    none = np.zeros(len(vectors), dtype=bool)
    batch = select("k-center", Pool(vectors, none, ~none), budget=5, seed=3)
    assert sorted(group[batch.rows].tolist()) == [0, 1, 2, 3, 4]
    assert np.array_equal(batch.rows, select("k-center", Pool(vectors, none, ~none), budget=5, seed=3).rows)


def test_k_center_on_a_pca_projection_still_covers(monkeypatch: pytest.MonkeyPatch) -> None:
    vectors, group = blobs(dim=80, clusters=6)
    monkeypatch.setattr(diversity, "REDUCE_ABOVE", 100)
    monkeypatch.setattr(diversity, "REDUCED_DIMENSIONS", 8)
    labelled = group < 3
    batch = select("k-center", Pool(vectors, labelled, ~labelled), budget=3)
    assert sorted(group[batch.rows].tolist()) == [3, 4, 5]


def test_uncertainty_scores_match_their_definitions() -> None:
    p = np.array([[0.7, 0.2, 0.1], [0.4, 0.35, 0.25], [1.0, 0.0, 0.0]])
    assert np.allclose(least_confidence_scores(p), [0.3, 0.6, 0.0])
    assert np.allclose(margin_scores(p), [0.5, 0.95, 0.0])
    expected = [-(0.7 * np.log(0.7) + 0.2 * np.log(0.2) + 0.1 * np.log(0.1)),
                -(0.4 * np.log(0.4) + 0.35 * np.log(0.35) + 0.25 * np.log(0.25)), 0.0]
    assert np.allclose(entropy_scores(p), expected)


@pytest.mark.parametrize("strategy", ["margin", "entropy", "least-confidence"])
def test_uncertainty_picks_the_least_certain_candidates(strategy: str) -> None:
    rng = np.random.default_rng(1)
    n = 50
    vectors = rng.normal(size=(n, 4)).astype(np.float32)
    confident = np.tile([0.98, 0.01, 0.01], (n, 1))
    confident[[5, 17, 30, 44]] = [0.34, 0.33, 0.33]  # unsure; 5 is labelled already
    labelled = np.zeros(n, dtype=bool)
    labelled[5] = True
    batch = select(strategy, Pool(vectors, labelled, ~labelled, confident), budget=3)
    assert sorted(batch.rows.tolist()) == [17, 30, 44]


def test_uncertainty_without_probabilities_says_what_to_do() -> None:
    vectors, _ = blobs()
    labelled = np.zeros(len(vectors), dtype=bool)
    with pytest.raises(SelectionInputError, match="probabilities"):
        select("margin", Pool(vectors, labelled, ~labelled), budget=3)


def test_hybrids_fall_back_to_k_center_when_nothing_is_labelled() -> None:
    vectors, group = blobs()
    none = np.zeros(len(vectors), dtype=bool)
    batch = select("margin-coreset", Pool(vectors, none, ~none), budget=5)
    assert "k-center" in batch.strategy
    assert sorted(group[batch.rows].tolist()) == [0, 1, 2, 3, 4]


def test_margin_coreset_spreads_over_two_confused_regions() -> None:
    vectors, group = blobs(per=10, clusters=6)
    labelled = np.zeros(len(vectors), dtype=bool)
    labelled[[0, 10]] = True
    probabilities = np.tile([0.95, 0.05], (len(vectors), 1))
    # Cluster 2 is a bit more uncertain than cluster 3: margin alone takes only cluster 2.
    probabilities[group == 2] = [0.51, 0.49]
    probabilities[group == 3] = [0.53, 0.47]
    pool = Pool(vectors, labelled, ~labelled, probabilities)
    assert group[select("margin", pool, budget=2).rows].tolist() == [2, 2]
    assert sorted(group[select("margin-coreset", pool, budget=2).rows].tolist()) == [2, 3]
    assert sorted(group[select("margin-clusters", pool, budget=2).rows].tolist()) == [2, 3]


def test_representative_takes_dense_points_and_no_two_neighbours() -> None:
    vectors, group = blobs(per=30, clusters=3, spread=0.02)
    rng = np.random.default_rng(2)
    stray = rng.normal(size=(6, vectors.shape[1])).astype(np.float32)
    vectors = np.vstack([vectors, stray / np.linalg.norm(stray, axis=1, keepdims=True)])
    graph = build_knn_graph(np.arange(len(vectors)).astype(str), vectors, k=5)
    none = np.zeros(len(vectors), dtype=bool)
    batch = select("representative", Pool(vectors, none, ~none, graph=graph), budget=3)
    assert (batch.rows < 90).all()  # never a stray point
    for row in batch.rows:
        assert not np.isin(graph.indices[row], batch.rows).any()


def test_cluster_balanced_evens_out_labelled_and_chosen_per_cluster() -> None:
    vectors, group = blobs(per=30, clusters=3)
    labelled = np.zeros(len(vectors), dtype=bool)
    labelled[np.flatnonzero(group == 0)[:10]] = True  # cluster 0 has 10 labels already
    graph = build_knn_graph(np.arange(len(vectors)).astype(str), vectors, k=5)
    batch = select("cluster-balanced", Pool(vectors, labelled, ~labelled, graph=graph, groups=group), budget=14)
    assert np.bincount(group[batch.rows], minlength=3).tolist() == [0, 7, 7]  # 10 / 7 / 7 labelled after
    batch = select("cluster-balanced", Pool(vectors, labelled, ~labelled, graph=graph, groups=group), budget=29)
    assert np.bincount(group[batch.rows], minlength=3).tolist() == [3, 13, 13]  # 13 / 13 / 13


def test_probe_probabilities_come_from_the_labelled_points_only() -> None:
    vectors, group = blobs(per=40, clusters=3, spread=0.3)
    codes = np.full(len(group), -1)
    labelled_rows = np.concatenate([np.flatnonzero(group == g)[:8] for g in range(3)])
    codes[labelled_rows] = group[labelled_rows]
    probabilities = probe_probabilities(vectors, codes, 3)
    assert probabilities.shape == (len(group), 3)
    assert np.allclose(probabilities.sum(axis=1), 1.0)
    unlabelled = codes < 0
    assert (probabilities[unlabelled].argmax(axis=1) == group[unlabelled]).mean() > 0.95
    assert probe_probabilities(vectors, np.where(group == 0, 0, -1), 3) is None  # one class: nothing to learn


def test_every_strategy_returns_distinct_unlabelled_candidates_within_budget() -> None:
    vectors, group = blobs(per=20, clusters=4, spread=0.3)
    labelled = np.zeros(len(group), dtype=bool)
    labelled[::7] = True
    candidates = ~labelled & (group != 3)  # a filter leaves cluster 3 out
    probabilities = probe_probabilities(vectors, np.where(labelled, group, -1), 4)
    graph = build_knn_graph(np.arange(len(group)).astype(str), vectors, k=5)
    rng = np.random.default_rng(1)
    boxes = RunBoxes(rng.integers(len(group), size=300), rng.random(300))  # a detector's boxes on the rows
    pool = Pool(vectors, labelled, candidates, probabilities, graph, boxes=boxes)
    for name in STRATEGIES:
        batch = select(name, pool, budget=10)
        assert len(batch.rows) == 10 and len(set(batch.rows.tolist())) == 10, name
        assert candidates[batch.rows].all(), name
    assert len(select("random", pool, budget=10_000).rows) == candidates.sum()


def test_bad_requests_are_refused_with_a_reason() -> None:
    vectors, _ = blobs()
    none = np.zeros(len(vectors), dtype=bool)
    with pytest.raises(SelectionInputError, match="unknown strategy 'best'"):
        select("best", Pool(vectors, none, ~none), budget=3)
    with pytest.raises(SelectionInputError, match="at least 1"):
        select("k-center", Pool(vectors, none, ~none), budget=0)
    with pytest.raises(SelectionInputError, match="no candidates"):
        select("k-center", Pool(vectors, ~none, none), budget=3)


def test_nearest_centre_similarity_in_blocks_equals_the_whole_product(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(5)
    points, centres = rng.normal(size=(500, 8)).astype(np.float32), rng.normal(size=(70, 8)).astype(np.float32)
    monkeypatch.setattr(diversity, "ROW_BLOCK", 64)
    monkeypatch.setattr(diversity, "CENTRE_BLOCK", 16)
    assert np.allclose(diversity._nearest_centre_similarity(points, centres), (points @ centres.T).max(axis=1))


def farthest_first(vectors: np.ndarray, labelled: np.ndarray, budget: int) -> list[int]:
    """The textbook k-center greedy, one full pass per pick (the reference)."""
    nearest = (vectors @ vectors[labelled].T).max(axis=1)
    nearest[labelled] = np.inf
    picks = []
    for _ in range(budget):
        pick = int(np.argmin(nearest))
        picks.append(pick)
        nearest = np.maximum(nearest, vectors @ vectors[pick])
        nearest[pick] = np.inf
    return picks


@pytest.mark.parametrize("short_list", [2048, 50, 3])
def test_k_center_with_a_short_list_picks_exactly_the_textbook_greedy(monkeypatch: pytest.MonkeyPatch,
                                                                     short_list: int) -> None:
    rng = np.random.default_rng(4)
    centres = rng.normal(size=(20, 12))
    vectors = (centres[rng.integers(20, size=3000)] + 0.5 * rng.normal(size=(3000, 12))).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    labelled = np.zeros(len(vectors), dtype=bool)
    labelled[rng.choice(len(vectors), 40, replace=False)] = True
    monkeypatch.setattr(diversity, "SHORT_LIST", short_list)
    batch = select("k-center", Pool(vectors, labelled, ~labelled), budget=120)
    assert batch.rows.tolist() == farthest_first(vectors, np.flatnonzero(labelled), 120)


def test_uncertain_boxes_ranks_images_by_the_summed_uncertainty_of_their_boxes() -> None:
    assert np.allclose(box_uncertainty(np.array([0.5, 0.6, 0.75, 0.25, 0.05, 0.99])), [1.0, 0.6, 0, 0, 0, 0])
    assert np.allclose(box_uncertainty(np.array([0.3, 0.4]), threshold=0.3), [1.0, 0.6])
    vectors, _ = blobs(per=2, clusters=3)  # 6 images
    labelled = np.array([True, False, False, False, False, False])
    #          image: 0 (labelled)  1: two boxes at the threshold  2: one   3: sure ones   4: low noise   5: none
    rows = np.array([0, 0, 1, 1, 2, 3, 3, 3, 4, 4, 4, 4, 4])
    scores = np.array([0.5, 0.5, 0.5, 0.55, 0.5, 0.95, 0.9, 0.99, 0.1, 0.05, 0.12, 0.2, 0.1])
    pool = Pool(vectors, labelled, ~labelled, boxes=RunBoxes(rows, scores))
    batch = select("uncertain-boxes", pool, budget=3)
    assert batch.rows.tolist() == [1, 2, 3] and np.allclose(batch.scores, [1.8, 1.0, 0.0])
    assert batch.strategy == "uncertain-boxes"
    with pytest.raises(SelectionInputError, match="needs a detector's run"):
        select("uncertain-boxes", Pool(vectors, labelled, ~labelled), budget=2)
