"""Indexing benchmark on photos: 640x480 JPEGs end to end against the bare model at 224 px.

    .venv/bin/python bench/bench_photos.py [--images 1500] [--runs 3] [--workers 2] [--batch-size 32]
                                           [--sweep] [--full-decode]

The photos are generated at benchmark time into a temporary folder (`bench/photos.py`: crops
of scikit-image's sample photos, jittered, with sensor-like noise, JPEG quality 85-95).
Measured in one process, each run in this order so that load on the machine hits all alike:
- bare model: `embed_batch` (mobilenet-v2, OpenVINO, batches of --batch-size) on the very
  224x224 uint8 arrays the pipeline feeds the model, decoded and preprocessed beforehand and
  held in memory;
- end to end: the embedding phase of `index_dataset` into a fresh embedded Qdrant (read, hash,
  decode at reduced scale, image metrics, resize, embed, write);
- with --full-decode, end to end again with the JPEGs decoded at full size (as before the
  reduced decode), to show what the reduced decode changes.
Also reported: one core's milliseconds per image for each step of the decode workers.
With --sweep, end to end once for each number of decode workers (1-4) and batch size (16-64).
OpenVINO runs with its defaults: on a CPU with AVX512-BF16 that is bfloat16 inference
(reported as `inference_precision`).
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from analysis.image_metrics import MAX_ANALYSIS_SIDE, image_metrics  # noqa: E402
from indexer.images import decode_image  # noqa: E402
from indexer.models import Embedder, load_embedder  # noqa: E402
from indexer.pipeline import IndexOptions, index_dataset  # noqa: E402
from photos import write_photos  # noqa: E402
from store import open_store  # noqa: E402

RESULTS = ROOT / "bench" / "results"
MIN_SIDE = 224


class FullDecode(Embedder):
    """The same model without a declared input size: the pipeline then decodes at full size."""

    def __init__(self, inner: Embedder) -> None:
        self.inner, self.name, self.dimension, self.device = inner, inner.name, inner.dimension, inner.device

    def preprocess(self, image: Image.Image) -> Any:
        return self.inner.preprocess(image)

    def embed_batch(self, items: Sequence[Any]) -> np.ndarray:
        return self.inner.embed_batch(items)


def per_image_ms(step: Callable[[Any], object], inputs: Sequence[Any], repeats: int = 3) -> float:
    """Best of `repeats` passes, milliseconds per input, on one thread."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        for item in inputs:
            step(item)
        best = min(best, (time.perf_counter() - started) / len(inputs) * 1000)
    return best


def decode_steps(paths: list[Path]) -> dict[str, float]:
    """One core's cost of each step a decode worker runs, per image."""
    data = [p.read_bytes() for p in paths]
    full = [decode_image(p, d).image for p, d in zip(paths, data)]
    reduced = [decode_image(p, d, MIN_SIDE, MAX_ANALYSIS_SIDE).image for p, d in zip(paths, data)]
    return {
        "file_kb": float(np.mean([len(d) for d in data]) / 1024),
        "sha1_ms": per_image_ms(lambda d: hashlib.sha1(d).hexdigest(), data),
        "pillow_decode_full_ms": per_image_ms(lambda d: Image.open(io.BytesIO(d)).convert("RGB"), data),
        "decode_full_ms": per_image_ms(lambda pd: decode_image(*pd), list(zip(paths, data))),
        "decode_reduced_ms": per_image_ms(lambda pd: decode_image(*pd, MIN_SIDE, MAX_ANALYSIS_SIDE),
                                          list(zip(paths, data))),
        "metrics_full_ms": per_image_ms(lambda im: image_metrics(np.asarray(im)), full),
        "metrics_reduced_ms": per_image_ms(lambda im: image_metrics(np.asarray(im), (640, 480)), reduced),
        "resize_full_to_224_ms": per_image_ms(lambda im: im.resize((224, 224), Image.BILINEAR), full),
        "resize_reduced_to_224_ms": per_image_ms(lambda im: im.resize((224, 224), Image.BILINEAR), reduced),
    }


def bare_model_rate(embedder: Embedder, items: list[np.ndarray], batch: int, repeats: int = 3) -> float:
    embedder.embed_batch(items[:batch])  # warm-up
    rates = []
    for _ in range(repeats):
        started = time.perf_counter()
        for i in range(0, len(items), batch):
            embedder.embed_batch(items[i:i + batch])
        rates.append(len(items) / (time.perf_counter() - started))
    return statistics.median(rates)


def pipeline_rate(folder: Path, embedder: Embedder, workers: int, batch: int) -> float:
    """Images/s of a fresh index's embedding phase (the map and analyses after it are not timed)."""
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(path=str(Path(tmp) / "q"))
        try:
            options = IndexOptions(collection="photos", model=embedder.name, device="cpu", workers=workers,
                                   batch_size=batch, progress=False, analyze=False)
            return index_dataset(folder, store, options, embedder=embedder).images_per_second
        finally:
            store.close()


def inference_precision() -> str:
    import openvino as ov

    return str(ov.Core().get_property("CPU", "INFERENCE_PRECISION_HINT"))


def sweep(folder: Path, embedder: Embedder, batch: int) -> dict[str, float]:
    rates = {f"workers={w} batch={batch}": pipeline_rate(folder, embedder, w, batch) for w in (1, 2, 3, 4)}
    rates.update({f"workers=2 batch={b}": pipeline_rate(folder, embedder, 2, b) for b in (16, 64)})
    return rates


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=1500)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=IndexOptions.workers)
    parser.add_argument("--batch-size", type=int, default=IndexOptions.batch_size)
    parser.add_argument("--sweep", action="store_true", help="end to end for several workers / batch sizes")
    parser.add_argument("--full-decode", action="store_true", help="also end to end with full-size decoding")
    args = parser.parse_args()
    embedder = load_embedder("mobilenet-v2", "cpu")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "photos"
        started = time.perf_counter()
        paths = write_photos(folder, args.images)
        print(f"wrote {len(paths)} photos in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        result: dict[str, object] = {
            "machine": f"{platform.node()} {platform.processor() or platform.machine()} {os.cpu_count()} cores",
            "date": time.strftime("%Y-%m-%d %H:%M"), "load_before": os.getloadavg()[0], "images": len(paths),
            "runs": args.runs, "workers": args.workers, "batch_size": args.batch_size, "runtime": embedder.runtime,
            "inference_precision": inference_precision(), "decode_steps": decode_steps(paths[:200])}
        items = [embedder.preprocess(decode_image(p, None, MIN_SIDE, MAX_ANALYSIS_SIDE).image) for p in paths[:640]]
        runs: dict[str, list[float]] = {"bare": [], "end_to_end": [], "end_to_end_full_decode": []}
        for run in range(args.runs):
            runs["bare"].append(bare_model_rate(embedder, items, args.batch_size))
            runs["end_to_end"].append(pipeline_rate(folder, embedder, args.workers, args.batch_size))
            if args.full_decode:
                runs["end_to_end_full_decode"].append(
                    pipeline_rate(folder, FullDecode(embedder), args.workers, args.batch_size))
            print(f"run {run + 1}: " + ", ".join(f"{k} {v[-1]:.1f}" for k, v in runs.items() if v), file=sys.stderr)
        result.update({f"{k}_img_s": statistics.median(v) for k, v in runs.items() if v})
        result["ratio"] = result["end_to_end_img_s"] / result["bare_img_s"]
        result["all_runs"] = runs
        if args.sweep:
            result["sweep_img_s"] = sweep(folder, embedder, args.batch_size)
        result["load_after"] = os.getloadavg()[0]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "photos.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
