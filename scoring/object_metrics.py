"""Object metrics into payloads (the measures are analysis/object_metrics.py's):

    add_object_metrics(objects, ids, payloads)   # per box: relative_area, border_distance,
                                                 # shape_score, and the flag shape_outlier;
                                                 # with a mask: mask_fill, polygon_vertices
    add_object_counts(images, objects)           # per image: object_count, object_density

`analyze` runs the first on an object collection (into the payloads it is about to write) and
the second whenever it knows both collections of a detection dataset; indexing runs the
second at its end. Both read only payload columns (bbox, image size, label, image_id, mask).

A box with a mask (detection/masks.py) is measured by its mask where the mask says more than
the box: its relative_area is the mask's area, mask_fill the share of the box the mask covers
(a mask drawn over another object leaves its box nearly empty), polygon_vertices its points,
and its shape score compares its Hu-moment shape (spread and elongation) with the other masks
of its class instead of the box's aspect and size. Each mask is rasterised once, at its
image's size, by pycocotools.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from analysis.object_metrics import box_geometry, box_shape_features, per_image, shape_scores
from detection.masks import hu_features, rasterise_near, vertex_count
from store import Collection
from store.base import WRITE_BATCH, chunked
from store.schema import (
    BBOX, BORDER_DISTANCE, IMAGE_HEIGHT, IMAGE_ID, IMAGE_OBJECT_FIELDS, IMAGE_WIDTH, LABEL, MASK, MASK_FILL,
    OBJECT_COUNT, OBJECT_DENSITY, OBJECT_METRIC_FIELDS, POLYGON_VERTICES, QUALITY_FLAGS, RELATIVE_AREA,
    SHAPE_OUTLIER_FLAG, SHAPE_SCORE,
)


def _box_columns(objects: Collection, ids: Any = None) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray,
                                                                np.ndarray]:
    """(ids, image keys, boxes (n, 4), image sizes (n, 2), labels) of the object points, in the
    order of `ids` when given."""
    columns = objects.columns([IMAGE_ID, BBOX, IMAGE_WIDTH, IMAGE_HEIGHT, LABEL])
    row_of = {pid: i for i, pid in enumerate(columns.ids)}
    ids = list(columns.ids) if ids is None else [str(i) for i in ids]
    rows = [row_of[pid] for pid in ids]
    values = columns.values
    keys = np.array([str(values[IMAGE_ID][i] or "") for i in rows], dtype=str)
    boxes = np.array([_bbox(values[BBOX][i]) for i in rows], dtype=np.float64).reshape(len(rows), 4)
    sizes = np.array([[float(values[IMAGE_WIDTH][i] or 0), float(values[IMAGE_HEIGHT][i] or 0)] for i in rows],
                     dtype=np.float64).reshape(len(rows), 2)
    labels = np.array([str(values[LABEL][i] or "") for i in rows], dtype=str)
    return ids, keys, boxes, sizes, labels


def _bbox(value: Any) -> list[float]:
    return [float(v) for v in value] if isinstance(value, list) and len(value) == 4 else [0.0, 0.0, 0.0, 0.0]


def mask_measures(masks: list[Any], boxes: np.ndarray, sizes: np.ndarray) -> dict[str, np.ndarray]:
    """Per box with a mask: its area in pixels, the share of its box it covers, its polygon
    points and its two Hu-moment shape features (NaN / -1 where there is no mask)."""
    n = len(masks)
    out = {"area": np.full(n, np.nan), "fill": np.full(n, np.nan), "vertices": np.full(n, -1, np.int64),
           "shape": np.full((n, 2), np.nan)}
    for i, mask in enumerate(masks):
        if not isinstance(mask, dict):
            continue
        x, y, w, h = boxes[i]
        try:
            raster, (x0, y0) = rasterise_near(mask, int(sizes[i, 0]), int(sizes[i, 1]), (x, y, w, h))
        except (ValueError, TypeError, KeyError):
            continue   # a polygon without its image's size, or a payload edited into nonsense
        top, left = max(0, int(round(y)) - y0), max(0, int(round(x)) - x0)
        inside = raster[top:max(top, int(round(y + h)) - y0), left:max(left, int(round(x + w)) - x0)]
        out["area"][i] = float(raster.sum())
        out["fill"][i] = float(inside.sum()) / (w * h) if w * h > 0 else np.nan
        out["vertices"][i] = vertex_count(mask) if vertex_count(mask) is not None else -1
        out["shape"][i] = hu_features(raster)
    return out


def add_object_metrics(objects: Collection, ids: Any, payloads: list[dict[str, Any]]) -> int:
    """Per box (`ids` in the order of `payloads`): the object metrics into its payload and the
    shape_outlier flag into its quality_flags; returns how many boxes are flagged."""
    _, _, boxes, sizes, labels = _box_columns(objects, ids)
    geometry = box_geometry(boxes, sizes)
    masks = _masks(objects, ids)
    measured = mask_measures(masks, boxes, sizes)
    has_mask = np.isfinite(measured["area"])
    relative = np.where(has_mask, measured["area"] / np.maximum(sizes.prod(axis=1), 1.0), geometry.relative_area)
    # Boxes with masks are compared by their masks' shapes, boxes without by their boxes' (two
    # groups per class, so a class with masks on some boxes scores each group among its own).
    groups = np.char.add(labels, np.where(has_mask, "\x00mask", ""))
    features = np.where(has_mask[:, None], measured["shape"], box_shape_features(boxes, sizes))
    shape = shape_scores(groups, features)
    for i, payload in enumerate(payloads):
        for name, value in ((RELATIVE_AREA, relative[i]), (BORDER_DISTANCE, geometry.border_distance[i]),
                            (SHAPE_SCORE, shape.score[i]), (MASK_FILL, measured["fill"][i])):
            if np.isfinite(value):
                payload[name] = float(value)
        if measured["vertices"][i] >= 0:
            payload[POLYGON_VERTICES] = int(measured["vertices"][i])
        if shape.flagged[i]:
            payload[QUALITY_FLAGS] = [*payload.get(QUALITY_FLAGS, []), SHAPE_OUTLIER_FLAG]
    objects.index_fields(OBJECT_METRIC_FIELDS)
    return int(shape.flagged.sum())


def _masks(objects: Collection, ids: Any) -> list[Any]:
    columns = objects.columns([MASK])
    row_of = {pid: i for i, pid in enumerate(columns.ids)}
    return [columns.values[MASK][row_of[str(pid)]] for pid in ids]


def add_object_counts(images: Collection, objects: Collection) -> int:
    """object_count and object_density on every image point (0 for an image without boxes);
    returns how many images hold at least one box."""
    _, keys, boxes, sizes, _ = _box_columns(objects)
    counts, density = per_image(keys, box_geometry(boxes, sizes).relative_area)
    image_ids = images.ids()
    payloads = [{OBJECT_COUNT: counts.get(pid, 0), OBJECT_DENSITY: density.get(pid, 0.0)} for pid in image_ids]
    for chunk in chunked(list(range(len(image_ids))), WRITE_BATCH * 10):
        images.set_payloads([image_ids[i] for i in chunk], [payloads[i] for i in chunk])
    images.index_fields(IMAGE_OBJECT_FIELDS)
    images.flush()
    return sum(1 for pid in image_ids if counts.get(pid))
