"""Read bounding-box annotations: COCO instances JSON, YOLO (data.yaml + labels/*.txt), Pascal VOC XML.

Each reader returns an `Annotations`: the boxes of every image (by dataset-relative path), the
categories in the source's order, image-level labels (COCO annotations without a box) and the
problems met. A bad annotation never stops a read: it is skipped and reported with its file and
id or line:

- zero or negative size, an unknown class, a malformed row or entry, a duplicate id;
- a broken mask (COCO `segmentation`: polygons that are not x, y pairs, an RLE whose size is
  not the image's or whose counts do not fill it): the mask is dropped, the box kept;
- an annotation whose image is not listed or not found under the dataset folder;
- (later, once the image is decoded, in indexer/objects.py) a box outside the image: clipped,
  and reported; a box wholly outside it, or an image that cannot be decoded: skipped.

Box coordinates stay as the source gives them (YOLO's are fractions of the image size) until
the image's real size is known; `Box.normalised` says which. Boxes are taken in the upright
image, the way every viewer shows an EXIF-rotated photo and the way Ultralytics and FiftyOne
read them.
"""
from __future__ import annotations

import json
import math
import os
import xml.etree.ElementTree as ElementTree
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from detection.masks import coco_mask, yolo_mask

BBox = tuple[float, float, float, float]  # x, y, width, height (COCO order)


class AnnotationError(ValueError):
    """The annotation file as a whole cannot be used (not one bad entry); the message says why."""


@dataclass(frozen=True)
class Box:
    """One labelled box of an image, as its source states it."""

    annotation_id: int           # COCO: its id; YOLO: its line in the label file; VOC: its <object> number
    label: str
    bbox: BBox                   # pixels, or fractions of the image size when `normalised`
    normalised: bool = False
    origin: str = ""             # where it is written, for messages: "instances.json annotation 7"
    mask: Any = field(default=None, hash=False)   # detection/masks.py's payload form (YOLO: fractions)


@dataclass
class Annotations:
    """What a box-carrying labels file says: boxes per image (dataset-relative POSIX path)."""

    layout: str                                              # coco / yolo / voc
    boxes: dict[str, list[Box]] = field(default_factory=dict)
    image_labels: dict[str, Counter[str]] = field(default_factory=dict)  # every label per image
    categories: list[tuple[int, str]] = field(default_factory=list)      # (id, name), source order
    splits: dict[str, str] = field(default_factory=dict)
    listed: set[str] = field(default_factory=set)            # images the file names (boxes or not)
    problems: list[str] = field(default_factory=list)

    def add(self, relative_path: str, box: Box) -> None:
        self.boxes.setdefault(relative_path, []).append(box)
        self.image_labels.setdefault(relative_path, Counter())[box.label] += 1


def _finite_numbers(values: Any, count: int | None = None) -> list[float] | None:
    """The values as floats when they are `count` finite numbers, else None."""
    if not isinstance(values, (list, tuple)) or (count is not None and len(values) != count):
        return None
    try:
        numbers = [float(v) for v in values]
    except (TypeError, ValueError):
        return None
    if any(isinstance(v, bool) for v in values) or not all(math.isfinite(v) for v in numbers):
        return None
    return numbers


# ---------------------------------------------------------------- COCO


