"""A detector run's three review queues (evaluation/review_queues.py) on a real index run (real scenes, real
mobilenet-v2, the embedded Qdrant engine): what each queue holds and in what order, what an
accept does to the collection (a box added, a box moved, a box excluded), that undo puts every
point back as it was, and the `--review` filter values and export columns the decisions give."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from detection_fixtures import index_detector_run
from evaluation.evaluate import evaluate_run
from evaluation.missing_labels import load_missing_labels
from evaluation.prediction_points import prediction_point
from export import export_points
from filters import FilterSpec, matching_ids
from store import PointFilter
from review import PENDING, ReviewError, parse_status_filter
from evaluation.review_queues import (
    BADLY_PLACED, MISSING_LABEL, SPURIOUS, DetectorQueues, accept_missing_label, move_box, undo_missing_label,
    undo_move_box,
)
from ui.detector_review import DetectorReviewer, QueueBooks
from ui.table import PointTable

DROPPED = 4   # the first labelled box of the second image: no prediction at all (a possibly spurious box)


@pytest.fixture(scope="module")
def run(tmp_path_factory, mobilenet):
    base = tmp_path_factory.mktemp("detector-queues")
    store, predictions, _ = index_detector_run(base, mobilenet, 8, shift_first=True, drop=DROPPED)
    yield base, store.open("m-objects"), predictions
    store.close()


def snapshot(objects) -> dict[str, tuple[dict, np.ndarray]]:
    return {r.id: (r.payload, np.asarray(r.vector)) for batch in objects.scroll(None, with_vectors=True) for r in batch}


def rounded(value):
    """The payload with its floats to 6 places (a re-embedded crop's map place differs in the last bits)."""
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    return [rounded(v) for v in value] if isinstance(value, list) else value


def assert_same(before: dict, after: dict) -> None:
    assert sorted(before) == sorted(after)
    for pid, (payload, vector) in before.items():
        assert rounded(after[pid][0]) == rounded(payload), pid
        assert np.allclose(after[pid][1], vector, atol=1e-5), pid


def review_ids(objects, wanted: str) -> list[str]:
    return sorted(matching_ids(objects, FilterSpec(review=wanted, include_excluded=True), require=False))


def test_each_queue_holds_its_candidates_best_first(run) -> None:
    base, objects, predictions = run
    queues = DetectorQueues(objects)
    ranking = load_missing_labels(objects, "det")
    missing = queues.items(MISSING_LABEL)
    assert [item.key for item in missing] == [str(p) for p in ranking.predictions.tolist()]
    assert [item.score for item in missing] == sorted((item.score for item in missing), reverse=True)
    assert all(item.status == PENDING for item in missing)
    placed = queues.items(BADLY_PLACED)
    assert len(placed) == 1 and placed[0].score == 0.95 and 0.1 <= placed[0].tie < 0.5
    assert queues.evidence(BADLY_PLACED, placed[0].key).predicted == [float(v) for v in predictions[0]["bbox"]]
    spurious = queues.items(SPURIOUS)
    reasons = {r.id: r.payload.get("detection_reason") for r in objects.retrieve([i.key for i in spurious],
                                                                               ["detection_reason"])}
    assert spurious and set(reasons.values()) == {"unseen"}
    assert all(item.tie >= 0.5 for item in spurious)
    # the missing-label card's evidence: its crop's nearest labelled boxes, not the prediction itself
    neighbours = queues.neighbours(MISSING_LABEL, missing[0].key)
    assert len(neighbours) == 10 and prediction_point("det", int(missing[0].key)) not in [n[0] for n in neighbours]
    assert review_ids(objects, "missing_label:pending") == sorted(item.ids[0] for item in missing
                                                                   if objects.retrieve([item.ids[0]], []))
    assert review_ids(objects, "spurious:pending") == sorted(item.key for item in spurious)
    assert parse_status_filter("spurious:excluded") == ("spurious", "excluded")
    with pytest.raises(ReviewError, match="excluded"):
        parse_status_filter("spurious:accepted")


def test_accepting_a_missing_label_adds_a_box_and_undo_removes_it_exactly(run, mobilenet, tmp_path) -> None:
    base, objects, predictions = run
    before, ranking_before = snapshot(objects), load_missing_labels(objects, "det")
    queues = DetectorQueues(objects)
    item = queues.items(MISSING_LABEL)[1]
    row = int(item.key)
    added = accept_missing_label(objects, queues.evaluation, row, mobilenet)
    payload = objects.retrieve([added], None)[0].payload
    assert payload["source"] == "added" and payload["label"] == item.label
    assert payload["bbox"] == [float(v) for v in predictions[row]["bbox"]]
    assert payload["review"]["missing_label"]["decision"] == "accepted" and payload["detection_outcome"] == "tp"
    assert objects.retrieve([prediction_point("det", row)], []) == []   # a labelled box now, no false positive
    assert row not in load_missing_labels(objects, "det").predictions.tolist()
    again = DetectorQueues(objects)
    assert again.item(MISSING_LABEL, item.key).status == "accepted"
    assert again.item(MISSING_LABEL, item.key).ids == (added,)
    assert review_ids(objects, "missing_label:accepted") == [added]
    out = tmp_path / "coco.json"
    export_points(objects, "coco", out)
    assert [float(v) for v in predictions[row]["bbox"]] in [a["bbox"] for a in json.loads(out.read_text())["annotations"]]

    assert undo_missing_label(objects, added, mobilenet) == row
    assert_same(before, snapshot(objects))
    after = load_missing_labels(objects, "det")
    assert after.predictions.tolist() == ranking_before.predictions.tolist()
    assert np.allclose(after.scores, ranking_before.scores)


def test_moving_a_badly_placed_box_and_undo(run, mobilenet) -> None:
    base, objects, predictions = run
    before = snapshot(objects)
    item = DetectorQueues(objects).items(BADLY_PLACED)[0]
    old = before[item.key][0]["bbox"]
    move_box(objects, evaluate_run(objects, None), item.key, mobilenet)
    record = objects.retrieve([item.key], None, with_vectors=True)[0]
    assert record.payload["bbox"] == [float(v) for v in predictions[0]["bbox"]]
    assert record.payload["original_bbox"] == old and record.payload["detection_outcome"] == "tp"
    assert record.payload["review"]["badly_placed"]["previous"] == old
    assert not np.allclose(record.vector, before[item.key][1], atol=1e-3)   # the crop follows the box
    assert review_ids(objects, "badly_placed:accepted") == [item.key]
    moved = DetectorQueues(objects)
    assert moved.item(BADLY_PLACED, item.key).status == "accepted"
    assert 0 in load_missing_labels(objects, "det").predictions.tolist()   # ranked as badly placed ...
    assert moved.item(MISSING_LABEL, "0") is None   # ... and now the moved box's match: no missing label
    undo_move_box(objects, item.key, mobilenet)
    assert_same(before, snapshot(objects))
    assert DetectorQueues(objects).item(MISSING_LABEL, "0") is not None
    assert review_ids(objects, "badly_placed:accepted") == []


def test_excluding_a_spurious_box_leaves_it_out_of_exports_and_undo(run, mobilenet, tmp_path) -> None:
    base, objects, _ = run
    before = snapshot(objects)
    table = PointTable(objects)
    books = QueueBooks(None, lambda: DetectorQueues(objects))
    item = books.items(SPURIOUS)[0]
    reviewer = DetectorReviewer(table, books, lambda: mobilenet)
    assert "Excluded" in reviewer.decide(item, "exclude")
    payload = objects.retrieve([item.key], ["tags", "review"])[0].payload
    assert payload["tags"] == ["excluded"] and payload["review"]["spurious"]["decision"] == "excluded"
    assert review_ids(objects, "spurious:excluded") == [item.key]
    assert item.key not in review_ids(objects, "spurious:pending")
    out = tmp_path / "boxes.csv"
    export_points(objects, "csv", out, PointFilter())   # excluded boxes too
    rows = {r["id"]: r for r in csv.DictReader(out.open())}
    assert rows[item.key]["spurious_review"] == "excluded"
    assert {r["source"] for r in rows.values()} == {"label", "prediction"}
    assert all(r["missing_label_score"] for r in rows.values() if r["source"] == "prediction")
    assert {r["missing_label_review"] for r in rows.values() if r["source"] == "prediction"} == {PENDING}
    export_points(objects, "coco", tmp_path / "coco.json")
    annotations = json.loads((tmp_path / "coco.json").read_text())["annotations"]
    assert before[item.key][0]["annotation_id"] not in [a["id"] for a in annotations]
    assert len(annotations) == sum(p.get("source") != "prediction" for p, _ in before.values()) - 1
    assert reviewer.undo(SPURIOUS, [item.key]) == 1
    assert_same(before, snapshot(objects))
