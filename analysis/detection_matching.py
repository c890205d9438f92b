"""Match a detector's boxes to the labelled boxes the COCO way, vectorised with numpy. Pure numpy.

    data = DetectionData(...)                      # labelled boxes (gt_*) and predictions (dt_*)
    matching = match(data)                         # every IoU threshold x area range at once
    matching.dt_match[a, t, d]                     # labelled box matched by prediction d, or -1

This reproduces pycocotools' `COCOeval.evaluateImg` exactly, for every image and class at once:

- per image and class, predictions by descending score (ties: the order given), only the first
  `max_det` (100) of each; box IoU as pycocotools computes it (`maskApi.c bbIou`: no +1, a crowd
  box's "union" is the prediction's own area);
- each prediction takes the unmatched labelled box with the highest IoU >= the threshold (on
  equal IoU the later one in the labelled boxes' order), preferring boxes that count (not crowd,
  area in range) over ignored ones; a crowd box can absorb any number of predictions;
- a prediction matched to an ignored box, or unmatched with its own area out of range, is
  ignored (neither true nor false positive).

The greedy loop is sequential only within one (image, class): step r takes the r-th prediction
of every (image, class) at once, over the candidate (prediction, labelled box) pairs with
IoU >= the lowest threshold, sorted once so that a segment's last eligible pair is its match.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# pycocotools' defaults (Params.setDetParams), written out the same way so the floats are equal.
COCO_IOU_THRESHOLDS = np.linspace(.5, 0.95, int(np.round((0.95 - .5) / .05)) + 1, endpoint=True)
RECALL_THRESHOLDS = np.linspace(.0, 1.00, int(np.round((1.00 - .0) / .01)) + 1, endpoint=True)
AREA_RANGES = {"all": (0.0, 1e5 ** 2), "small": (0.0, 32.0 ** 2), "medium": (32.0 ** 2, 96.0 ** 2),
               "large": (96.0 ** 2, 1e5 ** 2)}
MAX_DETS = (1, 10, 100)


@dataclass(frozen=True)
class DetectionData:
    """Labelled boxes and predictions over images 0..n_images-1 and classes 0..n_classes-1.

    Boxes are (n, 4) [x, y, width, height] in pixels. The images' index order is the order
    COCO evaluates them in (its image ids, sorted); the labelled boxes' order within an image
    is their order in the labels file; predictions tied on score keep their order here."""

    n_images: int
    n_classes: int
    gt_image: np.ndarray
    gt_class: np.ndarray
    gt_bbox: np.ndarray
    gt_area: np.ndarray
    gt_crowd: np.ndarray
    dt_image: np.ndarray
    dt_class: np.ndarray
    dt_bbox: np.ndarray
    dt_score: np.ndarray

    @property
    def dt_area(self) -> np.ndarray:
        return self.dt_bbox[:, 2] * self.dt_bbox[:, 3]


@dataclass(frozen=True)
class Matching:
    """The outcome of every prediction and labelled box, per area range a (AREA_RANGES order)
    and IoU threshold t. dt_rank: a prediction's place by score within its image and class
    (rank >= max_det: not evaluated, always ignored)."""

    thresholds: np.ndarray
    max_det: int
    dt_rank: np.ndarray
    dt_match: np.ndarray      # (A, T, n_dt) labelled box index, -1 for none
    dt_ignore: np.ndarray     # (A, T, n_dt) bool
    gt_ignore: np.ndarray     # (A, n_gt) bool
    gt_match: np.ndarray      # (A, T, n_gt) prediction index, -1 for none
    pair_dt: np.ndarray       # candidate pairs (same image and class, IoU >= lowest threshold)
    pair_gt: np.ndarray
    pair_iou: np.ndarray


def box_iou(dt: np.ndarray, gt: np.ndarray, crowd: np.ndarray) -> np.ndarray:
    """IoU of dt[i] with gt[i], as pycocotools' bbIou: a crowd box's union is the prediction's area."""
    dt, gt = np.asarray(dt, np.float64), np.asarray(gt, np.float64)
    w = np.minimum(dt[:, 0] + dt[:, 2], gt[:, 0] + gt[:, 2]) - np.maximum(dt[:, 0], gt[:, 0])
    h = np.minimum(dt[:, 1] + dt[:, 3], gt[:, 1] + gt[:, 3]) - np.maximum(dt[:, 1], gt[:, 1])
    inter = np.where((w > 0) & (h > 0), w * h, 0.0)
    dt_area, gt_area = dt[:, 2] * dt[:, 3], gt[:, 2] * gt[:, 3]
    union = np.where(crowd, dt_area, dt_area + gt_area - inter)
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def score_ranks(image: np.ndarray, cls: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Each prediction's place (0 = best) by descending score within its image and class; ties
    keep the given order (pycocotools sorts with a stable mergesort)."""
    n = len(score)
    if n == 0:
        return np.zeros(0, np.int64)
    order = np.lexsort((np.arange(n), -np.asarray(score, np.float64), cls, image))
    group = np.asarray(image, np.int64)[order] * (int(np.max(cls)) + 1) + np.asarray(cls, np.int64)[order]
    starts = np.r_[0, np.flatnonzero(np.diff(group)) + 1]
    ranks = np.empty(n, np.int64)
    ranks[order] = np.arange(n) - np.repeat(starts, np.diff(np.r_[starts, n]))
    return ranks


def candidate_pairs(data: DetectionData, keep: np.ndarray, lowest: float,
                    by_class: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(prediction, labelled box, IoU) of every pair in one image (and class, when `by_class`)
    with IoU >= lowest, for the predictions where `keep`."""
    n_classes = max(data.n_classes, 1) if by_class else 1
    gt_key = data.gt_image.astype(np.int64) * n_classes + (data.gt_class if by_class else 0)
    gt_order = np.argsort(gt_key, kind="stable")
    sorted_keys = gt_key[gt_order]
    dets = np.flatnonzero(keep)
    dt_key = data.dt_image[dets].astype(np.int64) * n_classes + (data.dt_class[dets] if by_class else 0)
    start = np.searchsorted(sorted_keys, dt_key, "left")
    count = np.searchsorted(sorted_keys, dt_key, "right") - start
    pair_dt = np.repeat(dets, count)
    offsets = np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count)
    pair_gt = gt_order[np.repeat(start, count) + offsets]
    iou = box_iou(data.dt_bbox[pair_dt], data.gt_bbox[pair_gt], data.gt_crowd[pair_gt])
    near = iou >= min(lowest, 1 - 1e-10)
    return pair_dt[near], pair_gt[near], iou[near]


