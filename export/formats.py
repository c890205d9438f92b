"""The export formats. Each writer takes the matching points as `ExportRecords` and a target.

    csv          one row per point; list fields joined with '|', object fields (review) as JSON,
                 booleans as True / False; a text cell that a spreadsheet would run as a formula
                 (starting with = + - @, a tab or a carriage return) starts with ' instead (OWASP's
                 CSV-injection advice: the spreadsheet shows the text and hides the quote); numbers
                 stay numbers. JSON Lines and COCO keep every value exact.
    jsonl        one JSON object per line
    coco         COCO JSON: images (with every record field) and image-level categories;
                 of an object collection, its boxes (export/detection.py)
    yolo         object collections: a YOLO folder (images/, labels/, data.yaml)
    imagefolder  out/<label>/<file>, copies or symlinks of the source images
    paths        the image files' paths, one a line (for labelling scripts; a YOLO image list)
    label-studio Label Studio tasks JSON (export/label_studio.py)

An object collection's csv / jsonl have one row per box (with annotation_id and bbox).
"""
from __future__ import annotations

import csv
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

from export.detection import write_coco_objects
from export.errors import ExportError
from export.files import place_file
from export.label_studio import write_label_studio
from export.records import LIST_FIELDS, ExportRecords
from store.schema import BBOX

UNLABELLED_DIR = "_unlabelled"
# A spreadsheet takes a cell starting with one of these as a formula (=HYPERLINK(...), +cmd|...).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass
class WriteResult:
    count: int
    missing: list[str] = field(default_factory=list)  # image files not found (imagefolder)


def write_csv(data: ExportRecords, handle: TextIO) -> WriteResult:
    columns = [*data.base_fields, *data.fields]
    writer = csv.writer(handle)
    writer.writerow(columns)
    for record in data.records:
        writer.writerow([_cell(record.get(c), c) for c in columns])
    return WriteResult(len(data))


def _inert(text: str) -> str:
    """Text as text in a spreadsheet: a cell that would start a formula gets a leading '."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _cell(value: Any, column: str) -> Any:
    """The CSV cell of `value`; text cells pass through `_inert`, numbers (a negative score,
    x and y) are written as they are."""
    if isinstance(value, str):
        return _inert(value)
    if column == BBOX:  # "[x, y, width, height]": one cell, read back with any JSON parser
        return "" if value is None else json.dumps(value)
    if column in LIST_FIELDS or isinstance(value, list):
        # '|' keeps one row per point and survives a spreadsheet round trip.
        return _inert("|".join(str(v) for v in value or []))
    if isinstance(value, dict):  # e.g. review: one JSON cell (starts with '{'), lossless
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return "" if value is None else value


def write_jsonl(data: ExportRecords, handle: TextIO) -> WriteResult:
    for record in data.records:
        handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    return WriteResult(len(data))


def write_paths(data: ExportRecords, handle: TextIO) -> WriteResult:
    """One line per image (an object collection's boxes share their image's line)."""
    paths = dict.fromkeys(data.absolute_path(record) for record in data.records)
    for path in paths:
        handle.write(path + "\n")
    return WriteResult(len(paths))


def coco_document(data: ExportRecords) -> dict[str, Any]:
    """COCO with image-level categories: one annotation per (image, category), a whole-image
    box when the size is known. `file_name` is the path relative to the source root, so
    `python app.py index ROOT --labels this.json` reads it back."""
    names = sorted({n for r in data.records for n in (r["labels"] or ([r["label"]] if r["label"] else []))})
    category_id = {name: i + 1 for i, name in enumerate(names)}
    images, annotations = [], []
    for index, record in enumerate(data.records, start=1):
        width, height = record.get("width"), record.get("height")
        extra = {k: v for k, v in record.items() if k not in ("path", "width", "height", "id")}
        images.append({"id": index, "file_name": record["path"], "width": int(width or 0), "height": int(height or 0),
                       "embedscape_id": record["id"], **extra})
        for name in record["labels"] or ([record["label"]] if record["label"] else []):
            annotation: dict[str, Any] = {"id": len(annotations) + 1, "image_id": index,
                                          "category_id": category_id[name], "iscrowd": 0}
            if width and height:
                annotation.update(bbox=[0, 0, int(width), int(height)], area=int(width) * int(height))
            annotations.append(annotation)
    return {
        "info": {"description": f"embedscape export of collection '{data.collection}'",
                 "date_created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                 "source_root": data.source_root or ""},
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": [{"id": i, "name": n, "supercategory": ""} for n, i in category_id.items()],
    }


def write_coco(data: ExportRecords, handle: TextIO) -> WriteResult:
    if data.objects:
        return WriteResult(write_coco_objects(data, handle))
    json.dump(coco_document(data), handle, ensure_ascii=False)
    return WriteResult(len(data))


def write_imagefolder(data: ExportRecords, out: Path, link: str = "copy") -> WriteResult:
    """out/<label>/<file name> for every point whose image exists; `link` is copy or symlink."""
    if link not in ("copy", "symlink"):
        raise ExportError(f"unknown link mode {link!r}; choose copy or symlink")
    if data.objects:
        raise ExportError(f"'{data.collection}' is an object collection (one point per box): export its boxes "
                          "with --format coco or yolo, or its images with imagefolder from the image collection")
    if not data.source_root:
        raise ExportError(f"collection '{data.collection}' does not record where its images are "
                          "(no source_root); export csv, jsonl, coco or paths instead")
    if out.exists() and not out.is_dir():
        raise ExportError(f"cannot write {out}: it is a file, and imagefolder needs a folder")
    result = WriteResult(0)
    used: set[str] = set()
    for record in data.records:
        source = Path(data.absolute_path(record))
        if not source.is_file():
            result.missing.append(str(source))
            continue
        folder = folder_name(record["label"])
        name = source.name
        if f"{folder}/{name}" in used:  # same file name from two source folders
            name = f"{source.stem}-{record['id'][:8]}{source.suffix}"
        used.add(f"{folder}/{name}")
        place_file(source, out / folder / name, link)
        result.count += 1
    if data.records and not result.count:
        raise ExportError(f"none of the {len(data)} images were found under {data.source_root}; "
                          "is the dataset folder still there?")
    return result


def folder_name(label: str) -> str:
    """A label as one safe folder name."""
    name = "".join("_" if c in "/\\\0" else c for c in (label or "")).strip()
    return UNLABELLED_DIR if name in ("", ".", "..") else name


def write_label_studio_tasks(data: ExportRecords, handle: TextIO) -> WriteResult:
    return WriteResult(write_label_studio(data, handle))


TEXT_WRITERS: dict[str, Callable[[ExportRecords, TextIO], WriteResult]] = {
    "csv": write_csv, "jsonl": write_jsonl, "coco": write_coco, "paths": write_paths,
    "label-studio": write_label_studio_tasks,
}
EXTENSIONS = {"csv": ".csv", "jsonl": ".jsonl", "coco": ".json", "paths": ".txt", "label-studio": ".json",
              "imagefolder": "", "yolo": ""}
FOLDER_FORMATS = ("imagefolder", "yolo")
FORMATS = (*TEXT_WRITERS, *FOLDER_FORMATS)
