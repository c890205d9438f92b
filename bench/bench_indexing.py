"""Indexing benchmark: end-to-end images/s against the bare model, in fp32 and bf16, peak
memory, read-back time.

    .venv/bin/python bench/bench_indexing.py [--images 10000] [--runs 3] [--full-memory]
    .venv/bin/python bench/bench_indexing.py --agreement-only [--agreement-images 10000]

The bare model number is `embed_batch` on already-preprocessed tensors held in memory,
measured in the same process and run as the pipeline, so the ratio compares like with like.
Each run measures every precision this CPU runs natively (fp32 always, bf16 where OpenVINO
reports BF16), bare and end to end, interleaved so that a change of load hits both; the bare
model is also timed at 224x224 input (photos) besides Fashion-MNIST's 28x28.

Agreement of bf16 with fp32 (the basis of tests/test_indexer_precision.py's bounds): median
and minimum cosine between each image's two vectors, and the share of each image's 10 nearest
neighbours kept, on the first `--agreement-images` Fashion-MNIST test images in the dataset's
own (class-mixed) order, as the test takes them, and over their disjoint sets of 256, beside
the same numbers for fp32 of the images shifted by one pixel (a small but wrong change).
Results go to bench/results/indexing.json and stdout (JSON).
"""
from __future__ import annotations

import argparse
import json
import os
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
from indexer.models import cpu_runs_bf16_natively, load_embedder  # noqa: E402
from indexer.pipeline import IndexOptions  # noqa: E402
from scoring.indexing import index_and_analyze  # noqa: E402
from store import open_store  # noqa: E402

RESULTS = ROOT / "bench" / "results"


def bare_model_rate(images: list[Image.Image], batch: int = 32, repeats: int = 3, runtime: str = "auto",
                    precision: str = "fp32") -> float:
    embedder = load_embedder("mobilenet-v2", "cpu", runtime, precision)
    items = [embedder.preprocess(im) for im in images]
    embedder.embed_batch(items[:batch])  # warm-up
    rates = []
    for _ in range(repeats):
        started = time.perf_counter()
        for i in range(0, len(items), batch):
            embedder.embed_batch(items[i:i + batch])
        rates.append(len(items) / (time.perf_counter() - started))
    return statistics.median(rates)


def paired_speedups(images: list[Image.Image], rounds: int = 9, batch: int = 32) -> dict[str, object]:
    """bf16 over fp32 of the bare model, from back-to-back pairs of short timings (one pass
    over `images` each, the order alternating), so that a change of machine load between two
    long runs cannot masquerade as a speed-up. Median of the per-pair ratios."""
    models = {p: load_embedder("mobilenet-v2", "cpu", "openvino", p) for p in ("fp32", "bf16")}
    items = [models["fp32"].preprocess(im) for im in images]

    def rate(precision: str) -> float:
        started = time.perf_counter()
        for i in range(0, len(items), batch):
            models[precision].embed_batch(items[i:i + batch])
        return len(items) / (time.perf_counter() - started)

    for precision in models:
        rate(precision)  # warm-up
    pairs = []
    for round_ in range(rounds):
        order = ("fp32", "bf16") if round_ % 2 == 0 else ("bf16", "fp32")
        timed = {precision: rate(precision) for precision in order}
        pairs.append(timed)
    ratios = [pair["bf16"] / pair["fp32"] for pair in pairs]
    return {"images": len(items), "rounds": rounds, "median_ratio": statistics.median(ratios),
            "ratios": ratios, "fp32_img_s": [p["fp32"] for p in pairs], "bf16_img_s": [p["bf16"] for p in pairs]}


def pipeline_rate(folder: Path, limit: int, metrics: bool = True, precision: str = "fp32") -> float:
    """Embedding phase of a fresh index (decode + metrics + preprocess + embed + write), images/s."""
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(path=str(Path(tmp) / "q"))
        embedder = load_embedder("mobilenet-v2", "cpu", precision=precision)
        options = IndexOptions(collection="bench", model="mobilenet-v2", limit=limit, device="cpu", progress=False,
                               image_metrics=metrics, precision=precision)
        report = index_and_analyze(folder, store, options, embedder=embedder)
        store.close()
        return report.images_per_second


def embed_all(images: list[Image.Image], precision: str, batch: int = 32) -> np.ndarray:
    embedder = load_embedder("mobilenet-v2", "cpu", "openvino", precision)
    items = [embedder.preprocess(im) for im in images]
    return np.vstack([embedder.embed_batch(items[i:i + batch]) for i in range(0, len(items), batch)])


def agreement(vectors: np.ndarray, reference: np.ndarray, k: int = 10) -> dict[str, float]:
    """Median / minimum cosine between each image's two vectors, and the share of each image's
    k nearest neighbours (within the set) that both agree on. Same definition as the test's."""
    cosine = np.sum(vectors * reference, axis=1)

    def neighbours(v: np.ndarray) -> np.ndarray:
        similarity = v @ v.T
        np.fill_diagonal(similarity, -np.inf)
        return np.argpartition(-similarity, k, axis=1)[:, :k]

    kept = [len(set(a) & set(b)) / k for a, b in zip(neighbours(vectors), neighbours(reference))]
    return {"median_cosine": float(np.median(cosine)), "min_cosine": float(cosine.min()),
            "neighbours_kept": float(np.mean(kept))}


