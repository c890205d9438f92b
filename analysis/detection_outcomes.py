"""What happened to each labelled box and each prediction at one IoU threshold. Pure numpy.

    outcome = box_outcomes(data, matching, iou=0.5)
    outcome.gt_outcome   "tp" | "missed" | "crowd"   (a crowd region is never missed)
    outcome.gt_match / gt_iou / gt_score             the prediction that found it (-1 / NaN)
    outcome.gt_reason    why a box was missed (GT_REASONS), "" otherwise
    outcome.gt_near / gt_iou / gt_score              a missed box's nearest same-class prediction
    outcome.dt_outcome   "tp" | "fp" | "ignored"     (ignored: matched a crowd region, or past maxDets)
    outcome.dt_reason    why a false positive is one (FP_REASONS), "" otherwise
    outcome.dt_iou       its best IoU with a labelled box of its class

Matches are COCO's (area all, maxDets 100). A false positive's reason is the first that holds:
- duplicate: a box of its class overlaps it at the IoU threshold, but a higher-scoring
  prediction already took that box;
- wrong_class: a box of another class overlaps it at IoU >= 0.5;
- badly_placed: a box of its class overlaps it at IoU 0.1 up to the threshold;
- background: nothing labelled there (IoU < 0.1 with every box of its class).
A missed labelled box's reason, the first that holds:
- badly_placed: a prediction of its class overlaps it at IoU 0.1 up to the threshold (the
  detector saw the object; the box or the prediction is off): gt_near is the most
  overlapping one, gt_iou / gt_score its IoU and score;
- wrong_class: a prediction of another class overlaps it at IoU >= 0.5;
- unseen: no prediction of any class overlaps it at IoU >= 0.1 (nothing there for the
  detector: a hard object, or a spurious box);
- "" otherwise (only weak overlaps of other classes).

These are TIDE's error types (Bolya et al. 2020: duplicate, classification, localisation,
background), with classification checked before localisation: a prediction sitting squarely on
an object of another class is a class error, whatever its overlap with a box of its own class.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analysis.detection_matching import DetectionData, Matching, box_iou, candidate_pairs
from analysis.detection_metrics import (
    BACKGROUND, BADLY_PLACED, DUPLICATE, LOCALISATION_IOU, WRONG_CLASS, WRONG_CLASS_IOU, threshold_index,
)


UNSEEN = "unseen"
GT_REASONS = (BADLY_PLACED, WRONG_CLASS, UNSEEN)


@dataclass(frozen=True)
class BoxOutcomes:
    gt_outcome: np.ndarray
    gt_match: np.ndarray
    gt_iou: np.ndarray
    gt_score: np.ndarray
    gt_reason: np.ndarray
    gt_near: np.ndarray
    dt_outcome: np.ndarray
    dt_reason: np.ndarray
    dt_iou: np.ndarray


def box_outcomes(data: DetectionData, matching: Matching, iou: float = 0.5) -> BoxOutcomes:
    t = threshold_index(matching, iou)
    gt_match, dt_match = matching.gt_match[0, t], matching.dt_match[0, t]
    dt_ignored = matching.dt_ignore[0, t]
    gt_outcome = np.where(data.gt_crowd, "crowd", np.where(gt_match >= 0, "tp", "missed")).astype(object)
    found = (gt_match >= 0) & ~data.gt_crowd
    gt_iou = np.full(len(gt_match), np.nan)
    gt_score = np.full(len(gt_match), np.nan)
    pairs = candidate_pairs(data, np.ones(len(data.dt_score), bool), LOCALISATION_IOU, by_class=False)
    same_class = data.dt_class[pairs[0]] == data.gt_class[pairs[1]]
    gt_iou[found] = box_iou(data.dt_bbox[gt_match[found]], data.gt_bbox[found], np.zeros(int(found.sum()), bool))
    gt_score[found] = data.dt_score[gt_match[found]]
    dt_outcome = np.where(dt_ignored, "ignored", np.where(dt_match >= 0, "tp", "fp")).astype(object)
    dt_iou = np.zeros(len(dt_match))
    own = same_class & ~data.gt_crowd[pairs[1]]
    np.maximum.at(dt_iou, pairs[0][own], pairs[2][own])
    threshold = float(matching.thresholds[t])
    dt_reason = _reasons(data, pairs, own, dt_iou, dt_outcome == "fp", threshold)
    usable = ~dt_ignored[pairs[0]]
    gt_reason, near = _missed_reasons(data, pairs, same_class & usable, ~same_class & usable,
                                      gt_outcome == "missed", threshold)
    close = near >= 0
    gt_iou[close] = box_iou(data.dt_bbox[near[close]], data.gt_bbox[close], np.zeros(int(close.sum()), bool))
    gt_score[close] = data.dt_score[near[close]]
    return BoxOutcomes(gt_outcome, np.where(found, gt_match, -1), gt_iou, gt_score, gt_reason, near, dt_outcome,
                       dt_reason, dt_iou)


def _missed_reasons(data: DetectionData, pairs: tuple[np.ndarray, ...], same: np.ndarray, other: np.ndarray,
                    missed: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Each missed box's reason (module docstring) and its most overlapping same-class
    prediction below the threshold (-1: none)."""
    n = len(missed)
    loose = same & (pairs[2] < threshold)
    order = np.lexsort((pairs[2][loose], pairs[1][loose]))  # by box, then IoU: the last of a box is its best
    boxes, dets = pairs[1][loose][order], pairs[0][loose][order]
    near = np.full(n, -1, np.int64)
    last = np.r_[boxes[1:] != boxes[:-1], True] if len(boxes) else np.zeros(0, bool)
    near[boxes[last]] = dets[last]
    other_iou, any_iou = np.zeros(n), np.zeros(n)
    np.maximum.at(other_iou, pairs[1][other], pairs[2][other])
    np.maximum.at(any_iou, pairs[1][same | other], pairs[2][same | other])
    reason = np.full(n, "", dtype=object)
    reason[any_iou < LOCALISATION_IOU] = UNSEEN
    reason[other_iou >= WRONG_CLASS_IOU] = WRONG_CLASS
    reason[near >= 0] = BADLY_PLACED
    reason[~missed] = ""
    near[~missed] = -1
    return reason, near


def _reasons(data: DetectionData, pairs: tuple[np.ndarray, ...], own: np.ndarray, own_iou: np.ndarray,
             false: np.ndarray, threshold: float) -> np.ndarray:
    """Each false positive's reason (module docstring), "" for the other predictions."""
    other_iou = np.zeros(len(false))
    other = ~own & (data.dt_class[pairs[0]] != data.gt_class[pairs[1]]) & ~data.gt_crowd[pairs[1]]
    np.maximum.at(other_iou, pairs[0][other], pairs[2][other])
    reason = np.full(len(false), BACKGROUND, dtype=object)
    reason[own_iou >= LOCALISATION_IOU] = BADLY_PLACED
    reason[other_iou >= WRONG_CLASS_IOU] = WRONG_CLASS
    reason[own_iou >= threshold] = DUPLICATE
    reason[~false] = ""
    return reason
