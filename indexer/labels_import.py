"""Labels coming back from annotators, written onto the points they name (no embedding).

    result = import_labels(collection, Path("batch-2.csv"))

Accepted files:
- CSV or JSON Lines with `label` and `path` (dataset-relative) or `id` (e.g. the `batch-N.csv`
  that `select-next --out` writes, filled in), optional `split`;
- a Label Studio JSON export (a list of tasks): each task's point from `data.embedscape_id`
  (the tasks `select-next` and `export --format label-studio` write carry it) or `data.path`,
  its label from the last annotation's first `choices` value (a `labels` value for boxes is
  not read: this imports image labels).
Rows with an empty label are skipped (not labelled yet); rows naming no point and unusable rows
are reported, never dropped silently. Written per point: `label`, `labels` ([label]), `split`
when given, and `prediction_correct` where a prediction was imported. A later `index --labels
FILE` writes that file's labels over these: add them to your labels file too.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from indexer.predictions import read_rows
from indexer.sources import SourceError
from store import Collection, point_id
from store.schema import LABEL, LABELS, PREDICTION, PREDICTION_CORRECT, SPLIT


@dataclass
class LabelImport:
    rows: int = 0
    written: int = 0
    empty: int = 0
    unknown_points: list[str] = field(default_factory=list)
    bad_rows: list[str] = field(default_factory=list)

    def summary(self) -> str:
        text = f"{self.written} of {self.rows} labels written"
        if self.empty:
            text += f"; {self.empty} rows without a label skipped"
        if self.unknown_points:
            text += f"; {len(self.unknown_points)} rows name no point in the collection"
        if self.bad_rows:
            text += f"; {len(self.bad_rows)} rows unusable"
        return text


def read_label_rows(path: Path) -> list[dict[str, Any]]:
    """Rows of {id or path, label[, split]}: a Label Studio export converted, else CSV / JSON Lines."""
    if not path.is_file():
        raise SourceError(f"labels file {path} does not exist")
    if path.suffix.lower() == ".json":
        try:
            document = json.loads(path.read_text(encoding="utf-8-sig"))
        except ValueError as error:
            raise SourceError(f"{path} is not valid JSON ({error})") from None
        if isinstance(document, list):
            return [_from_label_studio(task, number) for number, task in enumerate(document, 1)]
    return read_rows(path)


def _from_label_studio(task: Any, number: int) -> dict[str, Any]:
    if not isinstance(task, dict) or not isinstance(task.get("data"), dict):
        return {"_error": f"task {number}: not a Label Studio task (no 'data')"}
    data = task["data"]
    row: dict[str, Any] = {"id": data.get("embedscape_id") or "", "path": data.get("path") or ""}
    choices = [value for annotation in task.get("annotations") or [] if not annotation.get("was_cancelled")
               for result in annotation.get("result") or [] for value in result.get("value", {}).get("choices", [])]
    row["label"] = choices[-1] if choices else ""
    return row


def import_labels(collection: Collection, path: Path) -> LabelImport:
    result = LabelImport()
    rows = read_label_rows(Path(path))
    result.rows = len(rows)
    known = {r.id: r.payload for batch in collection.scroll([PREDICTION]) for r in batch}
    ids: list[str] = []
    payloads: list[dict[str, Any]] = []
    for number, row in enumerate(rows, 1):
        if "_error" in row:
            result.bad_rows.append(row["_error"])
            continue
        pid = str(row.get("id") or "") or (point_id(Path(str(row["path"])).as_posix()) if row.get("path") else "")
        if not pid:
            result.bad_rows.append(f"row {number}: no 'path' or 'id'")
            continue
        label = str(row.get("label") or "").strip()
        if not label:
            result.empty += 1
            continue
        if pid not in known:
            result.unknown_points.append(str(row.get("path") or row.get("id")))
            continue
        payload: dict[str, Any] = {LABEL: label, LABELS: [label]}
        if row.get("split"):
            payload[SPLIT] = str(row["split"])
        if known[pid].get(PREDICTION) is not None:
            payload[PREDICTION_CORRECT] = known[pid][PREDICTION] == label
        ids.append(pid)
        payloads.append(payload)
    collection.set_payloads(ids, payloads)
    collection.flush()
    result.written = len(ids)
    return result
