"""Import a model's predictions into a collection, so performance can be read per selection.

Input: CSV or JSON Lines, one row per image, naming it by `path` (dataset-relative) or `id`
(an object collection's boxes: `path` and `annotation_id`, or `id`),
with the predicted label in `prediction` (also accepted: `predicted_label`, `pred`; optional
when probabilities are given: then the most probable class), an optional `confidence`, and
optional per-class probabilities (JSON Lines: a `probabilities` object {class: p}, or a list
of numbers in the order of a `classes` list in the row, else of the collection's labels
sorted; CSV: `prob_<class>` columns; the top probability becomes the confidence).
Written per point: `prediction`, `prediction_confidence`, `prediction_correct`, and with
probabilities `prediction_probabilities` ({class: p}, what uncertainty sampling reads).
Rows naming no known point, rows without a prediction, and predicted labels the dataset
does not have are reported, never silently dropped.
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from indexer.objects import object_point_id
from indexer.sources import SourceError
from store import Collection, point_id
from store.schema import (
    LABEL, PREDICTION, PREDICTION_CONFIDENCE, PREDICTION_CORRECT, PREDICTION_FIELDS, PREDICTION_PROBABILITIES,
)

PREDICTION_KEYS = ("prediction", "predicted_label", "pred")


@dataclass
class PredictionImport:
    rows: int = 0
    written: int = 0
    unknown_points: list[str] = field(default_factory=list)
    unknown_labels: dict[str, int] = field(default_factory=dict)
    bad_rows: list[str] = field(default_factory=list)

    def summary(self) -> str:
        text = f"{self.written} of {self.rows} predictions written"
        if self.unknown_points:
            text += f"; {len(self.unknown_points)} rows name no point in the collection"
        if self.bad_rows:
            text += f"; {len(self.bad_rows)} rows unusable"
        if self.unknown_labels:
            names = ", ".join(f"{k} ({v})" for k, v in sorted(self.unknown_labels.items()))
            text += f"; predicted labels not in the dataset (written anyway): {names}"
        return text


def read_rows(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise SourceError(f"predictions file {path} does not exist")
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        rows = []
        for number, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    rows.append({"_error": f"line {number}: not valid JSON"})
        return rows
    return [dict(r) for r in csv.DictReader(text.splitlines())]


def import_predictions(collection: Collection, path: Path) -> PredictionImport:
    result = PredictionImport()
    rows = read_rows(Path(path))
    result.rows = len(rows)
    columns = collection.columns([LABEL])
    label_of = dict(zip(columns.ids, columns.values[LABEL]))
    known_labels = set(label_of.values())
    class_order = sorted(label for label in known_labels if label)
    ids: list[str] = []
    payloads: list[dict[str, Any]] = []
    for number, row in enumerate(rows, 1):
        parsed = _parse(row, number, class_order)
        if isinstance(parsed, str):
            result.bad_rows.append(parsed)
            continue
        pid, prediction, confidence, probabilities = parsed
        if pid not in label_of:
            result.unknown_points.append(str(row.get("path") or row.get("id")))
            continue
        if prediction not in known_labels:
            result.unknown_labels[prediction] = result.unknown_labels.get(prediction, 0) + 1
        ids.append(pid)
        payload = {PREDICTION: prediction, PREDICTION_CONFIDENCE: confidence,
                   PREDICTION_CORRECT: prediction == label_of[pid]}
        if probabilities:
            payload[PREDICTION_PROBABILITIES] = probabilities
        payloads.append(payload)
    collection.set_payloads(ids, payloads)
    collection.index_fields(PREDICTION_FIELDS)
    collection.flush()
    result.written = len(ids)
    collection.update_metadata(predictions={"file": str(path), "written": result.written})
    return result


def _parse(row: dict[str, Any], number: int,
           class_order: list[str]) -> tuple[str, str, float | None, dict[str, float]] | str:
    if "_error" in row:
        return row["_error"]
    if row.get("id"):
        pid = str(row["id"])
    elif row.get("path") and row.get("annotation_id") not in (None, ""):  # a box of an object collection
        try:
            pid = object_point_id(Path(str(row["path"])).as_posix(), int(row["annotation_id"]))
        except (TypeError, ValueError):
            return f"row {number}: annotation_id {row['annotation_id']!r} is not a whole number"
    elif row.get("path"):
        pid = point_id(Path(str(row["path"])).as_posix())
    else:
        return f"row {number}: no 'path' or 'id'"
    try:
        probabilities = _probabilities(row, class_order)
        prediction = next((str(row[k]) for k in PREDICTION_KEYS if row.get(k) not in (None, "")), None)
        if prediction is None and probabilities:
            prediction = max(probabilities, key=lambda name: probabilities[name])
        if prediction is None:
            return f"row {number}: no prediction (columns {', '.join(PREDICTION_KEYS)}) and no probabilities"
        return pid, prediction, _confidence(row, prediction), probabilities
    except ValueError as error:
        return f"row {number}: {error}"


def _probabilities(row: dict[str, Any], class_order: list[str]) -> dict[str, float]:
    """{class: probability} from a `probabilities` object or list, or `prob_<class>` columns
    ({} when the row has none); ValueError for values that are not probabilities."""
    given = row.get("probabilities")
    if isinstance(given, list):
        names = row.get("classes") if isinstance(row.get("classes"), list) else class_order
        if len(names) != len(given):
            source = "the row's classes" if "classes" in row else "the collection's labels, sorted"
            raise ValueError(f"{len(given)} probabilities for {len(names)} classes ({source})")
        given = dict(zip((str(name) for name in names), given))
    if not isinstance(given, dict):
        given = {k[5:]: v for k, v in row.items() if k.startswith("prob_") and v not in (None, "")}
    try:
        probabilities = {str(name): float(value) for name, value in given.items()}
    except (TypeError, ValueError):
        raise ValueError("probabilities must be numbers") from None
    if any(not 0.0 <= p <= 1.0 for p in probabilities.values()):
        raise ValueError("probabilities must lie between 0 and 1")
    return probabilities


def _confidence(row: dict[str, Any], prediction: str) -> float | None:
    if row.get("confidence") not in (None, ""):
        return float(row["confidence"])
    probabilities = row.get("probabilities")
    if isinstance(probabilities, dict) and probabilities:
        return float(probabilities.get(prediction, max(probabilities.values())))
    columns = {k[5:]: v for k, v in row.items() if k.startswith("prob_") and v not in (None, "")}
    if columns:
        return float(columns.get(prediction, max(columns.values(), key=float)))
    return None
