"""A detector's predictions drawn over a picture with boxes: the current run's boxes of one image,
dashed, in a colour of their own, each named with its class and score, so that a box's detail
view shows labels (solid, detection/crops.py) and predictions (dashed) side by side.

Only predictions scoring at least DRAW_SCORE are drawn (a detector's long tail of low scores
would hide the picture). The run is read once and kept until its file changes.
"""
from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from evaluation.runs import RUNS_DIR, active_run, load_run
from store import Collection

PREDICTION_COLOUR = (0, 200, 255)
DRAW_SCORE = 0.3
DASH, GAP = 6, 4

_cache: dict[str, tuple[tuple[str, float], dict[str, np.ndarray], object]] = {}
_lock = threading.Lock()


def _predictions(objects: Collection) -> tuple[dict[str, np.ndarray], object] | None:
    """(image point id -> its prediction rows, the run) of the collection's current run."""
    name = active_run(objects)
    if name is None:
        return None
    path = Path(objects.artifact_dir) / RUNS_DIR / f"{name}.npz"
    key = (name, path.stat().st_mtime)
    with _lock:
        cached = _cache.get(objects.name)
        if cached is None or cached[0] != key:
            run = load_run(objects, name)
            order = np.argsort(run.image_id, kind="stable")
            ids, starts = np.unique(run.image_id[order], return_index=True)
            groups = np.split(order, starts[1:])
            _cache[objects.name] = cached = (key, dict(zip(ids.tolist(), groups)), run)
    return cached[1], cached[2]


def draw_predictions(picture: Image.Image, objects: Collection, image_id: str, image_size: tuple[int, int]) -> int:
    """Draw the current run's predictions of `image_id` onto `picture` (the image, drawn at any
    scale, of true size `image_size`); returns how many were drawn."""
    found = _predictions(objects)
    if found is None or image_id not in found[0]:
        return 0
    rows, run = found[0][image_id], found[1]
    rows = rows[run.score[rows] >= DRAW_SCORE]
    scale = picture.width / max(image_size[0], 1)
    draw = ImageDraw.Draw(picture)
    for row in rows.tolist():
        x, y, w, h = (float(v) * scale for v in run.bbox[row])
        _dashed_rectangle(draw, x, y, x + w, y + h)
        text = f"{run.label[row]} {run.score[row]:.2f}"
        box = draw.textbbox((0, 0), text)
        top = min(y + h + 1, picture.height - (box[3] - box[1]) - 2)
        draw.rectangle([x, top, x + box[2] - box[0] + 4, top + box[3] - box[1] + 2], fill=PREDICTION_COLOUR)
        draw.text((x + 2, top), text, fill=(0, 0, 0))
    return len(rows)


def _dashed_rectangle(draw: ImageDraw.ImageDraw, x0: float, y0: float, x1: float, y1: float) -> None:
    for (ax, ay), (bx, by) in (((x0, y0), (x1, y0)), ((x1, y0), (x1, y1)), ((x1, y1), (x0, y1)), ((x0, y1), (x0, y0))):
        length = max(abs(bx - ax), abs(by - ay))
        steps = np.arange(0.0, length, DASH + GAP)
        for start in steps.tolist():
            end = min(start + DASH, length)
            f0, f1 = start / length if length else 0.0, end / length if length else 0.0
            draw.line([(ax + (bx - ax) * f0, ay + (by - ay) * f0), (ax + (bx - ax) * f1, ay + (by - ay) * f1)],
                      fill=PREDICTION_COLOUR, width=2)
