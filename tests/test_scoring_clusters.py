"""Clusters through `analyze` on real stores (the embedded engine and qdrant-client's local mode
standing in for a server): the `cluster` field written and indexed, the table saved, and the
CLI on a collection indexed with the real mobilenet-v2 (content words from its ImageNet head)."""
from __future__ import annotations

import json

import numpy as np
import pytest

import app
from analysis.clusters import ClusterConfig
from scoring.analyze import analyze_collection
from scoring.clusters import CLUSTERS_FILE, cluster_table, sample_members
from store import PointFilter, open_store, point_id
from store.schema import CLUSTER, MISLABEL_FLAG

LABELS = ("boot", "bag", "shirt")
SIZES = (60, 45, 30)


def fill(collection, seed: int = 0) -> dict[str, str]:
    """Three blobs of unit vectors (sizes SIZES) with their labels and map positions; the first
    5 points of the first blob are labelled "bag". Returns id -> true blob label."""
    rng = np.random.default_rng(seed)
    truth, ids, vectors, payloads = {}, [], [], []
    for index, (label, size) in enumerate(zip(LABELS, SIZES)):
        centre = np.zeros(collection.dimension)
        centre[index] = 1.0
        for i in range(size):
            path = f"{label}/{i:03d}.png"
            ids.append(point_id(path))
            vectors.append(centre + 0.15 * rng.normal(size=collection.dimension))
            given = "bag" if index == 0 and i < 5 else label
            payloads.append({"path": path, "label": given, "tags": [], "x": 10.0 * index + rng.normal(),
                             "y": rng.normal(), "brightness": 0.1 * (index + 1)})
            truth[ids[-1]] = label
    collection.upsert(ids, np.asarray(vectors, np.float32), payloads)
    collection.flush()
    return truth


def test_analyze_writes_clusters_on_both_backends(store) -> None:
    collection = store.create("blobs", 16, {"model": None})
    truth = fill(collection)
    summary = analyze_collection(collection, add_metrics=False)
    assert "3 clusters (leiden) hold 135 of 135 points" in summary.clusters

    table = cluster_table(collection)
    assert [(r["id"], r["name"], r["size"]) for r in table] == [(0, "boot", 60), (1, "bag", 45), (2, "shirt", 30)]
    assert table[0]["labels"] == [["boot", 55], ["bag", 5]] and table[0]["purity"] == pytest.approx(55 / 60)
    assert table[2]["metrics"]["brightness"] == pytest.approx(0.3)
    assert abs(table[2]["x"] - 20.0) < 1.5 and abs(table[2]["y"]) < 1.5   # the name sits on the blob
    assert (collection.artifact_dir / CLUSTERS_FILE).exists()

    # Every point carries its cluster and the field is indexed (qdrant-client's local mode, the
    # server's stand-in here, keeps no payload indexes; a server does), so filters on it are exact.
    assert CLUSTER in collection.indexed_fields() or store.description.startswith("qdrant-client local mode")
    for record in table:
        members = collection.ids(PointFilter(values={CLUSTER: [record["id"]]}))
        assert len(members) == record["size"]
        assert {truth[m] for m in members} == {record["dominant_label"]}
    assert collection.read_metadata()["clusters"]["count"] == 3

    # The flagged mislabels are counted per cluster.
    in_boot = len(flagged_mislabels(collection) & set(collection.ids(PointFilter(values={CLUSTER: [0]}))))
    assert table[0]["flag_shares"][MISLABEL_FLAG] == pytest.approx(in_boot / 60)


def flagged_mislabels(collection) -> set[str]:
    return {r.id for batch in collection.scroll(["quality_flags"]) for r in batch
            if MISLABEL_FLAG in (r.payload.get("quality_flags") or [])}


@pytest.mark.xfail(strict=True, reason="known limitation of the posterior label-error score (issue 15): in a "
                   "135-point fixture the 5 wrong 'bag' labels in the boot blob are partly each other's "
                   "neighbours, so the confident joint sees no boot -> bag noise and the posterior keeps "
                   "their label; the earlier plain-disagreement score flagged them")
