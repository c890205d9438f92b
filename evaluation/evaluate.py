"""Evaluate a detector's run against an object collection's labelled boxes, on any set of images.

    evaluation = evaluate_run(objects, images, run="yolo-v8")   # match once (every IoU threshold)
    mask = evaluation.images_of(object_point_ids)                  # a selection: the images it is in
    evaluation.report(mask, confidence=0.3)                        # COCO metrics, counts, confusion
    write_outcomes(objects, evaluation)                            # detection_outcome per labelled box

The labelled boxes are the collection's current ones (a box relabelled in the app counts with
its new class); the images are every image of the image collection (images without a
labelled box count: their predictions are false positives), in COCO image id order where the
run knows it. Matching is done once per run; a selection only picks images, as COCOeval's
`params.imgIds` does, so the numbers equal pycocotools' on the same images.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from analysis.detection_matching import COCO_IOU_THRESHOLDS, DetectionData, Matching, match
from analysis.detection_metrics import CocoMetrics, ThresholdCounts, coco_metrics, threshold_counts
from analysis.detection_outcomes import BoxOutcomes, box_outcomes
from evaluation.runs import DetectionRun, load_run
from store import Collection, PointFilter
from store.schema import (
    ANNOTATION_ID, BBOX, CATEGORIES, DETECTION_FIELDS, DETECTION_IOU, DETECTION_OUTCOME, DETECTION_REASON,
    DETECTION_SCORE, IMAGE_ID, LOOKALIKES_FOUND,
    LABEL, PATH, PREDICTION_SOURCE, SOURCE,
)

BACKGROUND_NAME = "background"


@dataclass
class RunEvaluation:
    """One run matched against the labels. `image_ids[i]` is image i of `data`; `gt_ids[j]` the
    object point of labelled box j."""

    run: DetectionRun
    data: DetectionData
    matching: Matching
    classes: list[str]
    image_ids: np.ndarray
    gt_ids: np.ndarray
    iou: float
    _outcomes: BoxOutcomes | None = field(default=None, repr=False)

    def images_of(self, object_ids: Sequence[str] | None) -> np.ndarray | None:
        """The mask of the images that hold the given object points (None: every image)."""
        if object_ids is None:
            return None
        mask = np.zeros(self.data.n_images, bool)
        mask[self.data.gt_image[np.isin(self.gt_ids, np.asarray(list(object_ids), dtype=str))]] = True
        return mask

    def image_mask(self, image_point_ids: Sequence[str]) -> np.ndarray:
        """The mask of images given by their image point ids."""
        return np.isin(self.image_ids, np.asarray(list(image_point_ids), dtype=self.image_ids.dtype))

    def metrics(self, images: np.ndarray | None = None) -> CocoMetrics:
        return coco_metrics(self.data, self.matching, images)

    def counts(self, images: np.ndarray | None = None, confidence: float = 0.0) -> ThresholdCounts:
        return threshold_counts(self.data, self.matching, images, self.iou, confidence)

    def outcomes(self) -> BoxOutcomes:
        """Each box's and prediction's outcome at `iou` (computed once)."""
        if self._outcomes is None:
            self._outcomes = box_outcomes(self.data, self.matching, self.iou)
        return self._outcomes

    def report(self, images: np.ndarray | None = None, confidence: float = 0.0,
               metrics: CocoMetrics | None = None) -> dict[str, Any]:
        """Everything the command line prints and the app shows, as plain JSON values (`metrics`:
        those of the same images, when the caller has them already)."""
        mask = np.ones(self.data.n_images, bool) if images is None else images
        metrics = metrics or self.metrics(mask)
        counts = self.counts(mask, confidence)
        ap, ar = metrics.per_class()
        ap50 = [float(np.mean(metrics.pr_curve(k, 0.5))) if metrics.labelled[k] else -1.0
                for k in range(len(self.classes))]
        per_class = [{"class": name, "ap": float(ap[k]), "ap_50": ap50[k], "ar_100": float(ar[k]),
                      "labelled": int(metrics.labelled[k]), "tp": int(counts.true_positives[k]),
                      "fp": int(counts.false_positives[k]), "fn": int(counts.missed[k])}
                     for k, name in enumerate(self.classes)]
        return {"run": self.run.name, "iou": self.iou, "confidence": confidence, "images": int(mask.sum()),
                "labelled_boxes": int((mask[self.data.gt_image] & ~self.data.gt_crowd).sum()),
                "predictions": int(mask[self.data.dt_image].sum()), **metrics.summary(),
                "map_per_class": [float(v) for v in ap], "mar_100_per_class": [float(v) for v in ar],
                "classes": list(self.classes), **counts.totals(), "per_class": per_class,
                "confusion": {"labels": [*self.classes, BACKGROUND_NAME], "matrix": counts.confusion.tolist()}}


def evaluate_run(objects: Collection, images: Collection | None, run: str | None = None,
                 iou: float = 0.5) -> RunEvaluation:
    """Load the run and the labels and match them at COCO's ten IoU thresholds (and `iou`)."""
    loaded = load_run(objects, run)
    data, classes, image_ids, gt_ids = detection_data(objects, images, loaded)
    thresholds = COCO_IOU_THRESHOLDS
    if not np.isclose(thresholds, iou).any():
        thresholds = np.append(thresholds, iou)
    return RunEvaluation(loaded, data, match(data, thresholds), classes, image_ids, gt_ids, iou)


