"""Object metrics: the measures by hand (analysis/object_metrics.py), then on a real COCO dataset
indexed with mobilenet-v2 into the embedded engine: a box far too tall for its class is found
(shape_score, shape_outlier), relative area, border distance and per-channel colour of the box
pixels, each image's object count and density, and the fields in filters and exports."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import app
from analysis.object_metrics import SHAPE_OUTLIER_Z, box_geometry, box_shape_features, per_image, shape_scores
from detection_fixtures import CATEGORY, COCO_CATEGORIES, scene
from indexer.objects import object_point_id
from indexer.pipeline import IndexOptions
from scoring.indexing import index_and_analyze
from store import open_store, point_id
from store.schema import SHAPE_OUTLIER_FLAG

SIZE = (96, 96)
TALL_ID = 999   # a cat box five times too tall for the cats of this dataset


def test_geometry_by_hand() -> None:
    boxes = np.array([[0, 10, 20, 20], [40, 30, 20, 40], [30, 30, 40, 10], [5, 5, 5, 5]], float)
    sizes = np.array([[100, 100], [100, 100], [100, 50], [0, 0]], float)
    geometry = box_geometry(boxes, sizes)
    np.testing.assert_allclose(geometry.relative_area[:3], [0.04, 0.08, 0.08])
    # touching the left edge; 30 px to the bottom of 100; 10 px of height 50 below it
    np.testing.assert_allclose(geometry.border_distance[:3], [0.0, 0.3, 0.2])
    assert np.isnan(geometry.relative_area[3]) and np.isnan(geometry.border_distance[3])   # image size unknown
    count, density = per_image(np.array(["a", "a", "b", "c"]), geometry.relative_area)
    assert count == {"a": 2, "b": 1, "c": 1} and density == pytest.approx({"a": 0.12, "b": 0.08, "c": 0.0})
    with pytest.raises(ValueError, match="3 boxes but 2 image sizes"):
        box_geometry(boxes[:3], sizes[:2])


def test_the_shape_score_finds_a_box_far_too_tall_for_its_class() -> None:
    rng = np.random.default_rng(0)
    widths, heights = rng.normal(30, 2, 40), rng.normal(20, 1.5, 40)
    boxes = np.column_stack([np.full(40, 5.0), np.full(40, 5.0), widths, heights])
    boxes[7, 3] = 100.0                                  # five times the usual height
    labels = np.array(["cat"] * 30 + ["dog"] * 7 + ["bird"] * 3)
    labels[7] = "cat"
    sizes = np.full((40, 2), 200.0)
    shape = shape_scores(labels, box_shape_features(boxes, sizes))
    assert shape.flagged[7] and shape.score[7] > 5 * SHAPE_OUTLIER_Z
    assert not shape.flagged[np.arange(40) != 7].any(), "ordinary boxes are not flagged"
    assert np.isnan(shape.score[30:]).all(), "dog and bird have too few boxes for a norm"
    # Every box of a class the same shape: nothing is unusual, no division by zero.
    same = shape_scores(np.array(["cat"] * 10), box_shape_features(np.tile([0, 0, 10.0, 10.0], (10, 1)),
                                                                   np.full((10, 2), 50.0)))
    assert (same.score == 0).all() and not same.flagged.any()


def make_shapes(base: Path) -> tuple[Path, Path, dict[int, tuple[str, list[int]]]]:
    """12 images, each with a cat about 30x20 and a dog about 20x30; one more with a cat 24x84
    (TALL_ID) in a corner. Returns (image folder, instances.json, annotation id -> (path, bbox))."""
    rng = np.random.default_rng(3)
    root, images, annotations, boxes = base / "images", [], [], {}
    root.mkdir(parents=True)
    for i in range(13):
        path = f"{i:02d}.png"
        if i < 12:
            objects = [("cat", [4 + i, 6, 30 + int(rng.integers(-2, 3)), 20 + int(rng.integers(-2, 3))]),
                       ("dog", [50, 40 + i, 20 + int(rng.integers(-2, 3)), 30 + int(rng.integers(-2, 3))])]
        else:
            objects = [("cat", [0, 6, 24, 84])]
        scene(SIZE, [(label, tuple(bbox)) for label, bbox in objects], seed=i).save(root / path)
        images.append({"id": i + 1, "file_name": path, "width": SIZE[0], "height": SIZE[1]})
        for j, (label, bbox) in enumerate(objects):
            annotation_id = TALL_ID if i == 12 else 10 * i + j
            boxes[annotation_id] = (path, bbox)
            annotations.append({"id": annotation_id, "image_id": i + 1, "category_id": CATEGORY[label],
                                "bbox": bbox, "iscrowd": 0})
    coco = base / "instances.json"
    coco.write_text(json.dumps({"images": images, "annotations": annotations, "categories": COCO_CATEGORIES}))
    return root, coco, boxes


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory, mobilenet) -> dict:
    base = tmp_path_factory.mktemp("shapes")
    root, coco, boxes = make_shapes(base)
    store = open_store(path=str(base / "qdrant"))
    try:
        index_and_analyze(root, store, IndexOptions("s", "mobilenet-v2", labels_file=coco, batch_size=8, progress=False),
                      mobilenet)
    finally:
        store.close()
    return {"base": base, "root": root, "qdrant": base / "qdrant", "boxes": boxes}


def payloads(qdrant: Path, collection: str) -> dict[str, dict]:
    store = open_store(path=str(qdrant))
    try:
        return {r.id: r.payload for batch in store.open(collection).scroll(None) for r in batch}
    finally:
        store.close()


def test_indexing_finds_the_tall_box_and_measures_every_box(shapes) -> None:
    objects = payloads(shapes["qdrant"], "s-objects")
    flagged = {p["annotation_id"] for p in objects.values() if SHAPE_OUTLIER_FLAG in p["quality_flags"]}
    assert flagged == {TALL_ID}
    tall = objects[object_point_id("12.png", TALL_ID)]
    assert tall["shape_score"] > SHAPE_OUTLIER_Z
    assert tall["relative_area"] == pytest.approx(24 * 84 / 96 ** 2) and tall["border_distance"] == 0.0
    for annotation_id, (path, (x, y, w, h)) in shapes["boxes"].items():
        payload = objects[object_point_id(path, annotation_id)]
        gap = min(x / 96, y / 96, (96 - x - w) / 96, (96 - y - h) / 96)
        assert payload["border_distance"] == pytest.approx(max(gap, 0.0))
        with Image.open(shapes["root"] / path) as image:
            inside = np.asarray(image.convert("RGB"), np.float64)[y:y + h, x:x + w]
        means = [payload["red"], payload["green"], payload["blue"]]
        np.testing.assert_allclose(means, inside.reshape(-1, 3).mean(axis=0) / 255.0, rtol=1e-5)


def test_each_image_gets_its_object_count_and_density(shapes) -> None:
    images = payloads(shapes["qdrant"], "s")
    assert len(images) == 13
    for i in range(13):
        path = f"{i:02d}.png"
        payload = images[point_id(path)]
        boxes = [bbox for p, bbox in shapes["boxes"].values() if p == path]
        assert payload["object_count"] == len(boxes)
        assert payload["object_density"] == pytest.approx(sum(w * h for _, _, w, h in boxes) / 96 ** 2)
        with Image.open(shapes["root"] / path) as image:
            means = np.asarray(image.convert("RGB"), np.float64).reshape(-1, 3).mean(axis=0) / 255.0
        np.testing.assert_allclose([payload["red"], payload["green"], payload["blue"]], means, rtol=1e-5)


def test_the_metrics_filter_export_and_survive_analyze(shapes, tmp_path: Path, capsys) -> None:
    argv = ["--qdrant-path", str(shapes["qdrant"])]
    assert app.main([*argv, "analyze", "--collection", "s-objects"]) == 0
    assert "1 shape outliers" in capsys.readouterr().out
    out = tmp_path / "tall.csv"
    assert app.main([*argv, "export", "--collection", "s-objects", "--range", f"shape_score:{SHAPE_OUTLIER_Z}:",
                     "--format", "csv", "--out", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert [int(r["annotation_id"]) for r in rows] == [TALL_ID]
    assert float(rows[0]["relative_area"]) == pytest.approx(24 * 84 / 96 ** 2)
    crowded = tmp_path / "crowded.csv"
    assert app.main([*argv, "export", "--collection", "s", "--range", "object_count:2:", "--format", "csv",
                     "--out", str(crowded)]) == 0
    assert len(list(csv.DictReader(crowded.open()))) == 12
    # analyze on the image collection counts the boxes again: the tall box deleted, its image has none.
    assert app.main([*argv, "delete", "--collection", "s-objects", "--range", f"shape_score:{SHAPE_OUTLIER_Z}:",
                     "--yes"]) == 0
    assert app.main([*argv, "analyze", "--collection", "s", "--clusters", "none"]) == 0
    images = payloads(shapes["qdrant"], "s")
    assert images[point_id("12.png")]["object_count"] == 0 and images[point_id("12.png")]["object_density"] == 0.0
    assert images[point_id("00.png")]["object_count"] == 2


def test_a_mask_joining_several_objects_has_an_unusual_shape() -> None:
    """Masks of one class compared by their Hu-moment shape: ten discs of different sizes and
    places, and one mask that swallowed three touching discs (the mistake the coins screenshot
    shows): only that one is past the cut-off, whatever its size."""
    from detection.masks import hu_features

    yy, xx = np.mgrid[0:200, 0:200]

    def disc(cx: float, cy: float, r: float) -> np.ndarray:
        return (xx - cx) ** 2 + (yy - cy) ** 2 <= r ** 2

    rng = np.random.default_rng(5)
    rasters = [disc(*rng.uniform(50, 150, 2), rng.uniform(12, 30)) for _ in range(10)]
    rasters.append(disc(40, 100, 20) | disc(80, 100, 20) | disc(120, 100, 20))
    features = np.array([hu_features(r) for r in rasters])
    shape = shape_scores(np.array(["coin"] * 11), features)
    assert list(np.flatnonzero(shape.flagged)) == [10] and shape.score[10] > 3 * SHAPE_OUTLIER_Z
    assert np.isnan(hu_features(np.zeros((5, 5), bool))).all()
