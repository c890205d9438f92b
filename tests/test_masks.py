"""Masks in, masks out: a COCO file with polygons, compressed RLE and an uncompressed-RLE crowd
region (and broken masks) indexed with mobilenet-v2 into the embedded engine; the masks kept
with their boxes, measured (a mask drawn over another object is found by mask_fill), drawn in
the image view, and exported back equal (COCO) and as YOLO segmentation rows (YOLO's own
polygon comes back as it was read)."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import app
from detection.boxes import boxes_of_image
from detection.crops import BOX_COLOUR, HIGHLIGHT_COLOUR, MASK_ALPHA, draw_boxes
from detection_fixtures import CATEGORY, COCO_CATEGORIES, make_yolo, scene
from indexer.annotations import read_coco
from indexer.objects import object_point_id
from indexer.pipeline import IndexOptions
from scoring.indexing import index_and_analyze
from store import open_store, point_id

SIZE = (96, 96)


def rectangle_rle(x: int, y: int, w: int, h: int, counts: str = "compressed") -> dict:
    """The COCO RLE of a filled rectangle in a SIZE image (compressed string, or a list of counts)."""
    from pycocotools import mask as coco_masks

    raster = np.zeros((SIZE[1], SIZE[0]), np.uint8)
    raster[y:y + h, x:x + w] = 1
    if counts == "compressed":
        encoded = coco_masks.encode(np.asfortranarray(raster))
        return {"size": list(encoded["size"]), "counts": encoded["counts"].decode("ascii")}
    flat = raster.ravel(order="F")
    runs, value, run = [], 0, 0
    for v in flat:
        if v != value:
            runs.append(run)
            value, run = v, 0
        run += 1
    return {"size": [SIZE[1], SIZE[0]], "counts": runs + [run]}


# annotation id -> (image, label, bbox, segmentation, iscrowd)
GOOD = {
    1: ("a.png", "cat", [10, 10, 30, 20], [[10, 10, 40, 10, 40, 30, 10, 30]], 0),
    2: ("a.png", "dog", [50, 50, 30, 30], rectangle_rle(50, 50, 30, 30), 0),
    3: ("a.png", "cat", [50, 10, 30, 20], rectangle_rle(50, 10, 30, 20, counts="list"), 1),
    # A mask drawn over another object: the dog's box is at [10, 50], its polygon over box 2.
    4: ("a.png", "dog", [10, 50, 30, 30], [[50, 50, 80, 50, 80, 80, 50, 80]], 0),
    5: ("a.png", "bird", [5, 36, 12, 10], [[5, 36, 11, 36, 5, 46], [11, 46, 17, 36, 17, 46]], 0),
}
BROKEN = {
    6: ("b.png", "cat", [10, 10, 20, 20], [[1, 2, 3]], "not x, y pairs"),
    7: ("b.png", "dog", [40, 40, 20, 20], {"size": [10, 10], "counts": [100]}, "not the image's [height, width]"),
    8: ("b.png", "bird", [60, 10, 20, 20], {"size": [96, 96], "counts": [5, 5]}, "add up to 10"),
}


def make_masks(base: Path) -> tuple[Path, Path]:
    root = base / "images"
    root.mkdir(parents=True)
    for path in ("a.png", "b.png"):
        boxes = [(label, tuple(bbox)) for p, label, bbox, *_ in [*GOOD.values(), *BROKEN.values()] if p == path]
        scene(SIZE, boxes, seed=len(path)).save(root / path)
    images = [{"id": 1, "file_name": "a.png", "width": SIZE[0], "height": SIZE[1]},
              {"id": 2, "file_name": "b.png", "width": SIZE[0], "height": SIZE[1]}]
    annotations = [{"id": i, "image_id": 1, "category_id": CATEGORY[label], "bbox": bbox, "segmentation": seg,
                    "iscrowd": crowd} for i, (_, label, bbox, seg, crowd) in GOOD.items()]
    annotations += [{"id": i, "image_id": 2, "category_id": CATEGORY[label], "bbox": bbox, "segmentation": seg,
                     "iscrowd": 0} for i, (_, label, bbox, seg, _) in BROKEN.items()]
    coco = base / "instances.json"
    coco.write_text(json.dumps({"images": images, "annotations": annotations, "categories": COCO_CATEGORIES}))
    return root, coco


@pytest.fixture(scope="module")
def masks(tmp_path_factory: pytest.TempPathFactory, mobilenet) -> dict:
    base = tmp_path_factory.mktemp("masks")
    root, coco = make_masks(base)
    store = open_store(path=str(base / "qdrant"))
    try:
        report = index_and_analyze(root, store, IndexOptions("m", "mobilenet-v2", labels_file=coco, batch_size=8,
                                                         progress=False), mobilenet)
    finally:
        store.close()
    return {"base": base, "root": root, "coco": coco, "qdrant": base / "qdrant", "report": report}


def payloads(qdrant: Path, collection: str) -> dict[str, dict]:
    store = open_store(path=str(qdrant))
    try:
        return {r.id: r.payload for batch in store.open(collection).scroll(None) for r in batch}
    finally:
        store.close()


def test_broken_masks_are_reported_and_their_boxes_kept(masks) -> None:
    document = json.loads(masks["coco"].read_text())
    result = read_coco(masks["coco"], document, {"a.png", "b.png"})
    by_id = {box.annotation_id: box for boxes in result.boxes.values() for box in boxes}
    assert sorted(by_id) == [1, 2, 3, 4, 5, 6, 7, 8]
    for annotation_id, (*_, why) in BROKEN.items():
        assert by_id[annotation_id].mask is None
        (line,) = [p for p in result.problems if p.startswith(f"instances.json annotation {annotation_id}:")]
        assert why in line and line.endswith("the mask dropped, the box kept")
    assert all(by_id[i].mask is not None for i in GOOD)
    saved = json.loads((masks["qdrant"] / "m" / "index-report.json").read_text())
    assert sum("the mask dropped" in p for p in saved["problems"]) == 3


def test_masks_are_kept_compactly_and_measured(masks) -> None:
    objects = payloads(masks["qdrant"], "m-objects")
    mask = {i: objects[object_point_id("a.png", i)]["mask"] for i in GOOD}
    assert mask[1] == {"polygons": [[10.0, 10.0, 40.0, 10.0, 40.0, 30.0, 10.0, 30.0]]}
    assert mask[2] == {"rle": GOOD[2][3]["counts"], "size": [96, 96], "uncompressed": False}
    assert mask[3]["uncompressed"] is True and mask[3]["iscrowd"] == 1 and isinstance(mask[3]["rle"], str)
    assert len(json.dumps(mask[3])) < len(json.dumps(GOOD[3][3])) / 2, "a crowd's counts are stored compressed"
    fill = {i: objects[object_point_id("a.png", i)]["mask_fill"] for i in GOOD}
    assert fill[1] == pytest.approx(1.0) and fill[2] == pytest.approx(1.0) and fill[3] == pytest.approx(1.0)
    assert fill[4] == 0.0, "the mask drawn over another object covers none of its own box"
    assert 0.3 < fill[5] < 0.7                                        # two triangles, half the box
    vertices = {i: objects[object_point_id("a.png", i)].get("polygon_vertices") for i in GOOD}
    assert vertices == {1: 4, 2: None, 3: None, 4: 4, 5: 6}
    assert objects[object_point_id("a.png", 2)]["relative_area"] == pytest.approx(900 / 96 ** 2)
    assert all("mask" not in objects[object_point_id("b.png", i)] for i in BROKEN)
    assert "mask_fill" not in objects[object_point_id("b.png", 6)]


def test_coco_export_gives_the_masks_back_as_they_came(masks, tmp_path: Path) -> None:
    from pycocotools.coco import COCO

    out = tmp_path / "back.json"
    argv = ["--qdrant-path", str(masks["qdrant"])]
    assert app.main([*argv, "export", "--collection", "m-objects", "--format", "coco", "--out", str(out)]) == 0
    exported = {a["id"]: a for a in json.loads(out.read_text())["annotations"]}
    for annotation_id, (_, _, _, segmentation, crowd) in GOOD.items():
        assert exported[annotation_id]["segmentation"] == segmentation, annotation_id
        assert exported[annotation_id]["iscrowd"] == crowd
    assert "segmentation" not in exported[6] and exported[6]["iscrowd"] == 0
    source, back = COCO(str(masks["coco"])), COCO(str(out))
    for annotation_id in GOOD:
        np.testing.assert_array_equal(back.annToMask(back.anns[annotation_id]),
                                      source.annToMask(source.anns[annotation_id]))
        assert exported[annotation_id]["area"] == source.annToMask(source.anns[annotation_id]).sum()
    # The CSV keeps the mask as one JSON cell; the export indexes again with the same masks.
    rows = {int(r["annotation_id"]): r for r in csv.DictReader(_csv(argv, tmp_path).open())}
    assert json.loads(rows[1]["mask"]) == {"polygons": [[10.0, 10.0, 40.0, 10.0, 40.0, 30.0, 10.0, 30.0]]}
    assert app.main([*argv, "index", str(masks["root"]), "--labels", str(out), "--collection", "again",
                     "--model", "mobilenet-v2", "--no-analyze"]) == 0
    first, again = payloads(masks["qdrant"], "m-objects"), payloads(masks["qdrant"], "again-objects")
    assert {pid: p.get("mask") for pid, p in again.items()} == {pid: first[pid].get("mask") for pid in again}


def _csv(argv: list[str], tmp_path: Path) -> Path:
    out = tmp_path / "boxes.csv"
    assert app.main([*argv, "export", "--collection", "m-objects", "--format", "csv", "--out", str(out)]) == 0
    return out


def test_the_image_view_draws_each_mask_under_its_box(masks) -> None:
    store = open_store(path=str(masks["qdrant"]))
    try:
        boxes = boxes_of_image(store.open("m-objects"), point_id("a.png"))
    finally:
        store.close()
    chosen = object_point_id("a.png", 2)
    plain = np.asarray(Image.open(masks["root"] / "a.png").convert("RGB"), np.float64)
    drawn = np.asarray(draw_boxes(masks["root"] / "a.png", boxes, highlight=chosen), np.float64)
    alpha = MASK_ALPHA / 255

    def tinted(region: tuple[slice, slice], colour: tuple[int, int, int]) -> np.ndarray:
        return plain[region] * (1 - alpha) + np.array(colour) * alpha

    # Inside box 2 (the chosen one), away from its outline: its mask in the highlight colour,
    # drawn over box 4's mask, which lies on the same pixels in the box colour.
    np.testing.assert_allclose(drawn[60:70, 60:70], tinted((slice(60, 70), slice(60, 70)), HIGHLIGHT_COLOUR), atol=1.5)
    np.testing.assert_allclose(drawn[15:25, 15:35], tinted((slice(15, 25), slice(15, 35)), BOX_COLOUR), atol=1.5)
    # Outside every mask and box nothing changes.
    np.testing.assert_array_equal(drawn[85:95, 0:8], plain[85:95, 0:8])


def test_yolo_segmentation_polygons_round_trip(tmp_path: Path, mobilenet) -> None:
    root, data_yaml = make_yolo(tmp_path)
    store = open_store(path=str(tmp_path / "qdrant"))
    try:
        index_and_analyze(root, store, IndexOptions("y", "mobilenet-v2", labels_file=data_yaml, batch_size=8,
                                                progress=False, analyze=False), mobilenet)
    finally:
        store.close()
    bird = payloads(tmp_path / "qdrant", "y-objects")[object_point_id("images/train/a.png", 10)]
    # "2 0.1 0.1 0.3 0.1 0.3 0.3 0.1 0.3" in the 80x60 image, in pixels
    np.testing.assert_allclose(bird["mask"]["polygons"], [[8, 6, 24, 6, 24, 18, 8, 18]])
    out = tmp_path / "export"
    assert app.main(["--qdrant-path", str(tmp_path / "qdrant"), "export", "--collection", "y-objects",
                     "--format", "yolo", "--out", str(out)]) == 0
    (label_file,) = [p for p in out.rglob("a.txt") if p.parent.name == "train"]
    rows = label_file.read_text().splitlines()
    polygon_rows = [r.split() for r in rows if len(r.split()) > 5]
    assert len(polygon_rows) == 1 and polygon_rows[0][0] == "2"
    np.testing.assert_allclose([float(v) for v in polygon_rows[0][1:]], [0.1, 0.1, 0.3, 0.1, 0.3, 0.3, 0.1, 0.3])
    assert all(len(r.split()) == 5 for r in rows if not r.startswith("2 "))


def test_crop_mask_embeds_the_object_with_its_background_blanked(masks, mobilenet) -> None:
    from detection.geometry import crop_region
    from detection.masks import rasterise
    from indexer.objects import BLANK, model_input

    argv = ["--qdrant-path", str(masks["qdrant"])]
    assert app.main([*argv, "index", str(masks["root"]), "--labels", str(masks["coco"]), "--collection", "blank",
                     "--model", "mobilenet-v2", "--crop", "mask", "--no-analyze"]) == 0
    store = open_store(path=str(masks["qdrant"]))
    try:
        assert store.open("blank-objects").read_metadata()["crop"] == "mask"
        vectors = {r.id: r.vector for r in store.open("blank-objects").retrieve(
            [object_point_id("a.png", 5), object_point_id("b.png", 6)], with_vectors=True)}
        plain = {r.id: r.vector for r in store.open("m-objects").retrieve(
            [object_point_id("a.png", 5), object_point_id("b.png", 6)], with_vectors=True)}
    finally:
        store.close()
    image = np.asarray(Image.open(masks["root"] / "a.png").convert("RGB")).copy()
    raster = rasterise({"polygons": GOOD[5][3]}, *SIZE)
    image[~raster] = BLANK
    left, top, right, bottom = crop_region(tuple(GOOD[5][2]), *SIZE)
    expected = Image.fromarray(image).crop((left, top, right, bottom))
    reference = mobilenet.embed_batch([model_input(expected, mobilenet)])[0]
    bird = vectors[object_point_id("a.png", 5)]
    assert float(bird @ reference) > 0.9999, "the bird is embedded from its two triangles on the blank colour"
    assert float(bird @ plain[object_point_id("a.png", 5)]) < 0.99, "which is not its plain crop"
    # A box whose mask was dropped (broken) is embedded from its plain crop.
    assert float(vectors[object_point_id("b.png", 6)] @ plain[object_point_id("b.png", 6)]) > 0.9999


def test_the_crop_grid_shows_the_mask_outline(masks) -> None:
    from detection.crops import crop_thumbnail
    from ui.images import THUMB_SIZE, ImageServer

    store = open_store(path=str(masks["qdrant"]))
    try:
        objects = store.open("m-objects")
        server = ImageServer(objects)
        served = {i: np.asarray(Image.open(server.thumbnail(object_point_id(path, i))).convert("RGB"))
                  for path, i in (("a.png", 5), ("b.png", 6))}
    finally:
        store.close()
    path = masks["root"] / "a.png"
    outlined = np.asarray(crop_thumbnail(path, tuple(GOOD[5][2]), THUMB_SIZE, 0.1, mask={"polygons": GOOD[5][3]}))
    plain = np.asarray(crop_thumbnail(path, tuple(GOOD[5][2]), THUMB_SIZE, 0.1))
    np.testing.assert_array_equal(served[5], outlined)
    changed = (outlined != plain).any(axis=2)
    assert 0.02 < changed.mean() < 0.5 and (outlined[changed] == BOX_COLOUR).all()
    # A box without a mask (broken, dropped): its plain crop.
    np.testing.assert_array_equal(served[6], np.asarray(crop_thumbnail(masks["root"] / "b.png",
                                                                       tuple(BROKEN[6][2]), THUMB_SIZE, 0.1)))


def test_a_mask_drawn_near_its_box_is_the_mask_drawn_over_the_image() -> None:
    """rasterise_near (what analyze measures with) against rasterise (the whole image): the same
    pixels up to pycocotools' rounding, for polygons inside the image and across its edge."""
    from detection.masks import rasterise, rasterise_near

    rng = np.random.default_rng(0)
    differing = []
    for _ in range(200):
        centre = rng.uniform((0, 0), (640, 480))
        points = centre + rng.uniform(-80, 80, (int(rng.integers(3, 20)), 2))
        mask = {"polygons": [points.ravel().tolist()]}
        bbox = (*points.min(axis=0), *np.ptp(points, axis=0))
        part, (left, top) = rasterise_near(mask, 640, 480, bbox)
        placed = np.zeros((480, 640), bool)
        placed[top:top + part.shape[0], left:left + part.shape[1]] = part
        differing.append(int((placed != rasterise(mask, 640, 480)).sum()))
    assert max(differing) <= 2 and sum(d > 0 for d in differing) <= 2
    rle = rectangle_rle(50, 50, 30, 30)
    whole, origin = rasterise_near({"rle": rle["counts"], "size": rle["size"]}, 96, 96, (50, 50, 30, 30))
    assert origin == (0, 0) and whole.sum() == 900
