"""Indexing benchmark: end-to-end images/s against the bare model, peak memory, read-back time.

    .venv/bin/python bench/bench_indexing.py [--images 10000] [--runs 3] [--full-memory]

The bare model number is `embed_batch` on already-preprocessed tensors held in memory,
measured in the same process and run as the pipeline, so the ratio compares like with like.
Results go to bench/results/indexing.json and stdout (Markdown).
"""
from __future__ import annotations

import argparse
import json
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from indexer.demo import materialise  # noqa: E402
from indexer.models import load_embedder  # noqa: E402
from indexer.pipeline import IndexOptions, index_dataset  # noqa: E402
from store import open_store  # noqa: E402

RESULTS = ROOT / "bench" / "results"


def bare_model_rate(images: list[Image.Image], batch: int = 32, repeats: int = 3, runtime: str = "auto") -> float:
    embedder = load_embedder("mobilenet-v2", "cpu", runtime)
    items = [embedder.preprocess(im) for im in images]
    embedder.embed_batch(items[:batch])  # warm-up
    rates = []
    for _ in range(repeats):
        started = time.perf_counter()
        for i in range(0, len(items), batch):
            embedder.embed_batch(items[i:i + batch])
        rates.append(len(items) / (time.perf_counter() - started))
    return statistics.median(rates)


def pipeline_rate(folder: Path, limit: int, metrics: bool = True) -> float:
    """Embedding phase of a fresh index (decode + metrics + preprocess + embed + write), images/s."""
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(path=str(Path(tmp) / "q"))
        embedder = load_embedder("mobilenet-v2", "cpu")
        options = IndexOptions(collection="bench", model="mobilenet-v2", limit=limit, device="cpu", progress=False,
                               image_metrics=metrics)
        report = index_dataset(folder, store, options, embedder=embedder)
        store.close()
        return report.images_per_second


def read_back_seconds(qdrant_path: Path, collection: str, runs: int = 5) -> float:
    code = ("import sys, time; sys.path.insert(0, %r); t=time.perf_counter(); from store import open_store; "
            "s=open_store(path=%r); c=s.open(%r); cols=c.columns(['label','tags','x','y']); "
            "print(time.perf_counter()-t, len(cols)); s.close()") % (str(ROOT), str(qdrant_path), collection)
    times = []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
        times.append(float(out[0]))
    print("read-back runs:", [round(t, 3) for t in times], file=sys.stderr)
    return statistics.median(times)


def read_back_only(qdrant_path: Path, collection: str) -> dict[str, object]:
    """Bring a collection from an earlier version up to date the way `index` would (drop the
    unused indexes, optimize into the current shard layout; closing writes the columns cache),
    then time the read-back."""
    from indexer.pipeline import UNUSED_INDEXES

    store = open_store(path=str(qdrant_path))
    opened = store.open(collection)
    for name in UNUSED_INDEXES:
        opened.drop_index(name)
    opened.flush()
    opened.optimize()
    points = opened.count()
    store.close()
    result = {"date": time.strftime("%Y-%m-%d"), "points": points, "load_before": __import__("os").getloadavg()[0],
              "read_back_seconds": read_back_seconds(qdrant_path, collection)}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "read_back.json").write_text(json.dumps(result, indent=2))
    return result


def full_index_peak_memory(folder: Path, qdrant_path: Path) -> dict[str, float]:
    """Index every image in a child process; its peak RSS comes from the kernel's accounting."""
    started = time.perf_counter()
    subprocess.run([sys.executable, str(ROOT / "app.py"), "--qdrant-path", str(qdrant_path), "index", str(folder),
                    "--collection", "fmnist-full", "--model", "mobilenet-v2"], check=True,
                   stderr=subprocess.DEVNULL)
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {"seconds": time.perf_counter() - started, "peak_rss_mb": peak_kb / 1024}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--full-memory", action="store_true", help="also index all 70,000 (slow)")
    parser.add_argument("--read-back-only", action="store_true",
                        help="only time the read-back of the 70,000-point collection a --full-memory run left")
    args = parser.parse_args()
    if args.read_back_only:
        print(json.dumps(read_back_only(ROOT / "data" / "bench" / "qdrant", "fmnist-full"), indent=2))
        return
    data = ROOT / "data" / "bench"
    folder = materialise(data / ("fashion-mnist-full" if args.full_memory else "fashion-mnist"), full=args.full_memory)
    paths = sorted(folder.rglob("*.png"))[:2000]
    sample = [Image.open(p).convert("RGB") for p in paths]
    results: dict[str, object] = {"machine": f"{platform.node()} {platform.processor()} "
                                             f"{__import__('os').cpu_count()} cores",
                                  "date": time.strftime("%Y-%m-%d"), "images": args.images, "runs": args.runs}
    results["runtime"] = load_embedder("mobilenet-v2", "cpu").runtime
    bare, bare_ort, end_to_end, no_metrics = [], [], [], []
    for _ in range(args.runs):
        bare.append(bare_model_rate(sample))
        bare_ort.append(bare_model_rate(sample, runtime="onnxruntime"))
        end_to_end.append(pipeline_rate(folder, args.images))
        no_metrics.append(pipeline_rate(folder, args.images, metrics=False))
    results.update(bare_model_img_s=statistics.median(bare), bare_onnxruntime_img_s=statistics.median(bare_ort),
                   pipeline_img_s=statistics.median(end_to_end),
                   pipeline_without_metrics_img_s=statistics.median(no_metrics),
                   bare_runs=bare, bare_onnxruntime_runs=bare_ort, pipeline_runs=end_to_end, pipeline_without_metrics_runs=no_metrics)
    results["ratio"] = results["pipeline_img_s"] / results["bare_model_img_s"]
    # Time per image with metrics over time per image without: the cost metrics add.
    results["metrics_time_overhead"] = results["pipeline_without_metrics_img_s"] / results["pipeline_img_s"] - 1
    if args.full_memory:
        qdrant = data / "qdrant"
        shutil.rmtree(qdrant, ignore_errors=True)
        results["full_index"] = full_index_peak_memory(folder, qdrant)
        results["read_back_seconds"] = read_back_seconds(qdrant, "fmnist-full")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "indexing.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
