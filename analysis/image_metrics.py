"""Cheap per-image quality metrics, computed on every image at indexing time, and uniqueness.

`image_metrics` takes the decoded RGB image (before any resize for the model). Luma is
Rec. 601 (0.299 R + 0.587 G + 0.114 B). Images whose longer side exceeds
`MAX_ANALYSIS_SIDE` (512 px) are first shrunk by an integer factor with box averaging, and the
brightness, contrast, sharpness and colourfulness are measured on that copy: this bounds the
cost per image (a 12-megapixel photo costs about as much as a 0.25-megapixel one), and it makes
the sharpness comparable across resolutions. `aspect_ratio` and `area` always describe the
original image: pass its `size` when `rgb` is a reduced decode of it.

- brightness: mean luma, 0 (black) .. 1 (white)
- contrast: standard deviation of luma, 0 .. 0.5
- sharpness: variance of the 4-neighbour Laplacian of luma on the 0..255 scale (the usual
  "variance of Laplacian" focus measure; blurry images score low)
- colourfulness: Hasler & Süsstrunk (2003), on the 0..255 scale: sigma_rgyb + 0.3 * mu_rgyb
  with rg = R - G, yb = (R + G) / 2 - B (0 for grey images; about 110+ is "extremely colourful")
- aspect_ratio: width / height; area: width * height, in pixels
- red, green, blue: the mean of each channel, 0..1 (a box: of the pixels inside it), as
  Encord Active's per-channel colour metrics, to find tinted or washed-out images and objects
"""
from __future__ import annotations

import numpy as np

from analysis.knn import KnnGraph
from store.schema import (
    AREA, ASPECT_RATIO, BLUE, BRIGHTNESS, COLOURFULNESS, CONTRAST, GREEN, METRIC_FIELDS, RED, SHARPNESS,
)

__all__ = ["METRIC_FIELDS", "colourfulness", "downscale", "image_metrics", "laplacian_variance", "shrink_factor",
           "uniqueness"]
MAX_ANALYSIS_SIDE = 512
LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def image_metrics(rgb: np.ndarray, size: tuple[int, int] | None = None) -> dict[str, float]:
    """The METRIC_FIELDS of one uint8 RGB image (H, W, 3); a grey (H, W) image is accepted too.
    `size`: the original (width, height) when `rgb` was decoded smaller than the file."""
    rgb = _as_rgb(rgb)
    if rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise ValueError("image_metrics needs a non-empty image")
    width, height = size or (rgb.shape[1], rgb.shape[0])
    planes = _float_planes(rgb, MAX_ANALYSIS_SIDE)
    luma = (LUMA_WEIGHTS @ planes.reshape(3, -1)).reshape(planes.shape[1:])  # float32, 0..255
    mean, variance = _mean_and_variance(luma)
    return {
        BRIGHTNESS: mean / 255.0,
        CONTRAST: float(np.sqrt(variance) / 255.0),
        SHARPNESS: laplacian_variance(luma),
        COLOURFULNESS: _colourfulness(*planes),
        ASPECT_RATIO: float(width / height),
        AREA: float(width * height),
        **{name: float(plane.mean(dtype=np.float64)) / 255.0 for name, plane in zip((RED, GREEN, BLUE), planes)},
    }


def _as_rgb(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise ValueError(f"expected an (H, W, 3) RGB image, got shape {image.shape}")
    return image[:, :, :3]


def _float_planes(rgb: np.ndarray, max_side: int) -> np.ndarray:
    """float32 (3, H, W): the red, green and blue planes of `downscale(rgb, max_side)`, each
    contiguous (the statistics below run on whole planes, not on every third value). A picture
    that needs no shrinking is cast and split in one pass, without the (H, W, 3) float copy."""
    if shrink_factor(*rgb.shape[:2], max_side) > 1:
        return np.ascontiguousarray(downscale(rgb, max_side).transpose(2, 0, 1))
    planes = np.empty((3, *rgb.shape[:2]), np.float32)
    np.copyto(planes, rgb.transpose(2, 0, 1), casting="unsafe")
    return planes


def _mean_and_variance(values: np.ndarray) -> tuple[float, float]:
    """Mean and (population) variance of a float32 array: the deviations from the mean are
    squared and summed by one dot product instead of numpy's var (mean, subtract, square, sum)."""
    flat = values.reshape(-1)
    mean = flat.mean(dtype=np.float32)
    deviations = flat - mean
    return float(mean), float(np.dot(deviations, deviations)) / flat.size


def shrink_factor(height: int, width: int, max_side: int = MAX_ANALYSIS_SIDE) -> int:
    """The integer factor `downscale` shrinks a picture of this size by (1: not at all)."""
    return -(-max(height, width) // max_side)  # ceiling division


def downscale(rgb: np.ndarray, max_side: int = MAX_ANALYSIS_SIDE) -> np.ndarray:
    """float32 copy of `rgb`, box-averaged by the smallest integer factor that brings the longer
    side to <= max_side (edge rows/columns that do not fill a whole box are dropped).

    The boxes are summed on integers (exact) in two passes, rows then columns, each as `factor`
    whole-array additions of every factor-th row (column): numpy's sum over a short axis of a
    reshaped view runs about 5x slower."""
    height, width, channels = rgb.shape
    factor = shrink_factor(height, width, max_side)
    if factor <= 1:
        return rgb.astype(np.float32)
    fy, fx = min(factor, height), min(factor, width)
    h, w = height // fy, width // fx
    cropped = rgb[: h * fy, : w * fx]
    rows = np.zeros((h, w * fx, channels), np.uint32)
    for dy in range(fy):
        rows += cropped[dy::fy]
    boxes = np.zeros((h, w, channels), np.uint32)
    for dx in range(fx):
        boxes += rows[:, dx::fx]
    return boxes.astype(np.float32) / np.float32(fy * fx)


def laplacian_variance(luma: np.ndarray) -> float:
    """Variance of the 4-neighbour Laplacian over the interior of a 2-D array (0 if < 3x3)."""
    if luma.shape[0] < 3 or luma.shape[1] < 3:
        return 0.0
    luma = luma.astype(np.float32, copy=False)
    laplacian = luma[:-2, 1:-1] + luma[2:, 1:-1]
    laplacian += luma[1:-1, :-2]
    laplacian += luma[1:-1, 2:]
    laplacian -= 4.0 * luma[1:-1, 1:-1]
    return _mean_and_variance(laplacian)[1]


def colourfulness(rgb: np.ndarray) -> float:
    """Hasler–Süsstrunk colourfulness of an RGB array on the 0..255 scale."""
    rgb = np.asarray(rgb)
    return _colourfulness(*_float_planes(rgb, max(rgb.shape[:2])))


def _colourfulness(red: np.ndarray, green: np.ndarray, blue: np.ndarray) -> float:
    rg = red - green
    yb = red + green
    yb *= 0.5
    yb -= blue
    rg_mean, rg_variance = _mean_and_variance(rg)
    yb_mean, yb_variance = _mean_and_variance(yb)
    return float(np.hypot(np.sqrt(rg_variance), np.sqrt(yb_variance)) + 0.3 * np.hypot(rg_mean, yb_mean))


def uniqueness(graph: KnnGraph) -> np.ndarray:
    """(n,) cosine distance of each point to its nearest neighbour (0 = has an exact twin)."""
    return np.clip(1.0 - graph.similarities[:, 0].astype(np.float64), 0.0, 2.0)
