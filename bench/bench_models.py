"""Two embedding models of one collection (issue 23): a second model as a named vector of the
existing points against a second collection, and the per-point neighbour overlap at 1M points.

    .venv/bin/python bench/bench_models.py --points 70000 --dim 1280 --second-dim 512 --runs 3
    .venv/bin/python bench/bench_models.py --overlap-points 1000000 --runs 3 --skip-store

1. Store (`--points`): a collection of `--points` x `--dim` vectors with a typical payload
   (path, label, split, tags, x, y and six metrics) is built once, untimed, in the embedded
   store. Then, per run, the same `--second-dim` vectors of the second model are written
   (a) as the named vector `second` of every existing point (`add_vector` + `set_vectors`, what
       `index --add-vector` does after embedding), or
   (b) as a new collection of their own, each point with a copy of its payload (the way to hold
       a second model before named vectors: the baseline),
   each followed by `optimize`. Reported: seconds, and the disk the second model added (the
   grown collection folder against the new collection's folder). Embedding, graph and map cost
   the same either way and are left out.
2. Overlap (`--overlap-points`): two random k=10 neighbour graphs over the same ids in different
   orders; timed: aligning them by id (`analysis.model_compare.aligned`) and the overlap
   (`neighbour_overlap`); baseline: the plain Python per-row set intersection over the same rows.
Prints a JSON summary with medians and ratios.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from analysis.knn import KnnGraph  # noqa: E402
from analysis.model_compare import aligned, neighbour_overlap  # noqa: E402
from store import open_store, point_id  # noqa: E402


def folder_bytes(folder: Path) -> int:
    """Disk the files take (allocated blocks: the engine preallocates sparse files)."""
    return sum(p.stat().st_blocks * 512 for p in folder.rglob("*") if p.is_file())


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def base_collection(store, n: int, dim: int, rng: np.random.Generator) -> tuple[list[str], list[dict]]:
    ids = [point_id(f"img/{i:07d}.png") for i in range(n)]
    payloads = [{"path": f"img/{i:07d}.png", "label": f"class{i % 10}", "split": "train", "tags": [],
                 "x": float(i % 300), "y": float(i // 300), **{m: float(i % 7) / 7 for m in
                 ("brightness", "contrast", "sharpness", "colourfulness", "aspect_ratio", "area")}} for i in range(n)]
    collection = store.create("base", dim, {"model": "first"})
    for start in range(0, n, 10_000):
        collection.upsert(ids[start:start + 10_000], unit(rng.normal(size=(min(10_000, n - start), dim))),
                          payloads[start:start + 10_000])
    collection.optimize()
    collection.flush()
    return ids, payloads


def store_runs(points: int, dim: int, second_dim: int, runs: int, workdir: Path) -> dict:
    rng = np.random.default_rng(0)
    results: dict[str, list[float]] = {"named_s": [], "named_bytes": [], "collection_s": [], "collection_bytes": []}
    for run in range(runs):
        root = workdir / f"run{run}"
        store = open_store(path=str(root))
        ids, payloads = base_collection(store, points, dim, rng)
        second = unit(rng.normal(size=(points, second_dim)))
        base = store.open("base")
        base.flush()
        before = folder_bytes(root / "base")
        started = time.perf_counter()
        base.add_vector("second", second_dim)
        for start in range(0, points, 10_000):
            base.set_vectors("second", ids[start:start + 10_000], second[start:start + 10_000])
        base.optimize()
        base.flush()
        results["named_s"].append(time.perf_counter() - started)
        results["named_bytes"].append(folder_bytes(root / "base") - before)
        started = time.perf_counter()
        other = store.create("second", second_dim, {"model": "second"})
        for start in range(0, points, 10_000):
            other.upsert(ids[start:start + 10_000], second[start:start + 10_000], payloads[start:start + 10_000])
        other.optimize()
        other.flush()
        results["collection_s"].append(time.perf_counter() - started)
        results["collection_bytes"].append(folder_bytes(root / "second"))
        store.close()
        shutil.rmtree(root, ignore_errors=True)
    medians = {key: statistics.median(values) for key, values in results.items()}
    return {"points": points, "dim": dim, "second_dim": second_dim, "runs": results, "medians": medians,
            "time_ratio_named_over_collection": medians["named_s"] / medians["collection_s"],
            "disk_ratio_named_over_collection": medians["named_bytes"] / medians["collection_bytes"]}


def overlap_runs(points: int, k: int, runs: int) -> dict:
    rng = np.random.default_rng(1)
    ids = np.array([f"{i:032x}" for i in range(points)])
    order = rng.permutation(points)
    # Distinct neighbours per row (as a kNN graph has): increasing offsets from the row.
    offsets = np.cumsum(rng.integers(1, 50, (points, 2 * k)), axis=1)
    rows = np.arange(points)[:, None]
    first = KnnGraph(ids, ((rows + offsets[:, :k]) % points).astype(np.int32), np.zeros((points, k), np.float32))
    # The second graph holds the same points in another order, half of each row's neighbours shared.
    indices = first.indices.copy()
    indices[:, k // 2:] = (rows + offsets[:, k + k // 2:]) % points
    position = np.empty(points, dtype=np.int32)
    position[order] = np.arange(points, dtype=np.int32)
    second = KnnGraph(ids[order], position[indices[order]], np.zeros((points, k), np.float32))
    ours, baseline, mean = [], [], 0.0
    for _ in range(runs):
        started = time.perf_counter()
        _, near_a, near_b = aligned(first, second, k)
        overlap = neighbour_overlap(near_a, near_b)
        ours.append(time.perf_counter() - started)
        mean = float(overlap.mean())
        started = time.perf_counter()
        row_of = {pid: i for i, pid in enumerate(second.ids.tolist())}
        plain = [len(set(first.ids[first.indices[i]].tolist()) & set(second.ids[second.indices[row_of[pid]]].tolist())) / k
                 for i, pid in enumerate(first.ids.tolist())]
        baseline.append(time.perf_counter() - started)
        assert abs(np.mean(plain) - mean) < 1e-6
    return {"points": points, "k": k, "mean_overlap": mean, "ours_s": ours, "baseline_s": baseline,
            "ours_median_s": statistics.median(ours), "baseline_median_s": statistics.median(baseline),
            "speedup": statistics.median(baseline) / statistics.median(ours)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=70_000)
    parser.add_argument("--dim", type=int, default=1280)
    parser.add_argument("--second-dim", type=int, default=512)
    parser.add_argument("--overlap-points", type=int, default=1_000_000)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--skip-store", action="store_true")
    parser.add_argument("--skip-overlap", action="store_true")
    args = parser.parse_args()
    summary = {"machine": f"{platform.node()} {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
               "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "load_average": os.getloadavg()}
    if not args.skip_store:
        with tempfile.TemporaryDirectory(prefix="bench-models-") as workdir:
            summary["store"] = store_runs(args.points, args.dim, args.second_dim, args.runs, Path(workdir))
    if not args.skip_overlap:
        summary["overlap"] = overlap_runs(args.overlap_points, args.k, args.runs)
    summary["load_average_after"] = os.getloadavg()
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
