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
Each also reports the process's CPU milliseconds per image (all threads), and `cpu_ratio` is
bare CPU / end-to-end CPU: on a machine where nothing else runs, end to end cannot beat
`cpu_ratio` x the bare rate when the bare model already keeps every core busy. Also reported:
the CPU milliseconds per image of each step a decode worker runs, on one thread, and the
decode floor: libjpeg at 1/8 scale, which is little more than Huffman decoding, a cost no JPEG
decoder avoids; `best_cpu_ratio_at_decode_floor` is the cpu_ratio the pipeline would reach if
that were its only cost beside the model.
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
from imaging.images import decode_image  # noqa: E402
from indexer.models import Embedder, load_embedder  # noqa: E402
from indexer.pipeline import IndexOptions, prepare_image  # noqa: E402
from scoring.indexing import index_and_analyze  # noqa: E402
from indexer.sources import read_dataset  # noqa: E402
from photos import write_photos  # noqa: E402
from store import open_store  # noqa: E402

RESULTS = ROOT / "bench" / "results"
MIN_SIDE = 224


class Clocked(Embedder):
    """The same model, noting the process's CPU time after each batch (all threads: decode
    workers, OpenVINO's, the writer). With reduced_decode=False it hides the model's input
    size, so the pipeline decodes JPEGs at full size."""

    def __init__(self, inner: Embedder, reduced_decode: bool = True) -> None:
        self.inner, self.name, self.dimension, self.device = inner, inner.name, inner.dimension, inner.device
        if reduced_decode and hasattr(inner, "input_size"):
            self.input_size = inner.input_size
        self.marks: list[tuple[int, float]] = []  # (images embedded so far, CPU seconds)

    def preprocess(self, image: Image.Image) -> Any:
        return self.inner.preprocess(image)

    def embed_batch(self, items: Sequence[Any]) -> np.ndarray:
        vectors = self.inner.embed_batch(items)
        done = self.marks[-1][0] if self.marks else 0
        self.marks.append((done + len(items), time.process_time()))
        return vectors

    def cpu_ms_per_image(self) -> float:
        """Between the first and the last batch: the steady state, without start-up and the end."""
        (first_count, first_cpu), (last_count, last_cpu) = self.marks[0], self.marks[-1]
        return (last_cpu - first_cpu) / (last_count - first_count) * 1000


def per_image_ms(step: Callable[[Any], object], inputs: Sequence[Any], repeats: int = 3) -> float:
    """Best of `repeats` passes, CPU milliseconds per input of this thread (so other jobs on the
    machine do not count)."""
    best = float("inf")
    for _ in range(repeats):
        started = time.thread_time()
        for item in inputs:
            step(item)
        best = min(best, (time.thread_time() - started) / len(inputs) * 1000)
    return best


