"""Object masks: COCO segmentations (polygons, RLE, crowd regions) and YOLO segmentation
polygons, checked when read, kept compactly in a box's `mask` payload, given back in their
source's form, rasterised and measured. pycocotools does the RLE work.

The payload form (pixels of the upright image, as the box):

    {"polygons": [[x1, y1, x2, y2, ...], ...]}                    COCO polygons, YOLO's polygon
    {"rle": "<COCO compressed counts>", "size": [h, w],
     "uncompressed": true | false}                                 COCO RLE, as COCO compresses it
    + "iscrowd": 1                                                 where the source marks a crowd

An uncompressed RLE (a list of counts, as COCO writes crowd regions) is stored compressed, a
fraction of its size, and written back as a list of counts; pycocotools' runs are canonical,
so the counts come back equal. Polygons are kept as given.

    mask, problem = coco_mask(segmentation, iscrowd, (width, height))   # problem: why it is not usable
    pixel_mask(mask, normalised, width, height)      # a YOLO polygon (fractions) into pixels
    coco_segmentation(mask) -> (segmentation, iscrowd);  yolo_polygon(mask, width, height)
    rasterise(mask, width, height) -> (h, w) bool;  vertex_count(mask);  hu_features(raster)
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

Mask = dict[str, Any]
POLYGONS, RLE, SIZE, UNCOMPRESSED, ISCROWD = "polygons", "rle", "size", "uncompressed", "iscrowd"


def _polygon_problem(polygons: Any) -> str:
    if not isinstance(polygons, list) or not polygons:
        return "segmentation is an empty list"
    for number, polygon in enumerate(polygons, start=1):
        if not isinstance(polygon, list) or len(polygon) < 6 or len(polygon) % 2:
            return f"segmentation polygon {number} is not x, y pairs of at least 3 points"
        if any(isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) for v in polygon):
            return f"segmentation polygon {number} holds a value that is not a finite number"
    return ""


def _rle_problem(rle: dict[str, Any], image_size: tuple[int, int] | None) -> str:
    size, counts = rle.get("size"), rle.get("counts")
    if not (isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) and v > 0 for v in size)):
        return "segmentation RLE needs 'size': [height, width]"
    if image_size and tuple(size) != (image_size[1], image_size[0]):
        return f"segmentation RLE size {size} is not the image's [height, width] [{image_size[1]}, {image_size[0]}]"
    if isinstance(counts, list):
        if any(isinstance(c, bool) or not isinstance(c, int) or c < 0 for c in counts):
            return "segmentation RLE counts are not non-negative integers"
        if sum(counts) != size[0] * size[1]:
            return f"segmentation RLE counts add up to {sum(counts)}, not height x width {size[0] * size[1]}"
        return ""
    if not isinstance(counts, str) or not counts:
        return "segmentation RLE 'counts' is neither a list of integers nor a compressed string"
    from pycocotools import mask as coco_masks

    try:
        area = int(coco_masks.area({"size": size, "counts": counts.encode()}))
    except (ValueError, TypeError):   # pycocotools reads any string; a broken one gives nonsense
        return "segmentation RLE 'counts' is not a COCO compressed string"
    return "" if 0 <= area <= size[0] * size[1] else "segmentation RLE 'counts' is not a COCO compressed string"


def coco_mask(segmentation: Any, iscrowd: Any = 0, image_size: tuple[int, int] | None = None) -> tuple[Mask | None,
                                                                                                         str]:
    """(the payload mask, '') for a usable COCO `segmentation`, (None, '') for none, or
    (None, why) for a broken one. `image_size` (width, height) checks an RLE's size."""
    if segmentation is None or segmentation == [] or segmentation == {}:
        return None, ""
    crowd = {ISCROWD: 1} if iscrowd in (1, True) else {}
    if isinstance(segmentation, list):
        problem = _polygon_problem(segmentation)
        return (None, problem) if problem else ({POLYGONS: [[float(v) for v in p] for p in segmentation], **crowd}, "")
    if not isinstance(segmentation, dict):
        return None, "segmentation is neither polygons nor an RLE object"
    problem = _rle_problem(segmentation, image_size)
    if problem:
        return None, problem
    size, counts = [int(v) for v in segmentation["size"]], segmentation["counts"]
    if isinstance(counts, list):
        from pycocotools import mask as coco_masks

        compressed = coco_masks.frPyObjects({"size": size, "counts": counts}, size[0], size[1])
        return {RLE: compressed["counts"].decode("ascii"), SIZE: size, UNCOMPRESSED: True, **crowd}, ""
    return {RLE: counts, SIZE: size, UNCOMPRESSED: False, **crowd}, ""


def yolo_mask(coordinates: list[float]) -> Mask:
    """A YOLO segmentation row's polygon (fractions of the image size, x y pairs)."""
    return {POLYGONS: [[float(v) for v in coordinates]]}


def pixel_mask(mask: Mask | None, normalised: bool, width: int, height: int) -> Mask | None:
    """The mask in pixels: a YOLO polygon's fractions times the image size."""
    if mask is None or not normalised or POLYGONS not in mask:
        return mask
    scale = np.array([float(width), float(height)])
    return {**mask, POLYGONS: [(np.asarray(p, np.float64).reshape(-1, 2) * scale).ravel().tolist()
                               for p in mask[POLYGONS]]}


