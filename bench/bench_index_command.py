"""`python app.py index` end to end, this checkout against a baseline checkout: wall seconds of
the whole command (decode, embed, graph and map, quality scores, report) on the same
Fashion-MNIST images, each run in a fresh process and a fresh embedded store, the two
checkouts interleaved so a change of machine load hits both alike.

    git worktree add /tmp/embedscape-base <commit>     # or any copy of the older tree
    .venv/bin/python bench/bench_index_command.py --baseline /tmp/embedscape-base [--images 2000] [--runs 3]

Without `--baseline` only this checkout is timed. Results go to
bench/results/index_command.json and stdout (JSON): per checkout the run times and their
median, and the median of the per-pair ratios (this / baseline; below 1: faster).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
sys.path.insert(0, str(ROOT))

from indexer.demo import materialise  # noqa: E402


def index_seconds(checkout: Path, folder: Path, limit: int) -> float:
    """One `app.py index` of `folder` by `checkout`, in a fresh store; seconds of wall time."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "EMBEDSCAPE_ARTIFACTS": str(Path(tmp) / "artifacts"), "PYTHONPATH": str(checkout)}
        command = [sys.executable, str(checkout / "app.py"), "--qdrant-path", str(Path(tmp) / "q"), "index",
                   str(folder), "--collection", "bench", "--model", "mobilenet-v2", "--device", "cpu",
                   "--precision", "fp32", "--limit", str(limit)]
        started = time.perf_counter()
        subprocess.run(command, check=True, env=env, cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--baseline", type=Path, help="another checkout of embedscape to compare with")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        folder = materialise(Path(tmp) / "fmnist", full=False, limit=args.images)
        checkouts = {"this": ROOT, **({"baseline": args.baseline.resolve()} if args.baseline else {})}
        times: dict[str, list[float]] = {name: [] for name in checkouts}
        for run in range(args.runs):
            order = list(checkouts) if run % 2 == 0 else list(reversed(checkouts))
            for name in order:
                times[name].append(index_seconds(checkouts[name], folder, args.images))
                print(f"run {run + 1}, {name}: {times[name][-1]:.1f} s (load {os.getloadavg()[0]:.1f})",
                      file=sys.stderr, flush=True)
    result: dict[str, object] = {
        "benchmark": "index_command", "images": args.images, "runs": args.runs, "machine": platform.node(),
        "cpus": os.cpu_count(), "load_average": os.getloadavg(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        **{f"{name}_seconds": values for name, values in times.items()},
        **{f"{name}_median_s": statistics.median(values) for name, values in times.items()},
    }
    if args.baseline:
        result["median_ratio"] = statistics.median(a / b for a, b in zip(times["this"], times["baseline"]))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "index_command.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
