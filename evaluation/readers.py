"""Read a detector's output into a run of an object collection (evaluation/runs.py).

Formats (one predicted box per row, always with a class and a score in [0, 1]):
- COCO results JSON: `[{"image_id", "category_id", "bbox": [x, y, w, h], "score"}]`, what every
  COCO evaluator reads; `image_id` is resolved through the COCO labels file the collection was
  indexed from (or `--labels`), or a `file_name` key names the image; `category_id` through
  the collection's categories;
- YOLO prediction files, as Ultralytics' `predict save_txt save_conf` writes them: a folder of
  `<image stem>.txt` (or one file), one `class cx cy w h conf` row per box, normalised to the
  image size, classes by index into data.yaml's names;
- CSV or JSON Lines: `path` (dataset-relative), `label`, `bbox` (x, y, w, h in pixels: a JSON
  list or "x,y,w,h"), `score` (or `confidence`).

Every unusable row is reported with where it is (an unknown image or class, a box of no size
or reaching outside its image by more than a pixel, a number that is NaN, a score outside
[0, 1]) and then nothing is written, as `index --embeddings` does: a run with silent holes
would give wrong metrics.
"""
from __future__ import annotations

import csv
import json
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from evaluation.runs import DetectionRun, save_run, validate_run_name
from indexer.objects import object_point_id
from indexer.sources import SourceError
from store import Collection
from store.schema import CATEGORIES, HEIGHT, IMAGE_HEIGHT, IMAGE_ID, IMAGE_WIDTH, LABEL, PATH, WIDTH

OUTSIDE_TOLERANCE = 1.0  # pixels: detectors round and clip their boxes to about this much
MAX_LISTED = 50


@dataclass
class ImageCatalog:
    """What rows are checked against: the collection's images and classes, and the COCO ids."""

    images: dict[str, tuple[str, int, int]]          # path -> (image point id, width, height)
    stems: dict[str, str | None]                     # file stem -> path (None: two images share it)
    classes: set[str]
    category_names: dict[int, str]                   # category id -> name (COCO ids; YOLO: index)
    coco_images: dict[Any, str] = field(default_factory=dict)   # COCO image id -> path


class DetectionsRejected(SourceError):
    """Some rows cannot be used; nothing was written. `problems`: (where, why), the first MAX_LISTED."""

    def __init__(self, file: Path, rows: int, problems: list[tuple[str, str]], counts: Counter[str]) -> None:
        self.problems, self.counts = problems, counts
        reasons = "; ".join(f"{n} x {reason}" for reason, n in counts.most_common())
        super().__init__(f"{file}: {sum(counts.values())} of {rows} predictions cannot be used, so nothing was "
                         f"written ({reasons}). Fix or drop those rows and run again")


@dataclass
class DetectionImport:
    run: str
    layout: str
    predictions: int
    images: int
    boxes_scored: int = 0

    def summary(self) -> str:
        return (f"run '{self.run}' ({self.layout}): {self.predictions} predictions on {self.images} images; "
                f"{self.boxes_scored} labelled boxes matched against it")


def looks_like_detections(path: Path) -> bool:
    """Whether a predictions file holds boxes (else it is a classifier's, indexer/predictions.py)."""
    path = Path(path)
    if path.is_dir() or path.suffix.lower() == ".txt":
        return True
    with path.open(encoding="utf-8-sig") as handle:
        head = handle.read(4096).lstrip()
    if head.startswith("["):
        return True
    first = head.splitlines()[0] if head else ""
    return "bbox" in first


def read_detections(path: Path, catalog: ImageCatalog) -> tuple[str, list[tuple[str, str, list[float], float]]]:
    """(layout, rows of (image path, class, bbox in pixels, score)); DetectionsRejected when any
    row is unusable."""
    path = Path(path)
    if not path.exists():
        raise SourceError(f"predictions {path} do not exist")
    layout, raw = _raw_rows(path, catalog)
    rows, problems, counts, total = [], [], Counter(), 0
    for where, image, label, bbox, score, normalised in raw:
        total += 1
        checked = _check(image, label, bbox, score, normalised, catalog)
        if isinstance(checked, str):
            counts[checked.split(":")[0]] += 1
            if len(problems) < MAX_LISTED:
                problems.append((where, checked))
            continue
        rows.append(checked)
    if problems:
        raise DetectionsRejected(path, total, problems, counts)
    return layout, rows


