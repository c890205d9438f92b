"""Likely missing labels on a real index run (real scenes, real mobilenet-v2, the embedded
Qdrant engine): objects painted but never labelled and background boxes get predictions of the
same confidence; the missing-label score ranks the unlabelled objects first, confidence alone
cannot. Also the `missing-labels` command (ranked CSV) and the scores' file beside the run."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

import app
from detection_fixtures import missing_label_dataset
from evaluation.evaluate import evaluate_run
from evaluation.missing_labels import load_missing_labels, save_missing_labels, score_missing_labels
from evaluation.readers import import_detections
from indexer.pipeline import IndexOptions
from scoring.indexing import index_and_analyze
from store import open_store

def auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """P(a positive outranks a negative), ties half."""
    pos, neg = scores[positive], scores[~positive]
    return float(((pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum())
                 / (len(pos) * len(neg)))


@pytest.fixture(scope="module")
def indexed(tmp_path_factory, mobilenet):
    base = tmp_path_factory.mktemp("missing-labels")
    root, labels, predictions, kinds = missing_label_dataset(base)
    (base / "run.json").write_text(json.dumps(predictions))
    store = open_store(path=str(base / "qdrant"))
    try:
        index_and_analyze(root, store, IndexOptions("m", "mobilenet-v2", labels_file=labels, batch_size=8,
                                                progress=False, analyze=False), mobilenet)
    finally:
        store.close()
    return base, kinds


def test_unlabelled_objects_outrank_background_at_equal_confidence(indexed, mobilenet) -> None:
    base, kinds = indexed
    store = open_store(path=str(base / "qdrant"))
    try:
        objects, images = store.open("m-objects"), store.open("m")
        import_detections(objects, images, base / "run.json", "det")
        evaluation = evaluate_run(objects, images, "det")
        result = score_missing_labels(objects, images, evaluation, mobilenet)
        save_missing_labels(objects, "det", result)
        stored = load_missing_labels(objects, "det")
    finally:
        store.close()
    kind = np.array(kinds)[result.predictions]
    assert sorted(kind.tolist()) == sorted(["unlabelled"] * 16 + ["background"] * 16)  # the candidates
    unlabelled = kind == "unlabelled"
    assert auc(result.scores, unlabelled) > 0.9
    confidence = np.array([0.6] * len(kind))
    assert auc(confidence, unlabelled) == 0.5
    assert np.array_equal(stored.predictions, result.predictions) and np.allclose(stored.scores, result.scores)
    assert np.all(np.diff(result.scores) <= 0)  # best first


def test_missing_labels_command_writes_a_ranked_csv(indexed, capsys) -> None:
    base, kinds = indexed
    flags = ["--qdrant-path", str(base / "qdrant")]
    assert app.main([*flags, "predictions", "--collection", "m-objects", str(base / "run.json"), "--name", "cli"]) == 0
    out = base / "missing.csv"
    assert app.main([*flags, "missing-labels", "--collection", "m-objects", "--out", str(out), "--top", "5"]) == 0
    printed = capsys.readouterr().out
    assert "likely missing labels" in printed
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 32 and {"path", "label", "bbox", "score", "missing_label_score"} <= set(rows[0])
    scores = [float(r["missing_label_score"]) for r in rows]
    assert scores == sorted(scores, reverse=True)
    top = rows[:10]
    truth = {(json.dumps([float(v) for v in p["bbox"]]), f"{p['image_id'] - 1:02d}.png"): k
             for p, k in zip(json.loads((base / "run.json").read_text()), kinds)}
    assert sum(truth[(r["bbox"], r["path"])] == "unlabelled" for r in top) >= 8


def test_accepting_adds_labelled_boxes_that_export_evaluate_and_survive_reindexing(indexed, mobilenet, capsys) -> None:
    base, kinds = indexed
    flags = ["--qdrant-path", str(base / "qdrant")]
    assert app.main([*flags, "predictions", "--collection", "m-objects", str(base / "run.json"), "--name", "acc"]) == 0
    assert app.main([*flags, "missing-labels", "--collection", "m-objects", "--out", str(base / "before.csv")]) == 0
    before = list(csv.DictReader((base / "before.csv").open()))
    capsys.readouterr()
    assert app.main([*flags, "evaluate", "--collection", "m-objects", "--json"]) == 0
    tp_before = json.loads(capsys.readouterr().out)["tp"]
    assert app.main([*flags, "missing-labels", "--collection", "m-objects", "--accept", "1", "2", "3"]) == 0
    assert "added 3 labelled boxes" in capsys.readouterr().out
    store = open_store(path=str(base / "qdrant"))
    try:
        added = [r.payload for batch in store.open("m-objects").scroll(None) for r in batch
                 if r.payload.get("source") == "added"]
    finally:
        store.close()
    assert sorted((p["path"], json.dumps(p["bbox"]), p["label"]) for p in added) == sorted(
        (r["path"], r["bbox"], r["label"]) for r in before[:3])
    assert all(p["review"]["missing_label"]["decision"] == "accepted" for p in added)
    assert all(isinstance(p["x"], float) and p["annotation_id"] > 32 for p in added)
    assert app.main([*flags, "evaluate", "--collection", "m-objects", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["tp"] == tp_before + 3   # those predictions now find a label
    out = base / "export.json"
    assert app.main([*flags, "export", "--collection", "m-objects", "--format", "coco", "--out", str(out)]) == 0
    exported = json.loads(out.read_text())
    boxes = {(a["bbox"][0], a["bbox"][1]) for a in exported["annotations"]}
    assert all((p["bbox"][0], p["bbox"][1]) in boxes for p in added) and len(exported["annotations"]) == 35
    # the next ranking starts after the accepted ones
    assert app.main([*flags, "missing-labels", "--collection", "m-objects", "--accept", "30"]) == 2
    # re-indexing the same folder keeps the accepted boxes
    labels = base / "instances.json"
    store = open_store(path=str(base / "qdrant"))
    try:
        index_and_analyze(base / "images", store, IndexOptions("m", "mobilenet-v2", labels_file=labels, batch_size=8,
                                                           progress=False, analyze=False), mobilenet)
        sources = [r.payload.get("source") for batch in store.open("m-objects").scroll(None) for r in batch]
    finally:
        store.close()
    assert sources.count("added") == 3 and len(sources) == 35


def test_a_badly_placed_box_is_listed_and_moved_onto_the_prediction(indexed, capsys) -> None:
    base, kinds = indexed
    flags = ["--qdrant-path", str(base / "qdrant")]
    predictions = json.loads((base / "run.json").read_text())
    x, y = predictions[0]["bbox"][:2]
    shifted = dict(predictions[0], bbox=[x + (20 if x < 100 else -20), y + (12 if y < 60 else -12), 40, 40],
                   score=0.95)   # the first labelled box, seen 20 px and 12 px off (IoU ~0.25), inside the image
    (base / "shifted.json").write_text(json.dumps([shifted] + predictions[1:]))
    assert app.main([*flags, "predictions", "--collection", "m-objects", str(base / "shifted.json"),
                     "--name", "shifted"]) == 0
    out = base / "placed.csv"
    assert app.main([*flags, "badly-placed", "--collection", "m-objects", "--out", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 1 and json.loads(rows[0]["predicted_bbox"]) == [float(v) for v in shifted["bbox"]]
    assert 0.1 <= float(rows[0]["iou"]) < 0.5 and float(rows[0]["score"]) == 0.95
    capsys.readouterr()
    assert app.main([*flags, "evaluate", "--collection", "m-objects", "--json"]) == 0
    before = json.loads(capsys.readouterr().out)
    assert app.main([*flags, "badly-placed", "--collection", "m-objects", "--accept", rows[0]["id"]]) == 0
    assert "moved 1 boxes" in capsys.readouterr().out
    assert app.main([*flags, "evaluate", "--collection", "m-objects", "--json"]) == 0
    after = json.loads(capsys.readouterr().out)
    assert (after["tp"], after["fn"], after["fp"]) == (before["tp"] + 1, before["fn"] - 1, before["fp"] - 1)
    store = open_store(path=str(base / "qdrant"))
    try:
        record = store.open("m-objects").retrieve([rows[0]["id"]], None, with_vectors=True)[0]
    finally:
        store.close()
    assert record.payload["bbox"] == [float(v) for v in shifted["bbox"]]
    assert record.payload["original_bbox"] == [float(v) for v in predictions[0]["bbox"]]
    assert record.payload["review"]["badly_placed"]["decision"] == "accepted"
    assert record.payload["detection_outcome"] == "tp"
    assert app.main([*flags, "badly-placed", "--collection", "m-objects", "--accept", "no-such-id"]) == 2


def test_a_box_on_nothing_is_listed_as_possibly_spurious(indexed, capsys) -> None:
    """A run that finds every labelled box of the labels file but one: that one is `unseen`, and
    its look-alikes (the other boxes of its class) were found, so it is listed; with every one
    found, none of them is (boxes other tests of this module added stay unseen)."""
    base, kinds = indexed
    flags = ["--qdrant-path", str(base / "qdrant")]
    predictions = [p for p, k in zip(json.loads((base / "run.json").read_text()), kinds) if k == "tp"]
    dropped = predictions[2]   # a box of the second image (the first image's first box may have been moved)
    (base / "all-but-one.json").write_text(json.dumps(predictions[:2] + predictions[3:]))
    assert app.main([*flags, "predictions", "--collection", "m-objects", str(base / "all-but-one.json")]) == 0
    out = base / "spurious.csv"
    assert app.main([*flags, "badly-placed", "--collection", "m-objects", "--spurious", "--out", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    store = open_store(path=str(base / "qdrant"))
    try:
        unseen = {r.id for batch in store.open("m-objects").scroll(["detection_reason"]) for r in batch
                  if r.payload.get("detection_reason") == "unseen"}
    finally:
        store.close()
    assert {r["id"] for r in rows} <= unseen and len(rows) >= 1
    assert [r for r in rows if json.loads(r["bbox"]) == [float(v) for v in dropped["bbox"]]]
    assert all(float(r["neighbours_found"]) >= 0.5 for r in rows)
    (base / "every.json").write_text(json.dumps(predictions))
    assert app.main([*flags, "predictions", "--collection", "m-objects", str(base / "every.json")]) == 0
    assert app.main([*flags, "badly-placed", "--collection", "m-objects", "--spurious", "--out", str(out)]) == 0
    store = open_store(path=str(base / "qdrant"))
    try:
        added = {r.id for batch in store.open("m-objects").scroll(["source"]) for r in batch
                 if r.payload.get("source") == "added"}
    finally:
        store.close()
    assert {r["id"] for r in csv.DictReader(out.open())} <= added
