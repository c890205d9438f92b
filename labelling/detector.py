"""A detector's run as input to the labelling loop of a detection dataset.

Images are chosen (the image collection NAME), from the boxes a run predicted on them (kept
beside the object collection NAME-objects, evaluation/runs.py). An image counts as labelled when
it has a labelled box: an object point that is not a detector's false positive drawn on the map
(`source: prediction`); the others are the candidates.

    source = DetectorSource(objects, run="yolo-v8", threshold=0.5)
    boxes, has_boxes, name = run_boxes(source, image_ids)      # RunBoxes over the images' rows
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analysis.selection import DEFAULT_THRESHOLD, RunBoxes
from filters import SelectionError
from store import Collection, StoreError
from store.schema import IMAGE_ID, PREDICTION_SOURCE, SOURCE


@dataclass(frozen=True)
class DetectorSource:
    """objects: the object collection; run: its run's name (None: the current run);
    threshold: the confidence threshold the box uncertainty peaks at."""

    objects: Collection
    run: str | None = None
    threshold: float = DEFAULT_THRESHOLD


def run_boxes(source: DetectorSource, image_ids: np.ndarray) -> tuple[RunBoxes, np.ndarray, str]:
    """(the run's boxes on these images as pool rows, which images have a labelled box, the
    run's name); SelectionError when the run is missing or the threshold is not in (0, 1)."""
    from evaluation.runs import load_run

    if not 0.0 < source.threshold < 1.0:
        raise SelectionError(f"--threshold must be between 0 and 1, not {source.threshold}")
    try:
        run = load_run(source.objects, source.run)
    except StoreError as error:
        raise SelectionError(str(error)) from None
    row_of = {pid: row for row, pid in enumerate(image_ids.tolist())}
    rows = np.array([row_of.get(str(pid), -1) for pid in run.image_id.tolist()], dtype=np.int64)
    known = rows >= 0  # boxes on images outside this collection (none unless it changed) are left out
    boxes = RunBoxes(rows[known], np.asarray(run.score, dtype=np.float64)[known], source.threshold)
    return boxes, _with_labelled_boxes(source.objects, image_ids, row_of), run.name


def _with_labelled_boxes(objects: Collection, image_ids: np.ndarray, row_of: dict[str, int]) -> np.ndarray:
    columns = objects.columns([IMAGE_ID, SOURCE])
    labelled = np.zeros(len(image_ids), dtype=bool)
    for image, source in zip(columns.values[IMAGE_ID], columns.values[SOURCE]):
        if source != PREDICTION_SOURCE and image in row_of:
            labelled[row_of[image]] = True
    return labelled