def read_coco(coco_path: Path, coco: dict[str, Any], present: set[str]) -> Annotations:
    """Boxes of a COCO instances document (already loaded); `present` is every image file found
    under the dataset folder (relative POSIX paths). Annotations without a `bbox` are image-level
    labels: they count toward the image's labels but make no box."""
    result = Annotations("coco")
    name = coco_path.name
    result.categories = [(c["id"], str(c["name"])) for c in coco.get("categories", [])
                         if isinstance(c, dict) and "id" in c and "name" in c]
    names = dict(result.categories)
    path_of: dict[Any, str] = {}
    size_of: dict[Any, tuple[int, int]] = {}   # (width, height) as listed, to check an RLE's size
    for image in coco["images"]:
        if isinstance(image, dict) and "id" in image and isinstance(image.get("file_name"), str):
            path_of[image["id"]] = Path(image["file_name"]).as_posix()
            if isinstance(image.get("width"), int) and isinstance(image.get("height"), int):
                size_of[image["id"]] = (image["width"], image["height"])
    result.listed = set(path_of.values())
    seen_ids: set[int] = set()
    missing: Counter[str] = Counter()
    for position, annotation in enumerate(coco.get("annotations", [])):
        where = f"{name} annotation {annotation.get('id', f'#{position}')}" if isinstance(annotation, dict) \
            else f"{name} annotation #{position}"
        problem = _coco_problem(annotation, path_of, names, seen_ids)
        if problem:
            result.problems.append(f"{where}: {problem}; skipped")
            continue
        seen_ids.add(annotation["id"])
        relative = path_of[annotation["image_id"]]
        label = names[annotation["category_id"]]
        if relative not in present:
            missing[relative] += 1
            continue
        if "bbox" not in annotation:  # an image-level label (no box)
            result.image_labels.setdefault(relative, Counter())[label] += 1
            continue
        bbox = _finite_numbers(annotation["bbox"], 4) or []
        mask, problem = coco_mask(annotation.get("segmentation"), annotation.get("iscrowd", 0),
                                  size_of.get(annotation["image_id"]))
        if problem:
            result.problems.append(f"{where}: {problem}; the mask dropped, the box kept")
        result.add(relative, Box(annotation["id"], label, (bbox[0], bbox[1], bbox[2], bbox[3]), origin=where,
                                 mask=mask))
    for relative in sorted(result.listed - present):
        count = missing[relative]
        result.problems.append(f"{relative}: in {name} but not found under the dataset folder"
                               + (f"; its {count} annotation{'s' if count > 1 else ''} skipped" if count else ""))
    return result


def _coco_problem(annotation: Any, path_of: dict[Any, str], names: dict[Any, str], seen_ids: set[int]) -> str:
    """Why a COCO annotation cannot be used ('' when it can)."""
    if not isinstance(annotation, dict):
        return "not a JSON object"
    annotation_id = annotation.get("id")
    if not isinstance(annotation_id, int) or isinstance(annotation_id, bool):
        return "no integer 'id'"
    if annotation_id in seen_ids:
        return f"id {annotation_id} is used by an earlier annotation"
    if annotation.get("image_id") not in path_of:
        return f"image_id {annotation.get('image_id')!r} is not in 'images'"
    if annotation.get("category_id") not in names:
        return f"category_id {annotation.get('category_id')!r} is not in 'categories'"
    if "bbox" not in annotation:
        return ""
    bbox = _finite_numbers(annotation["bbox"], 4)
    if bbox is None:
        return f"bbox {annotation['bbox']!r} is not 4 numbers [x, y, width, height]"
    if bbox[2] <= 0 or bbox[3] <= 0:
        return f"bbox {annotation['bbox']!r} has zero or negative size"
    return ""


# ---------------------------------------------------------------- YOLO


def read_yolo(yaml_path: Path, root: Path, files: list[tuple[Path, str]]) -> Annotations:
    """Boxes from YOLO label files: class names from data.yaml's `names`; each image's labels
    in the file Ultralytics reads (the last `/images/` of its path replaced by `/labels/`, the
    suffix by `.txt`), one `class cx cy w h` row per box, normalised to the image size. A
    segmentation row (`class x1 y1 x2 y2 ...`) gives its polygon's bounding box. Images under
    data.yaml's train / val / test folders get that split."""
    config = _load_yaml(yaml_path)
    names = _yolo_names(config.get("names"), yaml_path)
    result = Annotations("yolo", categories=list(enumerate(names)))
    result.splits = _yolo_splits(config, yaml_path, root, files)
    expected: set[Path] = set()
    for path, relative in files:
        label_file = yolo_label_path(path)
        expected.add(label_file)
        if label_file.is_file():
            result.listed.add(relative)
            _read_yolo_file(label_file, root, relative, names, result)
    result.problems += _orphan_label_files(expected, root)
    return result


