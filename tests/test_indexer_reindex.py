"""Indexing a folder again: nothing duplicated or re-embedded, tags kept, changes picked up,
the map present for every point and reproducible for the same seed."""
from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import write_image
from indexer.pipeline import IndexOptions
from scoring.indexing import index_and_analyze
from indexer.projection import ProjectionConfig
from store import open_store, point_id

NAMES = [f"{label}/{i}.png" for label in ("red", "blue") for i in range(4)]


def index(root: Path, qdrant: Path, embedder, collection: str = "c", seed: int = 0, **options):
    store = open_store(path=str(qdrant))
    try:
        return index_and_analyze(root, store, IndexOptions(collection, "mobilenet-v2", batch_size=4, progress=False,
                                                       projection=ProjectionConfig(seed=seed), **options), embedder)
    finally:
        store.close()


def snapshot(qdrant: Path, collection: str = "c") -> dict[str, dict]:
    """path -> payload (+ 'vector') of every point, read from a freshly opened store."""
    store = open_store(path=str(qdrant))
    try:
        points = {}
        for batch in store.open(collection).scroll(None, with_vectors=True):
            for record in batch:
                assert record.id == point_id(record.payload["path"])
                assert record.payload["path"] not in points, "duplicate point for one file"
                points[record.payload["path"]] = {**record.payload, "vector": record.vector}
        return points
    finally:
        store.close()


def tag(qdrant: Path, paths: list[str], name: str) -> None:
    store = open_store(path=str(qdrant))
    try:
        assert store.open("c").add_tag([point_id(p) for p in paths], name) == len(paths)
    finally:
        store.close()


def assert_mapped(points: dict[str, dict]) -> None:
    for path, payload in points.items():
        assert isinstance(payload.get("x"), float) and isinstance(payload.get("y"), float), path
        assert np.isfinite([payload["x"], payload["y"]]).all(), path


def coords(points: dict[str, dict]) -> dict[str, tuple[float, float]]:
    return {p: (v["x"], v["y"]) for p, v in points.items()}


def test_reindex_keeps_points_tags_and_map(tmp_path: Path, mobilenet) -> None:
    root, qdrant = tmp_path / "images", tmp_path / "qdrant"
    for i, name in enumerate(NAMES):
        write_image(root / name, seed=i)

    first = index(root, qdrant, mobilenet)
    assert (first.found, first.embedded, first.unchanged, first.removed, first.skipped) == (8, 8, 0, [], [])
    assert first.total_points == 8
    run1 = snapshot(qdrant)
    assert sorted(run1) == sorted(NAMES)
    assert_mapped(run1)

    tag(qdrant, ["red/0.png", "red/1.png"], "keep-me")
    tag(qdrant, ["red/0.png"], "second")

    # Same folder again: nothing new, nothing re-embedded, nothing duplicated, tags kept.
    second = index(root, qdrant, mobilenet)
    assert (second.found, second.embedded, second.unchanged, second.removed) == (8, 0, 8, [])
    assert second.total_points == 8
    run2 = snapshot(qdrant)
    assert sorted(run2) == sorted(NAMES)
    assert run2["red/0.png"]["tags"] == ["keep-me", "second"]
    assert run2["red/1.png"]["tags"] == ["keep-me"]
    assert all(run2[p]["tags"] == [] for p in NAMES[2:])
    assert_mapped(run2)
    for path in NAMES:
        np.testing.assert_allclose(coords(run2)[path], coords(run1)[path], atol=1e-5, err_msg=path)
        np.testing.assert_array_equal(run2[path]["vector"], run1[path]["vector"])

    # Change one file, remove one, add one.
    write_image(root / "red/1.png", seed=1000)
    (root / "blue/3.png").unlink()
    write_image(root / "blue/new.png", seed=2000)
    third = index(root, qdrant, mobilenet)
    assert third.found == 8
    assert third.embedded == 2            # red/1.png (new content) and blue/new.png
    assert third.unchanged == 6
    assert third.removed == ["blue/3.png"]
    assert third.total_points == 8
    run3 = snapshot(qdrant)
    assert sorted(run3) == sorted(set(NAMES) - {"blue/3.png"} | {"blue/new.png"})
    changed = run3["red/1.png"]
    assert changed["tags"] == ["keep-me"], "a re-embedded file keeps its tags"
    assert changed["sha1"] != run1["red/1.png"]["sha1"]
    assert float(np.dot(changed["vector"], run1["red/1.png"]["vector"])) < 0.9999
    assert run3["red/0.png"]["tags"] == ["keep-me", "second"]
    np.testing.assert_array_equal(run3["red/0.png"]["vector"], run1["red/0.png"]["vector"])
    assert run3["blue/new.png"]["label"] == "blue" and run3["blue/new.png"]["tags"] == []
    assert_mapped(run3)

    # The same files and seed into a fresh collection give the same map; another seed does not.
    fresh = index(root, qdrant, mobilenet, collection="again")
    assert fresh.embedded == 8
    again = snapshot(qdrant, "again")
    for path in run3:
        np.testing.assert_allclose(coords(again)[path], coords(run3)[path], atol=1e-4, err_msg=path)
    index(root, qdrant, mobilenet, collection="other-seed", seed=7)
    other = snapshot(qdrant, "other-seed")
    assert max(abs(other[p]["x"] - run3[p]["x"]) + abs(other[p]["y"] - run3[p]["y"]) for p in run3) > 1e-2


