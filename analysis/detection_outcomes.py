"""What happened to each labelled box and each prediction at one IoU threshold. Pure numpy.

    outcome = box_outcomes(data, matching, iou=0.5)
    outcome.gt_outcome   "tp" | "missed" | "crowd"   (a crowd region is never missed)
    outcome.gt_match / gt_iou / gt_score             the prediction that found it (-1 / NaN)
    outcome.dt_outcome   "tp" | "fp" | "ignored"     (ignored: matched a crowd region, or past maxDets)
    outcome.dt_reason    why a false positive is one (FP_REASONS), "" otherwise
    outcome.dt_iou       its best IoU with a labelled box of its class

Matches are COCO's (area all, maxDets 100). A false positive's reason is the first that holds:
- duplicate: a box of its class overlaps it at the IoU threshold, but a higher-scoring
  prediction already took that box;
- wrong_class: a box of another class overlaps it at IoU >= 0.5;
- badly_placed: a box of its class overlaps it at IoU 0.1 up to the threshold;
- background: nothing labelled there (IoU < 0.1 with every box of its class).
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


@dataclass(frozen=True)
class BoxOutcomes:
    gt_outcome: np.ndarray
    gt_match: np.ndarray
    gt_iou: np.ndarray
    gt_score: np.ndarray
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
    dt_reason = _reasons(data, pairs, own, dt_iou, dt_outcome == "fp", float(matching.thresholds[t]))
    return BoxOutcomes(gt_outcome, np.where(found, gt_match, -1), gt_iou, gt_score, dt_outcome, dt_reason, dt_iou)


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