def match(data: DetectionData, thresholds: np.ndarray = COCO_IOU_THRESHOLDS, max_det: int = MAX_DETS[-1],
          area_ranges: dict[str, tuple[float, float]] = AREA_RANGES, by_class: bool = True) -> Matching:
    """Greedy COCO matching at every threshold and area range (see the module docstring);
    `by_class=False` matches across classes (a prediction may take a box of another class)."""
    thresholds = np.minimum(np.asarray(thresholds, np.float64), 1 - 1e-10)
    ranks = score_ranks(data.dt_image, data.dt_class if by_class else np.zeros_like(data.dt_class), data.dt_score)
    evaluated = ranks < max_det
    lowest = float(thresholds.min()) if len(thresholds) else 1.0
    pair_dt, pair_gt, pair_iou = candidate_pairs(data, evaluated, lowest, by_class)
    n_areas, n_t, n_dt, n_gt = len(area_ranges), len(thresholds), len(ranks), len(data.gt_class)
    dt_match = np.full((n_areas, n_t, n_dt), -1, np.int64)
    gt_match = np.full((n_areas, n_t, n_gt), -1, np.int64)
    gt_ignore = np.zeros((n_areas, n_gt), bool)
    dt_ignore = np.zeros((n_areas, n_t, n_dt), bool)
    for a, (low, high) in enumerate(area_ranges.values()):
        gt_ignore[a] = data.gt_crowd | (data.gt_area < low) | (data.gt_area > high)
        _greedy(ranks[pair_dt], pair_dt, pair_gt, pair_iou, gt_ignore[a], data.gt_crowd, thresholds,
                dt_match[a], gt_match[a])
        matched = dt_match[a] >= 0
        out_of_range = (data.dt_area < low) | (data.dt_area > high)
        matched_ignored = gt_ignore[a][np.maximum(dt_match[a], 0)] if n_gt else np.zeros_like(matched)
        dt_ignore[a] = np.where(matched, matched_ignored, out_of_range[None, :])
        dt_ignore[a][:, ~evaluated] = True
    return Matching(thresholds, max_det, ranks, dt_match, dt_ignore, gt_ignore, gt_match, pair_dt, pair_gt,
                    pair_iou)


def _greedy(pair_rank: np.ndarray, pair_dt: np.ndarray, pair_gt: np.ndarray, pair_iou: np.ndarray,
            gt_ignore: np.ndarray, crowd: np.ndarray, thresholds: np.ndarray, dt_match: np.ndarray,
            gt_match: np.ndarray) -> None:
    """Fill dt_match / gt_match (T, n) in place: prediction rank by rank, every (image, class) at
    once. Within one prediction's pairs, sorted by (counts, IoU, labelled box order), the last
    eligible pair is pycocotools' choice."""
    if len(pair_dt) == 0:
        return
    order = np.lexsort((pair_gt, pair_iou, ~gt_ignore[pair_gt], pair_dt, pair_rank))
    p_rank, p_dt, p_gt, p_iou = pair_rank[order], pair_dt[order], pair_gt[order], pair_iou[order]
    p_crowd = crowd[p_gt]
    seg_starts = np.r_[0, np.flatnonzero(np.diff(p_dt)) + 1]
    rank_bounds = np.searchsorted(p_rank, np.arange(int(p_rank.max()) + 2))
    seg_of_rank = np.searchsorted(seg_starts, rank_bounds)
    taken = np.zeros((len(thresholds), len(gt_match[0])), bool)
    for r in range(len(rank_bounds) - 1):
        lo, hi = rank_bounds[r], rank_bounds[r + 1]
        if lo == hi:
            continue
        starts = seg_starts[seg_of_rank[r]:seg_of_rank[r + 1]] - lo
        gts, ious = p_gt[lo:hi], p_iou[lo:hi]
        eligible = (ious[None, :] >= thresholds[:, None]) & (~taken[:, gts] | p_crowd[lo:hi][None, :])
        last = np.maximum.reduceat(np.where(eligible, np.arange(hi - lo)[None, :], -1), starts, axis=1)
        hit = last >= starts[None, :]
        t_hit, s_hit = np.nonzero(hit)
        chosen = gts[last[t_hit, s_hit]]
        dets = p_dt[lo + starts[s_hit]]
        dt_match[t_hit, dets] = chosen
        taken[t_hit, chosen] = True
        gt_match[t_hit, chosen] = dets