def test_wrong_labels_that_neighbour_each_other_in_a_small_blob_are_flagged(store) -> None:
    collection = store.create("blobs-flags", 16, {"model": None})
    truth = fill(collection)
    analyze_collection(collection, add_metrics=False)
    planted = {pid for pid, label in truth.items() if label == "boot"} & {point_id(f"boot/{i:03d}.png")
                                                                          for i in range(5)}
    assert flagged_mislabels(collection) & planted


def test_hdbscan_on_the_map_and_no_clusters(store) -> None:
    collection = store.create("map", 16, {})
    fill(collection)
    summary = analyze_collection(collection, add_metrics=False, clusters=ClusterConfig("hdbscan-map", min_size=10))
    assert "(hdbscan-map)" in summary.clusters
    assert [r["dominant_label"] for r in cluster_table(collection)] == ["boot", "bag", "shirt"]

    other = store.create("none", 16, {})
    fill(other)
    assert analyze_collection(other, add_metrics=False, clusters=None).clusters == ""
    assert cluster_table(other) == [] and CLUSTER not in other.indexed_fields()


def test_an_unloadable_model_still_gives_clusters(store) -> None:
    collection = store.create("offline", 16, {"model": "some-hub-model-not-cached"})
    fill(collection)
    summary = analyze_collection(collection, add_metrics=False)
    assert "no content words" in summary.clusters
    assert [r["name"] for r in cluster_table(collection)] == ["boot", "bag", "shirt"]


def test_sample_members() -> None:
    clusters = np.array([1, 0, 0, -1, 1, 0, 1, 1])
    rows = sample_members(clusters, 2)
    assert len(rows) == 4 and set(clusters[rows]) == {0, 1} and (np.bincount(clusters[rows]) == 2).all()
    np.testing.assert_array_equal(rows, sample_members(clusters, 2))      # the same sample every time
    np.testing.assert_array_equal(sample_members(clusters, 10), [0, 1, 2, 4, 5, 6, 7])


def test_cli_analyze_on_a_mobilenet_collection(indexed, capsys) -> None:
    argv = ["--qdrant-path", str(indexed["qdrant"])]
    assert app.main([*argv, "analyze", "--collection", indexed["collection"], "--cluster-resolution", "0.5"]) == 0
    out = capsys.readouterr().out
    assert "(leiden) hold" in out
    store = open_store(path=str(indexed["qdrant"]))
    try:
        collection = store.open(indexed["collection"])
        table = cluster_table(collection)
        meta = collection.read_metadata()["clusters"]
        assert meta["content"] == "mobilenet-v2 ImageNet classifier" and meta["resolution"] == 0.5
        assert sum(r["size"] for r in table) + collection.count(PointFilter(values={CLUSTER: [-1]})) == indexed["count"]
        for record in table:
            assert record["content"], "every cluster has the model's words"
            assert record["content_scored"] == record["size"]            # small clusters: every member
            assert sum(share for _, share in record["content"]) == pytest.approx(1.0, abs=1e-3) \
                or len(record["content"]) == 3
            # Every member is labelled: the name is made of its labels, not of the model's words.
            named = record["name"].split(" (cluster ")[0].split(" / ")
            assert set(named) <= {label for label, _ in record["labels"]} and named[0] == record["dominant_label"]
            confident = dict(record["confident_content"])
            assert all(confident.get(word, 0.0) <= share for word, share in record["content"])
        assert json.loads((collection.artifact_dir / CLUSTERS_FILE).read_text()) == table
    finally:
        store.close()
    assert app.main([*argv, "info", "--collection", indexed["collection"], "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["clusters"]
    assert listed == [{"id": r["id"], "name": r["name"], "size": r["size"], "dominant_label": r["dominant_label"],
                       "labels": r["labels"]} for r in table] and listed
    assert app.main([*argv, "info", "--collection", indexed["collection"]]) == 0
    assert f"clusters     {len(table)}: {table[0]['name']} ({table[0]['size']})" in capsys.readouterr().out
