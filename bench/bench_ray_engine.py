"""`index --engine ray` against the local engine on this machine: the embedding phase in img/s.

    .venv/bin/python bench/bench_ray_engine.py --images 2000 --runs 3

Same Fashion-MNIST PNGs, same model (mobilenet-v2, OpenVINO), same store, fresh collection per
run; the embedding phase (read, hash, decode, metrics, preprocess, embed, write) as the
index report times it. Ray runs on a local instance with this machine's cores (started once,
so its own start is not counted; each run's actor start and model load are), then the Ray
stream alone: seconds to its first batch (actor start, model load). On one machine
this measures Ray's overhead, not a speed-up: Ray pays off when the cluster has more cores or
GPUs than the driver's machine. Prints a JSON summary (medians).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from indexer.demo import materialise  # noqa: E402
from indexer.models import load_embedder  # noqa: E402
from indexer.pipeline import IndexOptions  # noqa: E402
from scoring.indexing import index_and_analyze  # noqa: E402
from store import open_store  # noqa: E402


def embedding_rate(folder: Path, limit: int, engine: str, embedder: object) -> tuple[float, float]:
    """(img/s of the embedding phase, its seconds) of one fresh index."""
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(path=str(Path(tmp) / "q"))
        options = IndexOptions(collection="bench", model="mobilenet-v2", limit=limit, device="cpu", progress=False,
                               analyze=False, engine=engine, workers=2)
        try:
            report = index_and_analyze(folder, store, options, embedder=embedder)
        finally:
            store.close()
    return report.images_per_second, report.embed_seconds


def ray_stream(folder: Path, limit: int) -> dict[str, float]:
    """The Ray engine's stream alone (no store): seconds to the first embedded batch (actor start
    and model load). No rate after it: blocks finished before the first one arrives make it
    look faster than it is."""
    from indexer.ray_engine import ray_embedded_batches
    from indexer.sources import read_dataset

    sources = read_dataset(folder).images[:limit]
    options = IndexOptions(collection="bench", model="mobilenet-v2", device="cpu", progress=False, engine="ray",
                           workers=2)
    started = time.perf_counter()
    first = None
    for _ in ray_embedded_batches(sources, [None] * len(sources), options, lambda work: not work.skip_reason):
        first = first or time.perf_counter()
    return {"first_batch_s": first - started}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--data", type=Path, default=ROOT / "data" / "bench")
    args = parser.parse_args()
    folder = materialise(args.data / "fashion-mnist", limit=args.images)
    embedder = load_embedder("mobilenet-v2", "cpu")
    import ray

    from indexer.ray_engine import worker_runtime_env

    started = time.perf_counter()
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, runtime_env=worker_runtime_env())
    ray_start = time.perf_counter() - started
    results: dict[str, list[float]] = {"local": [], "ray": []}
    for run in range(args.runs):
        for engine in ("local", "ray"):
            rate, seconds = embedding_rate(folder, args.images, engine, embedder)
            results[engine].append(rate)
            print(f"run {run + 1} {engine}: {rate:.1f} img/s ({seconds:.1f} s)", flush=True)
    streams = [ray_stream(folder, args.images) for _ in range(args.runs)]
    for run, stream in enumerate(streams):
        print(f"run {run + 1} ray stream: {stream}", flush=True)
    ray.shutdown()
    local, on_ray = statistics.median(results["local"]), statistics.median(results["ray"])
    print(json.dumps({"images": args.images, "runs": args.runs, "cpus": os.cpu_count(),
                      "local_img_per_s": round(local, 1), "ray_img_per_s": round(on_ray, 1),
                      "ray_vs_local": round(on_ray / local, 2), "ray_init_s": round(ray_start, 1),
                      "ray_first_batch_s": round(statistics.median(s["first_batch_s"] for s in streams), 1),
                      "all": results, "load_average": os.getloadavg()}, indent=2))


if __name__ == "__main__":
    main()
