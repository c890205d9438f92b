"""The map: a full UMAP fit for small collections, sample + place + refine for large ones.

Real umap-learn and real kNN graphs on small clustered data; the size threshold is lowered
through the config so the sampled method runs in seconds. Quality is checked with
trustworthiness and label agreement of map neighbours against a shuffled baseline.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse

from analysis.knn import build_knn_graph
from indexer.projection import (METHOD_FULL, METHOD_SAMPLED, ProjectionConfig, fuzzy_graph, place_from_neighbours,
                                project, projection_method)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from map_quality import point_penalties, trustworthiness  # noqa: E402

SAMPLED = ProjectionConfig(full_fit_max_points=600, sample_size=600, refine_epochs=20)


def clusters(n: int = 3000, groups: int = 8, dims: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1.0, (groups, dims))
    labels = rng.integers(0, groups, n)
    return (centres[labels] + rng.normal(0, 0.35, (n, dims))).astype(np.float32), labels


def graph_of(vectors: np.ndarray):
    return build_knn_graph(np.arange(len(vectors)).astype(str), vectors, k=15, seed=0)


def neighbour_label_agreement(coords: np.ndarray, labels: np.ndarray, k: int = 10) -> float:
    """Share of each point's k nearest map neighbours that carry its label."""
    distances = ((coords[:, None, :] - coords[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(distances, np.inf)
    nearest = np.argpartition(distances, k, axis=1)[:, :k]
    return float((labels[nearest] == labels[:, None]).mean())


@pytest.fixture(scope="module")
def data():
    vectors, labels = clusters()
    return vectors, labels, graph_of(vectors)


@pytest.fixture(scope="module")
def sampled_map(data):
    vectors, _, graph = data
    return project(vectors, graph, SAMPLED)


def test_the_method_follows_the_size() -> None:
    config = ProjectionConfig(full_fit_max_points=1000, sample_size=500)
    assert projection_method(1000, config) == METHOD_FULL
    assert projection_method(1001, config) == METHOD_SAMPLED
    assert projection_method(10**6) == METHOD_SAMPLED and projection_method(50_000) == METHOD_FULL
    # A sample as large as the collection is a full fit.
    assert projection_method(800, ProjectionConfig(full_fit_max_points=100, sample_size=800)) == METHOD_FULL


def test_sampled_map_places_every_point(data, sampled_map) -> None:
    vectors, _, _ = data
    assert sampled_map.shape == (len(vectors), 2) and sampled_map.dtype == np.float32
    assert np.isfinite(sampled_map).all()
    assert len(np.unique(sampled_map, axis=0)) > 0.99 * len(vectors)  # refined: not stacked on each other
    assert np.abs(sampled_map).max() == pytest.approx(10.0, rel=1e-5)


def test_same_seed_same_map_and_another_seed_another(data, sampled_map) -> None:
    vectors, _, graph = data
    assert np.array_equal(project(vectors, graph, SAMPLED), sampled_map)
    other = ProjectionConfig(**{**SAMPLED.as_dict(), "seed": 1})
    assert not np.allclose(project(vectors, graph, other), sampled_map)


def test_sampled_map_keeps_neighbourhoods(data, sampled_map) -> None:
    vectors, labels, graph = data
    shuffled = np.random.default_rng(0).permutation(sampled_map)
    agreement = neighbour_label_agreement(sampled_map, labels)
    assert agreement > 0.9 and neighbour_label_agreement(shuffled, labels) < 0.25
    rows = np.random.default_rng(1).choice(len(vectors), 500, replace=False)
    full = project(vectors, graph, ProjectionConfig())
    trust_full, _ = trustworthiness(point_penalties(vectors, full, rows), len(vectors))
    trust_sampled, _ = trustworthiness(point_penalties(vectors, sampled_map, rows), len(vectors))
    trust_random, _ = trustworthiness(point_penalties(vectors, shuffled, rows), len(vectors))
    assert trust_random < 0.6 < 0.9 < trust_sampled
    assert trust_sampled > trust_full - 0.03


def test_placement_alone_puts_points_among_their_neighbours(data) -> None:
    vectors, _, graph = data
    strengths = fuzzy_graph(graph, ProjectionConfig())
    sample = np.arange(0, len(vectors), 5)
    sample_coords = np.random.default_rng(0).normal(size=(len(sample), 2)).astype(np.float32)
    coords, placed = place_from_neighbours(strengths, sample, sample_coords)
    assert placed.all()
    assert np.array_equal(coords[sample], sample_coords)  # the sample stays where it was fitted
    # A point next to the sample sits at the strength-weighted mean of its sample neighbours.
    checked = 0
    for i in range(1, 200, 5):
        row = strengths.getrow(i)
        in_sample = row.indices % 5 == 0
        if in_sample.any():
            weights = row.data[in_sample]
            expected = (weights[:, None] * coords[row.indices[in_sample]]).sum(0) / weights.sum()
            assert np.allclose(coords[i], expected, atol=1e-5)
            checked += 1
    assert checked > 30


def test_points_cut_off_from_the_sample_are_placed_by_search() -> None:
    """A closed group of 16 duplicates (each other's only neighbours, nobody else's) that the
    sample missed: no path in the graph leads there, so they take their nearest sample points."""
    vectors, labels = clusters(n=1200, groups=3, seed=2)
    config = ProjectionConfig(full_fit_max_points=300, sample_size=300, refine_epochs=0)
    sample = np.sort(np.random.default_rng(config.seed).choice(len(vectors), 300, replace=False))
    group = np.setdiff1d(np.arange(len(vectors)), sample)[:16]
    rng = np.random.default_rng(3)
    first = vectors[labels == 0].mean(0)
    aside = rng.normal(size=first.shape)
    aside *= np.linalg.norm(first) / np.linalg.norm(aside)
    vectors[group] = first + aside  # cosine ~0.7 to cluster 0, below its members' mutual ~0.9
    labels[group] = -1
    graph = graph_of(vectors)
    strengths = fuzzy_graph(graph, config)
    assert strengths[group][:, np.setdiff1d(np.arange(len(vectors)), group)].nnz == 0
    _, placed = place_from_neighbours(strengths, sample, np.zeros((300, 2), np.float32))
    assert not placed[group].any() and placed.sum() == len(vectors) - 16
    coords = project(vectors, graph, config)
    assert np.isfinite(coords).all()
    assert np.allclose(coords[group], coords[group[0]])  # duplicates share one place
    # ... among the sample points of the cluster they lean towards.
    def spread_to(label: int) -> float:
        return float(np.linalg.norm(coords[sample][labels[sample] == label].mean(0) - coords[group[0]]))
    assert spread_to(0) < min(spread_to(1), spread_to(2))


def test_trustworthiness_estimate_equals_sklearn_on_all_points() -> None:
    from sklearn.manifold import trustworthiness as sklearn_trustworthiness

    vectors, _ = clusters(n=800, dims=16)
    coords = vectors[:, :2] + np.random.default_rng(0).normal(0, 0.5, (800, 2))
    ours, _ = trustworthiness(point_penalties(vectors, coords, np.arange(800)), 800)
    assert ours == pytest.approx(sklearn_trustworthiness(vectors, coords, n_neighbors=10, metric="cosine"), abs=1e-9)


def test_fuzzy_graph_is_symmetric(data) -> None:
    _, _, graph = data
    strengths = fuzzy_graph(graph, ProjectionConfig())
    assert isinstance(strengths, scipy.sparse.csr_matrix)
    assert abs(strengths - strengths.T).max() < 1e-6 and strengths.diagonal().max() == 0
    assert 0 < strengths.data.min() and strengths.data.max() <= 1.0


def test_indexing_a_large_collection_maps_every_point_from_a_sample(tmp_path: Path, mobilenet) -> None:
    """The pipeline with the threshold lowered: the metadata names the method, every point is mapped."""
    from conftest import write_image
    from indexer.pipeline import IndexOptions
    from scoring.indexing import index_and_analyze
    from store import open_store

    for i in range(30):
        write_image(tmp_path / "images" / ("a" if i % 2 else "b") / f"{i}.png", seed=i, size=(24, 24))
    config = ProjectionConfig(full_fit_max_points=12, sample_size=12, refine_epochs=10)
    store = open_store(path=str(tmp_path / "qdrant"))
    try:
        index_and_analyze(tmp_path / "images", store, IndexOptions("big", "mobilenet-v2", progress=False, analyze=False,
                                                               projection=config), embedder=mobilenet)
        collection = store.open("big")
        metadata = collection.read_metadata()
        columns = collection.columns(["x", "y"])
    finally:
        store.close()
    assert metadata["projection"]["method"] == METHOD_SAMPLED and metadata["projection"]["sample_size"] == 12
    coords = np.column_stack([np.asarray(columns.values["x"], float), np.asarray(columns.values["y"], float)])
    assert coords.shape == (30, 2) and np.isfinite(coords).all() and len(np.unique(coords, axis=0)) == 30
