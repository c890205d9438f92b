"""Demo data: Fashion-MNIST written out as PNG files in ImageFolder layout.

Read from Debian's `dataset-fashion-mnist` files when installed, else downloaded once from
the dataset's public source (for users who are online).
"""
from __future__ import annotations

import gzip
import urllib.request
from pathlib import Path

import numpy as np
from PIL import Image
from imaging.progress import progress_bar

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
PUBLIC_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
CLASS_NAMES = ("t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle-boot")
SPLITS = {"test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
          "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")}


def load_split(split: str, download_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """(images (n, 28, 28) uint8, labels (n,) uint8) of one split."""
    images_name, labels_name = SPLITS[split]
    images = np.frombuffer(_read(images_name, download_dir), np.uint8, offset=16).reshape(-1, 28, 28)
    labels = np.frombuffer(_read(labels_name, download_dir), np.uint8, offset=8)
    return images, labels


def _read(name: str, download_dir: Path) -> bytes:
    for candidate in (DEBIAN_DIR / name, download_dir / name):
        if candidate.exists():
            return gzip.decompress(candidate.read_bytes())
    download_dir.mkdir(parents=True, exist_ok=True)
    try:
        urllib.request.urlretrieve(PUBLIC_URL + name, download_dir / name)
    except OSError as error:
        raise RuntimeError(f"Fashion-MNIST is not installed and cannot be downloaded ({error}). "
                           "On Debian/Ubuntu: sudo apt-get install dataset-fashion-mnist") from error
    return gzip.decompress((download_dir / name).read_bytes())


def materialise(out: Path, full: bool = False, limit: int | None = None) -> Path:
    """Write PNGs to out/<class>/<split>-<index>.png (the test split, or all 70,000 with full).

    Files already present are kept, so running the demo again costs nothing.
    """
    splits = ("test", "train") if full else ("test",)
    out.mkdir(parents=True, exist_ok=True)
    for split in splits:
        images, labels = load_split(split, out / ".download")
        count = min(limit, len(images)) if limit else len(images)
        for name in CLASS_NAMES:
            (out / name).mkdir(exist_ok=True)
        for index in progress_bar(range(count), desc=f"fashion-mnist {split}", unit="img"):
            path = out / CLASS_NAMES[labels[index]] / f"{split}-{index:05d}.png"
            if not path.exists():
                Image.fromarray(images[index], "L").save(path)
    return out