def _raw_rows(path: Path, catalog: ImageCatalog) -> tuple[str, Iterator[tuple[Any, ...]]]:
    suffix = path.suffix.lower()
    if path.is_dir() or suffix == ".txt":
        return "yolo", _yolo_rows(path, catalog)
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl", _table_rows(path, _json_lines(path))
    if suffix == ".json":
        try:
            document = json.loads(path.read_text(encoding="utf-8-sig"))
        except json.JSONDecodeError as error:
            raise SourceError(f"{path} is not valid JSON: {error}") from None
        if not isinstance(document, list):
            raise SourceError(f"{path}: a COCO results file is a JSON list of {{image_id, category_id, bbox, "
                              f"score}}; this one is a {type(document).__name__}")
        return "coco", _coco_rows(path, document, catalog)
    with path.open(encoding="utf-8-sig", newline="") as handle:
        table = list(csv.DictReader(handle))
    return "csv", _table_rows(path, ((n + 1, row) for n, row in enumerate(table, 1)))


def _coco_rows(path: Path, document: list[Any], catalog: ImageCatalog) -> Iterator[tuple[Any, ...]]:
    for n, entry in enumerate(document):
        where = f"{path.name} entry {n}"
        if not isinstance(entry, dict):
            yield where, None, None, None, None, False
            continue
        image = entry.get("file_name")
        if image is None:
            image = catalog.coco_images.get(entry.get("image_id"), f"image_id {entry.get('image_id')!r}")
        category = entry.get("category_id")
        label = catalog.category_names.get(category, f"category_id {category!r}") if not isinstance(category, bool) \
            else None
        yield where, image, label, entry.get("bbox"), entry.get("score"), False


def _yolo_rows(path: Path, catalog: ImageCatalog) -> Iterator[tuple[Any, ...]]:
    files = sorted(path.rglob("*.txt")) if path.is_dir() else [path]
    for file in files:
        image = catalog.stems.get(file.stem, f"an image named {file.stem}.*")
        for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), 1):
            parts = line.split()
            if not parts:
                continue
            where = f"{file.name}:{number}"
            if len(parts) != 6:
                yield where, image, None, None, None, True
                continue
            try:
                label = catalog.category_names.get(int(parts[0]), f"class {parts[0]}")
            except ValueError:
                label = f"class {parts[0]}"
            yield where, image, label, parts[1:5], parts[5], True


def _json_lines(path: Path) -> Iterator[tuple[int, Any]]:
    for number, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), 1):
        if line.strip():
            try:
                yield number, json.loads(line)
            except json.JSONDecodeError:
                yield number, None


def _table_rows(path: Path, rows: Iterator[tuple[int, Any]]) -> Iterator[tuple[Any, ...]]:
    for number, row in rows:
        where = f"{path.name} row {number}"
        if not isinstance(row, dict):
            yield where, None, None, None, None, False
            continue
        bbox = row.get("bbox")
        if isinstance(bbox, str):
            text = bbox.strip()
            bbox = json.loads(text) if text.startswith("[") and _is_json(text) else text.replace(",", " ").split()
        score = row.get("score", row.get("confidence"))
        image = Path(str(row["path"])).as_posix() if row.get("path") not in (None, "") else None
        yield where, image, row.get("label"), bbox, score, False


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except json.JSONDecodeError:
        return False
    return True


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _check(image: Any, label: Any, bbox: Any, score: Any, normalised: bool,
           catalog: ImageCatalog) -> tuple[str, str, list[float], float] | str:
    """The row as (image path, class, bbox in pixels, score), or why it cannot be used: the
    reason's words before the first ':' count alike in the summary."""
    if image is None or label is None or bbox is None or score is None:
        return "malformed row: needs an image, a class, a bbox and a score"
    if str(image) not in catalog.images:
        return f"unknown image: {image} is not in the collection"
    if str(label) not in catalog.classes:
        return f"unknown class: {label} is not one of the collection's classes"
    numbers = [_number(v) for v in bbox] if isinstance(bbox, (list, tuple)) and len(bbox) == 4 else None
    if numbers is None or any(v is None for v in numbers):
        return f"bad bbox: {bbox!r} is not 4 finite numbers [x, y, w, h]"
    value = _number(score)
    if value is None or not 0.0 <= value <= 1.0:
        return f"bad score: {score!r} is not a number in [0, 1]"
    _, width, height = catalog.images[str(image)]
    box = _pixels(numbers, width, height) if normalised else numbers
    if box[2] <= 0 or box[3] <= 0:
        return f"box of no size: {bbox!r}"
    if (box[0] < -OUTSIDE_TOLERANCE or box[1] < -OUTSIDE_TOLERANCE or box[0] + box[2] > width + OUTSIDE_TOLERANCE
            or box[1] + box[3] > height + OUTSIDE_TOLERANCE):
        return f"box outside the image: {[round(v, 2) for v in box]} in the {width}x{height} image {image}"
    return str(image), str(label), box, value


