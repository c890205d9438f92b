"""Exports of an object collection (one point per box): COCO instances and a YOLO folder.

    coco   the images that hold the chosen boxes, and only those boxes: annotation and category
           ids as in the source, each box's class as it is now (a relabelled box keeps the class
           it came with in `original_label`), tags and scores as extra annotation fields.
           A box with a mask gets its `segmentation` (polygons, or RLE compressed or not, as the
           source had it), `iscrowd` and the mask's `area`, as COCO defines them.
           `python app.py index ROOT --labels this.json` reads it back.
    yolo   out/images/<path> (copies or symlinks), out/labels/... one `class cx cy w h` row per
           box where Ultralytics looks for it (a box with a polygon mask: a segmentation row
           `class x1 y1 x2 y2 ...`, its largest polygon), out/data.yaml with the class names.

Classes keep the source's order and ids (the object collection's `categories` metadata);
classes that exist only through a relabel come after them.
"""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

from export.errors import ExportError
from export.files import place_file
from export.records import ExportRecords
from indexer.annotations import yolo_label_path
from detection.masks import coco_segmentation, rasterise, yolo_polygon
from store.schema import (
    ANNOTATION_ID, BBOX, IMAGE_HEIGHT, IMAGE_ID, IMAGE_WIDTH, LABEL, MASK, PATH, PREDICTION_SOURCE, SOURCE,
)

YOLO_YAML = "data.yaml"
# Record fields that COCO's own annotation keys already carry (or that describe the image).
_COCO_OWN = {"id", PATH, LABEL, "labels", BBOX, ANNOTATION_ID, IMAGE_ID, IMAGE_WIDTH, IMAGE_HEIGHT, MASK}


def categories(data: ExportRecords) -> list[tuple[int, str]]:
    """(id, name) of every class: the source's, in its order, then new ones (from relabels)."""
    known = [(int(c["id"]), str(c["name"])) for c in data.categories or []]
    names = {name for _, name in known}
    next_id = max((i for i, _ in known), default=0) + 1
    for name in sorted({str(r[LABEL]) for r in data.records if r[LABEL]} - names):
        known.append((next_id, name))
        next_id += 1
    return known


def _boxed(data: ExportRecords) -> list[dict[str, Any]]:
    """Labelled records with a box and a class (every labelled box has both; a detector's
    prediction point is no label and is skipped, as is anything else)."""
    return [r for r in data.records if r.get(BBOX) and r[LABEL] and r.get(SOURCE) != PREDICTION_SOURCE]


