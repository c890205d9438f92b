"""Photos decoded at a reduced scale (libjpeg DCT scaling through Pillow's draft mode).

Real JPEG files written here: the reduced decode must give the same upright picture (EXIF
rotation included) as a full decode shrunk afterwards, the file's true width and height, and
image metrics close to those of the full decode.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from analysis.image_metrics import MAX_ANALYSIS_SIDE, image_metrics
from imaging.images import decode_image, reduction_factor
from indexer.pipeline import IndexOptions
from scoring.indexing import index_and_analyze
from store import open_store

ORIENTATION = 0x0112


def photo(width: int, height: int, seed: int = 0) -> Image.Image:
    """A photo-like picture: smooth colour gradients, a few discs and fine texture, so a
    wrong orientation, scale or colour conversion shows in pixel comparisons."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    rgb = np.stack([255 * x / width, 255 * y / height, 128 + 100 * np.sin(x / 37.0 + y / 53.0)], axis=-1)
    for _ in range(6):
        cx, cy, r = rng.uniform(0, width), rng.uniform(0, height), rng.uniform(20, 90)
        rgb[(x - cx) ** 2 + (y - cy) ** 2 < r * r] = rng.uniform(0, 255, 3)
    rgb += rng.normal(0, 6, rgb.shape)
    return Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), "RGB")


def save_jpeg(path: Path, image: Image.Image, orientation: int | None = None) -> Path:
    exif = Image.Exif()
    if orientation:
        exif[ORIENTATION] = orientation
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, "JPEG", quality=90, exif=exif.tobytes())
    return path


def shrunk(image: Image.Image, size: tuple[int, int]) -> np.ndarray:
    return np.asarray(image.resize(size, Image.BOX), np.float32)


@pytest.mark.parametrize(("size", "min_side", "analysis_side", "expected"), [
    ((640, 480), 224, MAX_ANALYSIS_SIDE, 2),    # 320x240: both sides still >= 224
    ((4000, 3000), 224, MAX_ANALYSIS_SIDE, 8),  # 500x375, what metrics shrink to anyway
    ((1920, 1080), 224, MAX_ANALYSIS_SIDE, 4),
    ((1024, 1024), 224, None, 4),               # 256x256 for the model alone
    ((1024, 1024), 224, MAX_ANALYSIS_SIDE, 2),  # metrics measure at 512x512: no coarser
    ((300, 300), 224, MAX_ANALYSIS_SIDE, 1),    # halving would go below the model's size
    ((5000, 200), 224, None, 1),                # the short side is already under 224
    ((640, 480), None, MAX_ANALYSIS_SIDE, 1),   # the caller needs the full picture
])
def test_reduction_factor_keeps_what_the_model_and_metrics_need(size, min_side, analysis_side, expected) -> None:
    assert reduction_factor(*size, min_side, analysis_side) == expected


def test_reduced_decode_is_the_same_picture_at_its_true_size(tmp_path: Path) -> None:
    original = photo(640, 480)
    path = save_jpeg(tmp_path / "photo.jpg", original)
    full = decode_image(path)
    reduced = decode_image(path, min_side=224, max_analysis_side=MAX_ANALYSIS_SIDE)
    assert (full.width, full.height, full.reduced_by) == (640, 480, 1) and full.image.size == (640, 480)
    assert (reduced.width, reduced.height, reduced.reduced_by) == (640, 480, 2)
    assert reduced.image.size == (320, 240) and reduced.image.mode == "RGB"
    assert reduced.sha1 == full.sha1
    # libjpeg's scaled IDCT is close to averaging the full decode over 2x2 boxes.
    difference = np.abs(np.asarray(reduced.image, np.float32) - shrunk(full.image, (320, 240)))
    assert difference.mean() < 3.0, difference.mean()
    # Not the same as decoding at full size: the picture really is 4x smaller in memory.
    assert np.asarray(reduced.image).nbytes * 4 == np.asarray(full.image).nbytes


