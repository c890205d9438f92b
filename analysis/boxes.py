"""Duplicate boxes: two boxes of the same image that overlap heavily, a classic annotation error
(the same object labelled twice, by two annotators or with two classes). Pure numpy.

    result = duplicate_boxes(image_keys, boxes)       # boxes (n, 4) as [x, y, width, height]
    result.group      (n,) int: boxes of one image linked by IoU >= threshold, -1 for none
    result.max_iou    (n,) the highest IoU with another box of the same image (0 when alone)
    result.partner    (n,) row of that most-overlapping box (-1 when alone)

The threshold, IoU >= 0.7, is where two boxes are taken to be one object: it is COCO's
strictest common matching level short of 0.75, and Faster R-CNN's RPN counts an anchor at
IoU >= 0.7 as the same object. Two genuinely different objects rarely overlap that much
(a person on a horse, a cup on a table stay well below), while a box drawn twice around one
object usually lands above 0.8. Same or different class: a second box of another class over
the same object is the error this looks for as much as a repeated one.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

DUPLICATE_BOX_IOU = 0.7


@dataclass(frozen=True)
class DuplicateBoxes:
    group: np.ndarray
    max_iou: np.ndarray
    partner: np.ndarray

    @property
    def flagged(self) -> np.ndarray:
        return self.group >= 0


def pairwise_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of a[i] with b[i] (both (n, 4) [x, y, w, h]); 0 where the union is empty."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    width = np.minimum(a[:, 0] + a[:, 2], b[:, 0] + b[:, 2]) - np.maximum(a[:, 0], b[:, 0])
    height = np.minimum(a[:, 1] + a[:, 3], b[:, 1] + b[:, 3]) - np.maximum(a[:, 1], b[:, 1])
    intersection = np.clip(width, 0, None) * np.clip(height, 0, None)
    union = a[:, 2] * a[:, 3] + b[:, 2] * b[:, 3] - intersection
    return np.divide(intersection, union, out=np.zeros_like(intersection), where=union > 0)


def same_image_pairs(image_keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols): every unordered pair i < j (in sorted order) of boxes sharing an image key,
    without a Python loop over images."""
    keys = np.asarray(image_keys)
    order = np.argsort(keys, kind="stable")
    _, start, size = np.unique(keys[order], return_index=True, return_counts=True)
    owner = np.repeat(np.arange(len(size)), size)                  # group of each sorted position
    after = size[owner] - (np.arange(len(keys)) - start[owner]) - 1  # later boxes in the same image
    first = np.repeat(np.arange(len(keys)), after)
    offset = np.arange(len(first)) - np.repeat(np.cumsum(after) - after, after)
    return order[first], order[first + 1 + offset]


def duplicate_boxes(image_keys: np.ndarray, boxes: np.ndarray, threshold: float = DUPLICATE_BOX_IOU) -> DuplicateBoxes:
    """Groups of boxes of one image overlapping at IoU >= threshold (connected components of
    those pairs), numbered 0, 1, ... by their first row; every box's highest IoU and partner."""
    n = len(image_keys)
    boxes = np.asarray(boxes, np.float64).reshape(n, 4)
    rows, cols = same_image_pairs(image_keys)
    iou = pairwise_iou(boxes[rows], boxes[cols])
    max_iou = np.zeros(n)
    partner = np.full(n, -1, np.int64)
    # Best partner per box: sort pairs by IoU so the last write per box is its highest.
    by_iou = np.argsort(iou, kind="stable")
    for own, other in ((rows, cols), (cols, rows)):
        positive = by_iou[iou[by_iou] > 0]
        better = iou[positive] >= max_iou[own[positive]]
        max_iou[own[positive[better]]] = iou[positive[better]]
        partner[own[positive[better]]] = other[positive[better]]
    linked = iou >= threshold
    return DuplicateBoxes(_groups(n, rows[linked], cols[linked]), max_iou, partner)


def _groups(n: int, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Component id per box (-1 when alone), numbered by each component's first row."""
    if n == 0:
        return np.zeros(0, np.int64)
    graph = coo_matrix((np.ones(len(rows), np.int8), (rows, cols)), shape=(n, n))
    _, component = connected_components(graph, directed=False)
    _, first, inverse, counts = np.unique(component, return_index=True, return_inverse=True, return_counts=True)
    shared = np.flatnonzero(counts > 1)
    new_id = np.full(len(counts), -1, np.int64)
    new_id[shared[np.argsort(first[shared], kind="stable")]] = np.arange(len(shared))
    return new_id[inverse.reshape(-1)]