def decode_eighth(data: bytes) -> Image.Image:
    """The decode floor: libjpeg's 1/8 scale is little more than Huffman decoding."""
    image = Image.open(io.BytesIO(data))
    image.draft("RGB", (image.width // 8, image.height // 8))
    image.load()
    return image


def decode_steps(paths: list[Path], folder: Path, embedder: Embedder) -> dict[str, float]:
    """One core's cost of each step a decode worker runs, per image, and of the whole step
    (`prepare_image_ms`: read, hash, reduced decode, metrics, preprocess)."""
    data = [p.read_bytes() for p in paths]
    wanted = {p.resolve() for p in paths}
    sources = [s for s in read_dataset(folder).images if s.path.resolve() in wanted]
    full = [decode_image(p, d).image for p, d in zip(paths, data)]
    reduced = [decode_image(p, d, MIN_SIDE, MAX_ANALYSIS_SIDE).image for p, d in zip(paths, data)]
    return {
        "file_kb": float(np.mean([len(d) for d in data]) / 1024),
        "sha1_ms": per_image_ms(lambda d: hashlib.sha1(d).hexdigest(), data),
        "pillow_decode_full_ms": per_image_ms(lambda d: Image.open(io.BytesIO(d)).convert("RGB"), data),
        "decode_full_ms": per_image_ms(lambda pd: decode_image(*pd), list(zip(paths, data))),
        "decode_reduced_ms": per_image_ms(lambda pd: decode_image(*pd, MIN_SIDE, MAX_ANALYSIS_SIDE),
                                          list(zip(paths, data))),
        "pillow_decode_eighth_floor_ms": per_image_ms(decode_eighth, data),
        "asarray_reduced_ms": per_image_ms(np.asarray, reduced),
        "metrics_full_ms": per_image_ms(lambda im: image_metrics(np.asarray(im)), full),
        "metrics_reduced_ms": per_image_ms(lambda im: image_metrics(np.asarray(im), (640, 480)), reduced),
        "resize_full_to_224_ms": per_image_ms(lambda im: im.resize((224, 224), Image.BILINEAR), full),
        "resize_reduced_to_224_ms": per_image_ms(lambda im: im.resize((224, 224), Image.BILINEAR), reduced),
        "preprocess_reduced_ms": per_image_ms(embedder.preprocess, reduced),
        "prepare_image_ms": per_image_ms(lambda s: prepare_image(s, embedder, None, True), sources),
    }


def bare_model_rate(embedder: Embedder, items: list[np.ndarray], batch: int, repeats: int = 3) -> tuple[float, float]:
    """(images/s, CPU ms per image) of embed_batch alone."""
    embedder.embed_batch(items[:batch])  # warm-up
    rates, cpu = [], []
    for _ in range(repeats):
        started, started_cpu = time.perf_counter(), time.process_time()
        for i in range(0, len(items), batch):
            embedder.embed_batch(items[i:i + batch])
        rates.append(len(items) / (time.perf_counter() - started))
        cpu.append((time.process_time() - started_cpu) / len(items) * 1000)
    return statistics.median(rates), statistics.median(cpu)


def pipeline_rate(folder: Path, embedder: Embedder, workers: int, batch: int,
                  reduced_decode: bool = True) -> tuple[float, float]:
    """(images/s, CPU ms per image) of a fresh index's embedding phase (the map after it is not timed)."""
    clocked = Clocked(embedder, reduced_decode)
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(path=str(Path(tmp) / "q"))
        try:
            options = IndexOptions(collection="photos", model=embedder.name, device="cpu", workers=workers,
                                   batch_size=batch, progress=False, analyze=False)
            rate = index_and_analyze(folder, store, options, embedder=clocked).images_per_second
        finally:
            store.close()
    return rate, clocked.cpu_ms_per_image()


def inference_precision() -> str:
    import openvino as ov

    precision = ov.Core().get_property("CPU", "INFERENCE_PRECISION_HINT")
    return precision.to_string() if hasattr(precision, "to_string") else str(precision)


def sweep(folder: Path, embedder: Embedder, batch: int) -> dict[str, list[float]]:
    """End to end (images/s, CPU ms per image) for other decode worker counts and batch sizes."""
    rates = {f"workers={w} batch={batch}": list(pipeline_rate(folder, embedder, w, batch)) for w in (1, 2, 3, 4)}
    rates.update({f"workers=2 batch={b}": list(pipeline_rate(folder, embedder, 2, b)) for b in (16, 64)})
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
            "inference_precision": inference_precision(),
            "decode_steps": decode_steps(paths[:200], folder, embedder)}
        items = [embedder.preprocess(decode_image(p, None, MIN_SIDE, MAX_ANALYSIS_SIDE).image) for p in paths[:640]]
        runs: dict[str, list[tuple[float, float]]] = {"bare": [], "end_to_end": [], "end_to_end_full_decode": []}
        for run in range(args.runs):
            runs["bare"].append(bare_model_rate(embedder, items, args.batch_size))
            runs["end_to_end"].append(pipeline_rate(folder, embedder, args.workers, args.batch_size))
            if args.full_decode:
                runs["end_to_end_full_decode"].append(
                    pipeline_rate(folder, embedder, args.workers, args.batch_size, reduced_decode=False))
            print(f"run {run + 1}: " + ", ".join(f"{k} {v[-1][0]:.1f} img/s {v[-1][1]:.2f} cpu-ms"
                                                  for k, v in runs.items() if v), file=sys.stderr)
        for name, values in runs.items():
            if values:
                result[f"{name}_img_s"] = statistics.median(rate for rate, _ in values)
                result[f"{name}_cpu_ms_per_image"] = statistics.median(cpu for _, cpu in values)
        result["ratio"] = result["end_to_end_img_s"] / result["bare_img_s"]
        # Load-independent: the share of the pipeline's CPU time that is the model's.
        result["cpu_ratio"] = result["bare_cpu_ms_per_image"] / result["end_to_end_cpu_ms_per_image"]
        floor = result["decode_steps"]["pillow_decode_eighth_floor_ms"]  # type: ignore[index]
        result["overhead_cpu_ms_per_image"] = result["end_to_end_cpu_ms_per_image"] - result["bare_cpu_ms_per_image"]
        result["best_cpu_ratio_at_decode_floor"] = result["bare_cpu_ms_per_image"] / (
            result["bare_cpu_ms_per_image"] + floor)
        result["all_runs"] = runs
        if args.sweep:
            result["sweep_img_s"] = sweep(folder, embedder, args.batch_size)
        result["load_after"] = os.getloadavg()[0]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "photos.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
