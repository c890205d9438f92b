"""Detection metrics on any set of images, from one `Matching` (analysis/detection_matching.py). Pure numpy.

    metrics = coco_metrics(data, matching, images)   # pycocotools' accumulate + summarize
    metrics.summary()                                # {"map": ..., "map_50": ..., } torchmetrics' names
    counts = threshold_counts(data, matching, images, iou=0.5, confidence=0.3)
    outcome = box_outcomes(data, matching, iou=0.5)  # per labelled box and per prediction

`coco_metrics` is `COCOeval.accumulate()` + `summarize()` with `params.imgIds` = the images:
per class, area range and maxDets, the predictions of those images by descending score (ties:
image order, then the order within the image), the 101-point interpolated precision of the
monotone precision envelope, and the recall reached; a class with no counted labelled box in
the images is left out of the means (-1), as COCO does. Selecting images is cheap: the
matching never depends on which images are evaluated together.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analysis.detection_matching import AREA_RANGES, MAX_DETS, RECALL_THRESHOLDS, DetectionData, Matching, match

AREA_NAMES = tuple(AREA_RANGES)
# Why a false positive is one (box_outcomes), in the order they are checked.
DUPLICATE, WRONG_CLASS, BADLY_PLACED, BACKGROUND = "duplicate", "wrong_class", "badly_placed", "background"
FP_REASONS = (DUPLICATE, WRONG_CLASS, BADLY_PLACED, BACKGROUND)
LOCALISATION_IOU = 0.1  # below this a same-class overlap is no attempt at the object (TIDE's background IoU)
WRONG_CLASS_IOU = 0.5


@dataclass(frozen=True)
class CocoMetrics:
    """precision (T, R, K, A, M) and recall (T, K, A, M) as COCOeval.eval holds them (-1: no
    counted labelled box of that class)."""

    thresholds: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    labelled: np.ndarray   # (K,) counted labelled boxes per class (area all)

    def _mean(self, values: np.ndarray) -> float:
        values = values[values > -1]
        return float(values.mean()) if values.size else -1.0

    def _ap(self, iou: float | None = None, area: str = "all", max_det: int = 100) -> float:
        p = self.precision[..., AREA_NAMES.index(area), MAX_DETS.index(max_det)]
        return self._mean(p if iou is None else p[np.isclose(self.thresholds, iou)])

    def _ar(self, area: str = "all", max_det: int = 100) -> float:
        return self._mean(self.recall[..., AREA_NAMES.index(area), MAX_DETS.index(max_det)])

    def summary(self) -> dict[str, float]:
        """pycocotools' 12 numbers under torchmetrics' MeanAveragePrecision names."""
        return {"map": self._ap(), "map_50": self._ap(0.5), "map_75": self._ap(0.75),
                "map_small": self._ap(area="small"), "map_medium": self._ap(area="medium"),
                "map_large": self._ap(area="large"), "mar_1": self._ar(max_det=1), "mar_10": self._ar(max_det=10),
                "mar_100": self._ar(), "mar_small": self._ar("small"), "mar_medium": self._ar("medium"),
                "mar_large": self._ar("large")}

    def per_class(self) -> tuple[np.ndarray, np.ndarray]:
        """(AP@[.5:.95], AR@100) per class (area all, maxDets 100), -1 where a class has no box."""
        p, r = self.precision[:, :, :, 0, -1], self.recall[:, :, 0, -1]
        ap = np.array([self._mean(p[:, :, k]) for k in range(p.shape[2])])
        ar = np.array([self._mean(r[:, k]) for k in range(r.shape[1])])
        return ap, ar

    def pr_curve(self, cls: int, iou: float = 0.5) -> np.ndarray:
        """The interpolated precision at the 101 recall levels of one class (area all, 100 dets)."""
        return self.precision[np.isclose(self.thresholds, iou), :, cls, 0, -1][0]


def image_mask(n_images: int, images: np.ndarray | None) -> np.ndarray:
    """A boolean mask over the images from indices (None: every image)."""
    if images is None:
        return np.ones(n_images, bool)
    images = np.asarray(images)
    if images.dtype == bool:
        return images
    mask = np.zeros(n_images, bool)
    mask[images.astype(np.int64)] = True
    return mask


def coco_metrics(data: DetectionData, matching: Matching, images: np.ndarray | None = None,
                 full: bool = False) -> CocoMetrics:
    """COCOeval.accumulate over `images` (indices or a mask; None: all). COCO's summary reads
    precision only at maxDets 100; `full` also fills it at maxDets 1 and 10 (left -1 otherwise;
    recall is always complete), as COCOeval.eval holds it."""
    selected = image_mask(data.n_images, images)
    n_t, n_k = len(matching.thresholds), data.n_classes
    precision = -np.ones((n_t, len(RECALL_THRESHOLDS), n_k, len(AREA_NAMES), len(MAX_DETS)))
    recall = -np.ones((n_t, n_k, len(AREA_NAMES), len(MAX_DETS)))
    gt_selected, dt_selected = selected[data.gt_image], selected[data.dt_image]
    labelled = np.zeros(n_k, np.int64)
    ordered = _ordered(data, matching, dt_selected & (matching.dt_rank < MAX_DETS[-1]))
    for a in range(len(AREA_NAMES)):
        counted = np.bincount(data.gt_class[gt_selected & ~matching.gt_ignore[a]], minlength=n_k)
        labelled = counted if a == 0 else labelled
        need = _needed_hits(counted)
        for m, max_det in enumerate(MAX_DETS):
            dets = ordered[matching.dt_rank[ordered] < max_det]
            match_ = matching.dt_match[a][:, dets] >= 0
            ignored = matching.dt_ignore[a][:, dets]
            hits, cls = match_ & ~ignored, data.dt_class[dets]
            if full or max_det == MAX_DETS[-1]:
                q, r = _curves(cls, hits, ~match_ & ~ignored, counted, need)
                precision[:, :, :, a, m] = np.where(counted > 0, q, -1.0)
            else:  # recall is the last running recall of each class: its hits over its boxes
                found = np.stack([np.bincount(cls[row], minlength=n_k) for row in hits]).astype(np.float64)
                r = found / np.maximum(counted, 1)
            recall[:, :, a, m] = np.where(counted > 0, r, -1.0)
    return CocoMetrics(matching.thresholds, precision, recall, labelled)


def _ordered(data: DetectionData, matching: Matching, keep: np.ndarray) -> np.ndarray:
    """The kept predictions by class, then descending score; ties by image, then rank in it."""
    dets = np.flatnonzero(keep)
    order = np.lexsort((matching.dt_rank[dets], data.dt_image[dets], -data.dt_score[dets], data.dt_class[dets]))
    return dets[order]


def _needed_hits(counted: np.ndarray) -> np.ndarray:
    """(K, R): the fewest true positives whose recall, tp / counted as pycocotools divides, reaches
    each recall threshold (exact: the integer is corrected by the same float division)."""
    total = np.maximum(counted, 1).astype(np.float64)[:, None]
    need = np.ceil(RECALL_THRESHOLDS[None, :] * total).astype(np.int64)
    for _ in range(2):
        need = np.where((need > 0) & ((need - 1) / total >= RECALL_THRESHOLDS), need - 1, need)
        need = np.where(need / total < RECALL_THRESHOLDS, need + 1, need)
    return need


def _curves(cls: np.ndarray, hits: np.ndarray, misses: np.ndarray, counted: np.ndarray,
            need: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(T, R, K) interpolated precision and (T, K) recall of predictions sorted by class then score,
    every class at once: per-class cumulative counts, the monotone precision envelope, and the
    first prediction reaching each recall threshold, as COCOeval.accumulate computes them."""
    n_t, n = hits.shape
    n_k = len(counted)
    starts, ends = np.searchsorted(cls, np.arange(n_k), "left"), np.searchsorted(cls, np.arange(n_k), "right")
    q, recall = np.zeros((n_t, len(RECALL_THRESHOLDS), n_k)), np.zeros((n_t, n_k))
    if n == 0:
        return q, recall
    tp, fp = (_within_class(np.cumsum(v, axis=1), starts, cls) for v in (hits, misses))
    pr = tp / (fp + tp + np.spacing(1))
    envelope = _suffix_max(pr, starts, ends)
    has = ends > starts
    recall[:, has] = tp[:, ends[has] - 1] / np.maximum(counted[has], 1)
    span = n + 2
    keys = ((np.arange(n_t)[:, None] * n_k + cls[None, :]) * span + tp).ravel()
    block = np.arange(n_t)[:, None, None] * n_k + np.arange(n_k)[None, None, :]
    found = np.searchsorted(keys, (block * span + need.T[None, :, :]).ravel()).reshape(n_t, len(RECALL_THRESHOLDS), n_k)
    offset = np.arange(n_t)[:, None, None] * n
    inside = found < offset + ends[None, None, :]
    flat = envelope.ravel()
    q[inside] = flat[found[inside]]
    return q, recall


