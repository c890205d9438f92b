"""Read an image dataset from disk: which files, and which labels they carry.

Four layouts are understood:
- an ImageFolder tree, `root/<label>/.../image` (label = first folder under root);
- a folder plus a labels file (CSV or JSON Lines with `path`, `label`, optional `split`);
- a folder plus a COCO annotation JSON (image label = its most frequent category);
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


@dataclass
class Dataset:
    root: Path
    layout: str
    images: list[ImageSource]
    problems: list[str] = field(default_factory=list)  # labels-file rows that name no image, etc.


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
        if not labels_path.is_file():
            raise SourceError(f"labels file {labels_path} does not exist")
        if labels_path.suffix.lower() == ".json" and _looks_like_coco(labels_path):
            return _with_coco(root_path, files, labels_path)
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


def _with_coco(root: Path, files: list[tuple[Path, str]], coco_path: Path) -> Dataset:
    try:
        coco = json.loads(coco_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise SourceError(f"{coco_path} is not valid JSON: {error}") from error
    if not isinstance(coco, dict) or "images" not in coco:
        raise SourceError(f"{coco_path} is not a COCO annotation file (no 'images' list)")
    names = {c["id"]: str(c["name"]) for c in coco.get("categories", [])}
    per_image: dict[int, Counter[str]] = {}
    for annotation in coco.get("annotations", []):
        per_image.setdefault(annotation["image_id"], Counter())[names.get(annotation["category_id"], "")] += 1
    by_path = {rel: p for p, rel in files}
    images, problems, listed = [], [], set()
    for image in coco["images"]:
        rel = Path(image["file_name"]).as_posix()
        if rel not in by_path:
            problems.append(f"{rel}: in {coco_path.name} but not found under {root}")
            continue
        counts = per_image.get(image["id"], Counter())
        # Most frequent category; ties go to the alphabetically first name, so runs agree.
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        label = ranked[0][0] if ranked else ""
        images.append(ImageSource(by_path[rel], rel, label, tuple(sorted(counts)), ""))
        listed.add(rel)
    images += [ImageSource(p, rel) for p, rel in files if rel not in listed]
    return Dataset(root, "coco", sorted(images, key=lambda s: s.relative_path), problems)
