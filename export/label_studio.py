"""Label Studio tasks: the points as a JSON list Label Studio imports (Tasks -> Import).

Each task's `data.image` is a local-storage URL, `/data/local-files/?d=<path>`, with the path
relative to the collection's source folder: start Label Studio with
`LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED=true` and
`LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT=<that folder>` (and add it as local storage) and it
serves the images from there. `data.embedscape_id` and `data.path` name the point, so the
labels Label Studio exports come back with `python app.py labels` (indexer/labels_import.py).
A point with an imported prediction carries it as a pre-annotation (`predictions`, a
`choices` result from `choice` to `image`, the labelling config in README).
"""
from __future__ import annotations

import json
from typing import Any, TextIO
from urllib.parse import quote

from export.records import ID, ExportRecords
from store.schema import PATH, PREDICTION, PREDICTION_CONFIDENCE

LOCAL_FILES_URL = "/data/local-files/?d="
FROM_NAME, TO_NAME = "choice", "image"  # the <Choices name> and <Image name> of the labelling config


def task(record: dict[str, Any]) -> dict[str, Any]:
    """One Label Studio task for one point's record."""
    path = str(record.get(PATH) or "")
    entry: dict[str, Any] = {"data": {"image": LOCAL_FILES_URL + quote(path), "embedscape_id": record[ID],
                                      "path": path}}
    prediction = record.get(PREDICTION)
    if prediction:
        result = {"from_name": FROM_NAME, "to_name": TO_NAME, "type": "choices",
                  "value": {"choices": [str(prediction)]}}
        pre: dict[str, Any] = {"model_version": "embedscape predictions", "result": [result]}
        if isinstance(record.get(PREDICTION_CONFIDENCE), (int, float)):
            pre["score"] = float(record[PREDICTION_CONFIDENCE])
        entry["predictions"] = [pre]
    return entry


def write_label_studio(data: ExportRecords, handle: TextIO) -> int:
    """The tasks of every record (an object collection's boxes: one task per image)."""
    seen: set[str] = set()
    tasks = []
    for record in data.records:
        if data.objects:  # a task labels an image; boxes of one image share it
            if record[PATH] in seen:
                continue
            seen.add(record[PATH])
            record = {**record, PREDICTION: None}
        tasks.append(task(record))
    json.dump(tasks, handle, ensure_ascii=False, indent=1)
    return len(tasks)
