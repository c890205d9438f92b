"""COCO detection matching and metrics against pycocotools on the same boxes: crowd boxes, empty
images, images without labels, a class without boxes, tied scores, >100 predictions in one image
and class, every object size; the whole set and subsets of images (pycocotools' params.imgIds)."""
from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from analysis.detection_matching import DetectionData, box_iou, match
from analysis.detection_metrics import coco_metrics, threshold_counts

SUMMARY_KEYS = ("map", "map_50", "map_75", "map_small", "map_medium", "map_large", "mar_1", "mar_10", "mar_100",
                "mar_small", "mar_medium", "mar_large")
N_CLASSES = 5  # class 4 never has a labelled box


def random_coco(seed: int, n_images: int = 60) -> tuple[dict, list[dict]]:
    """A COCO ground truth and a results list: noisy copies of the boxes, shifted and class-swapped
    ones, background boxes, one image flooded with 130 predictions of one class."""
    rng = np.random.default_rng(seed)
    images = [{"id": i * 3 + 7, "file_name": f"{i}.png", "width": 640, "height": 480} for i in range(n_images)]
    annotations, results = [], []
    for image in images:
        n_boxes = 0 if image["id"] % 5 == 0 else int(rng.integers(1, 9))   # every 5th image: no labels
        for _ in range(n_boxes):
            side = float(np.exp(rng.uniform(np.log(8), np.log(300))))
            box = [float(rng.uniform(0, 300)), float(rng.uniform(0, 200)), side * rng.uniform(0.5, 1.5), side]
            crowd = int(rng.random() < 0.08)
            annotations.append({"id": len(annotations) + 1, "image_id": image["id"], "bbox": box, "iscrowd": crowd,
                                "category_id": int(rng.integers(0, N_CLASSES - 1)), "area": box[2] * box[3]})
            for _ in range(int(rng.integers(0, 3))):
                jitter = np.asarray(box) + rng.normal(0, 0.06 * side, 4)
                jitter[2:] = np.maximum(jitter[2:], 1.0)
                cls = annotations[-1]["category_id"] if rng.random() < 0.8 else int(rng.integers(0, N_CLASSES))
                results.append({"image_id": image["id"], "category_id": cls, "bbox": jitter.tolist(),
                                "score": float(np.round(rng.random(), 2))})   # rounded: many tied scores
        for _ in range(int(rng.integers(0, 4))):
            results.append({"image_id": image["id"], "category_id": int(rng.integers(0, N_CLASSES)),
                            "bbox": [float(v) for v in rng.uniform([0, 0, 5, 5], [500, 400, 120, 120])],
                            "score": float(rng.random())})
    flooded = images[1]["id"]
    for _ in range(130):
        results.append({"image_id": flooded, "category_id": 1, "score": float(rng.random()),
                        "bbox": [float(v) for v in rng.uniform([0, 0, 10, 10], [300, 300, 200, 200])]})
    gt = {"images": images, "annotations": annotations,
          "categories": [{"id": k, "name": f"c{k}"} for k in range(N_CLASSES)]}
    return gt, results


def pycocotools_eval(gt: dict, results: list[dict], image_ids: list[int] | None = None) -> COCOeval:
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = gt
        coco.createIndex()
        evaluation = COCOeval(coco, coco.loadRes(results), "bbox")
        if image_ids is not None:
            evaluation.params.imgIds = image_ids
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return evaluation


