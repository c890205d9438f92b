"""Dataset discovery (indexer/sources.py): layouts, labels files, odd folders. No model, no store."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from conftest import write_image
from indexer.sources import IMAGE_EXTENSIONS, SourceError, read_dataset


def relative_paths(dataset) -> list[str]:
    return [s.relative_path for s in dataset.images]


def by_path(dataset) -> dict[str, object]:
    return {s.relative_path: s for s in dataset.images}


def test_image_folder_label_is_first_folder(tmp_path: Path) -> None:
    write_image(tmp_path / "cat" / "a.png")
    write_image(tmp_path / "cat" / "indoor" / "deep" / "b.jpg")
    write_image(tmp_path / "dog" / "c.png")
    dataset = read_dataset(tmp_path)
    assert dataset.layout == "imagefolder"
    assert dataset.root == tmp_path.resolve()
    assert relative_paths(dataset) == ["cat/a.png", "cat/indoor/deep/b.jpg", "dog/c.png"]
    sources = by_path(dataset)
    assert sources["cat/indoor/deep/b.jpg"].label == "cat"
    assert sources["cat/indoor/deep/b.jpg"].labels == ("cat",)
    assert sources["dog/c.png"].label == "dog"
    assert all(s.path.is_absolute() and s.path.is_file() for s in dataset.images)
    assert dataset.problems == []


def test_folder_without_labels(tmp_path: Path) -> None:
    write_image(tmp_path / "a.png")
    write_image(tmp_path / "sub" / "b.png")  # a file at the top means: not an ImageFolder tree
    dataset = read_dataset(tmp_path)
    assert dataset.layout == "unlabelled"
    assert relative_paths(dataset) == ["a.png", "sub/b.png"]
    assert all(s.label == "" and s.labels == () and s.split == "" for s in dataset.images)


def test_common_extensions_recursively(tmp_path: Path) -> None:
    formats = {".jpg": "JPEG", ".jpeg": "JPEG", ".JPG": "JPEG", ".png": "PNG", ".webp": "WEBP", ".bmp": "BMP",
               ".tif": "TIFF", ".tiff": "TIFF", ".gif": "GIF"}
    for i, (suffix, fmt) in enumerate(formats.items()):
        write_image(tmp_path / "x" / ("deep/" * i) / f"img{i}{suffix}", seed=i, fmt=fmt)
    (tmp_path / "x" / "notes.txt").write_text("not an image")
    (tmp_path / "x" / "data.npy").write_bytes(b"\0" * 8)
    dataset = read_dataset(tmp_path)
    assert len(dataset.images) == len(formats)
    assert {Path(p).suffix for p in relative_paths(dataset)} == set(formats)
    assert {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"} <= IMAGE_EXTENSIONS


def test_hidden_files_and_folders_ignored(tmp_path: Path) -> None:
    write_image(tmp_path / "cat" / "a.png")
    write_image(tmp_path / "cat" / ".hidden.png")
    write_image(tmp_path / "cat" / "._a.png")  # macOS resource fork
    write_image(tmp_path / ".thumbnails" / "t.png")
    write_image(tmp_path / "cat" / ".cache" / "c.png")
    assert relative_paths(read_dataset(tmp_path)) == ["cat/a.png"]


def test_non_ascii_names(tmp_path: Path) -> None:
    write_image(tmp_path / "café" / "ñandú 猫.png")
    write_image(tmp_path / "Ωmega" / "façade (1).jpg")
    dataset = read_dataset(tmp_path)
    assert relative_paths(dataset) == ["café/ñandú 猫.png", "Ωmega/façade (1).jpg"]
    assert [s.label for s in dataset.images] == ["café", "Ωmega"]


def test_symlinked_folder_is_followed(tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere" / "birds"
    write_image(outside / "b1.png")
    write_image(outside / "nested" / "b2.png")
    root = tmp_path / "data"
    write_image(root / "cat" / "a.png")
    (root / "bird").symlink_to(outside, target_is_directory=True)
    dataset = read_dataset(root)
    assert relative_paths(dataset) == ["bird/b1.png", "bird/nested/b2.png", "cat/a.png"]
    assert by_path(dataset)["bird/nested/b2.png"].label == "bird"


def test_alias_beside_its_folder_is_not_a_second_label(tmp_path: Path) -> None:
    write_image(tmp_path / "zebra" / "z.png")
    (tmp_path / "animals").symlink_to(tmp_path / "zebra", target_is_directory=True)  # sorts first
    dataset = read_dataset(tmp_path)
    assert [(s.relative_path, s.label) for s in dataset.images] == [("zebra/z.png", "zebra")]


def test_symlinked_root_is_resolved(tmp_path: Path) -> None:
    write_image(tmp_path / "real" / "cat" / "a.png")
    (tmp_path / "link").symlink_to(tmp_path / "real", target_is_directory=True)
    dataset = read_dataset(tmp_path / "link")
    assert dataset.root == (tmp_path / "real").resolve()
    assert relative_paths(dataset) == ["cat/a.png"]


def test_symlink_loop_ends(tmp_path: Path) -> None:
    write_image(tmp_path / "cat" / "a.png")
    write_image(tmp_path / "cat" / "inner" / "b.png")
    (tmp_path / "cat" / "inner" / "up").symlink_to(tmp_path, target_is_directory=True)  # -> root
    (tmp_path / "cat" / "self").symlink_to(tmp_path / "cat", target_is_directory=True)  # -> its parent
    (tmp_path / "cat" / "loop.png").symlink_to(tmp_path / "cat" / "loop.png")  # ELOOP itself
    dataset = read_dataset(tmp_path)
    # Every real file once, nothing reached through the folder loops; the self-referencing link
    # is listed like any file and skipped as unreadable when indexed (tests/test_indexer_pipeline.py).
    assert relative_paths(dataset) == ["cat/a.png", "cat/inner/b.png", "cat/loop.png"]


def test_wrong_path(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="does not exist"):
        read_dataset(tmp_path / "nope")


def test_file_instead_of_folder(tmp_path: Path) -> None:
    image = write_image(tmp_path / "one.png")
    with pytest.raises(SourceError, match="is a file; pass the folder"):
        read_dataset(image)


def test_empty_folder_has_no_images(tmp_path: Path) -> None:
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "readme.txt").write_text("no images here")
    dataset = read_dataset(tmp_path / "empty")
    assert dataset.images == []  # index_dataset turns this into a SourceError (tests/test_indexer_pipeline.py)


def test_missing_labels_file(tmp_path: Path) -> None:
    write_image(tmp_path / "a.png")
    with pytest.raises(SourceError, match="labels file .* does not exist"):
        read_dataset(tmp_path, tmp_path / "labels.csv")


def make_flat(root: Path, names: list[str]) -> None:
    for i, name in enumerate(names):
        write_image(root / name, seed=i)


def test_csv_labels_file(tmp_path: Path) -> None:
    root = tmp_path / "images"
    make_flat(root, ["a.png", "b.png", "sub/c.png", "unlisted.png"])
    labels = tmp_path / "labels.csv"
    labels.write_text("path,label,split\na.png,cat,train\n./b.png,dog,test\nsub/c.png,cat,\n"
                      "gone.png,cat,train\nsub/missing.jpg,dog,train\n", encoding="utf-8")
    dataset = read_dataset(root, labels)
    assert dataset.layout == "labels-file"
    sources = by_path(dataset)
    assert relative_paths(dataset) == ["a.png", "b.png", "sub/c.png", "unlisted.png"]
    assert (sources["a.png"].label, sources["a.png"].labels, sources["a.png"].split) == ("cat", ("cat",), "train")
    assert (sources["b.png"].label, sources["b.png"].split) == ("dog", "test")
    assert (sources["sub/c.png"].label, sources["sub/c.png"].split) == ("cat", "")
    assert (sources["unlisted.png"].label, sources["unlisted.png"].labels) == ("", ())
    assert len(dataset.problems) == 2
    assert "gone.png" in dataset.problems[0] and "not found" in dataset.problems[0]
    assert "sub/missing.jpg" in dataset.problems[1]


def test_csv_with_several_rows_per_image(tmp_path: Path) -> None:
    """Multi-label files list an image once per label: one image, its first label, all labels."""
    root = tmp_path / "images"
    make_flat(root, ["a.png", "b.png"])
    labels = tmp_path / "labels.csv"
    labels.write_text("path,label,split\na.png,cat,train\nb.png,dog,val\na.png,indoor,train\na.png,cat,train\n")
    dataset = read_dataset(root, labels)
    assert [(s.relative_path, s.label, s.labels, s.split) for s in dataset.images] == [
        ("a.png", "cat", ("cat", "indoor"), "train"), ("b.png", "dog", ("dog",), "val")]
    assert dataset.problems == []


def test_csv_without_path_column(tmp_path: Path) -> None:
    make_flat(tmp_path / "images", ["a.png"])
    (tmp_path / "labels.csv").write_text("file,label\na.png,cat\n")
    with pytest.raises(SourceError, match="needs a 'path' column"):
        read_dataset(tmp_path / "images", tmp_path / "labels.csv")


@pytest.mark.parametrize("name", ["labels.jsonl", "labels.json"])
def test_json_lines_labels_file_with_split(tmp_path: Path, name: str) -> None:
    root = tmp_path / "images"
    make_flat(root, ["a.png", "b.png", "c.png", "ünï.png"])
    rows = [{"path": "a.png", "label": "cat", "split": "train"}, {"label": "dog", "path": "b.png", "split": "val"},
            {"path": "ünï.png", "label": "bird", "split": "test"}, {"path": "zzz.png", "label": "x"}]
    labels = tmp_path / name
    labels.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n\n", encoding="utf-8")
    dataset = read_dataset(root, labels)
    assert dataset.layout == "labels-file"
    sources = by_path(dataset)
    assert [(s.relative_path, s.label, s.split) for s in dataset.images] == [
        ("a.png", "cat", "train"), ("b.png", "dog", "val"), ("c.png", "", ""), ("ünï.png", "bird", "test")]
    assert sources["ünï.png"].labels == ("bird",)
    assert len(dataset.problems) == 1 and "zzz.png" in dataset.problems[0]


def test_json_lines_syntax_error_names_the_line(tmp_path: Path) -> None:
    make_flat(tmp_path / "images", ["a.png"])
    (tmp_path / "labels.jsonl").write_text('{"path": "a.png", "label": "cat"}\n{"path": "b.png", \n')
    with pytest.raises(SourceError, match=r"labels.jsonl:2: not valid JSON"):
        read_dataset(tmp_path / "images", tmp_path / "labels.jsonl")


def coco_file(path: Path, pretty: bool) -> Path:
    coco = {
        "images": [{"id": 1, "file_name": "img1.jpg"}, {"id": 2, "file_name": "sub/img2.jpg"},
                   {"id": 3, "file_name": "img3.jpg"}, {"id": 4, "file_name": "missing.jpg"}],
        "categories": [{"id": 1, "name": "person"}, {"id": 2, "name": "dog"}, {"id": 3, "name": "cat"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1}, {"id": 2, "image_id": 1, "category_id": 2},
            {"id": 3, "image_id": 1, "category_id": 2},                      # img1: dog x2, person x1
            {"id": 4, "image_id": 2, "category_id": 3}, {"id": 5, "image_id": 2, "category_id": 2},  # tie
        ],
    }
    path.write_text(json.dumps(coco, indent=2 if pretty else None))
    return path


@pytest.mark.parametrize("pretty", [True, False], ids=["pretty", "minified"])
def test_coco_annotations(tmp_path: Path, pretty: bool) -> None:
    root = tmp_path / "images"
    make_flat(root, ["img1.jpg", "sub/img2.jpg", "img3.jpg", "extra.png"])
    dataset = read_dataset(root, coco_file(tmp_path / "instances.json", pretty))
    assert dataset.layout == "coco"
    sources = by_path(dataset)
    assert (sources["img1.jpg"].label, sources["img1.jpg"].labels) == ("dog", ("dog", "person"))
    # A tie goes to the alphabetically first category.
    assert (sources["sub/img2.jpg"].label, sources["sub/img2.jpg"].labels) == ("cat", ("cat", "dog"))
    assert (sources["img3.jpg"].label, sources["img3.jpg"].labels) == ("", ())  # no annotations
    assert (sources["extra.png"].label, sources["extra.png"].labels) == ("", ())  # not in the COCO file
    assert len(dataset.problems) == 1 and "missing.jpg" in dataset.problems[0]


def test_not_a_coco_file(tmp_path: Path) -> None:
    make_flat(tmp_path / "images", ["a.png"])
    (tmp_path / "other.json").write_text(json.dumps({"annotations": []}, indent=2))
    with pytest.raises(SourceError, match="not a COCO annotation file"):
        read_dataset(tmp_path / "images", tmp_path / "other.json")


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_unreadable_subfolder_does_not_stop_discovery(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("running as root: chmod 000 does not block root from reading a folder")
    write_image(tmp_path / "cat" / "a.png")
    locked = tmp_path / "dog"
    write_image(locked / "b.png")
    locked.chmod(0)
    try:
        assert relative_paths(read_dataset(tmp_path)) == ["cat/a.png"]
    finally:
        locked.chmod(0o755)
