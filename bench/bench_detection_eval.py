"""Detector evaluation at COCO size: import, matching and metrics against pycocotools and
faster-coco-eval in the same process, on the same boxes; then a 1,000-image selection as the
Model performance tab re-evaluates it.

    .venv/bin/pip install -r bench/requirements.txt
    .venv/bin/python bench/bench_detection_eval.py [--images 5000] [--boxes 36000] [--runs 3]

Fixture (synthetic, deterministic, built in a temporary folder): --images 640x480 images and
--boxes labelled boxes over 80 classes (0 to 20 an image, some images with none), box sides
log-uniform 8..400 px (all three COCO sizes), 1 % crowd regions, a COCO `area` below the
box's (a segment's); predictions: 1 to 3 jittered copies of each box (10 % another class),
and background boxes, 100,000+ in all, scores uniform. The object collection is the real
embedded Qdrant engine (4-d vectors: nothing here depends on them).

Timed (medians of --runs; pycocotools and faster-coco-eval: COCO() + loadRes + evaluate +
accumulate + summarize, what a user runs):
- import: `import_detections` (read + check the COCO results JSON, save the run);
- evaluate: `evaluate_run` (labels from the collection, run from its file, the matching at 10
  IoU thresholds x 4 area ranges) + `report` of every image;
- selection: a random 1,000 images, chosen as the tab gets them (all their boxes' ids):
  `images_of` + `report` (the metrics once, as the tab computes them);
and the 12 summary numbers of ours against both, on the whole set and on the selection.

Missing labels (--missing-images, real mobilenet-v2, a real index run): scenes of coloured
objects (tests/detection_fixtures.py `scene`) with three objects an image of which two are
labelled; a detector run that finds the labelled ones (0.9), the unlabelled one (0.6) and a
patch of background (0.6, a random class). The unexplained predictions ranked by
`missing_label_score` against confidence alone: average precision and recall in the top N
(N = number of unlabelled objects), with the unlabelled objects as positives.

Prints Markdown and writes bench/results/detection_eval.json.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from evaluation.evaluate import evaluate_run  # noqa: E402
from evaluation.readers import import_detections  # noqa: E402
from indexer.objects import object_point_id  # noqa: E402
from store import open_store, point_id  # noqa: E402

RESULTS = ROOT / "bench" / "results"
KEYS = ("map", "map_50", "map_75", "map_small", "map_medium", "map_large", "mar_1", "mar_10", "mar_100",
        "mar_small", "mar_medium", "mar_large")
W, H, CLASSES = 640, 480, 80


def fixture(n_images: int, n_boxes: int, seed: int = 0) -> tuple[dict, list[dict]]:
    rng = np.random.default_rng(seed)
    images = [{"id": i + 1, "file_name": f"{i:05d}.jpg", "width": W, "height": H} for i in range(n_images)]
    per_image = rng.multinomial(n_boxes, rng.dirichlet(np.full(n_images, 0.7)))
    annotations, results = [], []
    for image, count in zip(images, per_image):
        for _ in range(int(count)):
            side = float(np.exp(rng.uniform(np.log(8), np.log(400))))
            w, h = min(side * rng.uniform(0.6, 1.4), W - 1), min(side, H - 1)
            box = [float(rng.uniform(0, W - w)), float(rng.uniform(0, H - h)), w, h]
            cls = int(rng.integers(1, CLASSES + 1))
            annotations.append({"id": len(annotations) + 1, "image_id": image["id"], "category_id": cls,
                                "bbox": box, "area": w * h * 0.7, "iscrowd": int(rng.random() < 0.01)})
            for _ in range(int(rng.integers(1, 4))):
                results.append(_jittered(rng, box, cls, image["id"]))
        for _ in range(int(rng.integers(4, 13))):
            w, h = (float(v) for v in rng.uniform(10, 200, 2))
            results.append({"image_id": image["id"], "category_id": int(rng.integers(1, CLASSES + 1)),
                            "bbox": [float(rng.uniform(0, W - w)), float(rng.uniform(0, H - h)), w, h],
                            "score": float(rng.random())})
    gt = {"images": images, "annotations": annotations,
          "categories": [{"id": k, "name": f"class{k}"} for k in range(1, CLASSES + 1)]}
    return gt, results


def _jittered(rng: np.random.Generator, box: list[float], cls: int, image: int) -> dict:
    x, y, w, h = (v + rng.normal(0, 0.08 * max(box[2], box[3])) for v in box)
    x, y = min(max(x, 0.0), W - 2), min(max(y, 0.0), H - 2)
    w, h = min(max(w, 1.0), W - x), min(max(h, 1.0), H - y)
    other = int(rng.integers(1, CLASSES + 1))
    return {"image_id": image, "category_id": cls if rng.random() < 0.9 else other, "bbox": [x, y, w, h],
            "score": float(rng.random())}


def build_collections(base: Path, gt: dict, labels: Path) -> None:
    store = open_store(path=str(base / "qdrant"))
    try:
        path_of = {i["id"]: i["file_name"] for i in gt["images"]}
        images = store.create("b", 4, {"kind": "images", "object_collection": "b-objects",
                                       "labels_file": str(labels)})
        rng = np.random.default_rng(1)
        ids = [point_id(p) for p in path_of.values()]
        images.upsert(ids, rng.normal(size=(len(ids), 4)),
                      [{"path": p, "width": W, "height": H} for p in path_of.values()])
        objects = store.create("b-objects", 4, {"kind": "objects", "image_collection": "b",
                                                "categories": gt["categories"]})
        anns = gt["annotations"]
        for start in range(0, len(anns), 5000):
            chunk = anns[start:start + 5000]
            objects.upsert([object_point_id(path_of[a["image_id"]], a["id"]) for a in chunk],
                           rng.normal(size=(len(chunk), 4)),
                           [{"path": path_of[a["image_id"]], "image_id": point_id(path_of[a["image_id"]]),
                             "annotation_id": a["id"], "bbox": a["bbox"], "label": f"class{a['category_id']}",
                             "image_width": W, "image_height": H} for a in chunk])
        for collection in (images, objects):
            collection.flush()
    finally:
        store.close()


def reference(module: str, gt: dict, results: list[dict], image_ids: list[int] | None = None) -> tuple[list, float]:
    """(stats, seconds) of pycocotools or faster_coco_eval: COCO() + loadRes + evaluate + accumulate + summarize."""
    if module == "pycocotools":
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    else:
        from faster_coco_eval import COCO
        from faster_coco_eval import COCOeval_faster as COCOeval
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = json.loads(json.dumps(gt))
        coco.createIndex()
        evaluation = COCOeval(coco, coco.loadRes(json.loads(json.dumps(results))), "bbox")
        if image_ids is not None:
            evaluation.params.imgIds = image_ids
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return [float(v) for v in evaluation.stats[:12]], time.perf_counter() - started


def ours(base: Path, results_file: Path, labels: Path, chosen_paths: list[str]) -> dict:
    store = open_store(path=str(base / "qdrant"))
    try:
        objects, images = store.open("b-objects"), store.open("b")
        started = time.perf_counter()
        import_detections(objects, images, results_file, "bench", labels)
        imported = time.perf_counter() - started
        started = time.perf_counter()
        evaluation = evaluate_run(objects, images, "bench")
        whole = evaluation.report(None, 0.5)
        evaluated = time.perf_counter() - started
        wanted = set(chosen_paths)
        box_ids = [object_point_id(p, a) for p, a in zip(*_boxes(objects)) if p in wanted]
        started = time.perf_counter()
        mask = evaluation.images_of(box_ids)
        metrics = evaluation.metrics(mask)
        selection = evaluation.report(mask, 0.5, metrics)
        metrics.pr_curve(0)
        selected = time.perf_counter() - started
    finally:
        store.close()
    return {"import_s": imported, "evaluate_s": evaluated, "selection_s": selected, "whole": whole,
            "selection": selection}


def _boxes(objects) -> tuple[list[str], list[int]]:
    columns = objects.columns(["path", "annotation_id"])
    return list(columns.values["path"]), [int(a) for a in columns.values["annotation_id"]]


def missing_label_ranking(n_images: int) -> dict:
    """Average precision and recall@N of the missing-label score and of confidence alone."""
    from sklearn.metrics import average_precision_score

    sys.path.insert(0, str(ROOT / "tests"))
    from evaluation.missing_labels import score_missing_labels
    from indexer.models import load_embedder
    from indexer.pipeline import IndexOptions
    from scoring.indexing import index_and_analyze
    from test_evaluation_missing_labels import missing_label_dataset

    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        os.environ["EMBEDSCAPE_ARTIFACTS"] = str(base / "artifacts")
        root, labels, predictions, kinds = missing_label_dataset(base, n_images)
        (base / "run.json").write_text(json.dumps(predictions))
        embedder = load_embedder("mobilenet-v2", precision="fp32")
        store = open_store(path=str(base / "qdrant"))
        try:
            index_and_analyze(root, store, IndexOptions("m", "mobilenet-v2", labels_file=labels, progress=False,
                                                    analyze=False, precision="fp32"), embedder)
            objects, images = store.open("m-objects"), store.open("m")
            import_detections(objects, images, base / "run.json", "det")
            started = time.perf_counter()
            result = score_missing_labels(objects, images, evaluate_run(objects, images, "det"), embedder)
            seconds = time.perf_counter() - started
        finally:
            store.close()
    positive = np.array(kinds)[result.predictions] == "unlabelled"
    confidence = np.array([predictions[i]["score"] for i in result.predictions])
    top = int(positive.sum())
    shuffled = np.random.default_rng(0).permutation(len(confidence))  # equal confidences: any order
    by_confidence = shuffled[np.argsort(-confidence[shuffled], kind="stable")]
    return {"candidates": len(positive), "unlabelled": top, "seconds": seconds,
            "score_ap": float(average_precision_score(positive, result.scores)),
            "confidence_ap": float(average_precision_score(positive, confidence)),
            "score_recall_at_n": float(positive[:top].mean()),
            "confidence_recall_at_n": float(positive[by_confidence][:top].mean())}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--boxes", type=int, default=36000)
    parser.add_argument("--selection", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--missing-images", type=int, default=150, help="missing-label fixture images (0: skip)")
    args = parser.parse_args()
    ranking = missing_label_ranking(args.missing_images) if args.missing_images else None
    gt, results = fixture(args.images, args.boxes)
    rng = np.random.default_rng(2)
    labelled_images = sorted({a["image_id"] for a in gt["annotations"]})
    chosen = sorted(rng.choice(labelled_images, min(args.selection, len(labelled_images)), replace=False).tolist())
    path_of = {i["id"]: i["file_name"] for i in gt["images"]}
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        os.environ["EMBEDSCAPE_ARTIFACTS"] = str(base / "artifacts")
        labels, results_file = base / "instances.json", base / "results.json"
        labels.write_text(json.dumps(gt))
        results_file.write_text(json.dumps(results))
        build_collections(base, gt, labels)
        timings = [ours(base, results_file, labels, [path_of[i] for i in chosen]) for _ in range(args.runs)]
    refs = {name: [reference(name, gt, results) for _ in range(args.runs)] for name in ("pycocotools", "faster_coco_eval")}
    subset = {name: reference(name, gt, results, chosen) for name in ("pycocotools", "faster_coco_eval")}
    report(args, gt, results, timings, refs, subset, ranking)
    return 0


def report(args: argparse.Namespace, gt: dict, results: list[dict], timings: list[dict], refs: dict,
           subset: dict, ranking: dict | None) -> None:
    median = lambda values: statistics.median(values)  # noqa: E731
    mine = {k: median([t[k] for t in timings]) for k in ("import_s", "evaluate_s", "selection_s")}
    whole = [timings[0]["whole"][k] for k in KEYS]
    selection = [timings[0]["selection"][k] for k in KEYS]
    out = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": platform.processor() or
           platform.machine(), "cpus": os.cpu_count(), "load": os.getloadavg()[0], "images": args.images,
           "boxes": len(gt["annotations"]), "predictions": len(results), "runs": args.runs, **mine,
           "reference_s": {n: median([r[1] for r in v]) for n, v in refs.items()},
           "max_difference": {n: max(abs(a - b) for a, b in zip(whole, v[0][0])) for n, v in refs.items()},
           "selection_images": timings[0]["selection"]["images"],
           "selection_reference_s": {n: v[1] for n, v in subset.items()},
           "selection_max_difference": {n: max(abs(a - b) for a, b in zip(selection, v[0])) for n, v in subset.items()},
           "ours": dict(zip(KEYS, whole)), "pycocotools": dict(zip(KEYS, refs["pycocotools"][0][0])),
           "missing_labels": ranking}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "detection_eval.json").write_text(json.dumps(out, indent=2))
    print(f"{out['images']} images, {out['boxes']} boxes, {out['predictions']} predictions; {args.runs} runs, "
          f"{out['cpus']} CPUs, load {out['load']:.1f}\n")
    print("| step | embedscape | pycocotools | faster-coco-eval | max difference of the 12 numbers |")
    print("|---|---|---|---|---|")
    py, fast = out["reference_s"]["pycocotools"], out["reference_s"]["faster_coco_eval"]
    print(f"| whole set: match + metrics | {mine['evaluate_s']:.2f} s | {py:.2f} s ({py / mine['evaluate_s']:.1f}x) "
          f"| {fast:.2f} s ({fast / mine['evaluate_s']:.1f}x) | {out['max_difference']['pycocotools']:.1e} / "
          f"{out['max_difference']['faster_coco_eval']:.1e} |")
    sp, sf = out["selection_reference_s"]["pycocotools"], out["selection_reference_s"]["faster_coco_eval"]
    print(f"| {out['selection_images']} selected images | {mine['selection_s']:.3f} s | {sp:.2f} s | {sf:.2f} s | "
          f"{out['selection_max_difference']['pycocotools']:.1e} / "
          f"{out['selection_max_difference']['faster_coco_eval']:.1e} |")
    print(f"| import (read + check + save) | {mine['import_s']:.2f} s | | | |")
    if ranking:
        print(f"\nmissing labels: {ranking['unlabelled']} unlabelled objects among {ranking['candidates']} unexplained "
              f"predictions ({ranking['seconds']:.1f} s to score)\n")
        print("| ranking | average precision | recall in the top N |\n|---|---|---|")
        print(f"| missing_label_score | {ranking['score_ap']:.3f} | {ranking['score_recall_at_n']:.3f} |")
        print(f"| confidence alone | {ranking['confidence_ap']:.3f} | {ranking['confidence_recall_at_n']:.3f} |")


if __name__ == "__main__":
    sys.exit(main())
