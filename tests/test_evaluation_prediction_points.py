"""A detector's false positives as points of NAME-objects (source: prediction) on a real index
run (real scenes, real mobilenet-v2, the embedded Qdrant engine): written by `missing-labels`,
placed among their look-alikes on the map, coloured as false positives, and never a label: not
in label counts, the evaluation's ground truth, `analyze`'s scores or the COCO export; exported
with `source` and `missing_label_score` in CSV; gone when a run is imported again."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest

import app
from export import export_points
from filters import FilterSpec, matching_ids
from review import ReviewError, parse_status_filter
from review.detection import detection_status
from scoring.analyze import analyze_collection
from store import open_store
from detection_fixtures import missing_label_dataset
from indexer.pipeline import IndexOptions
from scoring.indexing import index_and_analyze
from ui.figure import FIELD_PREFIX, colouring
from ui.state import MapState
from ui.table import PointTable
from filters import SelectionError
from labelling import SelectRequest, select_next

N_IMAGES = 8


@pytest.fixture(scope="module")
def base(tmp_path_factory, mobilenet):
    base = tmp_path_factory.mktemp("prediction-points")
    root, labels, predictions, kinds = missing_label_dataset(base, N_IMAGES)
    (base / "run.json").write_text(json.dumps(predictions))
    store = open_store(path=str(base / "qdrant"))
    try:
        index_and_analyze(root, store, IndexOptions("m", "mobilenet-v2", labels_file=labels, batch_size=8,
                                                progress=False, analyze=False), mobilenet)
    finally:
        store.close()
    return base


def _payloads(base) -> dict[str, dict]:
    store = open_store(path=str(base / "qdrant"))
    try:
        return {r.id: r.payload for batch in store.open("m-objects").scroll(None) for r in batch}
    finally:
        store.close()


def test_false_positives_become_prediction_points_that_are_never_labels(base, capsys) -> None:
    flags = ["--qdrant-path", str(base / "qdrant")]
    assert app.main([*flags, "predictions", "--collection", "m-objects", str(base / "run.json"), "--name", "det"]) == 0
    assert app.main([*flags, "evaluate", "--collection", "m-objects", "--json"]) == 0
    capsys.readouterr()
    assert app.main([*flags, "evaluate", "--collection", "m-objects", "--json"]) == 0
    before = json.loads(capsys.readouterr().out)
    labels_before = {pid: p for pid, p in _payloads(base).items()}
    assert app.main([*flags, "missing-labels", "--collection", "m-objects"]) == 0
    assert f"{2 * N_IMAGES} false positives drawn on the map" in capsys.readouterr().out
    payloads = _payloads(base)
    points = {pid: p for pid, p in payloads.items() if p.get("source") == "prediction"}
    assert len(points) == 2 * N_IMAGES and set(payloads) - set(points) == set(labels_before)
    for p in points.values():
        assert "label" not in p and p["detection_outcome"] == "fp" and p["detection_reason"] == "background"
        assert p["prediction_run"] == "det" and p["detection_score"] == 0.6 and p["predicted_label"]
        assert 0 <= p["missing_label_score"] <= 1 and np.isfinite([p["x"], p["y"]]).all()
    labelled_xy = np.array([[p["x"], p["y"]] for p in labels_before.values()])
    low, high = labelled_xy.min(0), labelled_xy.max(0)
    assert all(np.all(low <= [p["x"], p["y"]]) and np.all([p["x"], p["y"]] <= high) for p in points.values())
    # never a label: the metrics, the label counts and analyze see only the labelled boxes
    assert app.main([*flags, "evaluate", "--collection", "m-objects", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == before
    store = open_store(path=str(base / "qdrant"))
    try:
        objects = store.open("m-objects")
        assert sum(objects.label_counts().values()) == len(labels_before)
        analyze_collection(objects, clusters=None)
        scored = {r.id for batch in objects.scroll(["mislabel_score"]) for r in batch if "mislabel_score" in r.payload}
        assert scored == set(labels_before)
        table = PointTable(objects)
        shown = colouring(table, MapState().set_view(table, colour_by=FIELD_PREFIX + "detection_outcome"))
        legend = {c.name.rsplit(" (", 1)[0]: c.count for c in shown.categories}
        assert legend["false positive: background"] == 2 * N_IMAGES
        export_points(objects, "csv", base / "objects.csv")
        export_points(objects, "coco", base / "objects.json")
        # nor a point to label next: every box is labelled, so select-next finds nothing to choose
        with pytest.raises(SelectionError, match="."):
            select_next(objects, SelectRequest(budget=5, strategy="random"))
    finally:
        store.close()
    rows = list(csv.DictReader((base / "objects.csv").open()))
    assert sorted(r["source"] for r in rows) == sorted(["label"] * len(labels_before) + ["prediction"] * len(points))
    assert all(r["missing_label_score"] for r in rows if r["source"] == "prediction")
    assert all(not r["missing_label_score"] for r in rows if r["source"] == "label")
    coco = json.loads((base / "objects.json").read_text())
    assert len(coco["annotations"]) == len(labels_before)


def test_accepting_a_missing_label_removes_its_prediction_point(base, capsys) -> None:
    flags = ["--qdrant-path", str(base / "qdrant")]
    assert app.main([*flags, "missing-labels", "--collection", "m-objects", "--out", str(base / "ranked.csv")]) == 0
    first = next(csv.DictReader((base / "ranked.csv").open()))
    before = [p for p in _payloads(base).values() if p.get("source") == "prediction"]
    assert app.main([*flags, "missing-labels", "--collection", "m-objects", "--accept", "1"]) == 0
    after = _payloads(base).values()
    points = [(p["path"], json.dumps(p["bbox"])) for p in after if p.get("source") == "prediction"]
    added = [(p["path"], json.dumps(p["bbox"])) for p in after if p.get("source") == "added"]
    assert len(points) == len(before) - 1 and (first["path"], first["bbox"]) not in points
    assert (first["path"], first["bbox"]) in added
    # --review knows the decision: the accepted box, and the prediction points still pending
    store = open_store(path=str(base / "qdrant"))
    try:
        objects = store.open("m-objects")
        accepted = matching_ids(objects, FilterSpec(review="missing_label:accepted"), require=False)
        pending = matching_ids(objects, FilterSpec(review="missing_label:pending"), require=False)
    finally:
        store.close()
    payloads = _payloads(base)
    assert [(payloads[i]["path"], json.dumps(payloads[i]["bbox"])) for i in accepted] == [(first["path"], first["bbox"])]
    assert sorted(pending) == sorted(i for i, p in payloads.items() if p.get("source") == "prediction")


def test_badly_placed_review_status() -> None:
    moved = {"label": "cat", "review": {"badly_placed": {"decision": "accepted", "run": "r", "prediction": 3}}}
    assert detection_status("badly_placed", {"label": "cat", "detection_reason": "badly_placed"}) == "pending"
    assert detection_status("badly_placed", moved) == "accepted"
    assert detection_status("badly_placed", {"label": "cat", "detection_reason": "unseen"}) is None
    assert detection_status("missing_label", {"source": "prediction"}) is None   # not ranked: no candidate
    with pytest.raises(ReviewError, match="missing_label"):
        parse_status_filter("missing_label:kept")


def test_a_new_import_removes_the_prediction_points(base, capsys) -> None:
    flags = ["--qdrant-path", str(base / "qdrant")]
    assert app.main([*flags, "missing-labels", "--collection", "m-objects"]) == 0
    assert any(p.get("source") == "prediction" for p in _payloads(base).values())
    assert app.main([*flags, "predictions", "--collection", "m-objects", str(base / "run.json"), "--name", "det"]) == 0
    assert not any(p.get("source") == "prediction" for p in _payloads(base).values())
