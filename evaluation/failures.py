"""Where a detector fails on an object collection: recall and false-positive rate in bins of each
box metric, most telling metric first (analysis/detection_failures.py over a RunEvaluation).

Labelled boxes bring every metric indexing and `analyze` wrote (area, brightness, contrast, ...,
cluster) plus `relative_area` (the box's share of its image); predictions bring the metrics their
box alone gives (area, relative area, aspect ratio), so their false-positive rate is shown where
it can be measured. A box counts as found when a prediction scoring at least the confidence
matched it at the run's IoU; crowd regions are left out.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from analysis.detection_failures import MetricFailures, failures_by_metric
from evaluation.evaluate import RunEvaluation
from store import Collection
from store.schema import (
    ASPECT_RATIO, BRIGHTNESS, CLUSTER, COLOURFULNESS, CONTRAST, IMAGE_HEIGHT, IMAGE_WIDTH, SHARPNESS,
)

AREA_NAME, RELATIVE_AREA = "area", "relative_area"
PIXEL_METRICS = (BRIGHTNESS, CONTRAST, SHARPNESS, COLOURFULNESS)


def box_metric_columns(objects: Collection, evaluation: RunEvaluation) -> dict[str, np.ndarray]:
    """The labelled boxes' metrics, aligned with evaluation.gt_ids (NaN where a box has none)."""
    columns = objects.columns([*PIXEL_METRICS, CLUSTER, IMAGE_WIDTH, IMAGE_HEIGHT])
    row = {pid: i for i, pid in enumerate(np.asarray(columns.ids, str).tolist())}
    order = np.array([row.get(pid, -1) for pid in evaluation.gt_ids.tolist()], np.int64)

    def aligned(name: str) -> np.ndarray:
        values = np.append(columns.array(name, np.float64), np.nan)  # row -1 (no such point): NaN
        return values[np.where(order >= 0, order, len(values) - 1)]

    boxes = evaluation.data.gt_bbox
    pixels = aligned(IMAGE_WIDTH) * aligned(IMAGE_HEIGHT)
    metrics = {AREA_NAME: boxes[:, 2] * boxes[:, 3], ASPECT_RATIO: boxes[:, 2] / boxes[:, 3]}
    metrics[RELATIVE_AREA] = metrics[AREA_NAME] / pixels
    metrics.update({name: aligned(name) for name in (*PIXEL_METRICS, CLUSTER)})
    metrics[CLUSTER] = np.where(metrics[CLUSTER] < 0, np.nan, metrics[CLUSTER])
    return metrics


def _image_pixels(evaluation: RunEvaluation, metrics: dict[str, np.ndarray]) -> np.ndarray:
    """Pixels of each image (NaN where no labelled box says its size)."""
    pixels = np.full(evaluation.data.n_images, np.nan)
    area = metrics[AREA_NAME] / metrics[RELATIVE_AREA]
    known = np.isfinite(area)
    pixels[evaluation.data.gt_image[known]] = area[known]
    return pixels


def failures(evaluation: RunEvaluation, metrics: dict[str, np.ndarray], images: np.ndarray | None = None,
             confidence: float = 0.0) -> list[MetricFailures]:
    """The failure table over `images` (a mask; None: all) at a confidence."""
    data = evaluation.data
    mask = np.ones(data.n_images, bool) if images is None else images
    outcome = evaluation.outcomes()
    boxes = mask[data.gt_image] & ~data.gt_crowd
    found = (outcome.gt_outcome == "tp") & (np.nan_to_num(outcome.gt_score, nan=-1.0) >= confidence)
    predictions = mask[data.dt_image] & (outcome.dt_outcome != "ignored") & (data.dt_score >= confidence)
    box = data.dt_bbox[predictions]
    pixels = _image_pixels(evaluation, metrics)[data.dt_image[predictions]]
    predicted = {AREA_NAME: box[:, 2] * box[:, 3], ASPECT_RATIO: box[:, 2] / box[:, 3],
                 RELATIVE_AREA: box[:, 2] * box[:, 3] / pixels}
    return failures_by_metric({k: v[boxes] for k, v in metrics.items()}, found[boxes], {CLUSTER}, predicted,
                              outcome.dt_outcome[predictions] == "fp")


def failures_json(table: list[MetricFailures]) -> list[dict[str, Any]]:
    def number(value: float) -> float | None:
        return None if np.isnan(value) else round(float(value), 6)

    return [{"metric": m.name, "separation": round(m.separation, 6),
             "bins": [{"bin": b.label, "low": b.low, "high": b.high, "boxes": b.boxes, "recall": number(b.recall),
                       "predictions": b.predictions, "fp_rate": number(b.fp_rate)} for b in m.bins]}
            for m in table]