def as_data(gt: dict, results: list[dict]) -> tuple[DetectionData, list[int]]:
    ids = sorted(image["id"] for image in gt["images"])
    index = {image_id: i for i, image_id in enumerate(ids)}
    anns = gt["annotations"]
    return DetectionData(
        n_images=len(ids), n_classes=N_CLASSES,
        gt_image=np.array([index[a["image_id"]] for a in anns], np.int64),
        gt_class=np.array([a["category_id"] for a in anns], np.int64),
        gt_bbox=np.array([a["bbox"] for a in anns], np.float64).reshape(-1, 4),
        gt_area=np.array([a["area"] for a in anns], np.float64),
        gt_crowd=np.array([a["iscrowd"] for a in anns], bool),
        dt_image=np.array([index[r["image_id"]] for r in results], np.int64),
        dt_class=np.array([r["category_id"] for r in results], np.int64),
        dt_bbox=np.array([r["bbox"] for r in results], np.float64).reshape(-1, 4),
        dt_score=np.array([r["score"] for r in results], np.float64)), ids


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_metrics_equal_pycocotools_on_the_whole_set_and_on_subsets(seed: int) -> None:
    gt, results = random_coco(seed)
    data, ids = as_data(gt, results)
    matching = match(data)
    reference = pycocotools_eval(gt, results)
    ours = coco_metrics(data, matching, full=True)
    assert ours.summary() == pytest.approx(dict(zip(SUMMARY_KEYS, reference.stats)), abs=1e-4)
    np.testing.assert_allclose(ours.precision, reference.eval["precision"], atol=1e-9)
    np.testing.assert_allclose(ours.recall, reference.eval["recall"], atol=1e-9)
    assert ours.summary()["map"] > 0.1 and ours.per_class()[0][N_CLASSES - 1] == -1
    rng = np.random.default_rng(seed)
    for size in (1, 7, 30):
        chosen = sorted(rng.choice(len(ids), size, replace=False).tolist())
        subset = pycocotools_eval(gt, results, [ids[i] for i in chosen])
        mine = coco_metrics(data, matching, np.array(chosen), full=size > 1)
        assert mine.summary() == pytest.approx(dict(zip(SUMMARY_KEYS, subset.stats)), abs=1e-4)
        if size > 1:
            np.testing.assert_allclose(mine.precision, subset.eval["precision"], atol=1e-9)
        else:  # the summary's precision only: at maxDets 100
            np.testing.assert_allclose(mine.precision[..., -1], subset.eval["precision"][..., -1], atol=1e-9)
        np.testing.assert_allclose(mine.recall, subset.eval["recall"], atol=1e-9)


def test_every_match_equals_pycocotools_evaluate_img() -> None:
    gt, results = random_coco(3, n_images=25)
    data, ids = as_data(gt, results)
    matching = match(data)
    reference = pycocotools_eval(gt, results)
    seen = 0
    for record in reference.evalImgs:
        if record is None:
            continue
        a = [list(r) for r in reference.params.areaRng].index(list(record["aRng"]))
        for t in range(10):
            for dt_id, gt_id, ignored in zip(record["dtIds"], record["dtMatches"][t], record["dtIgnore"][t]):
                expected = int(gt_id) - 1  # annotation ids are 1-based positions
                assert matching.dt_match[a, t, dt_id - 1] == expected
                assert matching.dt_ignore[a, t, dt_id - 1] == bool(ignored)
                seen += 1
    assert seen > 1000


def test_crowd_iou_is_over_the_prediction_area() -> None:
    dt = np.array([[0.0, 0, 10, 10], [0, 0, 10, 10]])
    gt = np.array([[0.0, 0, 100, 100], [5, 0, 10, 10]])
    assert box_iou(dt, gt, np.array([True, False])).tolist() == pytest.approx([1.0, 50 / 150])


def test_counts_and_confusion_at_a_confidence() -> None:
    """Two images: a cat found, a dog called a cat, a missed bird, a background prediction."""
    data = DetectionData(
        n_images=2, n_classes=3,
        gt_image=np.array([0, 0, 1]), gt_class=np.array([0, 1, 2]),
        gt_bbox=np.array([[0.0, 0, 10, 10], [50, 50, 20, 20], [0, 0, 30, 30]]),
        gt_area=np.array([100.0, 400, 900]), gt_crowd=np.zeros(3, bool),
        dt_image=np.array([0, 0, 1, 0]), dt_class=np.array([0, 0, 0, 0]),
        dt_bbox=np.array([[1.0, 0, 10, 10], [50, 51, 20, 20], [200, 200, 10, 10], [0, 0, 10, 10]]),
        dt_score=np.array([0.9, 0.8, 0.7, 0.2]))
    matching = match(data)
    counts = threshold_counts(data, matching, None, iou=0.5, confidence=0.5)
    assert counts.true_positives.tolist() == [1, 0, 0]
    assert counts.false_positives.tolist() == [2, 0, 0]
    assert counts.missed.tolist() == [0, 1, 1]
    # rows: cat, dog, bird, background; columns: the same
    assert counts.confusion.tolist() == [[1, 0, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1], [1, 0, 0, 0]]
    assert counts.totals()["precision"] == pytest.approx(1 / 3) and counts.totals()["recall"] == pytest.approx(1 / 3)
    low = threshold_counts(data, matching, None, iou=0.5, confidence=0.0)
    assert low.false_positives.tolist() == [3, 0, 0]  # the 0.2 duplicate of the found cat
    only_second = threshold_counts(data, matching, np.array([1]), iou=0.5, confidence=0.5)
    assert only_second.totals() == {"tp": 0, "fp": 1, "fn": 1, "precision": 0.0, "recall": 0.0, "f1": 0.0}


