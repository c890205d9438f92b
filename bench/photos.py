"""Photo-like 640x480 JPEGs generated for benchmarks, one class per source photo.

Each file is a random crop (50-100% of the source's width, 4:3) of one of scikit-image's
colour sample photos, resized to 640x480, randomly mirrored, brightness- and colour-jittered,
with a little sensor-like noise, saved at JPEG quality 85-95 (4:2:0 chroma, like cameras and
phones). The noise matters: decode cost grows with the entropy of the file, and a clean
upscaled crop would decode faster than a real photo does.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

PHOTO_SIZE = (640, 480)


def source_photos() -> dict[str, np.ndarray]:
    """The colour photos scikit-image ships (no download), by name."""
    from skimage import data

    left, right, _ = data.stereo_motorcycle()
    return {"astronaut": data.astronaut(), "coffee": data.coffee(), "cat": data.chelsea(),
            "rocket": data.rocket(), "hubble": data.hubble_deep_field(), "cells": data.immunohistochemistry(),
            "retina": data.retina(), "motorcycle-left": left, "motorcycle-right": right}


def write_photos(folder: Path, count: int, seed: int = 0) -> list[Path]:
    """`count` JPEGs under folder/<source name>/NNNNN.jpg (an ImageFolder); returns their paths."""
    rng = np.random.default_rng(seed)
    sources = source_photos()
    names = sorted(sources)
    paths = []
    for i in range(count):
        name = names[i % len(names)]
        path = folder / name / f"{i:05d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        _jittered(sources[name], rng).save(path, "JPEG", quality=int(rng.integers(85, 96)))
        paths.append(path)
    return paths


def _jittered(source: np.ndarray, rng: np.random.Generator) -> Image.Image:
    height, width = source.shape[:2]
    crop_w = int(width * rng.uniform(0.5, 1.0))
    crop_h = min(height, crop_w * 3 // 4)
    crop_w = crop_h * 4 // 3
    left = int(rng.integers(0, width - crop_w + 1))
    top = int(rng.integers(0, height - crop_h + 1))
    image = Image.fromarray(source[top:top + crop_h, left:left + crop_w]).resize(PHOTO_SIZE, Image.BICUBIC)
    if rng.random() < 0.5:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    pixels = np.asarray(image, np.float32) * rng.uniform(0.8, 1.2) * rng.uniform(0.92, 1.08, 3)
    pixels += rng.normal(0.0, 4.0, pixels.shape)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")
