"""Exports and command-line actions on an object collection: COCO of a tagged subset indexed
again gives the same boxes and classes; YOLO read back gives the same boxes; CSV / JSON Lines
one row per box; tag, subset and delete work on boxes like on images."""
from __future__ import annotations

import csv
import json
import zipfile
from pathlib import Path

import pytest

import app
from detection_fixtures import COCO_GOOD, COCO_SIZES, make_coco
from export import export_to_tempfile
from indexer.objects import object_point_id, pixel_box
from indexer.sources import read_dataset
from store import open_store

KEEP = (1, 2, 4, 30)  # the tagged boxes: two of a.png (one relabelled), a clipped one, one of sub/c.png


def cli(qdrant: Path, *args: str) -> int:
    return app.main(["--qdrant-path", str(qdrant), *args])


def boxes_of(qdrant: Path, collection: str) -> dict[tuple[str, int], tuple[str, list[float]]]:
    store = open_store(path=str(qdrant))
    try:
        return {(r.payload["path"], r.payload["annotation_id"]): (r.payload["label"], r.payload["bbox"])
                for batch in store.open(collection).scroll(None) for r in batch}
    finally:
        store.close()


@pytest.fixture
def tagged(tmp_path: Path, mobilenet) -> dict:
    """The COCO fixture indexed through the command line, boxes KEEP tagged 'keep', box 2
    relabelled dog -> bird in the app's way (Collection.relabel)."""
    root, coco = make_coco(tmp_path)
    qdrant = tmp_path / "qdrant"
    assert cli(qdrant, "index", str(root), "--labels", str(coco), "--collection", "c", "--model", "mobilenet-v2") == 0
    store = open_store(path=str(qdrant))
    try:
        objects = store.open("c-objects")
        assert objects.add_tag([object_point_id(COCO_GOOD[i][0], i) for i in KEEP], "keep") == len(KEEP)
        assert objects.relabel([object_point_id("a.png", 2)], "bird") == 1
    finally:
        store.close()
    return {"root": root, "qdrant": qdrant, "tmp": tmp_path}


def test_coco_of_a_tagged_subset_round_trips(tagged, capsys: pytest.CaptureFixture[str]) -> None:
    qdrant, out = tagged["qdrant"], tagged["tmp"] / "keep.json"
    assert cli(qdrant, "export", "--collection", "c-objects", "--tag", "keep", "--format", "coco",
               "--out", str(out)) == 0
    assert f"wrote {len(KEEP)} boxes" in capsys.readouterr().out
    document = json.loads(out.read_text())
    assert sorted(i["file_name"] for i in document["images"]) == ["a.png", "sub/c.png"]
    assert {i["file_name"]: (i["width"], i["height"]) for i in document["images"]} == {
        p: COCO_SIZES[p] for p in ("a.png", "sub/c.png")}
    assert document["categories"] == [{"id": 1, "name": "cat", "supercategory": ""},
                                      {"id": 2, "name": "dog", "supercategory": ""},
                                      {"id": 5, "name": "bird", "supercategory": ""}]
    annotations = {a["id"]: a for a in document["annotations"]}
    assert sorted(annotations) == sorted(KEEP)  # the source's ids kept
    assert annotations[2]["category_id"] == 5 and annotations[2]["original_label"] == "dog"
    assert annotations[1]["category_id"] == 1 and annotations[1]["original_label"] == ""
    assert annotations[4]["bbox"] == [70.0, 50.0, 10.0, 10.0] and annotations[4]["area"] == 100.0
    assert all(a["tags"] == ["keep"] and "mislabel_score" in a for a in annotations.values())
    from pycocotools.coco import COCO

    coco = COCO(str(out))
    assert len(coco.getAnnIds()) == len(KEEP) and coco.loadCats(5)[0]["name"] == "bird"

    # index the export again: the same boxes, with the classes they had when exported
    assert cli(qdrant, "index", str(tagged["root"]), "--labels", str(out), "--collection", "again",
               "--model", "mobilenet-v2") == 0
    exported = {k: v for k, v in boxes_of(qdrant, "c-objects").items() if k[1] in KEEP}
    assert boxes_of(qdrant, "again-objects") == exported
    assert exported[("a.png", 2)][0] == "bird"


def test_yolo_folder_reads_back_as_the_same_boxes(tagged) -> None:
    qdrant, out = tagged["qdrant"], tagged["tmp"] / "yolo"
    assert cli(qdrant, "export", "--collection", "c-objects", "--format", "yolo", "--out", str(out),
               "--link", "symlink") == 0
    assert (out / "images" / "a.png").is_symlink() and (out / "labels" / "sub" / "c.txt").is_file()
    dataset = read_dataset(out, out / "data.yaml")
    assert [name for _, name in dataset.categories] == ["cat", "dog", "bird"]
    read_back = {}
    for source in dataset.images:
        relative = source.relative_path.removeprefix("images/")
        for box in source.boxes:
            bbox, _ = pixel_box(box, *COCO_SIZES[relative])
            read_back.setdefault(relative, []).append((box.label, [round(v, 3) for v in bbox]))
    expected = {}
    for (path, _), (label, bbox) in sorted(boxes_of(qdrant, "c-objects").items()):
        expected.setdefault(path, []).append((label, [round(v, 3) for v in bbox]))
    assert read_back == expected and ("bird", [40.0, 10.0, 30.0, 40.0]) in read_back["a.png"]
    assert dataset.problems == []