def coco_objects_document(data: ExportRecords) -> dict[str, Any]:
    records = _boxed(data)
    category_ids = {name: i for i, name in categories(data)}
    paths = sorted({r[PATH] for r in records})
    image_ids = {path: index for index, path in enumerate(paths, start=1)}
    images: dict[str, dict[str, Any]] = {}
    source_ids = [r[ANNOTATION_ID] for r in records]
    keep_ids = all(isinstance(i, int) for i in source_ids) and len(set(source_ids)) == len(source_ids)
    annotations = []
    for number, record in enumerate(records, start=1):
        path = record[PATH]
        images.setdefault(path, {"id": image_ids[path], "file_name": path, "width": int(record.get(IMAGE_WIDTH) or 0),
                                 "height": int(record.get(IMAGE_HEIGHT) or 0), "embedscape_id": record[IMAGE_ID]})
        x, y, w, h = record[BBOX]
        annotation: dict[str, Any] = {
            "id": record[ANNOTATION_ID] if keep_ids else number, "image_id": image_ids[path],
            "category_id": category_ids[record[LABEL]], "bbox": [x, y, w, h], "area": w * h, "iscrowd": 0,
            "embedscape_id": record["id"],
            **{k: v for k, v in record.items() if k not in _COCO_OWN}}
        if not keep_ids:  # YOLO / VOC ids are per image: numbered anew, the source's kept beside
            annotation["source_annotation_id"] = record[ANNOTATION_ID]
        if isinstance(record.get(MASK), dict):
            annotation.update(_coco_mask_fields(record))
        annotations.append(annotation)
    return {
        "info": {"description": f"embedscape export of object collection '{data.collection}'",
                 "date_created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                 "source_root": data.source_root or ""},
        "licenses": [],
        "images": [images[p] for p in paths],
        "annotations": annotations,
        "categories": [{"id": i, "name": n, "supercategory": ""} for i, n in categories(data)],
    }


def _coco_mask_fields(record: dict[str, Any]) -> dict[str, Any]:
    """segmentation, iscrowd and the mask's area (COCO's `area` of a segmented object)."""
    mask = record[MASK]
    segmentation, crowd = coco_segmentation(mask)
    try:
        area = float(rasterise(mask, int(record.get(IMAGE_WIDTH) or 0), int(record.get(IMAGE_HEIGHT) or 0)).sum())
    except ValueError:   # a polygon without the image size: the box's area stays
        return {"segmentation": segmentation, "iscrowd": crowd}
    return {"segmentation": segmentation, "iscrowd": crowd, "area": area}


def write_coco_objects(data: ExportRecords, handle: TextIO) -> int:
    import json

    document = coco_objects_document(data)
    json.dump(document, handle, ensure_ascii=False)
    return len(document["annotations"])


def write_yolo(data: ExportRecords, out: Path, link: str = "copy") -> tuple[int, list[str]]:
    """The YOLO folder; returns (boxes written, image files that were missing)."""
    if link not in ("copy", "symlink"):
        raise ExportError(f"unknown link mode {link!r}; choose copy or symlink")
    if not data.source_root:
        raise ExportError(f"collection '{data.collection}' does not record where its images are "
                          "(no source_root); export coco, csv or jsonl instead")
    if out.exists() and not out.is_dir():
        raise ExportError(f"cannot write {out}: it is a file, and yolo needs a folder")
    classes = categories(data)
    class_index = {name: index for index, (_, name) in enumerate(classes)}
    by_image: dict[str, list[dict[str, Any]]] = {}
    for record in _boxed(data):
        by_image.setdefault(record[PATH], []).append(record)
    written, missing = 0, []
    for path, records in sorted(by_image.items()):
        source = Path(data.source_root) / path
        if not source.is_file():
            missing.append(str(source))
            continue
        target = out / "images" / path
        place_file(source, target, link)
        label_file = yolo_label_path(target)
        label_file.parent.mkdir(parents=True, exist_ok=True)
        label_file.write_text("".join(_yolo_row(r, class_index) for r in records))
        written += len(records)
    if by_image and len(missing) == len(by_image):
        raise ExportError(f"none of the {len(by_image)} images were found under {data.source_root}; "
                          "is the dataset folder still there?")
    _write_yaml(out / YOLO_YAML, [name for _, name in classes])
    return written, missing


def _yolo_row(record: dict[str, Any], class_index: dict[str, int]) -> str:
    x, y, w, h = record[BBOX]
    width, height = float(record.get(IMAGE_WIDTH) or 0), float(record.get(IMAGE_HEIGHT) or 0)
    if not width or not height:
        raise ExportError(f"box {record['id']} of {record[PATH]} has no image size; re-index the collection")
    polygon = yolo_polygon(record.get(MASK) if isinstance(record.get(MASK), dict) else None, width, height)
    values = polygon or ((x + w / 2) / width, (y + h / 2) / height, w / width, h / height)
    return f"{class_index[record[LABEL]]} " + " ".join(f"{v:.6f}" for v in values) + "\n"


def _write_yaml(path: Path, names: list[str]) -> None:
    import yaml

    path.parent.mkdir(parents=True, exist_ok=True)
    # No `path`: Ultralytics then takes the folder of data.yaml (a relative `path` would be read
    # against its own datasets folder).
    config = {"train": "images", "val": "images", "names": dict(enumerate(names))}
    path.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))

