"""Reading boxes from COCO, YOLO and Pascal VOC files on disk: every good box kept, every bad
annotation reported with its file and id or line, and skipped (never fatal)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from detection_fixtures import (
    COCO_BAD, COCO_GOOD, CORRUPT_BOX_ID, OUTSIDE_ID, YOLO_BAD, YOLO_GOOD, make_coco, make_voc, make_yolo,
)
from indexer.annotations import yolo_label_path
from indexer.objects import pixel_box
from indexer.sources import SourceError, read_dataset


def by_path(dataset) -> dict:
    return {s.relative_path: s for s in dataset.images}


def problem_for(problems: list[str], where: str) -> str:
    found = [p for p in problems if where + ":" in p or p.startswith(where)]
    assert len(found) == 1, (where, problems)
    return found[0]


def test_coco_keeps_every_good_box_and_reports_every_bad_one(tmp_path: Path) -> None:
    root, coco = make_coco(tmp_path)
    dataset = read_dataset(root, coco)
    assert dataset.layout == "coco" and dataset.has_boxes
    assert dataset.categories == [(1, "cat"), (2, "dog"), (5, "bird")]
    sources = by_path(dataset)
    boxes = {(s.relative_path, b.annotation_id): (b.label, list(b.bbox)) for s in dataset.images for b in s.boxes}
    expected = {(p, i): (label, bbox) for i, (p, label, bbox) in COCO_GOOD.items()}
    expected[("a.png", OUTSIDE_ID)] = ("cat", [100, 100, 10, 10])  # known bad only once the image is decoded
    expected[("corrupt.png", CORRUPT_BOX_ID)] = ("cat", [0, 0, 5, 5])
    assert boxes == expected
    for where, word in COCO_BAD.items():
        assert word in problem_for(dataset.problems, where if where.endswith(".png") else f"instances.json {where}")
    assert len(dataset.problems) == len(COCO_BAD)
    # the image's label counts its boxes and its image-level annotation (12: dog)
    assert sources["a.png"].label == "cat" and sources["a.png"].labels == ("bird", "cat", "dog")
    assert sources["sub/c.png"].boxes[0].origin == "instances.json annotation 30"


def test_a_box_outside_its_image_is_clipped_and_said_so() -> None:
    from indexer.annotations import Box

    inside, note = pixel_box(Box(1, "cat", (5, 5, 20, 30), origin="f.json annotation 1"), 80, 60)
    assert inside == (5, 5, 20, 30) and note == ""
    clipped, note = pixel_box(Box(4, "cat", (70, 50, 20, 20), origin="f.json annotation 4"), 80, 60)
    assert clipped == (70, 50, 10, 10)
    assert note.startswith("f.json annotation 4:") and "clipped to [70, 50, 10, 10]" in note
    gone, note = pixel_box(Box(5, "cat", (100, 100, 10, 10), origin="f.json annotation 5"), 80, 60)
    assert gone is None and "outside the 80x60 image" in note
    # float noise at the edge is not a box outside the image
    edge, note = pixel_box(Box(6, "cat", (0.5, 0.5, 0.5, 0.5000001), normalised=True), 80, 60)
    assert edge == pytest.approx((40, 30, 40, 30)) and note == ""


@pytest.mark.parametrize("names_as_dict", [False, True], ids=["names-list", "names-dict"])
def test_yolo_reads_label_files_the_ultralytics_way(tmp_path: Path, names_as_dict: bool) -> None:
    root, data_yaml = make_yolo(tmp_path, names_as_dict)
    dataset = read_dataset(root, data_yaml)
    assert dataset.layout == "yolo" and dataset.categories == [(0, "cat"), (1, "dog"), (2, "bird")]
    boxes = {}
    for source in dataset.images:
        for box in source.boxes:
            assert box.normalised
            size = {"images/train/a.png": (80, 60)}.get(source.relative_path, (40, 40))
            bbox, _ = pixel_box(box, *size)
            boxes[(source.relative_path, box.annotation_id)] = (box.label, bbox)
    outside = boxes.pop(("images/train/a.png", 9))
    assert outside == ("cat", None)  # wholly outside: skipped once the size is known
    assert boxes.keys() == YOLO_GOOD.keys()
    for key, (label, bbox) in YOLO_GOOD.items():
        assert boxes[key][0] == label and boxes[key][1] == pytest.approx(bbox), key
    for where, word in YOLO_BAD.items():
        assert word in problem_for(dataset.problems, where)
    assert len(dataset.problems) == len(YOLO_BAD)
    sources = by_path(dataset)
    assert sources["images/val/c.png"].boxes == () and sources["images/val/c.png"].label == ""
    assert {s.relative_path: s.split for s in dataset.images} == {
        "images/train/a.png": "train", "images/val/b.png": "val", "images/val/c.png": "val"}


def test_yolo_label_path_is_ultralytics_rule() -> None:
    assert yolo_label_path(Path("/d/images/train/x.y.jpg")) == Path("/d/labels/train/x.y.txt")
    # the last images/ component is the one replaced
    assert yolo_label_path(Path("/images/set/images/a.png")) == Path("/images/set/labels/a.txt")
    assert yolo_label_path(Path("/d/pics/a.png")) == Path("/d/pics/a.txt")


def test_yolo_yaml_without_names_is_a_clear_error(tmp_path: Path) -> None:
    root, data_yaml = make_yolo(tmp_path)
    data_yaml.write_text("train: images/train\nnc: 3\n")
    with pytest.raises(SourceError, match="needs 'names'"):
        read_dataset(root, data_yaml)
    data_yaml.write_text("names: [a, b\n")
    with pytest.raises(SourceError, match="not valid YAML"):
        read_dataset(root, data_yaml)


def test_pascal_voc_folder(tmp_path: Path) -> None:
    root, annotations = make_voc(tmp_path)
    dataset = read_dataset(root, annotations)
    assert dataset.layout == "voc"
    boxes = {(s.relative_path, b.annotation_id): (b.label, b.bbox) for s in dataset.images for b in s.boxes}
    assert boxes == {("JPEGImages/a.png", 1): ("cat", (10, 5, 20, 15)),
                     ("JPEGImages/a.png", 2): ("dog", (35, 20, 20, 15)),
                     ("JPEGImages/b.png", 1): ("bird", (0, 0, 30, 30))}
    assert dataset.categories == [(1, "bird"), (2, "cat"), (3, "dog")]
    assert "malformed" in problem_for(dataset.problems, "a.xml object 3")
    assert "zero or negative size" in problem_for(dataset.problems, "a.xml object 4")
    assert "malformed" in problem_for(dataset.problems, "a.xml object 5")
    assert "not readable VOC XML" in problem_for(dataset.problems, "broken.xml")
    assert "not found" in problem_for(dataset.problems, "gone.xml")
    assert len(dataset.problems) == 5


def test_a_folder_without_xml_is_a_clear_error(tmp_path: Path) -> None:
    root, _ = make_voc(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match="without .xml files"):
        read_dataset(root, tmp_path / "empty")


def test_coco_without_boxes_still_labels_images(tmp_path: Path) -> None:
    root, coco = make_coco(tmp_path)
    document = json.loads(coco.read_text())
    for annotation in document["annotations"]:
        if isinstance(annotation, dict):
            annotation.pop("bbox", None)
    coco.write_text(json.dumps(document))
    dataset = read_dataset(root, coco)
    assert not dataset.has_boxes
    assert by_path(dataset)["b.png"].labels == ("cat", "dog")
