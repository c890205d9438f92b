"""A detector's runs on an object collection: every predicted box, kept beside the collection.

A run is numpy arrays in one `.npz` file under the collection's artifact folder
(`detections/<run>.npz`), not one Qdrant point per prediction: metrics need every box of a run
(100,000 of them for COCO val), and a file of columns loads in milliseconds. The collection's
metadata lists the runs (`detection_runs`: file, format, count, time) and names the last one
imported (`detection_run`), the one the app shows. Re-importing a run replaces its file whole
(written to a temporary file, then renamed: a reader never sees half a run).

Beside the predictions, a run keeps what a COCO labels file says that the collection does not:
which labelled boxes are crowd regions, their COCO `area` (the object's segmented area, which
COCO's size ranges use), and the COCO image ids (the order COCO evaluates images in).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from store import Collection, StoreError

RUNS_DIR = "detections"
RUNS_KEY, ACTIVE_KEY = "detection_runs", "detection_run"
MAX_NAME = 64


@dataclass(frozen=True)
class DetectionRun:
    """One run. Predictions: `image_id` (image point ids), `label`, `bbox` (n, 4) [x, y, w, h] in
    pixels, `score`. From a COCO labels file (empty otherwise): `crowd_ids` (object point ids of
    crowd boxes), `area_ids` / `area` (COCO area per object point), `order_ids` / `order` (COCO
    image id per image point)."""

    name: str
    image_id: np.ndarray
    label: np.ndarray
    bbox: np.ndarray
    score: np.ndarray
    crowd_ids: np.ndarray
    area_ids: np.ndarray
    area: np.ndarray
    order_ids: np.ndarray
    order: np.ndarray

    def __len__(self) -> int:
        return len(self.score)


def validate_run_name(name: str) -> str:
    """Letters, digits, '-', '_' and '.' (not first): the name is also its file's name."""
    text = name if isinstance(name, str) else ""
    if not text or len(text) > MAX_NAME or text.startswith(".") or not all(c.isalnum() or c in "-_." for c in text):
        raise StoreError(f"invalid run name {name!r}: use 1-{MAX_NAME} letters, digits, '-', '_' or '.' "
                         "(not starting with '.')")
    return text


def _file(collection: Collection, name: str) -> Path:
    return Path(collection.artifact_dir) / RUNS_DIR / f"{validate_run_name(name)}.npz"


def save_run(collection: Collection, run: DetectionRun, source: dict[str, Any]) -> None:
    """Write (or replace) the run and make it the collection's current run."""
    path = _file(collection, run.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {f.name: getattr(run, f.name) for f in fields(run) if f.name != "name"}
    temporary = path.with_name(f".{path.stem}.{os.getpid()}.npz")
    np.savez(temporary, **{k: np.asarray(v) for k, v in arrays.items()})
    os.replace(temporary, path)
    path.with_name(f"{run.name}.missing.npz").unlink(missing_ok=True)  # scores of the run it replaces
    runs = dict(collection.read_metadata().get(RUNS_KEY) or {})
    runs[run.name] = {**source, "predictions": len(run), "imported_at": datetime.now(timezone.utc).isoformat()}
    collection.update_metadata(**{RUNS_KEY: runs, ACTIVE_KEY: run.name})


def list_runs(collection: Collection) -> dict[str, dict[str, Any]]:
    return dict(collection.read_metadata().get(RUNS_KEY) or {})


def active_run(collection: Collection) -> str | None:
    """The run the app shows: the last one imported that still has its file."""
    name = collection.read_metadata().get(ACTIVE_KEY)
    return name if name and _file(collection, name).is_file() else None


def load_run(collection: Collection, name: str | None = None) -> DetectionRun:
    """The named run, or the current one."""
    name = name or active_run(collection)
    if not name:
        raise StoreError(f"collection '{collection.name}' has no detector run; import one with "
                         f"`python app.py predictions --collection {collection.name} FILE`")
    path = _file(collection, name)
    if not path.is_file():
        known = ", ".join(sorted(list_runs(collection))) or "none"
        raise StoreError(f"collection '{collection.name}' has no run '{name}' (runs: {known})")
    with np.load(path, allow_pickle=False) as stored:
        return DetectionRun(name=name, **{k: stored[k] for k in stored.files})