def agreement_report(vectors: np.ndarray, reference: np.ndarray, set_size: int = 256) -> dict[str, object]:
    """Agreement on the whole sample and its range over disjoint sets of `set_size` images."""
    sets = [agreement(vectors[i:i + set_size], reference[i:i + set_size])
            for i in range(0, len(vectors) - set_size + 1, set_size)]
    spread = {f"sets_of_{set_size}": len(sets)}
    for key in ("median_cosine", "min_cosine", "neighbours_kept"):
        spread[f"{key}_range"] = [min(s[key] for s in sets), max(s[key] for s in sets)] if sets else []
    return {"images": len(vectors), **agreement(vectors, reference), **spread}


def precision_agreement(count: int) -> dict[str, object]:
    """bf16 against fp32, and (the yardstick of a wrong embedding) fp32 of the images shifted
    one pixel against fp32, on the first `count` Fashion-MNIST test images."""
    from indexer.demo import load_split

    pixels, _ = load_split("test", ROOT / "data" / "bench" / "download")
    images = [Image.fromarray(p, "L").convert("RGB") for p in pixels[:count]]
    fp32 = embed_all(images, "fp32")
    shifted = [Image.fromarray(np.roll(np.asarray(im), 1, axis=1)) for im in images]
    result = {"fp32_shifted_one_pixel_vs_fp32": agreement_report(embed_all(shifted, "fp32"), fp32)}
    if cpu_runs_bf16_natively():
        result["bf16_vs_fp32"] = agreement_report(embed_all(images, "bf16"), fp32)
    return result


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


def measure_rates(sample: list[Image.Image], folder: Path, images: int, runs: int,
                  precisions: list[str]) -> dict[str, list[float]]:
    """img/s of every variant, per run; the variants are interleaved within each run."""
    large = [im.resize((224, 224), Image.BILINEAR) for im in sample[:256]]  # photos arrive as 224x224
    rates: dict[str, list[float]] = {}
    for _ in range(runs):
        for precision in precisions:
            rates.setdefault(f"bare_{precision}", []).append(bare_model_rate(sample, precision=precision))
            rates.setdefault(f"bare_224px_{precision}", []).append(bare_model_rate(large, precision=precision))
            rates.setdefault(f"pipeline_{precision}", []).append(pipeline_rate(folder, images, precision=precision))
        rates.setdefault("bare_onnxruntime_fp32", []).append(bare_model_rate(sample, runtime="onnxruntime"))
        rates.setdefault("pipeline_without_metrics_fp32", []).append(pipeline_rate(folder, images, metrics=False))
        print({key: round(values[-1], 1) for key, values in rates.items()}, file=sys.stderr)
    return rates


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            return line.partition(":")[2].strip()
    return platform.processor() or platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--full-memory", action="store_true", help="also index all 70,000 (slow)")
    parser.add_argument("--agreement-images", type=int, default=2048,
                        help="Fashion-MNIST test images on which bf16 is compared with fp32 (up to 10,000)")
    parser.add_argument("--agreement-only", action="store_true", help="only the bf16 / fp32 agreement")
    parser.add_argument("--read-back-only", action="store_true",
                        help="only time the read-back of the 70,000-point collection a --full-memory run left")
    args = parser.parse_args()
    if args.read_back_only:
        print(json.dumps(read_back_only(ROOT / "data" / "bench" / "qdrant", "fmnist-full"), indent=2))
        return
    if args.agreement_only:
        result = {"machine": f"{cpu_model()}, {os.cpu_count()} cores", "date": time.strftime("%Y-%m-%d"),
                  **precision_agreement(args.agreement_images)}
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "precision_agreement.json").write_text(json.dumps(result, indent=2))
        print(json.dumps(result, indent=2))
        return
    data = ROOT / "data" / "bench"
    folder = materialise(data / ("fashion-mnist-full" if args.full_memory else "fashion-mnist"), full=args.full_memory)
    paths = sorted(folder.rglob("*.png"))[:2000]
    sample = [Image.open(p).convert("RGB") for p in paths]
    results: dict[str, object] = {"machine": f"{cpu_model()}, {os.cpu_count()} cores ({platform.node()})",
                                  "date": time.strftime("%Y-%m-%d"), "images": args.images, "runs": args.runs}
    results["runtime"] = load_embedder("mobilenet-v2", "cpu").runtime
    results["load_before"] = os.getloadavg()[0]
    precisions = ["fp32", "bf16"] if cpu_runs_bf16_natively() else ["fp32"]
    results["precisions"] = precisions
    runs = measure_rates(sample, folder, args.images, args.runs, precisions)
    results["img_s"] = medians = {key: statistics.median(values) for key, values in runs.items()}
    results["runs_img_s"] = runs
    results["ratio_end_to_end_over_bare"] = {p: medians[f"pipeline_{p}"] / medians[f"bare_{p}"] for p in precisions}
    if "bf16" in precisions:
        results["bf16_speedup"] = {kind: medians[f"{kind}_bf16"] / medians[f"{kind}_fp32"]
                                   for kind in ("bare", "bare_224px", "pipeline")}
        results["bf16_speedup_paired"] = {"28px": paired_speedups(sample[:256]),
                                          "224px": paired_speedups([im.resize((224, 224)) for im in sample[:64]])}
    # Time per image with metrics over time per image without: the cost metrics add.
    results["metrics_time_overhead"] = medians["pipeline_without_metrics_fp32"] / medians["pipeline_fp32"] - 1
    results["agreement"] = precision_agreement(args.agreement_images)
    results["load_after"] = os.getloadavg()[0]
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
