"""select-next --strategy uncertain-boxes on a detection dataset with a real imported run (the
evaluation tests' COCO data on the embedded engine): the images without labelled boxes whose
predicted boxes sit nearest the confidence threshold, tagged in the image collection, and their
files carrying the run's boxes as pre-annotations (Label Studio, COCO, YOLO)."""
from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from store import open_store, point_id
from test_evaluation_detections import HEIGHT, WIDTH, cli, detection_dataset


@pytest.fixture
def detection_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("QDRANT_URL", raising=False)
    monkeypatch.setenv("EMBEDSCAPE_ARTIFACTS", str(tmp_path / "artifacts"))
    qdrant, gt, results = detection_dataset(tmp_path)
    (tmp_path / "results.json").write_text(json.dumps(results))
    assert cli(qdrant, "predictions", "--collection", "d-objects", str(tmp_path / "results.json"), "--name", "det") == 0
    return qdrant, gt, results


def expected_uncertainty(gt: dict, results: list[dict], threshold: float) -> dict[str, float]:
    """Per image without labelled boxes (path -> score): the sum over its predicted boxes of
    max(0, 1 - |score - threshold| / 0.25), written out here from the results file."""
    path_of = {image["id"]: image["file_name"] for image in gt["images"]}
    labelled = {a["image_id"] for a in gt["annotations"]}
    totals = {path_of[i]: 0.0 for i in path_of if i not in labelled}
    for result in results:
        path = path_of[result["image_id"]]
        if path in totals:
            totals[path] += max(0.0, 1.0 - abs(result["score"] - threshold) / 0.25)
    return totals


def tagged_images(qdrant: Path, tag: str) -> set[str]:
    store = open_store(path=str(qdrant))
    try:
        return {r.payload["path"] for batch in store.open("d").scroll() for r in batch
                if tag in (r.payload.get("tags") or [])}
    finally:
        store.close()


def test_uncertain_boxes_chooses_images_and_pre_annotates_them(detection_run, tmp_path: Path, capsys) -> None:
    qdrant, gt, results = detection_run
    expected = expected_uncertainty(gt, results, 0.5)
    capsys.readouterr()
    out = tmp_path / "batch"
    assert cli(qdrant, "select-next", "--collection", "d-objects", "--strategy", "uncertain-boxes", "--run", "det",
               "--budget", "3", "--out", str(out)) == 0
    printed = capsys.readouterr().out
    assert f"chose 3 of {len(expected)} unlabelled points by uncertain-boxes (run det)" in printed
    chosen = tagged_images(qdrant, "batch-1")
    assert len(chosen) == 3 and chosen <= set(expected)
    assert min(expected[p] for p in chosen) >= max(expected[p] for p in set(expected) - chosen)
    assert max(expected.values()) > 0

    # Pre-annotations: every box of the run scoring at least 0.25 on the chosen images.
    path_of = {image["id"]: image["file_name"] for image in gt["images"]}
    boxes = defaultdict(list)
    for result in results:
        if path_of[result["image_id"]] in chosen and result["score"] >= 0.25:
            boxes[path_of[result["image_id"]]].append(result)
    assert sum(len(v) for v in boxes.values()) > 0
    tasks = json.loads((out / "batch-1-label-studio.json").read_text())
    assert {t["data"]["path"] for t in tasks} == chosen
    for task in tasks:
        regions = task.get("predictions", [{"result": []}])[0]["result"]
        wanted = boxes[task["data"]["path"]]
        assert len(regions) == len(wanted)
        assert sorted(r["score"] for r in regions) == pytest.approx(sorted(b["score"] for b in wanted))
        if regions:
            first = regions[0]
            assert first["type"] == "rectanglelabels" and first["original_width"] == WIDTH
            match = [b for b in wanted if abs(100 * b["bbox"][0] / WIDTH - first["value"]["x"]) < 1e-6
                     and abs(100 * b["bbox"][3] / HEIGHT - first["value"]["height"]) < 1e-6]
            assert match and first["value"]["rectanglelabels"] == [f"c{match[0]['category_id']}"]
    coco = json.loads((out / "batch-1-coco.json").read_text())
    assert {i["file_name"] for i in coco["images"]} == chosen
    assert len(coco["annotations"]) == sum(len(v) for v in boxes.values())
    names = {c["id"]: c["name"] for c in coco["categories"]}
    assert all(names[a["category_id"]].startswith("c") and "score" in a for a in coco["annotations"])
    for path in chosen:
        rows = (out / "batch-1-yolo" / "labels" / Path(path).with_suffix(".txt")).read_text().splitlines()
        assert len(rows) == len(boxes[path])
        assert all(0 <= float(v) <= 1.0 + 1e-6 for row in rows for v in row.split()[1:])
    assert (out / "batch-1-yolo" / "data.yaml").is_file()


def test_the_threshold_moves_the_choice(detection_run, capsys) -> None:
    qdrant, gt, results = detection_run
    expected = expected_uncertainty(gt, results, 0.2)
    assert cli(qdrant, "select-next", "--collection", "d", "--strategy", "uncertain-boxes", "--threshold", "0.2",
               "--budget", "2", "--tag", "low") == 0
    chosen = tagged_images(qdrant, "low")
    assert min(expected[p] for p in chosen) >= max(expected[p] for p in set(expected) - chosen)


@pytest.mark.parametrize("argv, message", [
    (["--run", "nope"], "has no run 'nope'"),
    (["--threshold", "1.5"], "--threshold must be between 0 and 1"),
])
def test_bad_run_requests_write_nothing(detection_run, capsys, argv, message) -> None:
    qdrant, _, _ = detection_run
    capsys.readouterr()
    assert cli(qdrant, "select-next", "--collection", "d", "--strategy", "uncertain-boxes", "--budget", "2",
               *argv) == 2
    assert message in capsys.readouterr().err
    assert not tagged_images(qdrant, "batch-1")


def test_uncertain_boxes_needs_a_detection_dataset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.delenv("QDRANT_URL", raising=False)
    monkeypatch.setenv("EMBEDSCAPE_ARTIFACTS", str(tmp_path / "artifacts"))
    store = open_store(path=str(tmp_path / "qdrant"))
    plain = store.create("plain", 4, {"source_root": str(tmp_path)})
    plain.upsert([point_id(f"{i}.png") for i in range(5)], np.random.default_rng(0).normal(size=(5, 4)),
                 [{"path": f"{i}.png", "label": ""} for i in range(5)])
    store.close()
    assert cli(tmp_path / "qdrant", "select-next", "--collection", "plain", "--strategy", "uncertain-boxes",
               "--budget", "2") == 2
    assert "chooses images of a detection dataset" in capsys.readouterr().err
