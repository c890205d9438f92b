"""Scores written by `analyze` (and at the end of indexing), predictions import with bad
rows, and user labels surviving a re-index — on real tiny-image collections."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import app
from conftest import INDEXED_LABELS, write_image
from indexer.pipeline import IndexOptions
from scoring.indexing import index_and_analyze
from indexer.predictions import import_predictions
from scoring.analyze import confused_pairs
from store.schema import MISLABEL_SCORE, OUTLIER_SCORE, UNIQUENESS
from store import PointFilter, open_store, point_id


@pytest.fixture
def opened(indexed):
    store = open_store(path=str(indexed["qdrant"]))
    yield store.open(indexed["collection"])
    store.close()


def test_indexing_wrote_scores_metrics_and_flags(opened) -> None:
    payloads = [r.payload for batch in opened.scroll(None) for r in batch]
    assert len(payloads) == 12
    for payload in payloads:
        for name in (MISLABEL_SCORE, OUTLIER_SCORE, UNIQUENESS, "brightness", "sharpness", "colourfulness", "area"):
            assert isinstance(payload[name], float), name
        assert payload["suggested_label"] in INDEXED_LABELS
        assert 0.0 <= payload["mislabel_score"] <= 1.0
        assert isinstance(payload["quality_flags"], list)
        assert payload["area"] == 16 * 16
    # Indexed for other tools: a range filter on a score goes through the engine.
    # outlier_score is a robust z-score (half the points below 0); uniqueness a distance.
    assert opened.count(PointFilter(ranges={"outlier_score": (-100.0, None)})) == 12
    assert opened.count(PointFilter(ranges={"uniqueness": (0.0, None)})) == 12
    # Random noise images carry no information about their labels: nothing is flagged.
    assert not any("mislabel" in p["quality_flags"] for p in payloads)
    assert opened.read_metadata()["analysis"]["k"] == 10


def test_analyze_cli_adds_missing_metrics_without_re_embedding(indexed, capsys) -> None:
    store = open_store(path=str(indexed["qdrant"]))
    collection = store.open(indexed["collection"])
    ids = collection.ids()[:3]
    before = {r.id: r.vector for r in collection.retrieve(ids, [], with_vectors=True)}
    collection.delete_payload_keys(ids, ["brightness", "sharpness", "contrast", "colourfulness", "aspect_ratio", "area"])
    collection.flush()
    store.close()
    assert app.main(["--qdrant-path", str(indexed["qdrant"]), "analyze", "--collection", indexed["collection"]]) == 0
    out = capsys.readouterr().out
    assert "image metrics added to 3 points" in out and "points scored (k=10)" in out
    store = open_store(path=str(indexed["qdrant"]))
    try:
        records = store.open(indexed["collection"]).retrieve(ids, ["brightness", "area"], with_vectors=True)
        assert all(r.payload["area"] == 256.0 and 0 <= r.payload["brightness"] <= 1 for r in records)
        assert all(np.array_equal(r.vector, before[r.id]) for r in records)
    finally:
        store.close()


def _two_cluster_folder(root: Path) -> None:
    """Two visually distinct classes; one dark image filed under 'light' is the planted mislabel."""
    from PIL import Image

    for name in ("dark", "light"):
        (root / name).mkdir(parents=True, exist_ok=True)
    for i in range(12):
        Image.new("RGB", (16, 16), (10 + i, 10, 10)).save(root / "dark" / f"{i}.png")
        Image.new("RGB", (16, 16), (240 - i, 250, 250)).save(root / "light" / f"{i}.png")
    Image.new("RGB", (16, 16), (22, 11, 10)).save(root / "light" / "planted.png")


def test_planted_mislabel_is_flagged_with_suggestion(tmp_path: Path, mobilenet) -> None:
    root = tmp_path / "images"
    _two_cluster_folder(root)
    store = open_store(path=str(tmp_path / "q"))
    try:
        index_and_analyze(root, store, IndexOptions("c", "mobilenet-v2", progress=False), mobilenet)
        collection = store.open("c")
        planted = collection.retrieve([point_id("light/planted.png")])[0].payload
        assert planted["suggested_label"] == "dark"
        assert planted["mislabel_score"] > 0.8
        scores = collection.columns(["mislabel_score"]).array("mislabel_score")
        assert planted["mislabel_score"] == scores.max()
        pairs = confused_pairs(collection)
        assert pairs[0]["class_a"] in ("dark", "light") and point_id("light/planted.png") in pairs[0]["ids"]
    finally:
        store.close()


def test_predictions_import_reports_bad_rows(opened, tmp_path: Path) -> None:
    paths = {r.payload["path"]: r.payload["label"] for batch in opened.scroll(["path", "label"]) for r in batch}
    good = sorted(paths)[:4]
    rows = [{"path": good[0], "prediction": paths[good[0]], "confidence": 0.9},
            {"path": good[1], "predicted_label": "durian", "probabilities": {"durian": 0.6, "apple": 0.4}},
            {"id": point_id(good[2]), "pred": paths[good[3]] if paths[good[3]] != paths[good[2]] else "x"},
            {"path": "nowhere/missing.png", "prediction": "apple"},
            {"path": good[3]},
            {"path": good[3], "prediction": "apple", "confidence": "very"}]
    file = tmp_path / "predictions.jsonl"
    file.write_text("\n".join(json.dumps(r) for r in rows) + "\n{not json\n")
    result = import_predictions(opened, file)
    assert (result.rows, result.written) == (7, 3)
    assert result.unknown_points == ["nowhere/missing.png"]
    assert result.unknown_labels == {"durian": 1} or set(result.unknown_labels) >= {"durian"}
    assert len(result.bad_rows) == 3 and any("not valid JSON" in b for b in result.bad_rows)
    stored = {r.id: r.payload for r in opened.retrieve([point_id(p) for p in good[:3]],
                                                       ["prediction", "prediction_confidence", "prediction_correct"])}
    assert stored[point_id(good[0])] == {"prediction": paths[good[0]], "prediction_confidence": 0.9,
                                         "prediction_correct": True}
    assert stored[point_id(good[1])]["prediction_confidence"] == 0.6
    assert stored[point_id(good[1])]["prediction_correct"] is False


def test_predictions_csv_through_cli(indexed, tmp_path: Path, capsys) -> None:
    store = open_store(path=str(indexed["qdrant"]))
    paths = sorted(r.payload["path"] for b in store.open(indexed["collection"]).scroll(["path"]) for r in b)
    store.close()
    file = tmp_path / "p.csv"
    file.write_text("path,prediction,prob_apple,prob_pear\n" + "".join(f"{p},pear,0.2,0.8\n" for p in paths))
    assert app.main(["--qdrant-path", str(indexed["qdrant"]), "predictions", "--collection", "c", str(file)]) == 0
    assert f"{len(paths)} of {len(paths)} predictions written" in capsys.readouterr().out
    store = open_store(path=str(indexed["qdrant"]))
    try:
        collection = store.open("c")
        assert collection.count(PointFilter(values={"prediction": ["pear"]})) == len(paths)
        correct = [r.payload["prediction_correct"] for b in collection.scroll(["prediction_correct"]) for r in b]
        assert sum(correct) == 4  # the four pears
    finally:
        store.close()
    missing = tmp_path / "none.csv"
    assert app.main(["--qdrant-path", str(indexed["qdrant"]), "predictions", "--collection", "c", str(missing)]) == 2


def test_user_labels_survive_re_indexing_and_restore(tmp_path: Path, mobilenet) -> None:
    root = tmp_path / "images"
    for i in range(4):
        write_image(root / "cat" / f"{i}.png", seed=i)
    store = open_store(path=str(tmp_path / "q"))
    try:
        index_and_analyze(root, store, IndexOptions("c", "mobilenet-v2", progress=False), mobilenet)
        collection = store.open("c")
        target = point_id("cat/0.png")
        assert collection.relabel([target], "lynx") == 1
        write_image(root / "cat" / "0.png", seed=99)  # content changes: re-embedded on the next run
        report = index_and_analyze(root, store, IndexOptions("c", "mobilenet-v2", progress=False), mobilenet)
        assert report.embedded == 1
        payload = collection.retrieve([target], ["label", "original_label"])[0].payload
        assert payload == {"label": "lynx", "original_label": "cat"}
        assert collection.restore_labels([target]) == 1
        assert collection.retrieve([target], ["label"])[0].payload == {"label": "cat"}
    finally:
        store.close()
