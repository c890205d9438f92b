"""The files annotators work from, for one batch (the points of one tag).

    write_batch_files(collection, ids, "batch-2", Path("out"))
    -> out/batch-2.csv                 path,label,split,id: fill in `label`; `python app.py labels` reads it back
       out/batch-2-label-studio.json   Label Studio tasks (export/label_studio.py)
       out/batch-2-coco.json           COCO images (no annotations for unlabelled images)
       out/batch-2-yolo.txt            the images' paths, one a line: a YOLO image list

Written through export/, so the paths, the COCO document and the tasks are those of
`python app.py export` with the same points. A batch chosen from a detector's run
(`uncertain-boxes`) carries the run's boxes as pre-annotations instead: Label Studio predictions,
COCO annotations and a YOLO labels folder (labelling/pre_annotations.py).
"""
from __future__ import annotations

import csv
import io
from pathlib import Path

from export import ExportError, export_points
from labelling.detector import DetectorSource
from labelling.pre_annotations import write_pre_annotations
from store import Collection, PointFilter
from store.schema import PATH, SPLIT

FILES = {"label-studio": "-label-studio.json", "coco": "-coco.json", "paths": "-yolo.txt"}


def write_batch_files(collection: Collection, ids: list[str], tag: str, out: Path,
                      boxes_from: DetectorSource | None = None) -> list[Path]:
    """Write the batch's files into the folder `out` (created); returns them. `boxes_from`:
    the object collection and run (named) whose boxes pre-annotate the images."""
    if out.exists() and not out.is_dir():
        raise ExportError(f"cannot write into {out}: it is a file; give a folder")
    out.mkdir(parents=True, exist_ok=True)
    stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in tag)
    written = [_annotator_csv(collection, ids, out / f"{stem}.csv")]
    if boxes_from is not None and boxes_from.run:
        return written + write_pre_annotations(collection, boxes_from.objects, ids, boxes_from.run,
                                               boxes_from.threshold, stem, out)
    flt = PointFilter(ids=list(ids))
    for fmt, suffix in FILES.items():
        written.append(export_points(collection, fmt, out / f"{stem}{suffix}", flt).out)
    return written


def _annotator_csv(collection: Collection, ids: list[str], path: Path) -> Path:
    """path,label,split,id with `label` empty: the labels file an annotator fills in."""
    records = sorted(collection.retrieve(list(ids), [PATH, SPLIT]), key=lambda r: str(r.payload.get(PATH)))
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(["path", "label", "split", "id"])
    for record in records:
        writer.writerow([record.payload.get(PATH, ""), "", record.payload.get(SPLIT) or "", record.id])
    try:
        path.write_text(buffer.getvalue(), encoding="utf-8", newline="")
    except OSError as error:
        raise ExportError(f"cannot write {path}: {error.strerror or error}") from error
    return path