def _within_class(cumulative: np.ndarray, starts: np.ndarray, cls: np.ndarray) -> np.ndarray:
    """Per-class running counts from running counts over all classes (sorted by class)."""
    before = np.where(starts > 0, cumulative[:, np.maximum(starts - 1, 0)], 0)
    return (cumulative - before[:, cls]).astype(np.float64)


def _suffix_max(values: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Each value's maximum with the values after it in its class (row by row): COCO's monotone
    precision envelope, one cumulative maximum from the end per class."""
    out = np.empty_like(values)
    for start, end in zip(starts.tolist(), ends.tolist()):
        if end > start:
            out[:, start:end] = np.maximum.accumulate(values[:, start:end][:, ::-1], axis=1)[:, ::-1]
    return out


@dataclass(frozen=True)
class ThresholdCounts:
    """At one IoU threshold and confidence, over some images: per class (K,) and totals."""

    true_positives: np.ndarray
    false_positives: np.ndarray
    missed: np.ndarray
    confusion: np.ndarray  # (K+1, K+1): rows labelled class + background, columns predicted + background

    def totals(self) -> dict[str, float]:
        tp, fp, fn = (int(v.sum()) for v in (self.true_positives, self.false_positives, self.missed))
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return {"tp": tp, "fp": fp, "fn": fn, "precision": precision, "recall": recall, "f1": f1}


def threshold_index(matching: Matching, iou: float) -> int:
    """The matching's index of IoU threshold `iou` (ValueError when it was not matched at it)."""
    found = np.flatnonzero(np.isclose(matching.thresholds, min(iou, 1 - 1e-10)))
    if not found.size:
        raise ValueError(f"IoU {iou} is not one of the matched thresholds {matching.thresholds.tolist()}")
    return int(found[0])


def threshold_counts(data: DetectionData, matching: Matching, images: np.ndarray | None, iou: float = 0.5,
                     confidence: float = 0.0) -> ThresholdCounts:
    """TP / FP / missed per class and the confusion matrix of the predictions scoring >= confidence
    (area all, maxDets 100). Greedy matching by score means a higher confidence only drops the
    lowest predictions, never changes a match. The confusion matrix pairs what is left (false
    positives, missed boxes) once more across classes, COCO's greedy way at the same IoU: such a
    pair is a wrong class; an unpaired prediction is background, an unpaired box missed."""
    t = threshold_index(matching, iou)
    selected = image_mask(data.n_images, images)
    n_k = data.n_classes
    dets = selected[data.dt_image] & (data.dt_score >= confidence) & ~matching.dt_ignore[0, t]
    gts = selected[data.gt_image] & ~matching.gt_ignore[0]
    hit = dets & (matching.dt_match[0, t] >= 0)
    false = dets & (matching.dt_match[0, t] < 0)
    found = gts & np.isin(matching.gt_match[0, t], np.flatnonzero(hit))
    tp = np.bincount(data.dt_class[hit], minlength=n_k)
    confusion = np.zeros((n_k + 1, n_k + 1), np.int64)
    np.add.at(confusion, (data.dt_class[hit], data.dt_class[hit]), 1)
    _confuse(data, false, gts & ~found, iou, confusion)
    return ThresholdCounts(tp, np.bincount(data.dt_class[false], minlength=n_k),
                           np.bincount(data.gt_class[gts & ~found], minlength=n_k), confusion)


def _confuse(data: DetectionData, false: np.ndarray, missed: np.ndarray, iou: float, confusion: np.ndarray) -> None:
    """Add the false positives and missed boxes to the confusion matrix (threshold_counts)."""
    fp, fn = np.flatnonzero(false), np.flatnonzero(missed)
    rest = DetectionData(data.n_images, 1, data.gt_image[fn], np.zeros(len(fn), np.int64), data.gt_bbox[fn],
                         data.gt_area[fn], np.zeros(len(fn), bool), data.dt_image[fp], np.zeros(len(fp), np.int64),
                         data.dt_bbox[fp], data.dt_score[fp])
    across = match(rest, np.array([iou]), max_det=max(len(fp), 1), area_ranges={"all": AREA_RANGES["all"]})
    paired = across.dt_match[0, 0]
    background = data.n_classes
    pred = data.dt_class[fp]
    labelled = np.append(data.gt_class[fn], background)  # -1 (unpaired) picks the background
    true = labelled[np.where(paired >= 0, paired, len(fn))]
    np.add.at(confusion, (true, pred), 1)
    unpaired = across.gt_match[0, 0] < 0
    np.add.at(confusion, (data.gt_class[fn][unpaired], background), 1)
