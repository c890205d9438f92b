"""Duplicate boxes (analysis/boxes.py) on boxes whose overlaps are worked out by hand."""
from __future__ import annotations

import numpy as np
import pytest

from analysis.boxes import DUPLICATE_BOX_IOU, duplicate_boxes, pairwise_iou, same_image_pairs


def test_iou_by_hand() -> None:
    a = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 4, 4]], float)
    b = np.array([[1, 0, 10, 10], [5, 0, 10, 10], [10, 0, 5, 5], [0, 0, 10, 10], [1, 1, 2, 2]], float)
    # 90 / 110; 50 / 150; touching edges share no area; identical; 4 inside 16 -> 4 / 16
    assert pairwise_iou(a, b) == pytest.approx([90 / 110, 50 / 150, 0.0, 1.0, 4 / 16])


def test_empty_boxes_overlap_nothing() -> None:
    zero = np.array([[3, 3, 0, 0]], float)
    assert pairwise_iou(zero, zero).tolist() == [0.0]


def test_pairs_only_within_an_image() -> None:
    keys = np.array(["b", "a", "b", "c", "b", "a"])
    rows, cols = same_image_pairs(keys)
    pairs = {tuple(sorted(p)) for p in zip(rows.tolist(), cols.tolist())}
    assert pairs == {(0, 2), (0, 4), (2, 4), (1, 5)}
    assert len(rows) == 4


def test_duplicate_groups_same_or_different_class_and_per_image() -> None:
    keys = np.array(["img1", "img1", "img1", "img1", "img2", "img2", "img3"])
    boxes = np.array([
        [0, 0, 10, 10],     # 0 \ IoU 90/110 = 0.82: one object drawn twice
        [1, 0, 10, 10],     # 1 /
        [0, 1, 10, 10],     # 2   IoU with 0: 90/110; with 1: 81/119 = 0.68 -> joins through 0
        [50, 50, 10, 10],   # 3   alone in img1
        [0, 0, 10, 10],     # 4 \ img2: IoU 50/150 = 0.33, below the threshold
        [5, 0, 10, 10],     # 5 /
        [0, 0, 10, 10],     # 6   img3: same coordinates as 0, but another image
    ], float)
    result = duplicate_boxes(keys, boxes)
    assert result.group.tolist() == [0, 0, 0, -1, -1, -1, -1]
    assert result.flagged.tolist() == [True, True, True, False, False, False, False]
    assert result.max_iou == pytest.approx([90 / 110, 90 / 110, 90 / 110, 0.0, 50 / 150, 50 / 150, 0.0])
    assert result.partner[0] in (1, 2) and result.partner[1] == 0 and result.partner[2] == 0
    assert result.partner[3] == -1 and result.partner[4] == 5 and result.partner[6] == -1


def test_threshold_is_inclusive_and_groups_number_by_first_row() -> None:
    keys = np.array(["x", "y", "y", "x"])
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 7]], float)
    # x: IoU 70 / 100 = 0.7 exactly (inclusive); y: identical
    result = duplicate_boxes(keys, boxes, threshold=DUPLICATE_BOX_IOU)
    assert result.group.tolist() == [0, 1, 1, 0]
    assert duplicate_boxes(keys, boxes, threshold=0.71).group.tolist() == [-1, 0, 0, -1]


def test_no_boxes() -> None:
    result = duplicate_boxes(np.array([], dtype=str), np.zeros((0, 4)))
    assert len(result.group) == len(result.max_iou) == 0