def _pixels(normalised: list[float], width: int, height: int) -> list[float]:
    cx, cy, w, h = normalised
    return [(cx - w / 2) * width, (cy - h / 2) * height, w * width, h * height]


def image_catalog(objects: Collection, images: Collection | None, labels_file: Path | None) -> ImageCatalog:
    """The images (of the image collection, or those holding boxes), classes and COCO ids."""
    if images is not None:
        columns = images.columns([PATH, WIDTH, HEIGHT])
        entries = zip(columns.values[PATH], columns.ids, columns.values[WIDTH], columns.values[HEIGHT])
    else:
        columns = objects.columns([PATH, IMAGE_ID, IMAGE_WIDTH, IMAGE_HEIGHT])
        entries = zip(columns.values[PATH], columns.values[IMAGE_ID], columns.values[IMAGE_WIDTH],
                      columns.values[IMAGE_HEIGHT])
    found = {str(p): (str(i), int(w or 0), int(h or 0)) for p, i, w, h in entries if p}
    stems: dict[str, str | None] = {}
    for path in found:
        stem = Path(path).stem
        stems[stem] = None if stem in stems else path
    categories = objects.read_metadata().get(CATEGORIES) or []
    names = {int(c["id"]): str(c["name"]) for c in categories}
    classes = set(names.values()) | {str(v) for v in objects.columns([LABEL]).values[LABEL] if v}
    catalog = ImageCatalog(found, stems, classes, names)
    if labels_file is not None and Path(labels_file).suffix.lower() == ".json" and Path(labels_file).is_file():
        coco = json.loads(Path(labels_file).read_text(encoding="utf-8-sig"))
        if isinstance(coco, dict):
            catalog.coco_images = {image["id"]: Path(image["file_name"]).as_posix()
                                   for image in coco.get("images", []) if isinstance(image, dict) and "id" in image}
    return catalog


def coco_ground_truth(labels_file: Path | None, catalog: ImageCatalog) -> dict[str, np.ndarray]:
    """What the COCO labels file adds to the labelled boxes: crowd regions, COCO areas, image ids."""
    empty = {"crowd_ids": np.array([], str), "area_ids": np.array([], str), "area": np.array([], np.float64),
             "order_ids": np.array([], str), "order": np.array([], np.float64)}
    if not catalog.coco_images or labels_file is None:
        return empty
    coco = json.loads(Path(labels_file).read_text(encoding="utf-8-sig"))
    crowd, area_ids, areas = [], [], []
    for annotation in coco.get("annotations", []):
        if not isinstance(annotation, dict) or annotation.get("image_id") not in catalog.coco_images:
            continue
        if not isinstance(annotation.get("id"), int) or isinstance(annotation.get("id"), bool):
            continue
        pid = object_point_id(catalog.coco_images[annotation["image_id"]], annotation["id"])
        if annotation.get("iscrowd"):
            crowd.append(pid)
        if _number(annotation.get("area")) is not None:
            area_ids.append(pid)
            areas.append(float(annotation["area"]))
    order = [(catalog.images[p][0], i) for i, p in catalog.coco_images.items()
             if p in catalog.images and _number(i) is not None]
    return {"crowd_ids": np.array(crowd, str), "area_ids": np.array(area_ids, str),
            "area": np.array(areas, np.float64), "order_ids": np.array([o[0] for o in order], str),
            "order": np.array([float(o[1]) for o in order], np.float64)}


def import_detections(objects: Collection, images: Collection | None, path: Path, name: str | None = None,
                      labels_file: Path | None = None) -> DetectionImport:
    """Read, check and save a run (replacing one of the same name); nothing is written when a
    row is unusable. The labelled boxes' outcomes are written by the caller (evaluation)."""
    path = Path(path)
    name = validate_run_name(name or path.stem)
    if labels_file is None and images is not None:
        recorded = images.read_metadata().get("labels_file")
        labels_file = Path(recorded) if recorded else None
    catalog = image_catalog(objects, images, labels_file)
    layout, rows = read_detections(path, catalog)
    run = DetectionRun(name=name, image_id=np.array([catalog.images[r[0]][0] for r in rows], str),
                       label=np.array([r[1] for r in rows], str),
                       bbox=np.array([r[2] for r in rows], np.float64).reshape(-1, 4),
                       score=np.array([r[3] for r in rows], np.float64),
                       **coco_ground_truth(labels_file, catalog))
    save_run(objects, run, {"file": str(path), "format": layout})
    return DetectionImport(name, layout, len(run), len(set(run.image_id.tolist())))
