"""Run every benchmark in bench/ (`make bench`), each in its own process, with quick settings.

    .venv/bin/python bench/run_all.py [--full] [--only indexing label_quality ...]

Quick settings (the default) keep the whole run to tens of minutes on a 2-core machine; the
numbers in docs/BENCHMARKS.md name the settings they were taken with, usually each script's
own defaults, which `--full` uses. A benchmark that cannot run here (the GPU one without
CUDA) is reported as skipped, with the reason. Each script writes its JSON to bench/results/;
this prints a summary line per benchmark and exits non-zero if any failed.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
PROJECTION_VECTORS = RESULTS / "fmnist_test_mobilenet.npy"


def projection_arguments(full: bool) -> list[str]:
    """bench_projection.py takes a vectors file: the Fashion-MNIST test embeddings that
    bench_label_quality.py caches (it runs first), saved as the .npy the script reads."""
    import numpy as np

    if not PROJECTION_VECTORS.exists():
        np.save(PROJECTION_VECTORS, np.load(RESULTS / "fmnist_test_mobilenet.npz")["vectors"])
    return ["--vectors", str(PROJECTION_VECTORS), "--runs", "3" if full else "1"]


def gpu_skip_reason() -> str | None:
    import torch

    return None if torch.cuda.is_available() else "no CUDA GPU (bench_gpu.py measures the embedders on CUDA)"


def quick(arguments: list[str]) -> Callable[[bool], list[str]]:
    return lambda full: [] if full else arguments


# name -> its arguments given `full` (full: the script's own defaults)
BENCHMARKS: dict[str, Callable[[bool], list[str]]] = {
    "indexing": quick(["--images", "1000", "--runs", "3"]),
    "index_command": quick(["--images", "500", "--runs", "1"]),  # --baseline DIR: against another checkout
    "label_quality": quick([]),
    "projection": projection_arguments,
    "clusters": quick(["--sizes", "10000", "--repeats", "1"]),  # reads label_quality's cached vectors
    "detection": quick(["--canvases", "200", "--seeds", "2", "--timing-canvases", "50", "--repeats", "1"]),
    "detection_eval": quick(["--images", "1000", "--boxes", "7200", "--selection", "200", "--runs", "1",
                                "--missing-images", "40"]),
    "ui": quick(["--points", "10000"]),
    "load": quick(["--quick"]),
    "density": quick(["--points", "1000000", "--runs", "2"]),
    "map_overlays": quick(["--points", "70000", "--runs", "1"]),
    "embeddings_file": quick(["--rows", "20000", "--runs", "1"]),
    "photos": quick(["--images", "200", "--runs", "1"]),
    "ray_engine": quick(["--images", "200", "--runs", "1"]),
    "object_metrics": quick(["--runs", "3", "--boxes", "20000", "--masks", "500"]),
    "prediction_points": quick(["--runs", "1"]),
    "models": quick(["--points", "10000", "--runs", "1", "--overlap-points", "100000"]),
    "gpu": quick([]),
    "active_learning": quick(["--part", "all", "--seeds", "0", "--only", "random", "class-balanced-margin",
                              "modAL margin", "--points", "200000", "--runs", "1",
                              "--baseline-points", "20000"]),
}
SKIP_REASONS: dict[str, Callable[[], str | None]] = {"gpu": gpu_skip_reason}


def run(name: str, full: bool) -> tuple[str, float]:
    """('ok' | 'failed (rc N)' | 'skipped: why', seconds)."""
    reason = SKIP_REASONS.get(name, lambda: None)()
    if reason:
        return f"skipped: {reason}", 0.0
    try:
        extra = BENCHMARKS[name](full)
    except FileNotFoundError as error:
        return f"failed: {error}", 0.0
    command = [sys.executable, str(ROOT / "bench" / f"bench_{name}.py"), *extra]
    print(f"\n=== {name}: {' '.join(command[1:])}  (load {os.getloadavg()[0]:.1f})", flush=True)
    started = time.perf_counter()
    code = subprocess.run(command, cwd=ROOT).returncode
    return ("ok" if code == 0 else f"failed (rc {code})"), time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--full", action="store_true", help="each script's own (long) default settings")
    parser.add_argument("--only", nargs="+", choices=list(BENCHMARKS), help="run only these")
    args = parser.parse_args(argv)
    missing = sorted(p.stem.removeprefix("bench_") for p in (ROOT / "bench").glob("bench_*.py")
                     if p.stem.removeprefix("bench_") not in BENCHMARKS)
    if missing:  # a new bench script must be added above, with its quick arguments
        print(f"error: bench/run_all.py does not know {', '.join(missing)}", file=sys.stderr)
        return 2
    RESULTS.mkdir(parents=True, exist_ok=True)
    outcomes = {name: run(name, args.full) for name in args.only or BENCHMARKS}
    print("\n=== summary (results in bench/results/, tables in docs/BENCHMARKS.md)")
    for name, (outcome, seconds) in outcomes.items():
        print(f"{name:14} {outcome}" + (f" in {seconds:.0f} s" if seconds else ""))
    return 1 if any(o.startswith("failed") for o, _ in outcomes.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
