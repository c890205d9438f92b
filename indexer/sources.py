"""Read an image dataset from disk: which files, and which labels they carry.

These layouts are understood:
- an ImageFolder tree, `root/<label>/.../image` (label = first folder under root);
- a folder plus a labels file (CSV or JSON Lines with `path`, `label`, optional `split`);
- a folder plus bounding boxes: a COCO instances JSON, a YOLO data.yaml (labels/*.txt beside
  images/), or Pascal VOC XML (a folder of them). Each image keeps its boxes (`ImageSource.boxes`,
  read by indexer/annotations.py); its label is its most frequent category;
- a plain folder of images (label empty).
"""
from __future__ import annotations

import csv
import json
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from indexer.annotations import AnnotationError, Annotations, Box, load_coco_json, read_coco, read_voc, read_yolo

BOX_SUFFIXES = frozenset({".yaml", ".yml", ".xml"})  # YOLO data.yaml, one Pascal VOC file
IMAGE_EXTENSIONS = frozenset({
    ".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".pbm", ".jfif",
})


class SourceError(ValueError):
    """The dataset path or labels file is wrong; the message says what to fix."""


@dataclass(frozen=True)
class ImageSource:
    """One image file found in the dataset."""

    path: Path                      # absolute path on disk
    relative_path: str              # POSIX path relative to the dataset root: the point's identity
    label: str = ""
    labels: tuple[str, ...] = ()
    split: str = ""
    boxes: tuple[Box, ...] = ()     # labelled bounding boxes (COCO / YOLO / VOC sources)


@dataclass
class Dataset:
    root: Path
    layout: str
    images: list[ImageSource]
    problems: list[str] = field(default_factory=list)  # labels-file rows that name no image, etc.
    categories: list[tuple[int, str]] = field(default_factory=list)  # box sources: (id, name), source order

    @property
    def has_boxes(self) -> bool:
        return any(image.boxes for image in self.images)


def read_dataset(root: str | Path, labels_file: str | Path | None = None) -> Dataset:
    """Discover every image under `root` with its label(s)."""
    root_path = Path(root).expanduser()
    if not root_path.exists():
        raise SourceError(f"dataset path {root_path} does not exist; pass the folder that holds your images")
    if not root_path.is_dir():
        raise SourceError(f"dataset path {root_path} is a file; pass the folder that holds your images")
    root_path = root_path.resolve()
    files = sorted(walk_images(root_path), key=lambda p: p[1])
    if labels_file is not None:
        labels_path = Path(labels_file).expanduser()
        if labels_path.is_dir():
            return _with_boxes(root_path, files, labels_path)
        if not labels_path.is_file():
            raise SourceError(f"labels file {labels_path} does not exist")
        if labels_path.suffix.lower() in BOX_SUFFIXES or (labels_path.suffix.lower() == ".json"
                                                           and _looks_like_coco(labels_path)):
            return _with_boxes(root_path, files, labels_path)
        return _with_table(root_path, files, labels_path)
    if _is_image_folder(root_path, files):
        images = [ImageSource(p, rel, rel.split("/", 1)[0], (rel.split("/", 1)[0],)) for p, rel in files]
        return Dataset(root_path, "imagefolder", images)
    return Dataset(root_path, "unlabelled", [ImageSource(p, rel) for p, rel in files])


def walk_images(root: Path) -> Iterator[tuple[Path, str]]:
    """(absolute path, relative POSIX path) of every image file, following symlinks once.

    A symlinked folder that leads back to a folder already being walked is skipped, so
    cycles end; hidden files and folders are ignored.
    """
    seen_dirs: set[tuple[int, int]] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        stat = os.stat(dirpath)
        key = (stat.st_dev, stat.st_ino)
        if key in seen_dirs:
            dirnames[:] = []
            continue
        seen_dirs.add(key)
        # Real folders before symlinks: an alias beside the folder it points to is the one skipped.
        dirnames[:] = sorted((d for d in dirnames if not d.startswith(".")),
                             key=lambda d: (os.path.islink(os.path.join(dirpath, d)), d))
        for name in filenames:
            if name.startswith(".") or Path(name).suffix.lower() not in IMAGE_EXTENSIONS:
                continue
            path = Path(dirpath) / name
            yield path, path.relative_to(root).as_posix()


