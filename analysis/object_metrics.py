"""Object metrics: where a box sits in its image, how big it is, and how unusual its shape is
for its class; per image, how many objects it holds and how much of it they cover. Pure numpy,
over boxes as [x, y, width, height] in pixels and their images' (width, height).

    geometry = box_geometry(boxes, image_sizes)   # relative_area, border_distance per box
    shape = shape_scores(labels, box_shape_features(boxes, image_sizes))
    shape.score (n,) robust z (NaN where the class has too few boxes), shape.flagged (n,) bool
    count, density = per_image(image_keys, geometry.relative_area)

- relative_area: box area / image area (0..1).
- border_distance: the box's smallest gap to an image edge, each gap as a share of the side it
  is measured along (left and right gaps of the width, top and bottom of the height); 0 = the
  box touches an edge (a truncated object, often), 0.5 = a point in the middle.
- shape score: for each class, each shape feature (log aspect ratio, log relative area) as a
  robust z-score, |value - class median| / (1.4826 x the class's median absolute deviation),
  and a box's score is its largest. Logs, because a box twice too tall is as odd as one half
  too tall. A box is flagged `shape_outlier` above SHAPE_OUTLIER_Z = 3.5, Iglewicz and
  Hoaglin's cut-off for their modified z-score (the same statistic): under a normal
  distribution about 1 in 2,000 points exceeds it, so a class of ordinary boxes flags almost
  none, and a box drawn five times too tall for its class is far past it.
  A class needs MIN_CLASS_BOXES boxes to have a norm; with fewer its boxes get no score.
  The deviation is floored at MIN_SCALE (5 % in log units), so a class whose boxes all have
  nearly the same shape (a fixed-size crop, say) does not call a 6 % difference unusual.
- object_count, object_density: per image, its boxes and the sum of their relative areas
  (overlapping boxes count twice, as in Encord Active's object density).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SHAPE_OUTLIER_Z = 3.5
MIN_CLASS_BOXES = 8
MIN_SCALE = 0.05
MAD_TO_SIGMA = 1.4826   # the MAD of a normal distribution is 0.6745 sigma


@dataclass(frozen=True)
class BoxGeometry:
    relative_area: np.ndarray
    border_distance: np.ndarray


@dataclass(frozen=True)
class ShapeScores:
    score: np.ndarray      # (n,) robust z, NaN without a class norm
    flagged: np.ndarray    # (n,) score > SHAPE_OUTLIER_Z


def _arrays(boxes: np.ndarray, image_sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    sizes = np.asarray(image_sizes, np.float64).reshape(-1, 2)
    if len(boxes) != len(sizes):
        raise ValueError(f"{len(boxes)} boxes but {len(sizes)} image sizes")
    return boxes, sizes


def box_geometry(boxes: np.ndarray, image_sizes: np.ndarray) -> BoxGeometry:
    """relative_area and border_distance of each box (NaN where the image size is unknown)."""
    boxes, sizes = _arrays(boxes, image_sizes)
    width, height = sizes[:, 0], sizes[:, 1]
    known = (width > 0) & (height > 0)
    w, h = np.where(known, width, 1.0), np.where(known, height, 1.0)
    area = boxes[:, 2] * boxes[:, 3] / (w * h)
    x_gap = np.minimum(boxes[:, 0], w - boxes[:, 0] - boxes[:, 2]) / w
    y_gap = np.minimum(boxes[:, 1], h - boxes[:, 1] - boxes[:, 3]) / h
    border = np.clip(np.minimum(x_gap, y_gap), 0.0, 0.5)
    return BoxGeometry(np.where(known, area, np.nan), np.where(known, border, np.nan))


def box_shape_features(boxes: np.ndarray, image_sizes: np.ndarray) -> np.ndarray:
    """(n, 2) log aspect ratio (width / height) and log relative area; NaN for an empty box."""
    boxes, _ = _arrays(boxes, image_sizes)
    with np.errstate(divide="ignore", invalid="ignore"):
        aspect = np.log(boxes[:, 2] / boxes[:, 3])
        area = np.log(box_geometry(boxes, image_sizes).relative_area)
    features = np.column_stack([aspect, area])
    features[~np.isfinite(features)] = np.nan
    return features


def shape_scores(labels: np.ndarray, features: np.ndarray, min_boxes: int = MIN_CLASS_BOXES,
                 threshold: float = SHAPE_OUTLIER_Z) -> ShapeScores:
    """The largest robust z-score of each box's shape features within its class."""
    labels = np.asarray(labels, dtype=str)
    features = np.asarray(features, np.float64).reshape(len(labels), -1)
    score = np.full(len(labels), np.nan)
    for label in np.unique(labels):
        rows = np.flatnonzero(labels == label)
        usable = rows[np.isfinite(features[rows]).all(axis=1)]
        if len(usable) < min_boxes:
            continue
        values = features[usable]
        median = np.median(values, axis=0)
        scale = np.maximum(MAD_TO_SIGMA * np.median(np.abs(values - median), axis=0), MIN_SCALE)
        score[usable] = (np.abs(values - median) / scale).max(axis=1)
    return ShapeScores(score, np.nan_to_num(score, nan=0.0) > threshold)


def per_image(image_keys: np.ndarray, relative_area: np.ndarray) -> tuple[dict[str, int], dict[str, float]]:
    """({image key: its number of boxes}, {image key: the sum of its boxes' relative areas})."""
    keys, inverse, counts = np.unique(np.asarray(image_keys, dtype=str), return_inverse=True, return_counts=True)
    density = np.bincount(inverse.reshape(-1), weights=np.nan_to_num(np.asarray(relative_area, np.float64)),
                          minlength=len(keys))
    return ({str(k): int(c) for k, c in zip(keys, counts)},
            {str(k): float(d) for k, d in zip(keys, density)})
