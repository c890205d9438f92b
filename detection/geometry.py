"""Box geometry shared by indexing, thumbnails and exports: pixels, clipping, the crop region.

Boxes are COCO-ordered `(x, y, width, height)` floats in pixels of the upright image (EXIF
orientation applied). A crop is the box grown by a context margin on each side and clipped to
the image, in whole pixels.

The margin is `CONTEXT_MARGIN` = 10 % of the box's width (left and right) and height (top
and bottom). Some context helps: a tiny or thin box (a 12-pixel person far away, a bottle seen
edge-on) is hard to recognise from its pixels alone, and the object's outline against its
background is part of what the model sees; a detector's own crops (R-CNN's warped regions) use
a similar few-pixel pad for the same reason. More than that lets neighbours in: in a crowded
image a 25 % margin makes the crop of one box largely the crop of the next, and their
embeddings (and so their mislabel votes) merge. bench/bench_detection.py measures 0, 10 % and
25 % on its fixture.
"""
from __future__ import annotations

import math

BBox = tuple[float, float, float, float]
Region = tuple[int, int, int, int]  # left, top, right, bottom: whole pixels, right/bottom exclusive
CONTEXT_MARGIN = 0.10
# Differences below this many pixels are float noise in the source (x + w = 640.0000001), not a
# box that reaches outside the image: clipped silently.
CLIP_TOLERANCE = 0.01


def to_pixels(bbox: BBox, normalised: bool, width: int, height: int) -> BBox:
    """The box in pixels; `normalised` boxes are fractions of the image size (YOLO)."""
    x, y, w, h = bbox
    return (x * width, y * height, w * width, h * height) if normalised else (x, y, w, h)


def clip_box(bbox: BBox, width: int, height: int) -> BBox | None:
    """The part of the box inside a width x height image; None when nothing of it is."""
    x, y, w, h = bbox
    left, top = max(x, 0.0), max(y, 0.0)
    right, bottom = min(x + w, float(width)), min(y + h, float(height))
    if right - left <= 0 or bottom - top <= 0:
        return None
    return (left, top, right - left, bottom - top)


def was_clipped(original: BBox, clipped: BBox) -> bool:
    return any(abs(a - b) > CLIP_TOLERANCE for a, b in zip(original, clipped))


def crop_region(bbox: BBox, width: int, height: int, margin: float = CONTEXT_MARGIN) -> Region:
    """The whole-pixel region to crop: the box plus `margin` of its width and height on each
    side, rounded outward, clipped to the image, never empty."""
    x, y, w, h = bbox
    left = max(0, math.floor(x - margin * w))
    top = max(0, math.floor(y - margin * h))
    right = min(width, math.ceil(x + w + margin * w))
    bottom = min(height, math.ceil(y + h + margin * h))
    left, top = min(left, width - 1), min(top, height - 1)
    return (left, top, max(right, left + 1), max(bottom, top + 1))


def scaled_region(bbox: BBox, size: tuple[int, int], pixels: tuple[int, int],
                  margin: float = CONTEXT_MARGIN) -> Region:
    """`crop_region` for an image decoded at `pixels` (width, height) whose boxes refer to the
    full `size`: a decoder may hand over a reduced image (JPEG draft mode)."""
    if tuple(size) == tuple(pixels):
        return crop_region(bbox, size[0], size[1], margin)
    fx, fy = pixels[0] / size[0], pixels[1] / size[1]
    x, y, w, h = bbox
    return crop_region((x * fx, y * fy, w * fx, h * fy), pixels[0], pixels[1], margin)


def area_and_aspect(bbox: BBox) -> tuple[float, float]:
    """(width * height, width / height) of a box."""
    return bbox[2] * bbox[3], bbox[2] / bbox[3]