def test_csv_and_jsonl_one_row_per_box(tagged) -> None:
    qdrant, tmp = tagged["qdrant"], tagged["tmp"]
    assert cli(qdrant, "export", "--collection", "c-objects", "--format", "csv", "--out", str(tmp / "b.csv")) == 0
    with (tmp / "b.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    stored = boxes_of(qdrant, "c-objects")
    assert len(rows) == len(stored) == 8
    assert list(rows[0])[:9] == ["id", "path", "annotation_id", "bbox", "label", "original_label", "tags",
                                 "suggested_label", "quality_flags"]
    for row in rows:
        label, bbox = stored[(row["path"], int(row["annotation_id"]))]
        assert row["label"] == label and json.loads(row["bbox"]) == bbox and float(row["mislabel_score"]) >= 0
    relabelled = next(r for r in rows if r["annotation_id"] == "2")
    assert (relabelled["label"], relabelled["original_label"], relabelled["tags"]) == ("bird", "dog", "keep")
    for row in rows:  # one yes/no column per flag, duplicate boxes included, and the review status
        flags = set(filter(None, row["quality_flags"].split("|")))
        assert {f for f in ("mislabel", "outlier", "duplicate", "duplicate_box") if row[f"{f}_flag"] == "True"} == flags
        assert row["mislabel_review"] == ("pending" if "mislabel" in flags else "")
    assert cli(qdrant, "export", "--collection", "c-objects", "--label", "cat", "--format", "jsonl",
               "--out", str(tmp / "b.jsonl")) == 0
    records = [json.loads(line) for line in (tmp / "b.jsonl").read_text().splitlines()]
    assert sorted(r["annotation_id"] for r in records) == [1, 4, 20]
    assert all(r["bbox"] == stored[(r["path"], r["annotation_id"])][1] for r in records)


def test_a_review_decision_on_a_box_shows_in_exports_and_the_review_filter(tagged) -> None:
    from review import KEPT, ReviewBook

    qdrant, tmp = tagged["qdrant"], tagged["tmp"]
    box = object_point_id("a.png", 2)
    store = open_store(path=str(qdrant))
    try:
        ReviewBook(store.open("c-objects")).decide("mislabel", [box], KEPT)
    finally:
        store.close()
    assert cli(qdrant, "export", "--collection", "c-objects", "--review", "kept", "--format", "jsonl",
               "--out", str(tmp / "kept.jsonl")) == 0
    [record] = [json.loads(line) for line in (tmp / "kept.jsonl").read_text().splitlines()]
    assert (record["id"], record["mislabel_review"], record["review"]["mislabel"]["label"]) == (box, "kept", "bird")


def test_tag_subset_delete_and_filters_on_boxes(tagged, capsys: pytest.CaptureFixture[str]) -> None:
    qdrant = tagged["qdrant"]
    assert cli(qdrant, "tag", "--collection", "c-objects", "--label", "dog", "--add", "dogs") == 0
    assert "added tag 'dogs' to 2 of 2 matching points" in capsys.readouterr().out  # 21, 30 (2 is a bird now)
    assert cli(qdrant, "subset", "--collection", "c-objects", "save", "small", "--range", "area:0:150") == 0
    assert "saved subset 'small': 2 points" in capsys.readouterr().out  # boxes 4 and 31
    assert cli(qdrant, "subset", "--collection", "c-objects", "list", "--json") == 0
    assert json.loads(capsys.readouterr().out)["small"]["count"] == 2
    assert cli(qdrant, "delete", "--collection", "c-objects", "--tag", "dogs", "--yes") == 0
    remaining = boxes_of(qdrant, "c-objects")
    assert len(remaining) == 6 and ("b.png", 21) not in remaining
    store = open_store(path=str(qdrant))
    try:
        assert store.open("c").count() == 3  # the images stay
    finally:
        store.close()


def test_wrong_format_for_the_collection_says_what_to_use(tagged, capsys: pytest.CaptureFixture[str]) -> None:
    qdrant, tmp = tagged["qdrant"], tagged["tmp"]
    assert cli(qdrant, "export", "--collection", "c", "--format", "yolo", "--out", str(tmp / "y")) == 2
    assert "c-objects" in capsys.readouterr().err
    assert cli(qdrant, "export", "--collection", "c-objects", "--format", "imagefolder", "--out", str(tmp / "f")) == 2
    assert "coco or yolo" in capsys.readouterr().err


def test_yolo_download_is_a_zip(tagged) -> None:
    store = open_store(path=str(tagged["qdrant"]))
    try:
        archive = export_to_tempfile(store.open("c-objects"), "yolo")
    finally:
        store.close()
    with zipfile.ZipFile(archive) as zipped:
        names = set(zipped.namelist())
    assert {"data.yaml", "images/a.png", "labels/a.txt", "images/sub/c.png", "labels/sub/c.txt"} <= names


def test_predictions_for_boxes_by_path_and_annotation_id(tagged, capsys: pytest.CaptureFixture[str]) -> None:
    rows = [{"path": "b.png", "annotation_id": 20, "prediction": "cat", "confidence": 0.9},
            {"path": "b.png", "annotation_id": 21, "prediction": "cat"},
            {"path": "b.png", "annotation_id": 99, "prediction": "cat"},
            {"path": "b.png", "annotation_id": "x", "prediction": "cat"}]
    file = tagged["tmp"] / "predictions.jsonl"
    file.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert cli(tagged["qdrant"], "predictions", "--collection", "c-objects", str(file)) == 0
    assert "2 of 4 predictions written" in capsys.readouterr().out
    store = open_store(path=str(tagged["qdrant"]))
    try:
        written = {r.payload["annotation_id"]: (r.payload["prediction"], r.payload["prediction_correct"])
                   for r in store.open("c-objects").retrieve(
                       [object_point_id("b.png", 20), object_point_id("b.png", 21)], None)}
    finally:
        store.close()
    assert written == {20: ("cat", True), 21: ("cat", False)}
