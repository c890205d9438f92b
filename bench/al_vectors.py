"""Vectors for the active-learning benchmark: 7,000 Fashion-MNIST train images through mobilenet-v2.

    .venv/bin/python bench/al_vectors.py      # computes and caches them (about 1-2 minutes on 2 cores)

The first 7,000 images of Debian's train split (`dataset-fashion-mnist`), embedded once with the
offline mobilenet-v2 the demo uses, cached in bench/results/ under a name keyed by the SHA-1 of
the images' bytes and the model, so a changed input never reuses stale vectors.
"""
from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from indexer.demo import load_split  # noqa: E402

RESULTS = ROOT / "bench" / "results"
MODEL = "mobilenet-v2"
IMAGES = 7_000


def fashion_train_vectors(count: int = IMAGES) -> tuple[np.ndarray, np.ndarray]:
    """((count, 1280) unit vectors, (count,) int labels) of the first `count` train images."""
    images, labels = load_split("train", RESULTS / ".download")
    images, labels = images[:count], labels[:count].astype(np.int64)
    key = hashlib.sha1(images.tobytes() + MODEL.encode()).hexdigest()[:16]
    cache = RESULTS / f"al-fmnist-train-{count}-{key}.npz"
    if cache.exists():
        with np.load(cache) as data:
            return data["vectors"], data["labels"]
    vectors = _embed(images)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, vectors=vectors, labels=labels)
    return vectors, labels


def _embed(images: np.ndarray, batch: int = 500) -> np.ndarray:
    from PIL import Image

    from indexer.models import load_embedder

    embedder = load_embedder(MODEL, device="cpu")
    out = []
    for start in range(0, len(images), batch):
        pil = [Image.fromarray(im, mode="L").convert("RGB") for im in images[start:start + batch]]
        out.append(embedder.embed_images(pil))
        print(f"  embedded {start + len(pil)}/{len(images)}", file=sys.stderr, flush=True)
    return np.vstack(out).astype(np.float32)


if __name__ == "__main__":
    vectors, labels = fashion_train_vectors()
    print(vectors.shape, np.bincount(labels))