def coco_segmentation(mask: Mask) -> tuple[Any, int]:
    """(COCO `segmentation`, `iscrowd`) as the source wrote them."""
    crowd = int(mask.get(ISCROWD, 0))
    if POLYGONS in mask:
        return [list(p) for p in mask[POLYGONS]], crowd
    size = list(mask[SIZE])
    if not mask.get(UNCOMPRESSED):
        return {"size": size, "counts": mask[RLE]}, crowd
    return {"size": size, "counts": uncompressed_counts(mask)}, crowd


def uncompressed_counts(mask: Mask) -> list[int]:
    """The run lengths of an RLE mask, column-major, starting with a (possibly empty) run of 0s."""
    flat = rasterise(mask).ravel(order="F").astype(np.int8)
    changes = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], changes, [len(flat)]])
    runs = np.diff(bounds).tolist()
    return ([0] + runs) if len(flat) and flat[0] == 1 else runs


def yolo_polygon(mask: Mask | None, width: int, height: int) -> list[float] | None:
    """The polygon a YOLO segmentation row holds (fractions of the image size): the mask's
    largest polygon part, or None for an RLE mask (YOLO rows carry polygons only)."""
    if mask is None or POLYGONS not in mask:
        return None
    parts = [np.asarray(p, np.float64).reshape(-1, 2) for p in mask[POLYGONS]]
    largest = max(parts, key=_shoelace)
    return (largest / np.array([float(width), float(height)])).ravel().tolist()


def _shoelace(points: np.ndarray) -> float:
    x, y = points[:, 0], points[:, 1]
    return abs(float(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1)))) / 2


def rasterise(mask: Mask, width: int | None = None, height: int | None = None) -> np.ndarray:
    """(height, width) bool array of the mask (an RLE knows its size; polygons need it)."""
    from pycocotools import mask as coco_masks

    if POLYGONS in mask:
        if not width or not height:
            raise ValueError("a polygon mask needs the image's width and height to be rasterised")
        rle = coco_masks.merge(coco_masks.frPyObjects([list(p) for p in mask[POLYGONS]], int(height), int(width)))
    else:
        rle = {"size": list(mask[SIZE]), "counts": str(mask[RLE]).encode("ascii")}
    return coco_masks.decode(rle).astype(bool)


def rasterise_near(mask: Mask, width: int, height: int,
                   bbox: tuple[float, float, float, float]) -> tuple[np.ndarray, tuple[int, int]]:
    """(the mask rasterised over the part of the image that holds it and its box, (left, top)
    of that part), without drawing the whole image: a polygon is shifted into the window. The
    pixels are `rasterise`'s up to pycocotools' rounding of shifted coordinates (measured on
    1,000 random polygons in a 640x480 image: one pixel differed, in one polygon). An RLE is
    decoded whole, and so is a polygon that crosses the image's edge (clipped at the canvas,
    it differed more often)."""
    if POLYGONS not in mask:
        return rasterise(mask, width, height), (0, 0)
    points = np.concatenate([np.asarray(p, np.float64).reshape(-1, 2) for p in mask[POLYGONS]])
    if points.min() < 0 or points[:, 0].max() > width or points[:, 1].max() > height:
        return rasterise(mask, width, height), (0, 0)
    x, y, w, h = bbox
    left = int(np.clip(math.floor(min(points[:, 0].min(), x)) - 1, 0, width))
    top = int(np.clip(math.floor(min(points[:, 1].min(), y)) - 1, 0, height))
    right = int(np.clip(math.ceil(max(points[:, 0].max(), x + w)) + 2, left + 1, width))
    bottom = int(np.clip(math.ceil(max(points[:, 1].max(), y + h)) + 2, top + 1, height))
    shifted = {POLYGONS: [(np.asarray(p, np.float64).reshape(-1, 2) - (left, top)).ravel().tolist()
                          for p in mask[POLYGONS]]}
    return rasterise(shifted, right - left, bottom - top), (left, top)


def vertex_count(mask: Mask | None) -> int | None:
    """The polygons' points (all parts); None for an RLE mask or no mask."""
    if mask is None or POLYGONS not in mask:
        return None
    return sum(len(p) // 2 for p in mask[POLYGONS])


def hu_features(raster: np.ndarray) -> np.ndarray:
    """The mask's shape from its first two Hu moments, invariant to position, scale and
    rotation: (log h1, sqrt(h2) / h1). h1 (the normalised second moment) grows as the shape
    spreads away from its centre (a disc has the least, 1 / 2 pi); sqrt(h2) / h1 is its
    elongation, 0 for a disc or a square, towards 1 for a thin line. The higher moments are
    left out: for the symmetric shapes most objects have they are zero, and their logarithm
    (OpenCV's matchShapes scale) is then unbounded. NaN for an empty mask."""
    from skimage.measure import moments_central, moments_hu, moments_normalized

    if not raster.any():
        return np.full(2, np.nan)
    rows, cols = np.flatnonzero(raster.any(axis=1)), np.flatnonzero(raster.any(axis=0))
    region = raster[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1].astype(np.float64)
    h1, h2 = moments_hu(moments_normalized(moments_central(region, order=3), order=3))[:2]
    return np.array([math.log(h1), math.sqrt(max(h2, 0.0)) / h1])
