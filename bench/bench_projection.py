"""Projection benchmark: our map (kNN graph + projection) against plain umap-learn, same vectors.

    .venv/bin/python bench/bench_projection.py --points 200000 1000000 [--runs 3] [--baseline-max 200000]
    .venv/bin/python bench/bench_projection.py --vectors bench/results/fmnist70k.npy

Vectors: a `.npy` of embeddings, or (--points) a synthetic 64-d Gaussian mixture with cluster
structure (10 groups of 10 overlapping clusters, each a random 16-d subspace plus noise), so
that neighbourhoods, and trustworthiness, mean something.
Methods, each timed in its own child process (its own peak memory) after a small warm-up run
that pays numba's compilation:
- baseline: `umap.UMAP(metric="cosine", random_state=0).fit_transform(v)`, run up to
  --baseline-max points (a full fit at 1M points takes far longer than the budget);
- ours: `build_knn_graph` (saved and reused by the analyses) + `project` with the default
  config: a full UMAP fit over that graph up to 100k points, above that a fit on a 50k sample,
  placement of the rest from the graph and 30 refining epochs (`indexer/projection.py`);
- more with --with: ours-full (the same graph, a full UMAP fit at any size); umap-transform
  (umap-learn's own route: fit on the same 50k sample, `transform` the rest); ours-refine-N
  (ours with N refining epochs instead of 30).
Each phase also reports the child's CPU seconds (all its threads): other jobs on the machine
lengthen the wall-clock times but hardly the CPU times, so on 2 cores the idle wall time lies
between CPU/2 and CPU.
Quality: trustworthiness (k=10, cosine in the input space) estimated on a fixed random set of
--eval-points points, each ranked against all points (`bench/map_quality.py`), the same points
for every map, so differences are paired.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from map_quality import point_penalties, trustworthiness  # noqa: E402

RESULTS = ROOT / "bench" / "results"


def gaussian_mixture(n: int, dims: int = 64, seed: int = 0, groups: int = 10, per_group: int = 10,
                     intrinsic: int = 16) -> np.ndarray:
    """(n, dims) float32: clusters around group centres, each spread along its own random subspace."""
    rng = np.random.default_rng(seed)
    tops = rng.normal(0.0, 1.0, (groups, dims))
    centres = (np.repeat(tops, per_group, axis=0) + rng.normal(0.0, 0.7, (groups * per_group, dims)))
    bases = rng.normal(0.0, 0.5, (groups * per_group, intrinsic, dims)).astype(np.float32)
    labels = rng.integers(0, groups * per_group, n)
    out = np.empty((n, dims), np.float32)
    for start in range(0, n, 100_000):
        part = labels[start:start + 100_000]
        z = rng.normal(0.0, 1.0, (len(part), intrinsic)).astype(np.float32)
        noise = rng.normal(0.0, 0.5, (len(part), dims)).astype(np.float32)
        out[start:start + len(part)] = centres[part] + np.einsum("nk,nkd->nd", z, bases[part]) + noise
    return out


def load_vectors(source: str) -> np.ndarray:
    return gaussian_mixture(int(source)) if source.isdigit() else np.load(source).astype(np.float32)


def run_method(method: str, vectors: np.ndarray, warm_up: bool = False) -> tuple[np.ndarray, dict[str, float]]:
    """The map and the seconds of each phase. `warm_up`: a small run through the same code
    paths (sampled projection, approximate graph), for numba to compile them."""
    import warnings

    from analysis.knn import build_knn_graph
    from indexer.projection import ProjectionConfig, project

    if method == "baseline":
        import umap

        started, started_cpu = time.perf_counter(), time.process_time()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            coords = umap.UMAP(metric="cosine", random_state=0).fit_transform(vectors)
        return coords, {"total_s": time.perf_counter() - started, "total_cpu_s": time.process_time() - started_cpu}
    if method == "umap-transform":
        return umap_transform(vectors, min(ProjectionConfig().sample_size, len(vectors) // 4))
    config = ProjectionConfig()
    if method == "ours-full":
        config = ProjectionConfig(full_fit_max_points=len(vectors))
    elif method.startswith("ours-refine-"):
        config = ProjectionConfig(refine_epochs=int(method.rsplit("-", 1)[1]))
    if warm_up and method != "ours-full":
        config = ProjectionConfig(full_fit_max_points=len(vectors) // 4, sample_size=len(vectors) // 4,
                                  refine_epochs=config.refine_epochs)
    clock = [(time.perf_counter(), time.process_time())]
    graph = build_knn_graph(np.arange(len(vectors)).astype(str), vectors, k=15, seed=0)
    clock.append((time.perf_counter(), time.process_time()))
    coords = project(vectors, graph, config)
    clock.append((time.perf_counter(), time.process_time()))
    (wall0, cpu0), (wall1, cpu1), (wall2, cpu2) = clock
    return coords, {"graph_s": wall1 - wall0, "projection_s": wall2 - wall1, "total_s": wall2 - wall0,
                    "graph_cpu_s": cpu1 - cpu0, "projection_cpu_s": cpu2 - cpu1, "total_cpu_s": cpu2 - cpu0}


def umap_transform(vectors: np.ndarray, sample_size: int) -> tuple[np.ndarray, dict[str, float]]:
    """umap-learn's own way to scale: fit on the same seeded sample our method uses, then
    `transform` every other point (its NN-descent index answers the neighbour queries)."""
    import warnings

    import umap

    started, started_cpu = time.perf_counter(), time.process_time()
    sample = np.sort(np.random.default_rng(0).choice(len(vectors), sample_size, replace=False))
    rest = np.setdiff1d(np.arange(len(vectors)), sample)
    coords = np.empty((len(vectors), 2), np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reducer = umap.UMAP(metric="cosine", random_state=0).fit(vectors[sample])
        coords[sample] = reducer.embedding_
        fitted, fitted_cpu = time.perf_counter(), time.process_time()
        coords[rest] = reducer.transform(vectors[rest])
    done, done_cpu = time.perf_counter(), time.process_time()
    return coords, {"fit_s": fitted - started, "transform_s": done - fitted, "total_s": done - started,
                    "fit_cpu_s": fitted_cpu - started_cpu, "total_cpu_s": done_cpu - started_cpu}


def child(method: str, source: str, out: Path) -> None:
    """One timed run in this process, after a warm-up on a small slice (numba compilation)."""
    vectors = load_vectors(source)
    run_method(method, vectors[:25_000], warm_up=True)  # over 20k: the approximate graph search too
    coords, seconds = run_method(method, vectors)
    np.save(out / f"{method}.npy", np.asarray(coords, np.float32))
    seconds["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    (out / f"{method}.json").write_text(json.dumps(seconds))


def timed_run(method: str, source: str, tmp: Path) -> tuple[np.ndarray, dict[str, float]]:
    subprocess.run([sys.executable, __file__, "--child", method, "--source", source, "--out", str(tmp)], check=True)
    return np.load(tmp / f"{method}.npy"), json.loads((tmp / f"{method}.json").read_text())


def measure(source: str, methods: list[str], runs: int, eval_points: int) -> dict[str, object]:
    vectors = load_vectors(source)
    n = len(vectors)
    rows = np.random.default_rng(1).choice(n, min(eval_points, n), replace=False)
    result: dict[str, object] = {"points": n, "dims": int(vectors.shape[1]), "eval_points": len(rows)}
    penalties = {}
    for method in methods:
        timings, maps = [], []
        with tempfile.TemporaryDirectory() as tmp:
            for run in range(runs):
                coords, seconds = timed_run(method, source, Path(tmp))
                timings.append(seconds)
                maps.append(coords)
                print(f"{n} {method} run {run + 1}: {json.dumps(seconds)}", file=sys.stderr, flush=True)
        penalties[method] = point_penalties(vectors, maps[0], rows)
        trust, error = trustworthiness(penalties[method], n)
        result[method] = {key: statistics.median(t[key] for t in timings) for key in timings[0]}
        result[method].update(trust=trust, trust_stderr=error, runs=timings,
                              same_map_every_run=all(np.array_equal(maps[0], m) for m in maps[1:]))
    if "baseline" in penalties:
        for method in set(penalties) - {"baseline"}:
            diff = penalties[method] - penalties["baseline"]
            _, error = trustworthiness(diff, n)
            result[method]["trust_minus_baseline"] = result[method]["trust"] - result["baseline"]["trust"]
            result[method]["trust_minus_baseline_stderr"] = error
            result[method]["speedup"] = result["baseline"]["total_s"] / result[method]["total_s"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--points", type=int, nargs="*", default=[], help="synthetic mixture sizes")
    parser.add_argument("--vectors", type=Path, help=".npy of (n, d) embeddings")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--baseline-max", type=int, default=200_000, help="largest size the baseline runs at")
    parser.add_argument("--with", nargs="*", default=[], dest="extra", metavar="METHOD",
                        help="more methods: ours-full (our graph, full UMAP fit at any size), umap-transform "
                             "(umap-learn fit on the sample + transform), ours-refine-N (N refining epochs)")
    parser.add_argument("--eval-points", type=int, default=5_000)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--source", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.source, args.out)
        return
    sources = [str(n) for n in args.points] + ([str(args.vectors)] if args.vectors else [])
    report: dict[str, object] = {"machine": f"{platform.node()} {platform.processor() or platform.machine()} "
                                            f"{os.cpu_count()} cores", "date": time.strftime("%Y-%m-%d %H:%M"),
                                 "load_before": os.getloadavg()[0], "runs": args.runs, "sizes": []}
    for source in sources:
        n = len(load_vectors(source)) if not source.isdigit() else int(source)
        methods = (["baseline"] if n <= args.baseline_max else []) + ["ours"]
        methods += args.extra
        report["sizes"].append(measure(source, methods, args.runs, args.eval_points))
        report["load_after"] = os.getloadavg()[0]
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "projection-scale.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
