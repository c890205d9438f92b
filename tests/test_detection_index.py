"""Indexing boxes end to end: real files, the real embedded Qdrant engine, real mobilenet-v2.

An index run over labels with boxes builds the image collection and NAME-objects (one point
per good box: the right payload, the embedding of the right crop, linked both ways), decodes
each image once, reports skipped and clipped boxes, keeps ids and tags across re-indexing and
re-embeds only boxes whose image or coordinates changed."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import indexer.pipeline as pipeline
from detection.boxes import (
    box_of, boxes_of_image, boxes_of_images, crop_margin, images_of_objects, is_object_collection, objects_of_images,
    partner_name,
)
from detection.crops import HIGHLIGHT_COLOUR, crop_thumbnail, cut_crop, draw_boxes
from detection.geometry import CONTEXT_MARGIN, crop_region
from detection_fixtures import COCO_GOOD, COCO_SIZES, CORRUPT_BOX_ID, OUTSIDE_ID, make_coco, make_yolo, scene
from indexer.objects import model_input, object_point_id
from indexer.pipeline import REPORT_FILE, IndexOptions
from scoring.indexing import index_and_analyze
from store import open_store, point_id
from store.schema import DUPLICATE_BOX_FLAG

CLIPPED = {4: [70.0, 50.0, 10.0, 10.0]}


def index(root: Path, labels: Path, qdrant: Path, embedder, collection: str = "c", **options):
    store = open_store(path=str(qdrant))
    try:
        return index_and_analyze(root, store, IndexOptions(collection, "mobilenet-v2", labels_file=labels, batch_size=4,
                                                       progress=False, **options), embedder)
    finally:
        store.close()


def points(qdrant: Path, collection: str, vectors: bool = False) -> dict[str, dict]:
    store = open_store(path=str(qdrant))
    try:
        return {r.id: {**r.payload, **({"vector": r.vector} if vectors else {})}
                for batch in store.open(collection).scroll(None, with_vectors=vectors) for r in batch}
    finally:
        store.close()


def expected_bbox(annotation_id: int) -> list[float]:
    return CLIPPED.get(annotation_id, [float(v) for v in COCO_GOOD[annotation_id][2]])


@pytest.fixture(scope="module")
def coco_indexed(tmp_path_factory: pytest.TempPathFactory, mobilenet) -> dict:
    """The COCO fixture indexed once (tests that change it index their own copy)."""
    base = tmp_path_factory.mktemp("coco-indexed")
    root, coco = make_coco(base)
    report = index(root, coco, base / "qdrant", mobilenet)
    return {"base": base, "root": root, "coco": coco, "qdrant": base / "qdrant", "report": report}


def test_one_point_per_good_box_with_its_payload(coco_indexed) -> None:
    objects = points(coco_indexed["qdrant"], "c-objects")
    assert set(objects) == {object_point_id(p, i) for i, (p, _, _) in COCO_GOOD.items()}
    for annotation_id, (path, label, _) in COCO_GOOD.items():
        payload = objects[object_point_id(path, annotation_id)]
        bbox = expected_bbox(annotation_id)
        assert (payload["path"], payload["label"], payload["annotation_id"]) == (path, label, annotation_id)
        assert payload["image_id"] == point_id(path) and payload["bbox"] == bbox and payload["tags"] == []
        assert (payload["image_width"], payload["image_height"]) == COCO_SIZES[path]
        assert payload["area"] == pytest.approx(bbox[2] * bbox[3])
        assert payload["aspect_ratio"] == pytest.approx(bbox[2] / bbox[3])
        assert isinstance(payload["x"], float) and isinstance(payload["y"], float)
        for metric in ("brightness", "contrast", "sharpness", "colourfulness", "mislabel_score", "outlier_score"):
            assert isinstance(payload[metric], float), metric
    images = points(coco_indexed["qdrant"], "c")
    assert {p["path"] for p in images.values()} == set(COCO_SIZES)  # corrupt.png skipped
    assert {p["image_id"] for p in objects.values()} <= set(images)


def test_box_metrics_are_of_the_pixels_inside_the_box(coco_indexed) -> None:
    payload = points(coco_indexed["qdrant"], "c-objects")[object_point_id("b.png", 20)]
    with Image.open(coco_indexed["root"] / "b.png") as image:
        inside = np.asarray(image.convert("RGB"))[10:30, 10:30]
    from analysis.image_metrics import image_metrics

    assert payload["brightness"] == pytest.approx(image_metrics(inside)["brightness"], rel=1e-5)


def test_collections_name_each_other(coco_indexed) -> None:
    store = open_store(path=str(coco_indexed["qdrant"]))
    try:
        images, objects = store.open("c"), store.open("c-objects")
        assert is_object_collection(objects) and not is_object_collection(images)
        assert partner_name(images) == "c-objects" and partner_name(objects) == "c"
        assert objects.read_metadata()["categories"] == [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"},
                                                         {"id": 5, "name": "bird"}]
        assert "image_id" in objects.indexed_fields()
        assert crop_margin(objects) == CONTEXT_MARGIN
        box = box_of(objects, object_point_id("a.png", 4))
        assert (box.image_id, box.label, box.bbox) == (point_id("a.png"), "cat", (70.0, 50.0, 10.0, 10.0))
        assert box_of(objects, object_point_id("a.png", 404)) is None
    finally:
        store.close()


def test_skipped_and_clipped_boxes_are_reported(coco_indexed) -> None:
    report = coco_indexed["report"].objects
    skipped = {int(s["annotation_id"]): s for s in report.skipped}
    assert set(skipped) == {OUTSIDE_ID, CORRUPT_BOX_ID}
    assert "outside the 80x60 image" in skipped[OUTSIDE_ID]["reason"]
    assert skipped[CORRUPT_BOX_ID]["path"] == "corrupt.png" and "image not usable" in skipped[CORRUPT_BOX_ID]["reason"]
    assert report.clipped == ["instances.json annotation 4: box [70, 50, 20, 20] reaches outside the 80x60 image; "
                              "clipped to [70, 50, 10, 10]"]
    assert (report.found, report.embedded, report.total_points) == (10, 8, 8)
    saved = json.loads((coco_indexed["qdrant"] / "c" / REPORT_FILE).read_text())
    assert saved["objects"]["embedded"] == 8 and saved["objects_per_second"] > 0
    beside_objects = json.loads((coco_indexed["qdrant"] / "c-objects" / REPORT_FILE).read_text())
    assert beside_objects["objects"] == saved["objects"] and beside_objects["summary"] == saved["summary"]
    assert any("category_id 9" in p for p in saved["problems"])


def test_duplicate_boxes_are_flagged(coco_indexed) -> None:
    objects = points(coco_indexed["qdrant"], "c-objects")
    groups = {p["annotation_id"]: p["duplicate_box_group"] for p in objects.values()}
    assert groups[2] == groups[3] >= 0  # the dog drawn again as a bird, IoU 0.88
    assert all(g == -1 for i, g in groups.items() if i not in (2, 3))
    for payload in objects.values():
        assert (DUPLICATE_BOX_FLAG in payload["quality_flags"]) == (payload["annotation_id"] in (2, 3))
    assert objects[object_point_id("a.png", 2)]["max_box_iou"] == pytest.approx(29 * 39 / (2 * 1200 - 29 * 39))


def test_a_box_vector_is_the_embedding_of_its_crop_exif_rotation_applied(tmp_path: Path, mobilenet) -> None:
    upright = scene((40, 64), [("cat", (4, 30, 14, 20)), ("dog", (22, 6, 16, 10))], seed=9)
    root = tmp_path / "images"
    root.mkdir()
    exif = Image.Exif()
    exif[0x0112] = 6  # stored turned; viewers rotate it 90 degrees clockwise
    upright.transpose(Image.Transpose.ROTATE_90).save(root / "turned.png", exif=exif)
    assert Image.open(root / "turned.png").size == (64, 40)
    coco = tmp_path / "boxes.json"
    coco.write_text(json.dumps({"images": [{"id": 1, "file_name": "turned.png", "width": 40, "height": 64}],
                                "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}],
                                "annotations": [{"id": 7, "image_id": 1, "category_id": 1, "bbox": [4, 30, 14, 20]},
                                                {"id": 8, "image_id": 1, "category_id": 2, "bbox": [22, 6, 16, 10]}]}))
    index(root, coco, tmp_path / "qdrant", mobilenet)
    objects = points(tmp_path / "qdrant", "c-objects", vectors=True)
    # 10 % of 14 x 20 is 1.4 x 2 a side, rounded outward; 10 % of 16 x 10 reaches the right edge
    for annotation_id, bbox, region in ((7, (4, 30, 14, 20), (2, 28, 20, 52)), (8, (22, 6, 16, 10), (20, 5, 40, 17))):
        assert crop_region(bbox, 40, 64) == region
        expected = upright.crop(region)
        # the crop the thumbnail shows is exactly those upright pixels ...
        shown = crop_thumbnail(root / "turned.png", bbox, size=500, enlarge=False)
        assert np.array_equal(np.asarray(shown), np.asarray(expected))
        # ... and the box's vector is the embedding of that crop
        vector = objects[object_point_id("turned.png", annotation_id)]["vector"]
        reference = mobilenet.embed_batch([model_input(expected, mobilenet)])[0]
        assert float(vector @ reference) > 0.9999
    # the box itself (margin 0) is all the class colour: the crop is the right place, not mirrored
    inside = np.asarray(cut_crop(upright, (4, 30, 14, 20), (40, 64), margin=0.0))
    assert (inside[1::3, 1::3] == (230, 40, 40)).all()


def test_crop_margin_is_ten_percent_per_side_clipped_to_the_image() -> None:
    assert CONTEXT_MARGIN == 0.10
    assert crop_region((20, 30, 40, 10), 100, 100) == (16, 29, 64, 41)
    assert crop_region((0, 0, 40, 10), 100, 100) == (0, 0, 44, 11)          # clipped at the top-left
    assert crop_region((90, 95, 10, 5), 100, 100) == (89, 94, 100, 100)      # and at the bottom-right
    assert crop_region((10.4, 10.6, 0.2, 0.2), 100, 100) == (10, 10, 11, 11)  # never empty


def test_each_image_is_decoded_once_for_itself_and_its_boxes(tmp_path: Path, mobilenet,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    root, coco = make_coco(tmp_path)
    decoded: list[str] = []
    real = pipeline.decode_image

    def counting(path, data=None, *scale):
        decoded.append(Path(path).name)
        return real(path, data, *scale)

    monkeypatch.setattr(pipeline, "decode_image", counting)
    report = index(root, coco, tmp_path / "qdrant", mobilenet)
    assert sorted(decoded) == sorted(["a.png", "b.png", "c.png", "corrupt.png"])
    assert report.embedded == 3 and report.objects.embedded == 8
    decoded.clear()
    report = index(root, coco, tmp_path / "qdrant", mobilenet)
    # nothing changed: only the file that could not be decoded is tried again (as for images)
    assert decoded == ["corrupt.png"] and report.objects.embedded == 0 and report.objects.unchanged == 8
    assert {int(s["annotation_id"]) for s in report.objects.skipped} == {OUTSIDE_ID, CORRUPT_BOX_ID}


def test_reindex_keeps_ids_and_tags_and_embeds_only_changed_boxes(tmp_path: Path, mobilenet) -> None:
    root, coco = make_coco(tmp_path)
    qdrant = tmp_path / "qdrant"
    index(root, coco, qdrant, mobilenet)
    before = points(qdrant, "c-objects", vectors=True)
    store = open_store(path=str(qdrant))
    try:
        objects = store.open("c-objects")
        objects.add_tag([object_point_id("b.png", 20), object_point_id("b.png", 21)], "checked")
        objects.relabel([object_point_id("a.png", 1)], "bird")  # a user's relabel
    finally:
        store.close()
    document = json.loads(coco.read_text())
    for annotation in document["annotations"]:
        if isinstance(annotation, dict) and annotation.get("id") == 20:
            annotation["category_id"] = 2                   # relabelled in the source: no re-embedding
        if isinstance(annotation, dict) and annotation.get("id") == 21:
            annotation["bbox"] = [28, 28, 30, 30]           # moved: re-embedded
    document["annotations"] = [a for a in document["annotations"] if not (isinstance(a, dict) and a.get("id") == 31)]
    coco.write_text(json.dumps(document))
    (root / "sub" / "c.png").unlink()                       # its other box goes with it
    report = index(root, coco, qdrant, mobilenet)
    after = points(qdrant, "c-objects", vectors=True)
    assert set(after) == set(before) - {object_point_id("sub/c.png", 30), object_point_id("sub/c.png", 31)}
    assert report.objects.embedded == 1 and report.objects.removed == 2 and report.objects.relabelled == 1
    moved, relabelled = after[object_point_id("b.png", 21)], after[object_point_id("b.png", 20)]
    assert moved["bbox"] == [28.0, 28.0, 30.0, 30.0] and moved["tags"] == ["checked"]
    assert float(moved["vector"] @ before[object_point_id("b.png", 21)]["vector"]) < 0.9999
    assert relabelled["label"] == "dog" and relabelled["tags"] == ["checked"]
    assert np.array_equal(relabelled["vector"], before[object_point_id("b.png", 20)]["vector"])
    user = after[object_point_id("a.png", 1)]
    assert (user["label"], user["original_label"]) == ("bird", "cat")


def test_yolo_index_end_to_end(tmp_path: Path, mobilenet) -> None:
    root, data_yaml = make_yolo(tmp_path)
    report = index(root, data_yaml, tmp_path / "qdrant", mobilenet, collection="y")
    objects = points(tmp_path / "qdrant", "y-objects")
    boxes = {(p["path"], p["annotation_id"]): (p["label"], p["bbox"], p["split"]) for p in objects.values()}
    assert boxes[("images/train/a.png", 8)] == ("dog", pytest.approx([68, 24, 12, 12]), "train")
    assert boxes[("images/val/b.png", 1)] == ("dog", pytest.approx([10, 10, 20, 20]), "val")
    assert len(boxes) == 5
    assert [s["annotation_id"] for s in report.objects.skipped] == ["9"]
    assert report.objects.clipped[0].startswith("labels/train/a.txt:8: box")
    assert any(p.startswith("labels/train/a.txt:4: class 7") for p in report.problems)


def test_no_object_collection_without_boxes_or_when_asked(tmp_path: Path, mobilenet) -> None:
    root, coco = make_coco(tmp_path)
    index(root, coco, tmp_path / "qdrant", mobilenet, objects=False)
    store = open_store(path=str(tmp_path / "qdrant"))
    try:
        assert store.list_collections() == ["c"]
    finally:
        store.close()


def test_name_taken_by_another_collection_is_a_clear_error(tmp_path: Path, mobilenet) -> None:
    from indexer.sources import SourceError

    root, coco = make_coco(tmp_path)
    index(root, coco, tmp_path / "qdrant", mobilenet, collection="c-objects", objects=False)
    with pytest.raises(SourceError, match="is not the object collection of 'c'"):
        index(root, coco, tmp_path / "qdrant", mobilenet)


def test_boxes_of_images_and_images_of_boxes(coco_indexed) -> None:
    store = open_store(path=str(coco_indexed["qdrant"]))
    try:
        objects = store.open("c-objects")
        boxes = boxes_of_image(objects, point_id("a.png"))
        assert [(b.annotation_id, b.label, list(b.bbox)) for b in boxes] == [
            (i, COCO_GOOD[i][1], expected_bbox(i)) for i in (1, 2, 3, 4)]
        assert boxes_of_images(objects, [point_id("b.png"), "no-such-image"])["no-such-image"] == []
        chosen = [object_point_id("b.png", 21), object_point_id("a.png", 3), object_point_id("b.png", 20)]
        assert images_of_objects(objects, chosen) == [point_id("b.png"), point_id("a.png")]
        assert sorted(objects_of_images(objects, [point_id("b.png"), point_id("sub/c.png")])) == sorted(
            object_point_id(p, i) for i, (p, _, _) in COCO_GOOD.items() if p in ("b.png", "sub/c.png"))
    finally:
        store.close()
    drawn = np.asarray(draw_boxes(coco_indexed["root"] / "a.png", boxes, highlight=boxes[0].point_id))
    assert drawn.shape == (60, 80, 3)
    x, y, w, h = (int(v) for v in boxes[0].bbox)
    assert tuple(drawn[y + h // 2, x]) == HIGHLIGHT_COLOUR  # the chosen box's left edge


def test_a_copy_of_the_dataset_elsewhere_is_another_collection(coco_indexed, tmp_path: Path, mobilenet) -> None:
    """Object ids depend on the dataset-relative path only, so an exported subset re-indexed
    from another folder gets the same ids (export/test_detection_export.py relies on this)."""
    copy = tmp_path / "copy"
    shutil.copytree(coco_indexed["root"], copy)
    index(copy, coco_indexed["coco"], tmp_path / "qdrant", mobilenet, collection="d")
    assert set(points(tmp_path / "qdrant", "d-objects")) == set(points(coco_indexed["qdrant"], "c-objects"))


def test_another_crop_margin_re_embeds_every_box(tmp_path: Path, mobilenet) -> None:
    root, coco = make_coco(tmp_path)
    index(root, coco, tmp_path / "qdrant", mobilenet)
    before = points(tmp_path / "qdrant", "c-objects", vectors=True)
    report = index(root, coco, tmp_path / "qdrant", mobilenet, crop_margin=0.0)
    after = points(tmp_path / "qdrant", "c-objects", vectors=True)
    assert report.objects.embedded == 8 and report.embedded == 0  # the images are unchanged
    assert all(float(after[i]["vector"] @ before[i]["vector"]) < 0.9999 for i in after)
    store = open_store(path=str(tmp_path / "qdrant"))
    try:
        assert crop_margin(store.open("c-objects")) == 0.0
    finally:
        store.close()


def test_analyze_adds_missing_box_metrics_from_the_box_pixels(tmp_path: Path, mobilenet) -> None:
    from analysis.image_metrics import image_metrics
    from scoring.analyze import analyze_collection

    root, coco = make_coco(tmp_path)
    index(root, coco, tmp_path / "qdrant", mobilenet, image_metrics=False)
    assert "brightness" not in points(tmp_path / "qdrant", "c-objects")[object_point_id("b.png", 20)]
    store = open_store(path=str(tmp_path / "qdrant"))
    try:
        summary = analyze_collection(store.open("c-objects"))
    finally:
        store.close()
    assert summary.metrics_added == 8 and summary.duplicate_boxes == 2
    payload = points(tmp_path / "qdrant", "c-objects")[object_point_id("b.png", 20)]
    with Image.open(root / "b.png") as image:
        inside = np.asarray(image.convert("RGB"))[10:30, 10:30]
    assert payload["brightness"] == pytest.approx(image_metrics(inside)["brightness"], rel=1e-5)
    assert payload["area"] == 400.0  # the box's, not the crop's


def test_a_photo_with_boxes_decodes_at_full_scale_and_one_without_at_a_reduced_one(tmp_path: Path, mobilenet,
                                                                                   monkeypatch: pytest.MonkeyPatch
                                                                                   ) -> None:
    # JPEG draft decoding (reduced scale) suits the model's input, but box crops are cut from
    # the full-size pixels in the boxes' own coordinates.
    root = tmp_path / "images"
    root.mkdir()
    pixels = np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8)
    for name in ("boxed.jpg", "plain.jpg"):
        Image.fromarray(pixels).save(root / name, quality=90)
    coco = tmp_path / "instances.json"
    coco.write_text(json.dumps({
        "images": [{"id": 1, "file_name": "boxed.jpg", "width": 640, "height": 480},
                   {"id": 2, "file_name": "plain.jpg", "width": 640, "height": 480}],
        "annotations": [{"id": 7, "image_id": 1, "category_id": 1, "bbox": [400, 300, 200, 150]}],
        "categories": [{"id": 1, "name": "thing"}]}))
    seen: dict[str, int] = {}
    real = pipeline.decode_image

    def recording(path, data=None, *scale):
        decoded = real(path, data, *scale)
        seen[Path(path).name] = decoded.reduced_by
        return decoded

    monkeypatch.setattr(pipeline, "decode_image", recording)
    index(root, coco, tmp_path / "qdrant", mobilenet)
    assert seen == {"boxed.jpg": 1, "plain.jpg": 2}
    payload = points(tmp_path / "qdrant", "c")[point_id("plain.jpg")]
    assert (payload["width"], payload["height"]) == (640, 480)
    box = next(iter(points(tmp_path / "qdrant", "c-objects").values()))
    assert box["bbox"] == [400.0, 300.0, 200.0, 150.0]
