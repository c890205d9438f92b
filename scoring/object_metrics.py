"""Object metrics into payloads (the measures are analysis/object_metrics.py's):

    add_object_metrics(objects, ids, payloads)   # per box: relative_area, border_distance,
                                                 # shape_score, and the flag shape_outlier
    add_object_counts(images, objects)           # per image: object_count, object_density

`analyze` runs the first on an object collection (into the payloads it is about to write) and
the second whenever it knows both collections of a detection dataset; indexing runs the
second at its end. Both read only payload columns (bbox, image size, label, image_id).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from analysis.object_metrics import box_geometry, box_shape_features, per_image, shape_scores
from store import Collection
from store.base import WRITE_BATCH, chunked
from store.schema import (
    BBOX, BORDER_DISTANCE, IMAGE_HEIGHT, IMAGE_ID, IMAGE_OBJECT_FIELDS, IMAGE_WIDTH, LABEL, OBJECT_COUNT,
    OBJECT_DENSITY, OBJECT_METRIC_FIELDS, QUALITY_FLAGS, RELATIVE_AREA, SHAPE_OUTLIER_FLAG, SHAPE_SCORE,
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


def add_object_metrics(objects: Collection, ids: Any, payloads: list[dict[str, Any]]) -> int:
    """Per box (`ids` in the order of `payloads`): the object metrics into its payload and the
    shape_outlier flag into its quality_flags; returns how many boxes are flagged."""
    _, _, boxes, sizes, labels = _box_columns(objects, ids)
    geometry = box_geometry(boxes, sizes)
    shape = shape_scores(labels, box_shape_features(boxes, sizes))
    for i, payload in enumerate(payloads):
        for name, value in ((RELATIVE_AREA, geometry.relative_area[i]), (BORDER_DISTANCE, geometry.border_distance[i]),
                            (SHAPE_SCORE, shape.score[i])):
            if np.isfinite(value):
                payload[name] = float(value)
        if shape.flagged[i]:
            payload[QUALITY_FLAGS] = [*payload.get(QUALITY_FLAGS, []), SHAPE_OUTLIER_FLAG]
    objects.index_fields(OBJECT_METRIC_FIELDS)
    return int(shape.flagged.sum())


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
