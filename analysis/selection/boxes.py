"""Uncertainty of a detector's boxes: the images whose predicted boxes it is least sure about.

A detector's run gives boxes with a score, not class probabilities per image. A box whose score
sits near the confidence threshold is the one the detector cannot decide to keep or drop: its
label is worth most. Per box (score s, threshold t, default 0.5 as the Performance tab's):

    u(s) = max(0, 1 - |s - t| / WINDOW)          WINDOW = 0.25

1 at the threshold, falling linearly to 0 a quarter away from it, so boxes the detector is sure
of (s >= t + 0.25) and the many low-score boxes a detector emits (s <= t - 0.25) count nothing;
with t = 0.5 it is the 1 - |2s - 1| of a binary score narrowed to [0.25, 0.75]. An image's
uncertainty is the **sum** over its boxes (Brust et al., "Active Learning for Deep Object
Detection", VISAPP 2019, compare sum / average / max and find sum best for few labels): an image
with several undecided objects teaches more per image opened than one with a single one.
Images with no box in the window score 0 and come last, in row order.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analysis.selection.base import Batch, Pool, SelectionInputError, top_scoring

WINDOW = 0.25
DEFAULT_THRESHOLD = 0.5


@dataclass(frozen=True)
class RunBoxes:
    """A run's predicted boxes over a pool's rows: `rows` (the pool row of each box's image),
    `scores` (each box's score in [0, 1]), `threshold` (the confidence threshold)."""

    rows: np.ndarray
    scores: np.ndarray
    threshold: float = DEFAULT_THRESHOLD


def box_uncertainty(scores: np.ndarray, threshold: float = DEFAULT_THRESHOLD) -> np.ndarray:
    """u(s) per box: 1 at the threshold, 0 from WINDOW away from it."""
    return np.clip(1.0 - np.abs(np.asarray(scores, dtype=np.float64) - threshold) / WINDOW, 0.0, 1.0)


def image_uncertainty(boxes: RunBoxes, n: int) -> np.ndarray:
    """(n,) the sum of the box uncertainties of each row's boxes."""
    return np.bincount(np.asarray(boxes.rows, dtype=np.int64), weights=box_uncertainty(boxes.scores, boxes.threshold),
                       minlength=n)[:n]


def uncertain_boxes(pool: Pool, budget: int, seed: int = 0) -> Batch:
    """The candidates (images) whose predicted boxes are the most uncertain, summed."""
    if pool.boxes is None:
        raise SelectionInputError("uncertain-boxes needs a detector's run: import one with `predictions` on the "
                                  "object collection and name it with --run")
    return top_scoring(pool, image_uncertainty(pool.boxes, len(pool.candidates)), budget, "uncertain-boxes")