def yolo_label_path(image_path: Path) -> Path:
    """Where Ultralytics looks for an image's labels (`img2label_paths`)."""
    images, labels = f"{os.sep}images{os.sep}", f"{os.sep}labels{os.sep}"
    text = str(image_path)
    return Path(labels.join(text.rsplit(images, 1)).rsplit(".", 1)[0] + ".txt")


def _load_yaml(yaml_path: Path) -> dict[str, Any]:
    try:
        import yaml
    except ImportError as error:  # in requirements.txt; a clear message if an install lacks it
        raise AnnotationError("reading a YOLO data.yaml needs PyYAML: pip install pyyaml") from error
    try:
        config = yaml.safe_load(yaml_path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise AnnotationError(f"{yaml_path} is not valid YAML: {error}") from error
    if not isinstance(config, dict):
        raise AnnotationError(f"{yaml_path} is not a YOLO data.yaml (expected keys such as 'names')")
    return config


def _yolo_names(names: Any, yaml_path: Path) -> list[str]:
    """data.yaml's `names`, a list or a {class id: name} mapping, as a list indexed by class id."""
    if isinstance(names, list) and names:
        return [str(n) for n in names]
    if isinstance(names, dict) and names:
        try:
            by_id = {int(k): str(v) for k, v in names.items()}
        except (TypeError, ValueError):
            by_id = {}
        if by_id and sorted(by_id) == list(range(len(by_id))):
            return [by_id[i] for i in range(len(by_id))]
    raise AnnotationError(f"{yaml_path} needs 'names': a list of class names, or a mapping "
                          "{0: name, 1: name, ...} with ids 0..n-1")


def _yolo_splits(config: dict[str, Any], yaml_path: Path, root: Path, files: list[tuple[Path, str]]) -> dict[str, str]:
    """relative path -> train / val / test, for images under a folder data.yaml names for it."""
    base = Path(str(config.get("path") or "."))
    if not base.is_absolute():
        base = (yaml_path.parent / base)
    folders: list[tuple[Path, str]] = []
    for split in ("train", "val", "test"):
        entries = config.get(split)
        for entry in entries if isinstance(entries, list) else [entries]:
            if not isinstance(entry, str):
                continue
            for candidate in (base / entry, root / entry):
                if candidate.is_dir():
                    folders.append((candidate.resolve(), split))
                    break
    splits = {}
    for path, relative in files:
        resolved = path.resolve()
        for folder, split in folders:
            if resolved.is_relative_to(folder):
                splits[relative] = split
                break
    return splits


def _read_yolo_file(label_file: Path, root: Path, relative: str, names: list[str], result: Annotations) -> None:
    shown = _shown_path(label_file, root)
    try:
        lines = label_file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        result.problems.append(f"{shown}: cannot read ({error}); the image's boxes skipped")
        return
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        box, problem = _yolo_row(line.split(), names)
        if problem:
            result.problems.append(f"{shown}:{number}: {problem}; skipped")
            continue
        label, bbox, mask = box
        result.add(relative, Box(number, label, bbox, normalised=True, origin=f"{shown}:{number}", mask=mask))


def _yolo_row(fields: list[str], names: list[str]) -> tuple[Any, str]:
    """((label, normalised bbox, mask or None), '') or (None, why the row is not a box)."""
    numbers = _finite_numbers(fields)
    if numbers is None or not (len(numbers) == 5 or (len(numbers) >= 7 and len(numbers) % 2 == 1)):
        return None, f"malformed row {' '.join(fields)!r} (expected 'class cx cy w h')"
    class_id = numbers[0]
    if class_id != int(class_id) or not 0 <= class_id < len(names):
        return None, f"class {fields[0]} is not one of data.yaml's {len(names)} classes (0..{len(names) - 1})"
    if len(numbers) == 5:
        cx, cy, width, height = numbers[1:]
    else:  # a polygon: its bounding box
        xs, ys = numbers[1::2], numbers[2::2]
        cx, cy, width, height = ((min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2, max(xs) - min(xs), max(ys) - min(ys))
    if width <= 0 or height <= 0:
        return None, f"box {' '.join(fields[1:])} has zero or negative size"
    mask = yolo_mask(numbers[1:]) if len(numbers) > 5 else None
    return (names[int(class_id)], (cx - width / 2, cy - height / 2, width, height), mask), ""


def _orphan_label_files(expected: set[Path], root: Path) -> list[str]:
    """Label files beside the ones the images use whose image is not there."""
    problems = []
    for folder in sorted({p.parent for p in expected}):
        if not folder.is_dir():
            continue
        for label_file in sorted(folder.glob("*.txt")):
            if label_file not in expected and label_file.name != "classes.txt":
                problems.append(f"{_shown_path(label_file, root)}: no image with this name under the dataset "
                                "folder; its boxes skipped")
    return problems


def _shown_path(path: Path, root: Path) -> str:
    """A path for messages: relative to the dataset's parent when it lies there (labels/ is
    usually beside images/), else as given."""
    for base in (root, root.parent):
        try:
            return path.relative_to(base).as_posix()
        except ValueError:
            continue
    return str(path)


# ---------------------------------------------------------------- Pascal VOC


def read_voc(folder: Path, root: Path, files: list[tuple[Path, str]]) -> Annotations:
    """Boxes from Pascal VOC XML files (a folder of them, or one file): <filename> names the
    image, found at that path under the dataset folder or by its file name when unique;
    <bndbox> is 1-based inclusive pixels, turned into COCO's [x, y, w, h] the way Detectron2
    does (x = xmin - 1, w = xmax - xmin + 1)."""
    result = Annotations("voc")
    present = {relative for _, relative in files}
    by_name: dict[str, list[str]] = {}
    for _, relative in files:
        by_name.setdefault(relative.rsplit("/", 1)[-1], []).append(relative)
    xml_files = sorted(folder.rglob("*.xml")) if folder.is_dir() else [folder]
    for xml_file in xml_files:
        _read_voc_file(xml_file, folder if folder.is_dir() else folder.parent, present, by_name, result)
    classes = {box.label for boxes in result.boxes.values() for box in boxes}
    result.categories = [(i + 1, name) for i, name in enumerate(sorted(classes))]
    return result


def _read_voc_file(xml_file: Path, base: Path, present: set[str], by_name: dict[str, list[str]],
                   result: Annotations) -> None:
    shown = xml_file.relative_to(base).as_posix() if xml_file.is_relative_to(base) else xml_file.name
    try:
        document = ElementTree.parse(xml_file).getroot()
    except (ElementTree.ParseError, OSError) as error:
        result.problems.append(f"{shown}: not readable VOC XML ({error}); skipped")
        return
    filename = (document.findtext("filename") or "").strip()
    candidates = [filename] if filename in present else by_name.get(Path(filename).name, [])
    if not filename or len(candidates) != 1:
        why = "names no <filename>" if not filename else (
            f"its image {filename} is not found under the dataset folder" if not candidates
            else f"its image {filename} matches {len(candidates)} files; put it at that path")
        result.problems.append(f"{shown}: {why}; its boxes skipped")
        return
    relative = candidates[0]
    result.listed.add(relative)
    for number, element in enumerate(document.findall("object"), start=1):
        label = (element.findtext("name") or "").strip()
        box = element.find("bndbox")
        corners = _finite_numbers([box.findtext(k) for k in ("xmin", "ymin", "xmax", "ymax")], 4) \
            if box is not None else None
        where = f"{shown} object {number}"
        if not label or corners is None:
            result.problems.append(f"{where}: malformed (needs <name> and <bndbox> with xmin, ymin, xmax, ymax); "
                                   "skipped")
            continue
        xmin, ymin, xmax, ymax = corners
        if xmax <= xmin or ymax <= ymin:
            result.problems.append(f"{where}: box has zero or negative size; skipped")
            continue
        result.add(relative, Box(number, label, (xmin - 1, ymin - 1, xmax - xmin + 1, ymax - ymin + 1), origin=where))


def load_coco_json(path: Path) -> dict[str, Any]:
    """A COCO document, or AnnotationError saying why not."""
    try:
        coco = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise AnnotationError(f"{path} is not valid JSON: {error}") from error
    if not isinstance(coco, dict) or not isinstance(coco.get("images"), list):
        raise AnnotationError(f"{path} is not a COCO annotation file (no 'images' list)")
    return coco
