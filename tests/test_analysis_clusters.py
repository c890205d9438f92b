"""Clusters on synthetic data with a known answer: found, deterministic for a seed, the table
(purity, shares, means, centres) as computed by hand, names from the dominant label."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from analysis.clusters import (
    NO_CLUSTER, ClusterConfig, ClusterStats, cluster_centres, describe_clusters, find_clusters, name_clusters,
    order_by_size, top_values, undirected_edges,
)
from analysis.knn import KnnGraph, build_knn_graph


def blobs(sizes: tuple[int, ...] = (120, 90, 60, 30), dim: int = 32, spread: float = 0.35,
          seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors around len(sizes) random directions; returns (vectors, true cluster)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(len(sizes), dim))
    truth = np.repeat(np.arange(len(sizes)), sizes)
    vectors = centres[truth] / np.linalg.norm(centres[truth], axis=1, keepdims=True)
    vectors = vectors + spread * rng.normal(size=vectors.shape) / np.sqrt(dim)
    return vectors.astype(np.float32), truth


def graph_of(vectors: np.ndarray) -> KnnGraph:
    return build_knn_graph(np.arange(len(vectors)).astype(str), vectors, k=15)


def test_leiden_finds_the_blobs_largest_first() -> None:
    vectors, truth = blobs()
    clusters = find_clusters(graph_of(vectors), config=ClusterConfig("leiden"))
    assert adjusted_rand_score(truth, clusters) > 0.95
    assert (clusters >= 0).all()
    sizes = np.bincount(clusters)
    assert list(sizes) == sorted(sizes, reverse=True) and len(sizes) == 4


def test_same_seed_same_clusters() -> None:
    vectors, _ = blobs(sizes=(200, 200, 200), spread=1.2)  # overlapping: the seed could matter
    graph = graph_of(vectors)
    first = find_clusters(graph, config=ClusterConfig(seed=3))
    np.testing.assert_array_equal(first, find_clusters(graph, config=ClusterConfig(seed=3)))


def test_resolution_controls_granularity() -> None:
    vectors, _ = blobs(sizes=(300, 300), spread=0.9)
    graph = graph_of(vectors)
    coarse = find_clusters(graph, config=ClusterConfig(resolution=0.05))
    fine = find_clusters(graph, config=ClusterConfig(resolution=4.0))
    assert coarse.max() < fine.max()


def test_hdbscan_on_the_map_finds_islands_and_noise() -> None:
    rng = np.random.default_rng(1)
    coords = np.vstack([rng.normal((0, 0), 0.3, (100, 2)), rng.normal((8, 0), 0.3, (60, 2)),
                        rng.uniform(-20, 30, (4, 2))])
    graph = graph_of(np.ones((len(coords), 4), np.float32) + rng.normal(size=(len(coords), 4)).astype(np.float32))
    clusters = find_clusters(graph, coords, ClusterConfig("hdbscan-map", min_size=10))
    assert set(clusters[:100]) == {0} and set(clusters[100:160]) == {1}
    assert (clusters[160:] == NO_CLUSTER).all()
    with pytest.raises(ValueError, match="map coordinates"):
        find_clusters(graph, None, ClusterConfig("hdbscan-map"))
    with pytest.raises(ValueError, match="unknown clustering method 'nope'"):
        find_clusters(graph, coords, ClusterConfig("nope"))


def test_order_by_size_renumbers_and_drops_small_clusters() -> None:
    labels = np.array([7, 7, 3, 3, 3, 9, -1, 7, 5, 3])
    np.testing.assert_array_equal(order_by_size(labels, min_size=2), [1, 1, 0, 0, 0, -1, -1, 1, -1, 0])
    np.testing.assert_array_equal(order_by_size(labels), [1, 1, 0, 0, 0, 2, -1, 1, 3, 0])  # ties: seen first
    np.testing.assert_array_equal(order_by_size(np.array([4, 2, 2, 4])), [0, 1, 1, 0])


def test_undirected_edges_once_with_the_larger_similarity() -> None:
    graph = KnnGraph(np.array(["a", "b", "c"]), np.array([[1], [0], [0]], np.int32),
                     np.array([[0.5], [0.7], [-0.2]], np.float32))
    rows, cols, weights = undirected_edges(graph)
    assert list(zip(rows.tolist(), cols.tolist(), weights.round(6).tolist())) == [(0, 1, 0.7)]


def test_table_by_hand() -> None:
    # cluster 0: 4 points (a, a, a, b), cluster 1: 2 points (c, ""), one point in no cluster.
    clusters = np.array([0, 0, 0, 0, 1, 1, -1])
    labels = np.array(["a", "a", "a", "b", "c", "", "a"])
    coords = np.array([[0, 0], [0, 1], [1, 0], [1, 1], [10, 10], [10, 11], [50, 50]], float)
    brightness = np.array([0.1, 0.2, 0.3, np.nan, 0.5, 0.7, 0.9])
    mislabel = np.array([False, False, False, True, True, False, True])
    content = np.array(["cup", "cup", "mug", "cup", "dog", "", "cup"])   # "" = not scored
    stats = describe_clusters(clusters, coords, labels, {"brightness": brightness}, {"mislabel": mislabel}, content)
    first, second = stats
    assert (first.size, first.labels, first.labelled, first.purity) == (4, [("a", 3), ("b", 1)], 4, 0.75)
    assert first.metrics["brightness"] == pytest.approx(0.2)     # NaN left out
    assert first.flag_shares["mislabel"] == 0.25 and first.content == [("cup", 0.75), ("mug", 0.25)]
    assert first.content_scored == 4
    assert (second.size, second.labels, second.labelled, second.purity) == (2, [("c", 1)], 1, 1.0)
    assert second.metrics["brightness"] == pytest.approx(0.6) and second.flag_shares["mislabel"] == 0.5
    # cluster 0: every member labelled, "b" a quarter of them -> both labels; cluster 1: half
    # labelled is not most, so the (confident) model word names it.
    assert (first.name, second.name) == ("a / b", "dog")
    assert second.content == [("dog", 1.0)] and second.content_scored == 1
    assert not first.impure and not second.impure
    assert (second.x, second.y) == (10.0, 10.5)
    record = first.as_dict()
    assert record["dominant_label"] == "a" and record["labels"] == [["a", 3], ["b", 1]] and record["id"] == 0


def test_impure_cluster_names_the_confused_classes() -> None:
    clusters = np.zeros(10, np.int64)
    labels = np.array(["shirt"] * 5 + ["t-shirt"] * 4 + ["coat"])
    (stats,) = describe_clusters(clusters, np.zeros((10, 2)), labels)
    assert stats.purity == 0.5 and stats.impure and stats.dominant_label == "shirt"
    assert stats.as_dict()["impure"] is True


def test_names_are_unique_and_fall_back_to_numbers() -> None:
    stats = [ClusterStats(0, 50, 0, 0, 1, labels=[("shoe", 50)], labelled=50, confident_content=[("sandal", 0.9)]),
             ClusterStats(1, 40, 0, 0, 1, labels=[("shoe", 40)], labelled=40),
             ClusterStats(2, 30, 0, 0, 1, labels=[("shoe", 30)], labelled=30),
             ClusterStats(3, 20, 0, 0, 1),
             ClusterStats(4, 10, 0, 0, 1, confident_content=[("shoe", 0.8)])]
    name_clusters(stats)
    assert [s.name for s in stats] == ["shoe", "shoe (cluster 1)", "shoe (cluster 2)", "cluster 3",
                                       "shoe (cluster 4)"]


def cluster(size: int, labels: list[tuple[str, int]] = (), words: list[tuple[str, float]] = (),
            confident: list[tuple[str, float]] = (), labelled: int | None = None) -> ClusterStats:
    """Cluster 7 of `size` members; `labels` the most common ones (labelled: their sum unless given)."""
    labelled = sum(c for _, c in labels) if labelled is None else labelled
    return ClusterStats(7, size, 0, 0, 1, labels=list(labels), labelled=labelled,
                        content=list(words), confident_content=list(confident))


@pytest.mark.parametrize("stats, name", [
    # Labelled clusters are named by their labels, never by the model's words beside them.
    (cluster(100, [("coat", 90), ("shirt", 6)], [("nipple", 0.6)], [("nipple", 0.6)]), "coat"),
    (cluster(100, [("coat", 55), ("shirt", 40), ("pullover", 5)]), "coat / shirt"),
    (cluster(100, [("coat", 40), ("shirt", 30), ("pullover", 25)]), "coat / shirt / pullover"),
    # Labels too mixed to name it (the named labels cover under 60 %): number and shares.
    (cluster(100, [("coat", 25), ("shirt", 19), ("bag", 18)], labelled=100), "cluster 7: coat 25%, shirt 19%"),
    # Mostly unlabelled: a model word only when most members show it with confidence.
    (cluster(100, [("coat", 30)], [("hatchet", 0.7)], [("hatchet", 0.2)]), "cluster 7: coat 30%"),
    (cluster(100, [], [("hatchet", 0.7)], [("hatchet", 0.2)]), "cluster 7"),
    (cluster(100, [], [("tabby", 0.8)], [("tabby", 0.6)]), "tabby"),
    (cluster(100, [("cat", 50)], [("tabby", 0.8)], [("tabby", 0.6)]), "tabby"),   # half is not most
    (cluster(100, [("cat", 51)], [("tabby", 0.8)], [("tabby", 0.6)]), "cat"),
])
def test_the_naming_rule(stats: ClusterStats, name: str) -> None:
    name_clusters([stats])
    assert stats.name == name


def test_unconfident_words_never_name_a_cluster() -> None:
    """The same word for every member, confident for only a third of them: no name from it."""
    clusters = np.zeros(9, np.int64)
    words = np.array(["nipple"] * 9)
    confident = np.array([True] * 3 + [False] * 6)
    (unsure,) = describe_clusters(clusters, np.zeros((9, 2)), content=words, content_confident=confident)
    assert unsure.content == [("nipple", 1.0)] and unsure.confident_content == [("nipple", pytest.approx(1 / 3))]
    assert unsure.name == "cluster 0"
    (sure,) = describe_clusters(clusters, np.zeros((9, 2)), content=words, content_confident=~confident)
    assert sure.name == "nipple" and sure.as_dict()["confident_content"] == [["nipple", 0.6667]]


def test_naming_picks_the_dominant_label_of_found_clusters() -> None:
    vectors, truth = blobs(sizes=(80, 60, 40))
    names = np.array(["boot", "bag", "shirt"])
    labels = names[truth]
    labels[:5] = "bag"  # a few mislabelled points do not change the dominant label
    clusters = find_clusters(graph_of(vectors))
    stats = describe_clusters(clusters, np.zeros((len(vectors), 2)), labels)
    assert [s.name for s in stats] == ["boot", "bag", "shirt"]
    assert stats[0].purity == pytest.approx(75 / 80)


def test_centre_sits_on_the_densest_part() -> None:
    # Most points of the cluster near (0, 0), a few far away at (9, 9): the mean (1.8, 1.8)
    # would sit in empty space; the centre stays on the crowd.
    rng = np.random.default_rng(0)
    coords = np.vstack([rng.normal(0, 0.2, (80, 2)), rng.normal(9, 0.2, (20, 2)), [[-10, -10]]])
    clusters = np.array([0] * 100 + [-1])
    centres, radii = cluster_centres(clusters, coords)
    assert np.abs(centres[0]).max() < 0.5 and radii[0] < 1.0


def test_top_values_ignores_empty_and_no_cluster() -> None:
    clusters = np.array([0, 0, 0, -1, 1])
    assert top_values(clusters, np.array(["x", "", "y", "x", "z"])) == [[("x", 1), ("y", 1)], [("z", 1)]]