def test_edited_labels_file_relabels_without_re_embedding(tmp_path: Path, mobilenet) -> None:
    root, qdrant = tmp_path / "images", tmp_path / "qdrant"
    for i in range(4):
        write_image(root / f"{i}.png", seed=i)
    labels = tmp_path / "labels.csv"

    def write_labels(rows: list[tuple[str, str, str]]) -> None:
        with labels.open("w", newline="") as handle:
            csv.writer(handle).writerows([("path", "label", "split"), *rows])

    write_labels([("0.png", "cat", "train"), ("1.png", "cat", "train"), ("2.png", "dog", "test"),
                  ("3.png", "dog", "test")])
    first = index(root, qdrant, mobilenet, labels_file=labels)
    assert first.embedded == 4
    tag(qdrant, ["1.png"], "checked")
    write_labels([("0.png", "cat", "train"), ("1.png", "dog", "val"), ("2.png", "dog", "test"),
                  ("3.png", "dog", "test")])
    second = index(root, qdrant, mobilenet, labels_file=labels)
    assert (second.embedded, second.unchanged, second.relabelled) == (0, 4, 1)
    points = snapshot(qdrant)
    assert (points["1.png"]["label"], points["1.png"]["labels"], points["1.png"]["split"]) == ("dog", ["dog"], "val")
    assert points["1.png"]["tags"] == ["checked"]
    assert points["0.png"]["label"] == "cat"


def test_a_partial_labels_file_leaves_the_rest_unlabelled_until_a_newer_one_labels_them(
        tmp_path: Path, mobilenet) -> None:
    root, qdrant = tmp_path / "images", tmp_path / "qdrant"
    for i in range(5):
        write_image(root / f"{i}.png", seed=i)
    labels = tmp_path / "labels.csv"
    labels.write_text("path,label\n0.png,cat\n1.png,dog\n")
    first = index(root, qdrant, mobilenet, labels_file=labels)
    assert first.embedded == 5
    assert {p: v["label"] for p, v in snapshot(qdrant).items()} == {"0.png": "cat", "1.png": "dog", "2.png": "",
                                                                    "3.png": "", "4.png": ""}
    labels.write_text("path,label\n0.png,cat\n1.png,dog\n2.png,dog\n3.png,cat\n")  # annotators' answers added
    second = index(root, qdrant, mobilenet, labels_file=labels)
    assert (second.embedded, second.unchanged, second.relabelled) == (0, 5, 2)
    assert {p: v["label"] for p, v in snapshot(qdrant).items()} == {"0.png": "cat", "1.png": "dog", "2.png": "dog",
                                                                    "3.png": "cat", "4.png": ""}


def test_single_image_collection_gets_a_map(tmp_path: Path, mobilenet) -> None:
    root, qdrant = tmp_path / "images", tmp_path / "qdrant"
    write_image(root / "only.png")
    report = index(root, qdrant, mobilenet)
    assert report.total_points == 1
    assert_mapped(snapshot(qdrant))
    # ... and it stays mapped when a second image arrives.
    write_image(root / "second.png", seed=1)
    assert index(root, qdrant, mobilenet).embedded == 1
    assert_mapped(snapshot(qdrant))


def test_same_folder_into_collection_of_another_folder_refused(tmp_path: Path, mobilenet) -> None:
    from indexer.sources import SourceError

    write_image(tmp_path / "one" / "a.png")
    write_image(tmp_path / "one" / "b.png", seed=1)
    shutil.copytree(tmp_path / "one", tmp_path / "two")
    index(tmp_path / "one", tmp_path / "qdrant", mobilenet)
    with pytest.raises(SourceError, match="choose a new --collection"):
        index(tmp_path / "two", tmp_path / "qdrant", mobilenet)
