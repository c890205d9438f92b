"""Detection test data: real image files with COCO, YOLO and Pascal VOC annotations, holding every
kind of bad annotation the readers must report and skip."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

BACKGROUND = (40, 40, 40)
COLOURS = {"cat": (230, 40, 40), "dog": (40, 200, 60), "bird": (50, 80, 230)}


def scene(size: tuple[int, int], boxes: list[tuple[str, tuple[int, int, int, int]]], seed: int = 0) -> Image.Image:
    """A dark noisy background with a filled rectangle of the class colour per box (x, y, w, h);
    a small per-seed pattern inside each, so that no two crops are identical."""
    rng = np.random.default_rng(seed)
    pixels = np.clip(rng.normal(BACKGROUND[0], 6, (size[1], size[0], 3)), 0, 255).astype(np.uint8)
    for index, (label, (x, y, w, h)) in enumerate(boxes):
        x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, size[0]), min(y + h, size[1])
        pixels[y0:y1, x0:x1] = COLOURS[label]
        pixels[y0:y1:3, x0:x1:3] = (seed * 37 + index * 61) % 256
    return Image.fromarray(pixels, "RGB")


# ----------------------------------------------------------------------------------------- COCO

COCO_CATEGORIES = [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}, {"id": 5, "name": "bird"}]
CATEGORY = {c["name"]: c["id"] for c in COCO_CATEGORIES}
# Good boxes: annotation id -> (image, label, bbox as written). Box 4 reaches outside its image.
COCO_GOOD = {
    1: ("a.png", "cat", [5, 5, 20, 30]),
    2: ("a.png", "dog", [40, 10, 30, 40]),
    3: ("a.png", "bird", [41, 11, 30, 40]),     # the same object again, another class: a duplicate box
    4: ("a.png", "cat", [70, 50, 20, 20]),      # clipped to [70, 50, 10, 10] in the 80x60 image
    20: ("b.png", "cat", [10, 10, 20, 20]),
    21: ("b.png", "dog", [30, 30, 25, 25]),
    30: ("sub/c.png", "dog", [0, 0, 60, 40]),
    31: ("sub/c.png", "bird", [10, 42, 12, 10]),
}
COCO_SIZES = {"a.png": (80, 60), "b.png": (60, 60), "sub/c.png": (64, 56)}
OUTSIDE_ID = 5            # wholly outside a.png: skipped when the image's size is known
CORRUPT_BOX_ID = 40       # on corrupt.png, which cannot be decoded: skipped at indexing
# Annotation id (or position) -> a word its problem must contain, found when the file is read.
COCO_BAD = {
    "annotation 6": "zero or negative size",
    "annotation 7": "zero or negative size",
    "annotation 8": "category_id 9",
    "annotation 9": "not 4 numbers",
    "annotation 10": "not 4 numbers",
    "annotation 11": "image_id 999",
    "annotation #18": "no integer 'id'",
    "annotation 20": "used by an earlier annotation",
    "annotation #20": "not a JSON object",
    "missing.png": "not found",
}


def make_coco(base: Path) -> tuple[Path, Path]:
    """(image folder, instances.json) with the good boxes of COCO_GOOD and the bad ones of COCO_BAD."""
    root = base / "images"
    for path, size in COCO_SIZES.items():
        boxes = [(label, tuple(bbox)) for image, label, bbox in COCO_GOOD.values() if image == path]
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        scene(size, boxes, seed=len(path)).save(root / path)
    (root / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really" * 10)
    sizes = {**COCO_SIZES, "corrupt.png": (10, 10), "missing.png": (10, 10)}
    images = [{"id": i, "file_name": p, "width": w, "height": h}
              for i, (p, (w, h)) in enumerate(sizes.items(), start=1)]
    image_id = {image["file_name"]: image["id"] for image in images}
    annotations: list[object] = [
        {"id": i, "image_id": image_id[p], "category_id": CATEGORY[label], "bbox": bbox, "area": bbox[2] * bbox[3],
         "iscrowd": 0} for i, (p, label, bbox) in COCO_GOOD.items()]
    a = image_id["a.png"]
    annotations += [
        {"id": OUTSIDE_ID, "image_id": a, "category_id": 1, "bbox": [100, 100, 10, 10]},
        {"id": 6, "image_id": a, "category_id": 1, "bbox": [1, 1, 0, 5]},
        {"id": 7, "image_id": a, "category_id": 1, "bbox": [1, 1, -3, 5]},
        {"id": 8, "image_id": a, "category_id": 9, "bbox": [1, 1, 3, 5]},
        {"id": 9, "image_id": a, "category_id": 1, "bbox": [1, 2, 3]},
        {"id": 10, "image_id": a, "category_id": 1, "bbox": ["1", "x", 3, 4]},
        {"id": 11, "image_id": 999, "category_id": 1, "bbox": [1, 1, 3, 5]},
        {"id": 12, "image_id": a, "category_id": 2},                      # image-level label: no box
        {"id": CORRUPT_BOX_ID, "image_id": image_id["corrupt.png"], "category_id": 1, "bbox": [0, 0, 5, 5]},
        {"id": 50, "image_id": image_id["missing.png"], "category_id": 1, "bbox": [0, 0, 5, 5]},
        {"image_id": a, "category_id": 1, "bbox": [1, 1, 3, 5]},         # position 18: no id
        {"id": 20, "image_id": a, "category_id": 1, "bbox": [2, 2, 3, 5]},  # a second id 20
        "oops",                                                            # position 20
    ]
    path = base / "instances.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": COCO_CATEGORIES}))
    return root, path


# ----------------------------------------------------------------------------------------- YOLO

YOLO_NAMES = ["cat", "dog", "bird"]
# image -> (size, rows of its label file); the comment says what each row is
YOLO_FILES = {
    "images/train/a.png": ((80, 60), [
        "0 0.25 0.5 0.25 0.5",                       # 1: cat [10, 15, 20, 30]
        "1 0.5 0.5 0.2 0.2",                         # 2: dog [32, 24, 16, 12]
        "",                                          # 3: blank
        "7 0.5 0.5 0.1 0.1",                         # 4: class 7 of 3
        "0 0.5 0.5 0.1",                             # 5: malformed
        "x 0.5 0.5 0.1 0.1",                         # 6: malformed
        "0 0.5 0.5 0 0.1",                           # 7: zero size
        "1 0.95 0.5 0.2 0.2",                        # 8: dog reaching outside: clipped to [68, 24, 12, 12]
        "0 1.5 1.5 0.2 0.2",                         # 9: wholly outside
        "2 0.1 0.1 0.3 0.1 0.3 0.3 0.1 0.3",         # 10: a polygon: bird [8, 6, 16, 12]
    ]),
    "images/val/b.png": ((40, 40), ["1 0.5 0.5 0.5 0.5"]),   # 1: dog [10, 10, 20, 20]
    "images/val/c.png": ((40, 40), None),                   # no label file: an image without boxes
}
YOLO_GOOD = {("images/train/a.png", 1): ("cat", (10, 15, 20, 30)), ("images/train/a.png", 2): ("dog", (32, 24, 16, 12)),
             ("images/train/a.png", 8): ("dog", (68, 24, 12, 12)), ("images/train/a.png", 10): ("bird", (8, 6, 16, 12)),
             ("images/val/b.png", 1): ("dog", (10, 10, 20, 20))}
YOLO_BAD = {"labels/train/a.txt:4": "class 7", "labels/train/a.txt:5": "malformed", "labels/train/a.txt:6": "malformed",
            "labels/train/a.txt:7": "zero or negative size", "labels/val/orphan.txt": "no image"}


def make_yolo(base: Path, names_as_dict: bool = False) -> tuple[Path, Path]:
    """(dataset folder, data.yaml) in Ultralytics' layout: images/{train,val}, labels/{train,val}."""
    root = base / "yolo"
    for relative, (size, rows) in YOLO_FILES.items():
        boxes = [(label, bbox) for (image, _), (label, bbox) in YOLO_GOOD.items() if image == relative]
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        scene(size, boxes, seed=len(relative)).save(root / relative)
        if rows is not None:
            label_file = root / relative.replace("images/", "labels/", 1).replace(".png", ".txt")
            label_file.parent.mkdir(parents=True, exist_ok=True)
            label_file.write_text("\n".join(rows) + "\n")
    (root / "labels/val/orphan.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    names = "\n".join(f"  {i}: {n}" for i, n in enumerate(YOLO_NAMES)) if names_as_dict else \
        "[" + ", ".join(YOLO_NAMES) + "]"
    yaml_path = root / "data.yaml"
    yaml_path.write_text(f"path: .\ntrain: images/train\nval: images/val\nnames:{chr(10) if names_as_dict else ' '}"
                         f"{names}\n")
    return root, yaml_path


# ----------------------------------------------------------------------------------------- VOC

def voc_xml(filename: str, objects: list[str], size: tuple[int, int] = (60, 40)) -> str:
    return (f"<annotation><folder>VOC</folder><filename>{filename}</filename><size><width>{size[0]}</width>"
            f"<height>{size[1]}</height><depth>3</depth></size>{''.join(objects)}</annotation>")


def voc_object(name: str, xmin: object, ymin: object, xmax: object, ymax: object) -> str:
    return (f"<object><name>{name}</name><difficult>0</difficult><bndbox><xmin>{xmin}</xmin><ymin>{ymin}</ymin>"
            f"<xmax>{xmax}</xmax><ymax>{ymax}</ymax></bndbox></object>")


def make_voc(base: Path) -> tuple[Path, Path]:
    """(image folder, Annotations folder): one good file, and bad files and objects."""
    root = base / "voc"
    scene((60, 40), [("cat", (10, 5, 20, 15)), ("dog", (35, 20, 20, 15))], seed=3).save(_mk(root / "JPEGImages/a.png"))
    scene((30, 30), [("bird", (0, 0, 30, 30))], seed=4).save(_mk(root / "JPEGImages/b.png"))
    annotations = root / "Annotations"
    annotations.mkdir(parents=True)
    (annotations / "a.xml").write_text(voc_xml("a.png", [
        voc_object("cat", 11, 6, 30, 20),                   # 1: [10, 5, 20, 15]
        voc_object("dog", 36, 21, 55, 35),                  # 2: [35, 20, 20, 15]
        "<object><name>cat</name></object>",                # 3: no bndbox
        voc_object("dog", 20, 5, 10, 9),                    # 4: xmax < xmin
        voc_object("cat", "a", 1, 2, 3),                    # 5: not numbers
    ]))
    (annotations / "b.xml").write_text(voc_xml("b.png", [voc_object("bird", 1, 1, 30, 30)], (30, 30)))
    (annotations / "broken.xml").write_text("<annotation><filename>a.png</filename>")
    (annotations / "gone.xml").write_text(voc_xml("gone.png", [voc_object("cat", 1, 1, 5, 5)]))
    return root, annotations


def _mk(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


# --------------------------------------------------------------------------- explorer (UI) data

UI_DETECTION_CLASSES = ("cat", "dog", "bird")
UI_BOX_CENTRES = {"cat": (0.0, 0.0), "dog": (10.0, 0.0), "bird": (5.0, 8.0)}
UI_IMAGE_SIZE = (320, 240)
UI_DIM = 16


UI_TWICE = ("scenes/00.png", 3)  # (image, annotation id) of the box that labels an object twice


def ui_detection_boxes(images: int = 12) -> dict[str, list[tuple[str, tuple[int, int, int, int]]]]:
    """Image path -> its boxes (class, (x, y, w, h)): two to four boxes an image in cells of a 3 x 2
    grid, classes in turn; the first image also holds a second, other-class box over its first
    (IoU about 0.9: one object labelled twice, UI_TWICE)."""
    rng = np.random.default_rng(7)
    layout: dict[str, list[tuple[str, tuple[int, int, int, int]]]] = {}
    box = 0
    for image in range(images):
        boxes = []
        for cell in (int(c) for c in rng.choice(6, size=2 + image % 3, replace=False)):
            w, h = (int(v) for v in rng.integers(40, 90, size=2))
            x = 106 * (cell % 3) + int(rng.integers(4, 104 - w))
            y = 120 * (cell // 3) + int(rng.integers(4, 116 - h))
            boxes.append((UI_DETECTION_CLASSES[box % 3], (x, y, w, h)))
            box += 1
        layout[f"scenes/{image:02d}.png"] = boxes
    first = layout["scenes/00.png"]
    label, (x, y, w, h) = first[0]
    other = UI_DETECTION_CLASSES[(UI_DETECTION_CLASSES.index(label) + 1) % 3]
    first.append((other, (x + 3, y + 2, w - 2, h - 3)))
    return layout


def build_detection_ui(base: Path, name: str = "det"):
    """(store, images, objects, root): a detection dataset as an index run leaves it, built
    directly with a known map. Images NAME on a 4-wide grid 1.0 apart from (0, 0); boxes in
    NAME-objects, each class on a 6-wide grid 0.5 apart from UI_BOX_CENTRES, in the order of
    `ui_detection_boxes` (so drawn shapes can stay clear of every point); vectors along the class
    axis. Real PNG scenes on disk."""
    from analysis.boxes import duplicate_boxes
    from detection.geometry import CONTEXT_MARGIN, area_and_aspect
    from indexer.objects import object_collection_name, object_point_id
    from store import open_store, point_id
    from store.schema import (
        ANNOTATION_ID, AREA, ASPECT_RATIO, BBOX, CATEGORIES, COLLECTION_KIND, CROP_MARGIN, IMAGE_COLLECTION,
        IMAGE_HEIGHT, IMAGE_ID, IMAGE_WIDTH, IMAGES_KIND, LABEL, LABELS, OBJECT_COLLECTION, OBJECTS_KIND, PATH,
        SHA1, TAGS, X, Y, DUPLICATE_BOX_FLAG, DUPLICATE_BOX_GROUP, MAX_BOX_IOU, QUALITY_FLAGS,
    )

    rng = np.random.default_rng(0)
    root = base / "images"
    layout = ui_detection_boxes()
    store = open_store(path=str(base / "qdrant"))
    objects_name = object_collection_name(name)
    common = {"source_root": str(root), "model": "test"}
    images = store.create(name, UI_DIM, {**common, COLLECTION_KIND: IMAGES_KIND, OBJECT_COLLECTION: objects_name})
    objects = store.create(objects_name, UI_DIM, {
        **common, COLLECTION_KIND: OBJECTS_KIND, IMAGE_COLLECTION: name, CROP_MARGIN: CONTEXT_MARGIN,
        CATEGORIES: [{"id": i + 1, "name": c} for i, c in enumerate(UI_DETECTION_CLASSES)]})
    images.index_fields([LABEL, TAGS])
    objects.index_fields([LABEL, TAGS, IMAGE_ID])
    image_rows, box_rows = [], []
    per_class = {c: 0 for c in UI_DETECTION_CLASSES}
    for index, (path, boxes) in enumerate(layout.items()):
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        painted = [b for a, b in enumerate(boxes, start=1) if (path, a) != UI_TWICE]  # one object: painted once
        scene(UI_IMAGE_SIZE, painted, seed=index).save(root / path)
        labels = [label for label, _ in boxes]
        image_rows.append((point_id(path), {
            PATH: path, LABEL: max(set(labels), key=labels.count), LABELS: sorted(set(labels)), TAGS: [],
            X: float(index % 4), Y: float(index // 4), "width": UI_IMAGE_SIZE[0], "height": UI_IMAGE_SIZE[1],
            SHA1: f"{index:040d}"}))
        for annotation, (label, bbox) in enumerate(boxes, start=1):
            cx, cy = UI_BOX_CENTRES[label]
            i = per_class[label]
            per_class[label] += 1
            area, aspect = area_and_aspect(bbox)
            box_rows.append((object_point_id(path, annotation), label, {
                PATH: path, LABEL: label, LABELS: [label], TAGS: [], IMAGE_ID: point_id(path),
                ANNOTATION_ID: annotation, BBOX: [float(v) for v in bbox], IMAGE_WIDTH: UI_IMAGE_SIZE[0],
                IMAGE_HEIGHT: UI_IMAGE_SIZE[1], AREA: area, ASPECT_RATIO: aspect,
                X: cx + (i % 6) * 0.5, Y: cy + (i // 6) * 0.5, SHA1: f"{index:020d}{annotation:020d}"}))

    found = duplicate_boxes(np.array([p[IMAGE_ID] for _, _, p in box_rows]), np.array([p[BBOX] for _, _, p in box_rows]))
    for (_, _, payload), group, iou in zip(box_rows, found.group, found.max_iou):
        payload.update({DUPLICATE_BOX_GROUP: int(group), MAX_BOX_IOU: float(iou),
                        QUALITY_FLAGS: [DUPLICATE_BOX_FLAG] if group >= 0 else []})

    def vectors(labels: list[str]) -> np.ndarray:
        out = rng.normal(size=(len(labels), UI_DIM)) * 0.3
        out[np.arange(len(labels)), [UI_DETECTION_CLASSES.index(label) for label in labels]] += 3.0
        return out.astype(np.float32)

    images.upsert([pid for pid, _ in image_rows], vectors([p[LABEL] for _, p in image_rows]),
                  [p for _, p in image_rows])
    objects.upsert([pid for pid, _, _ in box_rows], vectors([label for _, label, _ in box_rows]),
                   [p for _, _, p in box_rows])
    images.flush()
    objects.flush()
    return store, images, objects, root


# ------------------------------------------------------------------- a detector run over real scenes

CELLS = [(x, y) for y in (5, 65) for x in (5, 65, 125)]   # six 50x50 cells of a 180x120 image
SIZE = (180, 120)


def missing_label_dataset(base: Path, n_images: int = 16) -> tuple[Path, Path, list[dict], list[str]]:
    """(image folder, instances.json, predictions, kind of each prediction: tp / unlabelled / background)."""
    rng = np.random.default_rng(3)
    classes = list(COLOURS)
    root = base / "images"
    root.mkdir(parents=True)
    images, annotations, predictions, kinds = [], [], [], []
    for i in range(n_images):
        cells = rng.permutation(len(CELLS))
        painted = [(classes[(i + j) % 3], (*CELLS[c], 40, 40)) for j, c in enumerate(cells[:3])]
        scene(SIZE, painted, seed=i).save(root / f"{i:02d}.png")
        images.append({"id": i + 1, "file_name": f"{i:02d}.png", "width": SIZE[0], "height": SIZE[1]})
        for label, box in painted[:2]:   # the third painted object is never labelled
            annotations.append({"id": len(annotations) + 1, "image_id": i + 1, "category_id": classes.index(label) + 1,
                                "bbox": list(box), "area": 1600, "iscrowd": 0})
            predictions.append({"image_id": i + 1, "category_id": classes.index(label) + 1, "bbox": list(box),
                                "score": 0.9})
            kinds.append("tp")
        unlabelled, background = painted[2], (*CELLS[cells[3]], 40, 40)
        predictions.append({"image_id": i + 1, "category_id": classes.index(unlabelled[0]) + 1,
                            "bbox": list(unlabelled[1]), "score": 0.6})
        kinds.append("unlabelled")
        predictions.append({"image_id": i + 1, "category_id": int(rng.integers(1, 4)), "bbox": list(background),
                            "score": 0.6})
        kinds.append("background")
    labels = base / "instances.json"
    labels.write_text(json.dumps({"images": images, "annotations": annotations,
                                  "categories": [{"id": k + 1, "name": c} for k, c in enumerate(classes)]}))
    return root, labels, predictions, kinds


def index_detector_run(base: Path, embedder: Any, n_images: int = 8, shift_first: bool = False,
                       drop: int | None = None) -> tuple[Any, list[dict], list[str]]:
    """Index missing_label_dataset(base, n_images) as collection "m" (boxes: "m-objects") with the
    embedder, import its predictions as run "det" (the first labelled box's prediction moved 20 and
    12 px, IoU ~0.25, at score 0.95 with `shift_first`; the prediction at `drop` left out), rank the
    likely missing labels and draw the false positives as points, as `missing-labels` does.
    Returns (the open store, the predictions imported, each one's kind)."""
    from evaluation.evaluate import evaluate_run, write_outcomes
    from evaluation.missing_labels import save_missing_labels, score_missing_labels
    from evaluation.prediction_points import write_prediction_points
    from evaluation.readers import import_detections
    from indexer.pipeline import IndexOptions, index_dataset
    from store import open_store

    root, labels, predictions, kinds = missing_label_dataset(base, n_images)
    if shift_first:
        x, y = predictions[0]["bbox"][:2]
        predictions[0] = dict(predictions[0], bbox=[x + (20 if x < 100 else -20), y + (12 if y < 60 else -12), 40, 40],
                              score=0.95)
    if drop is not None:
        predictions, kinds = predictions[:drop] + predictions[drop + 1:], kinds[:drop] + kinds[drop + 1:]
    (base / "run.json").write_text(json.dumps(predictions))
    store = open_store(path=str(base / "qdrant"))
    index_dataset(root, store, IndexOptions("m", "mobilenet-v2", labels_file=labels, batch_size=8, progress=False,
                                            analyze=False), embedder)
    objects, images = store.open("m-objects"), store.open("m")
    import_detections(objects, images, base / "run.json", "det")
    evaluation = evaluate_run(objects, images)
    write_outcomes(objects, evaluation)
    ranking = score_missing_labels(objects, images, evaluation, embedder)
    save_missing_labels(objects, "det", ranking)
    write_prediction_points(objects, images, evaluation, embedder, ranking)
    return store, predictions, kinds
