"""A detector run's boxes as pre-annotations of a batch of images (`uncertain-boxes` batches).

Annotators start from the detector's boxes instead of an empty image: the boxes scoring at least
the threshold minus the uncertainty window (the sure ones and the undecided ones that made the
image worth labelling, analysis/selection/boxes.py) are written

    <tag>-label-studio.json   tasks whose `predictions` are `rectanglelabels` regions (percent of
                              the image, with the box's score), from `label` to `image`: label with
                              <View><Image name="image" value="$image"/><RectangleLabels name="label"
                              toName="image">...</RectangleLabels></View>
    <tag>-coco.json           COCO images and the boxes as annotations (with their `score`)
    <tag>-yolo/labels/<path>.txt   one `class cx cy w h` row per box (normalised), where
                              Ultralytics looks for them beside images/<path>; data.yaml: the class names

Classes keep the object collection's order (its `categories`), then any other the run names.
"""
from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np

from analysis.selection.boxes import WINDOW
from export import ExportError
from export.label_studio import LOCAL_FILES_URL
from store import Collection
from store.schema import CATEGORIES, HEIGHT, PATH, WIDTH

FROM_NAME, TO_NAME = "label", "image"  # <RectangleLabels name> and <Image name> of the labelling config


def write_pre_annotations(images: Collection, objects: Collection, ids: list[str], run_name: str,
                          threshold: float, stem: str, out: Path) -> list[Path]:
    """The batch's files with the run's boxes on its images; returns them."""
    from evaluation.runs import load_run

    run = load_run(objects, run_name)
    records = sorted(images.retrieve(list(ids), [PATH, WIDTH, HEIGHT]), key=lambda r: str(r.payload.get(PATH)))
    keep = np.asarray(run.score) >= threshold - WINDOW
    boxes: dict[str, list[tuple[str, list[float], float]]] = defaultdict(list)
    for image, label, bbox, score in zip(run.image_id[keep].tolist(), run.label[keep].tolist(),
                                         run.bbox[keep].tolist(), run.score[keep].tolist()):
        boxes[str(image)].append((str(label), [float(v) for v in bbox], float(score)))
    names = [str(c["name"]) for c in objects.read_metadata().get(CATEGORIES) or []]
    names += sorted({label for found in boxes.values() for label, _, _ in found} - set(names))
    images_info = [(r.id, str(r.payload.get(PATH) or ""), int(r.payload.get(WIDTH) or 0),
                    int(r.payload.get(HEIGHT) or 0)) for r in records]
    try:
        return [_label_studio(images_info, boxes, run.name, out / f"{stem}-label-studio.json"),
                _coco(images_info, boxes, names, out / f"{stem}-coco.json"),
                _yolo(images_info, boxes, names, out / f"{stem}-yolo")]
    except OSError as error:
        raise ExportError(f"cannot write the batch's files into {out}: {error.strerror or error}") from error


Image = tuple[str, str, int, int]  # point id, path, width, height
Boxes = dict[str, list[tuple[str, list[float], float]]]


def _label_studio(images: list[Image], boxes: Boxes, run: str, path: Path) -> Path:
    tasks = []
    for pid, file, width, height in images:
        regions = [{"from_name": FROM_NAME, "to_name": TO_NAME, "type": "rectanglelabels",
                    "original_width": width, "original_height": height, "image_rotation": 0, "score": score,
                    "value": {"x": 100 * x / width, "y": 100 * y / height, "width": 100 * w / width,
                              "height": 100 * h / height, "rotation": 0, "rectanglelabels": [label]}}
                   for label, (x, y, w, h), score in boxes.get(pid, []) if width > 0 and height > 0]
        task: dict[str, Any] = {"data": {"image": LOCAL_FILES_URL + quote(file), "embedscape_id": pid, "path": file}}
        if regions:
            task["predictions"] = [{"model_version": run, "result": regions,
                                    "score": min(r["score"] for r in regions)}]
        tasks.append(task)
    path.write_text(json.dumps(tasks, ensure_ascii=False, indent=1), encoding="utf-8")
    return path


def _coco(images: list[Image], boxes: Boxes, names: list[str], path: Path) -> Path:
    category = {name: number for number, name in enumerate(names, start=1)}
    document: dict[str, Any] = {
        "images": [{"id": n, "file_name": file, "width": width, "height": height, "embedscape_id": pid}
                   for n, (pid, file, width, height) in enumerate(images, start=1)],
        "categories": [{"id": number, "name": name} for name, number in category.items()], "annotations": []}
    for n, (pid, _, _, _) in enumerate(images, start=1):
        for label, (x, y, w, h), score in boxes.get(pid, []):
            document["annotations"].append({"id": len(document["annotations"]) + 1, "image_id": n,
                                            "category_id": category[label], "bbox": [x, y, w, h], "area": w * h,
                                            "iscrowd": 0, "score": score})
    path.write_text(json.dumps(document, ensure_ascii=False, indent=1), encoding="utf-8")
    return path


def _yolo(images: list[Image], boxes: Boxes, names: list[str], folder: Path) -> Path:
    import yaml

    index = {name: number for number, name in enumerate(names)}
    for pid, file, width, height in images:
        label_file = folder / "labels" / _relative_txt(file, pid)
        label_file.parent.mkdir(parents=True, exist_ok=True)
        rows = [f"{index[label]} {(x + w / 2) / width:.6f} {(y + h / 2) / height:.6f} {w / width:.6f} {h / height:.6f}"
                for label, (x, y, w, h), _ in boxes.get(pid, []) if width > 0 and height > 0]
        label_file.write_text("".join(row + "\n" for row in rows), encoding="utf-8")
    config = {"train": "images", "val": "images", "names": dict(enumerate(names))}
    (folder / "data.yaml").write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return folder


def _relative_txt(file: str, pid: str) -> Path:
    """The image's dataset-relative path with .txt (its point id where the path would leave the folder)."""
    relative = Path(file)
    if not file or relative.is_absolute() or ".." in relative.parts:
        return Path(f"{pid}.txt")
    return relative.with_suffix(".txt")
