"""Per-image metrics on constructed images, and uniqueness from a hand-made graph."""
from __future__ import annotations

import numpy as np
import pytest

from analysis.image_metrics import METRIC_FIELDS, downscale, image_metrics, uniqueness
from analysis.knn import KnnGraph


def solid(rgb: tuple[int, int, int], height: int = 64, width: int = 64) -> np.ndarray:
    return np.broadcast_to(np.array(rgb, np.uint8), (height, width, 3)).copy()


def checkerboard(size: int = 64, cell: int = 1) -> np.ndarray:
    y, x = np.indices((size, size))
    grey = (((y // cell) + (x // cell)) % 2 * 255).astype(np.uint8)
    return np.repeat(grey[:, :, None], 3, axis=2)


def box_blur(image: np.ndarray, radius: int = 2) -> np.ndarray:
    padded = np.pad(image.astype(np.float32), ((radius, radius), (radius, radius), (0, 0)), mode="edge")
    size = 2 * radius + 1
    out = sum(padded[dy:dy + image.shape[0], dx:dx + image.shape[1]] for dy in range(size) for dx in range(size))
    return (out / size**2).round().astype(np.uint8)


def test_black_image() -> None:
    metrics = image_metrics(solid((0, 0, 0)))
    assert list(metrics) == list(METRIC_FIELDS)
    assert metrics["brightness"] == 0.0
    assert metrics["contrast"] == 0.0
    assert metrics["sharpness"] == 0.0
    assert metrics["colourfulness"] == 0.0


def test_white_image() -> None:
    metrics = image_metrics(solid((255, 255, 255)))
    assert metrics["brightness"] == pytest.approx(1.0, abs=1e-6)
    assert metrics["contrast"] == pytest.approx(0.0, abs=1e-6)
    assert metrics["colourfulness"] == pytest.approx(0.0, abs=1e-4)


def test_half_black_half_white_contrast() -> None:
    image = solid((0, 0, 0))
    image[:, 32:] = 255
    metrics = image_metrics(image)
    assert metrics["brightness"] == pytest.approx(0.5, abs=1e-6)
    assert metrics["contrast"] == pytest.approx(0.5, abs=1e-6)


def test_sharp_checkerboard_beats_blurred_one() -> None:
    sharp = image_metrics(checkerboard(cell=4))["sharpness"]
    blurred = image_metrics(box_blur(checkerboard(cell=4)))["sharpness"]
    assert sharp > 5 * blurred > 0
    # a 1-pixel checkerboard: every interior Laplacian is +-4 * 255, so the variance is (4 * 255)^2
    assert image_metrics(checkerboard(cell=1))["sharpness"] == pytest.approx((4 * 255) ** 2, rel=1e-4)


def test_wide_image_shape_metrics() -> None:
    metrics = image_metrics(solid((10, 20, 30), height=50, width=200))
    assert metrics["aspect_ratio"] == 4.0
    assert metrics["area"] == 10_000.0


def test_grey_vs_saturated_colourfulness() -> None:
    grey = image_metrics(solid((128, 128, 128)))["colourfulness"]
    red = image_metrics(solid((255, 0, 0)))["colourfulness"]
    rng = np.random.default_rng(0)
    confetti = image_metrics(rng.choice([0, 255], size=(64, 64, 3)).astype(np.uint8))["colourfulness"]
    assert grey == pytest.approx(0.0, abs=1e-4)
    # constant red: rg = 255, yb = 127.5, no spread -> 0.3 * hypot(255, 127.5)
    assert red == pytest.approx(0.3 * np.hypot(255, 127.5), rel=1e-5)
    assert confetti > red


def test_large_image_is_measured_on_a_box_averaged_copy() -> None:
    big = np.zeros((1500, 2048, 3), np.uint8)
    big[:, 1024:] = 200
    metrics = image_metrics(big)
    assert metrics["area"] == 1500 * 2048 and metrics["aspect_ratio"] == pytest.approx(2048 / 1500)
    assert metrics["brightness"] == pytest.approx(100 / 255, abs=1e-3)
    assert downscale(big).shape == (375, 512, 3)
    # pixel-level noise averages away in the 4x4 boxes instead of aliasing into the result
    assert image_metrics(checkerboard(size=1024, cell=1))["sharpness"] == pytest.approx(0.0, abs=1e-6)


def test_grey_2d_input_equals_rgb() -> None:
    grey = np.random.default_rng(1).integers(0, 256, (40, 30), dtype=np.uint8)
    assert image_metrics(grey) == pytest.approx(image_metrics(np.repeat(grey[:, :, None], 3, axis=2)))


def test_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError):
        image_metrics(np.zeros((4, 4, 2), np.uint8))
    with pytest.raises(ValueError):
        image_metrics(np.zeros((0, 4, 3), np.uint8))


def test_uniqueness_is_distance_to_nearest_neighbour() -> None:
    graph = KnnGraph(np.array(["a", "b", "c"]), np.array([[1, 2], [0, 2], [1, 0]], np.int32),
                     np.array([[1.0, 0.2], [0.6, 0.5], [0.5, 0.2]], np.float32))
    assert uniqueness(graph) == pytest.approx([0.0, 0.4, 0.5], abs=1e-6)


@pytest.mark.parametrize("shape", [(1500, 2048, 3), (1081, 1921, 3), (2000, 3, 3), (700, 513, 3)])
def test_downscale_is_the_exact_mean_of_whole_boxes(shape: tuple[int, int, int]) -> None:
    rgb = np.random.default_rng(sum(shape)).integers(0, 256, shape, dtype=np.uint8)
    factor = -(-max(shape[:2]) // 512)
    fy, fx = min(factor, shape[0]), min(factor, shape[1])
    h, w = shape[0] // fy, shape[1] // fx
    boxes = rgb[: h * fy, : w * fx].astype(np.float64).reshape(h, fy, w, fx, 3).mean(axis=(1, 3))
    small = downscale(rgb)
    assert small.dtype == np.float32 and small.shape == (h, w, 3)
    assert np.array_equal(small, boxes.astype(np.float32))


def test_metrics_of_a_shrunk_picture_are_those_of_its_box_average() -> None:
    rgb = np.random.default_rng(7).integers(0, 256, (1200, 1600, 3), dtype=np.uint8)
    small = np.rint(downscale(rgb)).astype(np.uint8)  # 400x533 -> what the metrics measure, rounded
    got, want = image_metrics(rgb), image_metrics(small, (1600, 1200))
    for name in ("brightness", "contrast", "colourfulness"):
        assert got[name] == pytest.approx(want[name], rel=1e-2), name
    assert got["area"] == want["area"] == 1600 * 1200