def test_false_positive_reasons_and_box_outcomes() -> None:
    """One image: a cat found (and found again, lower), a dog box predicted as cat, a cat box
    predicted loosely, a prediction on empty ground, and a crowd region that swallows one."""
    from analysis.detection_outcomes import box_outcomes

    data = DetectionData(
        n_images=1, n_classes=2,
        gt_image=np.zeros(4, np.int64), gt_class=np.array([0, 1, 0, 0]),
        gt_bbox=np.array([[0.0, 0, 20, 20], [100, 100, 20, 20], [200, 0, 40, 40], [300, 300, 100, 100]]),
        gt_area=np.array([400.0, 400, 1600, 10000]), gt_crowd=np.array([False, False, False, True]),
        dt_image=np.zeros(6, np.int64), dt_class=np.zeros(6, np.int64),
        dt_bbox=np.array([[0.0, 0, 20, 20], [1, 1, 20, 20], [101, 100, 20, 20], [220, 20, 40, 40],
                          [500, 500, 10, 10], [310, 310, 10, 10]]),
        dt_score=np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4]))
    outcome = box_outcomes(data, match(data), iou=0.5)
    assert outcome.dt_outcome.tolist() == ["tp", "fp", "fp", "fp", "fp", "ignored"]
    assert outcome.dt_reason.tolist() == ["", "duplicate", "wrong_class", "badly_placed", "background", ""]
    assert outcome.gt_outcome.tolist() == ["tp", "missed", "missed", "crowd"]
    assert outcome.gt_match.tolist() == [0, -1, -1, -1]
    assert outcome.gt_iou[0] == pytest.approx(1.0) and outcome.gt_score[0] == pytest.approx(0.9)
    assert outcome.dt_iou[3] == pytest.approx(400 / 2800)
    assert outcome.gt_reason.tolist() == ["", "wrong_class", "badly_placed", ""]
    assert outcome.gt_near.tolist() == [-1, -1, 3, -1]
    assert outcome.gt_iou[2] == pytest.approx(400 / 2800) and outcome.gt_score[2] == pytest.approx(0.6)
    lonely = DetectionData(1, 1, np.array([0]), np.array([0]), np.array([[0.0, 0, 10, 10]]), np.array([100.0]),
                           np.zeros(1, bool), np.array([0]), np.array([0]), np.array([[50.0, 50, 10, 10]]),
                           np.array([0.9]))
    assert box_outcomes(lonely, match(lonely)).gt_reason.tolist() == ["unseen"]


def test_no_labelled_box_and_no_prediction() -> None:
    """Nothing labelled: every prediction is a false positive, no class has an AP; nothing predicted: all missed."""
    empty = np.zeros(0, np.int64)
    boxes = np.zeros((0, 4))
    only_predictions = DetectionData(2, 2, empty, empty, boxes, np.zeros(0), np.zeros(0, bool),
                                     np.array([0, 1]), np.array([0, 1]), np.array([[0.0, 0, 5, 5], [1, 1, 5, 5]]),
                                     np.array([0.5, 0.7]))
    counts = threshold_counts(only_predictions, match(only_predictions), None)
    assert counts.totals()["fp"] == 2 and counts.confusion[2].tolist() == [1, 1, 0]
    assert coco_metrics(only_predictions, match(only_predictions)).summary()["map"] == -1
    only_labels = DetectionData(1, 1, np.array([0]), np.array([0]), np.array([[0.0, 0, 5, 5]]), np.array([25.0]),
                                np.zeros(1, bool), empty, empty, boxes, np.zeros(0))
    assert coco_metrics(only_labels, match(only_labels)).summary()["map"] == 0.0
    assert threshold_counts(only_labels, match(only_labels), None).totals()["fn"] == 1