def _labels(objects: Collection, run: DetectionRun) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(object ids, image ids, labels, boxes) of the labelled boxes, by image and annotation id."""
    columns = objects.columns([LABEL, BBOX, IMAGE_ID, ANNOTATION_ID, SOURCE])
    labelled = np.array([s != PREDICTION_SOURCE for s in columns.values[SOURCE]], bool)  # not a detector's point
    ids = np.asarray(columns.ids, dtype=str)[labelled]
    labels = np.array([str(v or "") for v in columns.values[LABEL]], dtype=str)[labelled]
    images = np.array([str(v or "") for v in columns.values[IMAGE_ID]], dtype=str)[labelled]
    boxes = np.array([v if isinstance(v, list) and len(v) == 4 else [0, 0, 0, 0] for v in columns.values[BBOX]],
                     dtype=np.float64).reshape(-1, 4)[labelled]
    annotation = np.array([v if isinstance(v, (int, float)) else -1 for v in columns.values[ANNOTATION_ID]])[labelled]
    order = np.lexsort((ids, annotation, images))
    return ids[order], images[order], labels[order], boxes[order]


def _images(images: Collection | None, extra: list[np.ndarray], run: DetectionRun) -> np.ndarray:
    """Every image point id, in the order COCO evaluates them: COCO image id where the run
    knows it, then path (then point id)."""
    if images is not None:
        columns = images.columns([PATH])
        ids = np.asarray(columns.ids, dtype=str)
        paths = np.array([str(v or "") for v in columns.values[PATH]], dtype=str)
    else:
        ids = np.unique(np.concatenate(extra)) if extra else np.array([], str)
        paths = ids
    missing = np.setdiff1d(np.concatenate(extra), ids) if extra else np.array([], str)
    ids, paths = np.concatenate([ids, missing]), np.concatenate([paths, missing])
    coco = dict(zip(run.order_ids.tolist(), run.order.tolist()))
    keys = np.array([coco.get(pid, np.inf) for pid in ids.tolist()], dtype=np.float64)
    return ids[np.lexsort((ids, paths, keys))]


def detection_data(objects: Collection, images: Collection | None,
                   run: DetectionRun) -> tuple[DetectionData, list[str], np.ndarray, np.ndarray]:
    """The labels and the run as DetectionData, with its class names, image ids and box ids."""
    gt_ids, gt_images, gt_labels, gt_boxes = _labels(objects, run)
    image_ids = _images(images, [gt_images, np.asarray(run.image_id, str)], run)
    categories = [str(c["name"]) for c in objects.read_metadata().get(CATEGORIES) or []]
    classes = list(dict.fromkeys([*categories, *sorted(set(gt_labels.tolist()) | set(run.label.tolist()))]))
    class_index = {name: k for k, name in enumerate(classes)}
    image_index = {pid: i for i, pid in enumerate(image_ids.tolist())}
    area = dict(zip(run.area_ids.tolist(), run.area.tolist()))
    crowd = set(run.crowd_ids.tolist())
    data = DetectionData(
        n_images=len(image_ids), n_classes=len(classes),
        gt_image=np.array([image_index[i] for i in gt_images.tolist()], np.int64),
        gt_class=np.array([class_index[c] for c in gt_labels.tolist()], np.int64),
        gt_bbox=gt_boxes,
        gt_area=np.array([area.get(pid, b[2] * b[3]) for pid, b in zip(gt_ids.tolist(), gt_boxes.tolist())]),
        gt_crowd=np.array([pid in crowd for pid in gt_ids.tolist()], bool),
        dt_image=np.array([image_index[i] for i in run.image_id.tolist()], np.int64),
        dt_class=np.array([class_index[c] for c in run.label.tolist()], np.int64),
        dt_bbox=np.asarray(run.bbox, np.float64).reshape(-1, 4), dt_score=np.asarray(run.score, np.float64))
    return data, classes, image_ids, gt_ids


def write_outcomes(objects: Collection, evaluation: RunEvaluation) -> int:
    """Write each labelled box's outcome (tp / missed / crowd), why a missed one was missed, the
    IoU and score of the prediction that found it (missed: its nearest same-class one) and, for
    a box no prediction overlaps, the share of its look-alikes the run found (`lookalikes_found`:
    what the possibly-spurious queue and `--review spurious:` read) into its payload; returns
    the number of boxes written."""
    outcome = evaluation.outcomes()
    found = lookalikes_found(objects, evaluation)
    payloads = [{DETECTION_OUTCOME: str(o), DETECTION_REASON: str(r) or None,
                 DETECTION_IOU: None if np.isnan(i) else float(i), DETECTION_SCORE: None if np.isnan(s) else float(s),
                 LOOKALIKES_FOUND: found.get(point)}
                for point, o, r, i, s in zip(evaluation.gt_ids.tolist(), outcome.gt_outcome.tolist(),
                                             outcome.gt_reason.tolist(), outcome.gt_iou.tolist(),
                                             outcome.gt_score.tolist())]
    objects.set_payloads(evaluation.gt_ids.tolist(), payloads)
    objects.index_fields(DETECTION_FIELDS)
    objects.flush()
    return len(payloads)


def lookalikes_found(objects: Collection, evaluation: RunEvaluation, k: int = 10) -> dict[str, float]:
    """For each labelled box no prediction of any class overlaps (`unseen`): the share of its k
    nearest labelled boxes (by its own vector) that the run found. A box the detector cannot
    see while it finds most of its look-alikes is possibly spurious."""
    outcome = evaluation.outcomes()
    unseen = [str(evaluation.gt_ids[j]) for j in np.flatnonzero(outcome.gt_reason == "unseen").tolist()]
    if not unseen:
        return {}
    hit = dict(zip(evaluation.gt_ids.tolist(), (outcome.gt_outcome == "tp").tolist()))
    labelled = PointFilter(labels=sorted(objects.label_counts()))  # prediction points have no label
    shares: dict[str, float] = {}
    for record in objects.retrieve(unseen, [], with_vectors=True):
        hits = [h for h in objects.search(record.vector, limit=k + 1, flt=labelled, fields=[]) if h.id != record.id][:k]
        shares[record.id] = float(np.mean([hit.get(h.id, False) for h in hits])) if hits else 0.0
    return shares