@pytest.mark.parametrize(("orientation", "turn"), [
    (3, lambda a: np.rot90(a, 2)),           # upside down
    (6, lambda a: np.rot90(a, -1)),          # rotate 90 clockwise to display
    (8, lambda a: np.rot90(a, 1)),           # rotate 90 anticlockwise
    (5, lambda a: np.rot90(a, 1)[::-1]),     # transpose
])
def test_exif_rotation_applies_to_the_reduced_decode(tmp_path: Path, orientation: int, turn) -> None:
    stored = photo(640, 480, seed=orientation)
    path = save_jpeg(tmp_path / f"o{orientation}.jpg", stored, orientation)
    reduced = decode_image(path, min_side=224, max_analysis_side=MAX_ANALYSIS_SIDE)
    quarter_turn = orientation in (5, 6, 7, 8)
    assert (reduced.width, reduced.height) == ((480, 640) if quarter_turn else (640, 480))
    assert reduced.image.size == ((240, 320) if quarter_turn else (320, 240))
    expected = turn(shrunk(stored, (320, 240)))
    actual = np.asarray(reduced.image, np.float32)
    assert actual.shape == expected.shape
    assert np.abs(actual - expected).mean() < 3.0
    # ... and a wrong turn would be far off: the picture is not symmetric.
    assert np.abs(actual - np.rot90(expected, 2)).mean() > 20


def test_metrics_from_the_reduced_decode_match_the_full_decode(tmp_path: Path) -> None:
    path = save_jpeg(tmp_path / "photo.jpg", photo(1024, 768, seed=3), orientation=6)
    full = decode_image(path)
    reduced = decode_image(path, min_side=224, max_analysis_side=MAX_ANALYSIS_SIDE)
    assert reduced.reduced_by == 2  # the metrics shrink 1024 px by 2 themselves
    want = image_metrics(np.asarray(full.image))
    got = image_metrics(np.asarray(reduced.image), (reduced.width, reduced.height))
    assert got["area"] == want["area"] == 1024 * 768
    assert got["aspect_ratio"] == want["aspect_ratio"] == 768 / 1024
    for name in ("brightness", "contrast"):
        assert got[name] == pytest.approx(want[name], abs=0.005), name
    assert got["colourfulness"] == pytest.approx(want["colourfulness"], rel=0.02)
    assert got["sharpness"] == pytest.approx(want["sharpness"], rel=0.25)
    # Without the true size, the metrics would describe the smaller decode.
    assert image_metrics(np.asarray(reduced.image))["area"] == 512 * 384


@pytest.mark.parametrize("mode", ["L", "CMYK"])
def test_grey_and_cmyk_jpegs_reduce_to_rgb(tmp_path: Path, mode: str) -> None:
    path = tmp_path / f"{mode}.jpg"
    photo(640, 480).convert(mode).save(path, "JPEG", quality=90)
    full = decode_image(path)
    reduced = decode_image(path, min_side=224, max_analysis_side=MAX_ANALYSIS_SIDE)
    assert reduced.image.mode == "RGB" and reduced.image.size == (320, 240) and reduced.reduced_by == 2
    assert (reduced.width, reduced.height) == (640, 480)
    assert np.abs(np.asarray(reduced.image, np.float32) - shrunk(full.image, (320, 240))).mean() < 3.0


def test_only_jpeg_is_reduced(tmp_path: Path) -> None:
    path = tmp_path / "photo.png"
    photo(640, 480).save(path)
    decoded = decode_image(path, min_side=224, max_analysis_side=MAX_ANALYSIS_SIDE)
    assert (decoded.width, decoded.height, decoded.reduced_by) == (640, 480, 1)
    assert decoded.image.size == (640, 480)


def test_indexing_photos_stores_their_true_size(tmp_path: Path, mobilenet) -> None:
    images = tmp_path / "images"
    save_jpeg(images / "a" / "wide.jpg", photo(640, 480, seed=1))
    save_jpeg(images / "a" / "turned.jpg", photo(640, 480, seed=2), orientation=6)
    save_jpeg(images / "b" / "small.jpg", photo(200, 150, seed=3))
    store = open_store(path=str(tmp_path / "qdrant"))
    try:
        report = index_and_analyze(images, store, IndexOptions("photos", "mobilenet-v2", progress=False, analyze=False),
                               embedder=mobilenet)
        assert report.embedded == 3 and not report.skipped
        payloads = {r.payload["path"]: r.payload for batch in store.open("photos").scroll(None) for r in batch}
    finally:
        store.close()
    assert (payloads["a/wide.jpg"]["width"], payloads["a/wide.jpg"]["height"]) == (640, 480)
    assert (payloads["a/turned.jpg"]["width"], payloads["a/turned.jpg"]["height"]) == (480, 640)
    assert (payloads["b/small.jpg"]["width"], payloads["b/small.jpg"]["height"]) == (200, 150)
    assert payloads["a/turned.jpg"]["area"] == 640 * 480 and payloads["a/turned.jpg"]["aspect_ratio"] == 0.75
