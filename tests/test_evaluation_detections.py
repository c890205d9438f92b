"""A detector's run end to end through the command line, on the real embedded Qdrant engine:
`predictions` (COCO results, YOLO files, CSV) and `evaluate --json`, whose numbers equal
pycocotools' on the same files (whole set, and a filter's images as params.imgIds), with crowd
boxes, images without labels and a class without boxes; bad rows are reported and nothing is
written; a re-import replaces the run; the labelled boxes get their outcome fields."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import app
from indexer.objects import object_point_id
from store import open_store, point_id
from test_analysis_detection import SUMMARY_KEYS, pycocotools_eval, random_coco

WIDTH, HEIGHT = 640, 480


def clip(box: list[float]) -> list[float]:
    x0, y0 = min(max(box[0], 0.0), WIDTH - 2), min(max(box[1], 0.0), HEIGHT - 2)
    x1, y1 = min(box[0] + box[2], WIDTH), min(box[1] + box[3], HEIGHT)
    return [x0, y0, max(x1 - x0, 1.0), max(y1 - y0, 1.0)]


def detection_dataset(base: Path, seed: int = 5) -> tuple[Path, dict, list[dict]]:
    """An object collection `d-objects` and its image collection `d` built from a random COCO
    ground truth (boxes inside their images), the instances JSON recorded as their labels file."""
    gt, results = random_coco(seed, n_images=40)
    for annotation in gt["annotations"]:
        annotation["bbox"] = clip(annotation["bbox"])
        annotation["area"] = annotation["bbox"][2] * annotation["bbox"][3] * 0.8   # a segment's area, not the box's
    for result in results:
        result["bbox"] = clip(result["bbox"])
    labels = base / "instances.json"
    labels.write_text(json.dumps(gt))
    store = open_store(path=str(base / "qdrant"))
    try:
        images = store.create("d", 4, {"source_root": str(base), "kind": "images", "object_collection": "d-objects",
                                       "labels_file": str(labels)})
        path_of = {image["id"]: image["file_name"] for image in gt["images"]}
        rng = np.random.default_rng(0)
        images.upsert([point_id(p) for p in path_of.values()], rng.normal(size=(len(path_of), 4)),
                      [{"path": p, "label": "", "width": WIDTH, "height": HEIGHT} for p in path_of.values()])
        objects = store.create("d-objects", 4, {
            "kind": "objects", "image_collection": "d",
            "categories": [{"id": c["id"], "name": c["name"]} for c in gt["categories"]]})
        anns = gt["annotations"]
        objects.upsert([object_point_id(path_of[a["image_id"]], a["id"]) for a in anns],
                       rng.normal(size=(len(anns), 4)),
                       [{"path": path_of[a["image_id"]], "image_id": point_id(path_of[a["image_id"]]),
                         "annotation_id": a["id"], "bbox": a["bbox"], "label": f"c{a['category_id']}",
                         "image_width": WIDTH, "image_height": HEIGHT} for a in anns])
        for collection in (images, objects):
            collection.create_index("label", "keyword")
            collection.flush()
    finally:
        store.close()
    return base / "qdrant", gt, results


def cli(qdrant: Path, *argv: str) -> int:
    return app.main(["--qdrant-path", str(qdrant), *argv])


def evaluate_json(qdrant: Path, capsys: pytest.CaptureFixture, *argv: str) -> dict:
    capsys.readouterr()
    assert cli(qdrant, "evaluate", "--collection", "d-objects", "--json", *argv) == 0
    return json.loads(capsys.readouterr().out)


@pytest.fixture
def dataset(tmp_path: Path) -> tuple[Path, dict, list[dict], Path]:
    qdrant, gt, results = detection_dataset(tmp_path)
    results_file = tmp_path / "results.json"
    results_file.write_text(json.dumps(results))
    return qdrant, gt, results, results_file


def test_coco_results_import_and_evaluate_equal_pycocotools(dataset, capsys) -> None:
    qdrant, gt, results, results_file = dataset
    assert cli(qdrant, "predictions", "--collection", "d-objects", str(results_file), "--name", "det") == 0
    assert "run 'det' (coco)" in capsys.readouterr().out
    whole = evaluate_json(qdrant, capsys)
    reference = pycocotools_eval(gt, results)
    assert {k: whole[k] for k in SUMMARY_KEYS} == pytest.approx(dict(zip(SUMMARY_KEYS, reference.stats)), abs=1e-4)
    assert whole["map"] > 0.1 and whole["images"] == 40 and whole["classes"] == ["c0", "c1", "c2", "c3", "c4"]
    assert whole["map_per_class"][4] == -1   # c4 has no labelled box
    # a filter: the images holding a c2 box, as pycocotools' params.imgIds
    chosen = sorted({a["image_id"] for a in gt["annotations"] if a["category_id"] == 2})
    subset = evaluate_json(qdrant, capsys, "--label", "c2")
    reference = pycocotools_eval(gt, results, chosen)
    assert subset["images"] == len(chosen) < 40
    assert {k: subset[k] for k in SUMMARY_KEYS} == pytest.approx(dict(zip(SUMMARY_KEYS, reference.stats)), abs=1e-4)
    text_exit = cli(qdrant, "evaluate", "--collection", "d-objects")
    assert text_exit == 0 and "mAP@[.5:.95]" in capsys.readouterr().out


def test_outcomes_are_written_into_the_labelled_boxes(dataset, capsys) -> None:
    qdrant, gt, results, results_file = dataset
    assert cli(qdrant, "predictions", "--collection", "d-objects", str(results_file)) == 0
    report = evaluate_json(qdrant, capsys, "--iou", "0.5")
    store = open_store(path=str(qdrant))
    try:
        payloads = {r.id: r.payload for batch in store.open("d-objects").scroll(None) for r in batch}
    finally:
        store.close()
    outcomes = [p["detection_outcome"] for p in payloads.values()]
    crowd = sum(a["iscrowd"] for a in gt["annotations"])
    assert outcomes.count("crowd") == crowd > 0
    assert outcomes.count("tp") == report["tp"] and outcomes.count("missed") == report["fn"]
    found = [p for p in payloads.values() if p["detection_outcome"] == "tp"]
    assert all(0.5 <= p["detection_iou"] <= 1 and 0 <= p["detection_score"] <= 1 for p in found)
    missed = [p for p in payloads.values() if p["detection_outcome"] == "missed"]
    reasons = {p.get("detection_reason") for p in missed}
    assert {"badly_placed", "unseen"} <= reasons <= {"badly_placed", "wrong_class", "unseen", None}
    assert all(p.get("detection_reason") is None for p in payloads.values() if p["detection_outcome"] != "missed")
    loose = [p for p in missed if p.get("detection_reason") == "badly_placed"]
    assert all(0.1 <= p["detection_iou"] < 0.5 for p in loose)
    assert all(p.get("detection_iou") is None for p in missed if p.get("detection_reason") == "unseen")


def test_yolo_and_csv_runs_equal_the_coco_run(dataset, tmp_path, capsys) -> None:
    qdrant, gt, results, results_file = dataset
    path_of = {image["id"]: image["file_name"] for image in gt["images"]}
    folder = tmp_path / "predict" / "labels"
    folder.mkdir(parents=True)
    lines: dict[str, list[str]] = {}
    rows = ["path,label,bbox,score"]
    for r in results:
        x, y, w, h = r["bbox"]
        lines.setdefault(Path(path_of[r["image_id"]]).stem, []).append(
            f"{r['category_id']} {(x + w / 2) / WIDTH:.10f} {(y + h / 2) / HEIGHT:.10f} {w / WIDTH:.10f} "
            f"{h / HEIGHT:.10f} {r['score']}")
        rows.append(f'{path_of[r["image_id"]]},c{r["category_id"]},"{x!r},{y!r},{w!r},{h!r}",{r["score"]!r}')
    for stem, text in lines.items():
        (folder / f"{stem}.txt").write_text("\n".join(text) + "\n")
    (tmp_path / "run.csv").write_text("\n".join(rows) + "\n")
    reports = {}
    for name, source in (("coco", results_file), ("yolo", folder), ("csv", tmp_path / "run.csv")):
        assert cli(qdrant, "predictions", "--collection", "d-objects", str(source), "--name", name) == 0
        reports[name] = evaluate_json(qdrant, capsys, "--name", name)
    for name in ("yolo", "csv"):
        assert {k: reports[name][k] for k in SUMMARY_KEYS} == pytest.approx(
            {k: reports["coco"][k] for k in SUMMARY_KEYS}, abs=1e-6)
        assert reports[name]["predictions"] == len(results)


def test_bad_rows_are_reported_and_nothing_is_written(dataset, tmp_path, capsys) -> None:
    qdrant, gt, results, results_file = dataset
    assert cli(qdrant, "predictions", "--collection", "d-objects", str(results_file), "--name", "det") == 0
    bad = [dict(results[0], image_id=999999), dict(results[1], category_id=77),
           dict(results[2], bbox=[600, 400, 100, 100]), dict(results[3], score=1.5),
           dict(results[4], bbox=[1, 2, float("nan"), 3])] + results[5:]
    bad_file = tmp_path / "det.json"
    bad_file.write_text(json.dumps(bad))
    capsys.readouterr()
    assert cli(qdrant, "predictions", "--collection", "d-objects", str(bad_file), "--name", "det") == 2
    err = capsys.readouterr().err
    for where, words in ((0, "unknown image"), (1, "unknown class"), (2, "box outside the image"),
                         (3, "bad score"), (4, "bad bbox")):
        assert f"det.json entry {where}: {words}" in err
    assert "5 of" in err and "nothing was written" in err
    assert evaluate_json(qdrant, capsys, "--name", "det")["predictions"] == len(results)   # the old run stands


def test_reimport_replaces_the_run(dataset, tmp_path, capsys) -> None:
    qdrant, gt, results, results_file = dataset
    assert cli(qdrant, "predictions", "--collection", "d-objects", str(results_file), "--name", "det") == 0
    fewer = tmp_path / "fewer.json"
    fewer.write_text(json.dumps(results[:50]))
    assert cli(qdrant, "predictions", "--collection", "d-objects", str(fewer), "--name", "det") == 0
    assert evaluate_json(qdrant, capsys)["predictions"] == 50
    assert cli(qdrant, "evaluate", "--collection", "d-objects", "--name", "nope") == 2
    assert "no run 'nope' (runs: det)" in capsys.readouterr().err
    assert cli(qdrant, "evaluate", "--collection", "d") == 2


def test_evaluate_by_metric(dataset, capsys) -> None:
    qdrant, gt, results, results_file = dataset
    assert cli(qdrant, "predictions", "--collection", "d-objects", str(results_file)) == 0
    report = evaluate_json(qdrant, capsys, "--by-metric", "--confidence", "0.3")
    by_metric = {m["metric"]: m for m in report["by_metric"]}
    assert {"area", "relative_area", "aspect_ratio"} <= set(by_metric)
    separations = [m["separation"] for m in report["by_metric"]]
    assert separations == sorted(separations, reverse=True)
    area = by_metric["area"]["bins"]
    assert sum(b["boxes"] for b in area) == report["tp"] + report["fn"]
    found = sum(b["recall"] * b["boxes"] for b in area)
    assert found == pytest.approx(report["tp"])
    assert sum(b["predictions"] for b in area) == report["tp"] + report["fp"]
    assert cli(qdrant, "evaluate", "--collection", "d-objects", "--by-metric") == 0
    assert "where the model fails" in capsys.readouterr().out
