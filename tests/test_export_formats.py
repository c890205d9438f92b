"""Every export format, read back and checked against the store (both backends)."""
from __future__ import annotations

import csv
import json
import zipfile
from pathlib import Path

import pytest

from actions_helpers import build_collection, ids_where, visible
from export import ExportError, export_points, export_to_tempfile
from filters import EmptySelection, FilterSpec
from store import Store


@pytest.fixture
def things(store: Store, tmp_path: Path):
    collection, payloads, _ = build_collection(store, tmp_path / "images")
    return collection, payloads, tmp_path


def test_csv_has_every_visible_point_with_tags_and_scores(things) -> None:
    collection, payloads, tmp = things
    result = export_points(collection, "csv", tmp / "out" / "points.csv")
    with (tmp / "out" / "points.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    expected = ids_where(payloads, visible)
    assert result.count == len(rows) == len(expected) == 29
    assert {r["id"] for r in rows} == expected
    assert set(rows[0]) >= {"id", "path", "label", "tags", "x", "y", "split", "subsets", "mislabel_score",
                            "brightness", "width", "height"}
    for row in rows:
        p = payloads[row["id"]]
        assert (row["path"], row["label"]) == (p["path"], p["label"])
        assert (row["tags"].split("|") if row["tags"] else []) == p["tags"]
        assert float(row["x"]) == p["x"] and float(row["mislabel_score"]) == p["mislabel_score"]


FORMULAS = {"label": '=HYPERLINK("https://evil.example","open")', "split": "-2+3+cmd|' /C calc'!A0",
            "tags": ["@SUM(1+1)", "plain"], "note": "+1", "tabbed": "\tx", "return": "\rx"}


def test_csv_cells_a_spreadsheet_would_run_as_formulas_start_with_a_quote_and_jsonl_stays_exact(things) -> None:
    collection, payloads, tmp = things
    point = next(pid for pid, p in payloads.items() if visible(p) and p["y"] < 0)
    collection.set_payload([point], FORMULAS)
    collection.flush()
    export_points(collection, "csv", tmp / "points.csv")
    with (tmp / "points.csv").open(newline="") as handle:
        rows = {row["id"]: row for row in csv.DictReader(handle)}
    row = rows[point]
    assert row["label"] == "'" + FORMULAS["label"] and row["split"] == "'" + FORMULAS["split"]
    assert row["tags"] == "'@SUM(1+1)|plain" and row["note"] == "'+1"
    assert row["tabbed"] == "'\tx" and row["return"] == "'\rx"
    assert float(row["y"]) == payloads[point]["y"] < 0  # a negative number is a number, not a formula
    others = [r for pid, r in rows.items() if pid != point]
    assert not any(cell.startswith("'") for r in others for cell in r.values() if cell)  # nothing else changes

    export_points(collection, "jsonl", tmp / "points.jsonl")
    records = {r["id"]: r for r in map(json.loads, (tmp / "points.jsonl").read_text().splitlines())}
    assert {k: records[point][k] for k in FORMULAS} == FORMULAS


def test_jsonl_records_match_the_store(things) -> None:
    collection, payloads, tmp = things
    export_points(collection, "jsonl", tmp / "points.jsonl", FilterSpec(include_excluded=True).to_filter())
    records = [json.loads(line) for line in (tmp / "points.jsonl").read_text().splitlines()]
    assert {r["id"] for r in records} == set(payloads)
    for record in records:
        p = payloads[record["id"]]
        assert record["label"] == p["label"] and record["tags"] == p["tags"] and record["labels"] == p["labels"]
        assert record["brightness"] == p["brightness"] and record["y"] == p["y"]


def test_coco_is_valid_and_reads_back_through_the_indexer(things) -> None:
    collection, payloads, tmp = things
    out = tmp / "coco.json"
    export_points(collection, "coco", out, FilterSpec(labels=["cat", "dog"]).resolve(collection))
    document = json.loads(out.read_text())
    expected = ids_where(payloads, lambda p: visible(p) and p["label"] in ("cat", "dog"))
    _check_coco_schema(document)
    assert {image["embedscape_id"] for image in document["images"]} == expected
    names = {c["id"]: c["name"] for c in document["categories"]}
    assert sorted(names.values()) == ["cat", "dog"]
    by_image = {a["image_id"]: names[a["category_id"]] for a in document["annotations"]}
    for image in document["images"]:
        assert by_image[image["id"]] == payloads[image["embedscape_id"]]["label"]
        assert image["tags"] == payloads[image["embedscape_id"]]["tags"]
    try:
        from pycocotools.coco import COCO
    except ImportError:  # the schema check above still ran
        pass
    else:
        coco = COCO(str(out))
        assert len(coco.getImgIds()) == len(expected)
        assert len(coco.getImgIds(catIds=coco.getCatIds(catNms=["cat"]))) == len(
            ids_where(payloads, lambda p: visible(p) and p["label"] == "cat"))
    from indexer.sources import read_dataset

    dataset = read_dataset(tmp / "images", out)
    labelled = {s.relative_path: s.label for s in dataset.images if s.label}
    assert labelled == {payloads[i]["path"]: payloads[i]["label"] for i in expected}


def _check_coco_schema(document: dict) -> None:
    assert set(document) >= {"images", "annotations", "categories", "info"}
    image_ids = [image["id"] for image in document["images"]]
    assert len(set(image_ids)) == len(image_ids) and all(isinstance(i, int) for i in image_ids)
    category_ids = {c["id"] for c in document["categories"]}
    assert all(isinstance(c["id"], int) and isinstance(c["name"], str) for c in document["categories"])
    annotation_ids = [a["id"] for a in document["annotations"]]
    assert len(set(annotation_ids)) == len(annotation_ids)
    for annotation in document["annotations"]:
        assert annotation["image_id"] in set(image_ids) and annotation["category_id"] in category_ids
        assert annotation["bbox"] == [0, 0, 8, 6] and annotation["area"] == 48 and annotation["iscrowd"] == 0
    for image in document["images"]:
        assert isinstance(image["file_name"], str) and image["width"] == 8 and image["height"] == 6


@pytest.mark.parametrize("link", ["copy", "symlink"])
def test_imagefolder_copies_or_links_by_label(things, link: str) -> None:
    collection, payloads, tmp = things
    out = tmp / "folder"
    result = export_points(collection, "imagefolder", out, FilterSpec(tags_any=["snowy"]).resolve(collection),
                           link=link)
    expected = ids_where(payloads, lambda p: visible(p) and "snowy" in p["tags"])
    files = sorted(p for p in out.rglob("*.png"))
    assert result.count == len(files) == len(expected) and not result.missing
    assert {f.relative_to(out).as_posix() for f in files} == {payloads[i]["path"] for i in expected}
    for f in files:
        source = tmp / "images" / f.relative_to(out)
        assert f.is_symlink() == (link == "symlink")
        assert f.read_bytes() == source.read_bytes()


def test_imagefolder_skips_missing_files_and_names_them(things) -> None:
    collection, payloads, tmp = things
    gone = next(p for p in payloads.values() if visible(p))["path"]
    (tmp / "images" / gone).unlink()
    result = export_points(collection, "imagefolder", tmp / "folder")
    assert result.count == 28 and result.missing == [str(tmp / "images" / gone)]


def test_paths_lists_absolute_files(things) -> None:
    collection, payloads, tmp = things
    export_points(collection, "paths", tmp / "paths.txt", FilterSpec(tags_all=["snowy", "blurry"]).resolve(collection))
    lines = (tmp / "paths.txt").read_text().splitlines()
    expected = ids_where(payloads, lambda p: visible(p) and {"snowy", "blurry"} <= set(p["tags"]))
    assert sorted(lines) == sorted(str(tmp / "images" / payloads[i]["path"]) for i in expected)
    assert all(Path(line).is_file() for line in lines)


def test_tempfile_downloads(things) -> None:
    collection, payloads, _ = things
    csv_file = export_to_tempfile(collection, "csv", name="my subset")
    assert csv_file.suffix == ".csv" and csv_file.name == "things-my_subset.csv"
    assert len(csv_file.read_text().splitlines()) == 1 + 29
    archive = export_to_tempfile(collection, "imagefolder", FilterSpec(labels=["bird"]).resolve(collection))
    with zipfile.ZipFile(archive) as zipped:
        names = [n for n in zipped.namelist() if n.endswith(".png")]
    assert sorted(names) == sorted(p["path"] for p in payloads.values() if visible(p) and p["label"] == "bird")


def test_empty_result_and_unwritable_paths_are_clear_errors(things) -> None:
    collection, _, tmp = things
    with pytest.raises(EmptySelection, match="no points match"):
        export_points(collection, "csv", tmp / "empty.csv", FilterSpec(ranges={"brightness": (500, None)}).to_filter())
    assert not (tmp / "empty.csv").exists()
    blocker = tmp / "a-file"
    blocker.write_text("x")
    with pytest.raises(ExportError, match="cannot write"):
        export_points(collection, "jsonl", blocker / "out.jsonl")
    with pytest.raises(ExportError, match="it is a folder"):
        export_points(collection, "csv", tmp)
    with pytest.raises(ExportError, match="unknown format"):
        export_points(collection, "parquet", tmp / "x.parquet")