def _is_image_folder(root: Path, files: list[tuple[Path, str]]) -> bool:
    return bool(files) and all("/" in rel for _, rel in files)


def _read_rows(labels_path: Path) -> list[dict[str, object]]:
    text = labels_path.read_text(encoding="utf-8-sig")
    if labels_path.suffix.lower() in {".jsonl", ".ndjson", ".json"}:
        rows = []
        for number, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as error:
                    raise SourceError(f"{labels_path}:{number}: not valid JSON ({error.msg})") from error
        return rows
    return list(csv.DictReader(text.splitlines()))


def _with_table(root: Path, files: list[tuple[Path, str]], labels_path: Path) -> Dataset:
    rows = _read_rows(labels_path)
    if rows and "path" not in rows[0]:
        raise SourceError(f"{labels_path} needs a 'path' column (and 'label', optional 'split'); "
                          f"found {sorted(rows[0])}")
    by_path = {rel: p for p, rel in files}
    images, problems, listed = [], [], {}
    for row in rows:
        rel = Path(str(row["path"])).as_posix()  # also drops a leading "./"
        if rel not in by_path:
            problems.append(f"{rel}: listed in {labels_path.name} but not found under {root}")
            continue
        label = str(row.get("label") or "")
        if rel in listed:  # one more row for the same image (multi-label files): one point, all labels
            first = images[listed[rel]]
            if label and label not in first.labels:
                images[listed[rel]] = replace(first, labels=(*first.labels, label))
            continue
        listed[rel] = len(images)
        images.append(ImageSource(by_path[rel], rel, label, (label,) if label else (), str(row.get("split") or "")))
    images += [ImageSource(p, rel) for p, rel in files if rel not in listed]
    return Dataset(root, "labels-file", sorted(images, key=lambda s: s.relative_path), problems)


def _looks_like_coco(path: Path) -> bool:
    """One JSON document, not JSON Lines (whose first line is a whole object of its own)."""
    with path.open("rb") as handle:
        first = handle.readline(1 << 20).strip()
    try:
        row = json.loads(first)
    except ValueError:  # a multi-line document, or a first line too long to be a labels row
        return first.startswith(b"{")
    return isinstance(row, dict) and "images" in row


def _with_boxes(root: Path, files: list[tuple[Path, str]], labels_path: Path) -> Dataset:
    """A folder plus a COCO JSON, a YOLO data.yaml or VOC XML: each image with its boxes."""
    suffix = labels_path.suffix.lower()
    try:
        if suffix in (".yaml", ".yml"):
            annotations = read_yolo(labels_path, root, files)
        elif labels_path.is_dir() or suffix == ".xml":
            if labels_path.is_dir() and not any(labels_path.rglob("*.xml")):
                raise SourceError(f"{labels_path} is a folder without .xml files; pass a labels file (CSV, JSON "
                                  "Lines, COCO JSON, YOLO data.yaml) or a folder of Pascal VOC XML files")
            annotations = read_voc(labels_path, root, files)
        else:
            annotations = read_coco(labels_path, load_coco_json(labels_path), {rel for _, rel in files})
    except AnnotationError as error:
        raise SourceError(str(error)) from error
    images = [_annotated_image(path, rel, annotations) for path, rel in files]
    return Dataset(root, annotations.layout, images, annotations.problems, annotations.categories)


def _annotated_image(path: Path, relative: str, annotations: Annotations) -> ImageSource:
    counts = annotations.image_labels.get(relative, Counter())
    # Most frequent category; ties go to the alphabetically first name, so runs agree.
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    label = ranked[0][0] if ranked else ""
    return ImageSource(path, relative, label, tuple(sorted(counts)), annotations.splits.get(relative, ""),
                       tuple(annotations.boxes.get(relative, ())))
