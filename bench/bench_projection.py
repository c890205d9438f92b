"""Projection benchmark: our UMAP over the saved kNN graph vs plain umap-learn, same vectors.

    .venv/bin/python bench/bench_projection.py --vectors bench/results/fmnist70k.npy [--runs 1]

Baseline: `umap.UMAP(metric="cosine", random_state=0).fit_transform(vectors)`.
Ours: `build_knn_graph` (saved and reused by the analyses) + `project`.
Quality: trustworthiness (k=10, scikit-learn) of both maps on the same random subsample
(sklearn's trustworthiness is O(n^2) in memory, so it cannot run on all 70,000 points).
numba compilation is paid once before timing, by a small warm-up run of both.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analysis.knn import build_knn_graph  # noqa: E402
from indexer.projection import ProjectionConfig, project  # noqa: E402

RESULTS = ROOT / "bench" / "results"


def plain_umap(vectors: np.ndarray) -> np.ndarray:
    import umap

    return umap.UMAP(metric="cosine", random_state=0).fit_transform(vectors)


def ours(vectors: np.ndarray) -> np.ndarray:
    ids = np.arange(len(vectors)).astype(str)
    graph = build_knn_graph(ids, vectors, k=15, seed=0)
    return project(vectors, graph, ProjectionConfig())


def trust(vectors: np.ndarray, coords: np.ndarray, sample: np.ndarray) -> float:
    from sklearn.manifold import trustworthiness

    return float(trustworthiness(vectors[sample], coords[sample], n_neighbors=10, metric="cosine"))


def timed(fn, vectors: np.ndarray) -> tuple[float, np.ndarray]:
    started = time.perf_counter()
    coords = fn(vectors)
    return time.perf_counter() - started, coords


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--vectors", type=Path, required=True, help=".npy of (n, d) embeddings")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--sample", type=int, default=10_000)
    args = parser.parse_args()
    vectors = np.load(args.vectors).astype(np.float32)
    warm = vectors[:3000]
    plain_umap(warm), ours(warm)  # numba compilation, not timed
    sample = np.random.default_rng(0).choice(len(vectors), min(args.sample, len(vectors)), replace=False)
    rows = {"baseline": [], "ours": []}
    trusts = {"baseline": [], "ours": []}
    for _ in range(args.runs):
        for name, fn in (("baseline", plain_umap), ("ours", ours)):
            seconds, coords = timed(fn, vectors)
            rows[name].append(seconds)
            trusts[name].append(trust(vectors, coords, sample))
    result = {"points": len(vectors), "dims": vectors.shape[1], "runs": args.runs, "date": time.strftime("%Y-%m-%d"),
              "baseline_s": statistics.median(rows["baseline"]), "ours_s": statistics.median(rows["ours"]),
              "baseline_trust": statistics.median(trusts["baseline"]), "ours_trust": statistics.median(trusts["ours"]),
              "all": rows, "trust_all": trusts}
    result["speedup"] = result["baseline_s"] / result["ours_s"]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"projection-{len(vectors)}.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
