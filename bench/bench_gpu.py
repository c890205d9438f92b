"""GPU throughput of the embedders: a CLIP ViT-B/32-sized model and mobilenet-v2, on CUDA.

    python bench/bench_gpu.py --out results.json

A random-weight CLIP with ViT-B/32's shape (transformers' default CLIPConfig) is saved to a
folder and loaded through sentence-transformers, the path real CLIP takes; random weights
cost the same compute. Measured: the bare model on images already in memory, and the
decode + preprocess + embed loop the indexer runs (`indexer.pipeline` without the store,
which the lent GPU machine cannot install), both median of 3 runs.
"""
from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from imaging.images import decode_image  # noqa: E402
from indexer.models import Embedder, load_embedder  # noqa: E402


def random_clip_b32(folder: Path) -> Path:
    from transformers import CLIPConfig, CLIPModel, CLIPProcessor, CLIPTokenizer, CLIPImageProcessor

    config = CLIPConfig()  # defaults: ViT-B/32 vision tower, 512-d projection
    CLIPModel(config).save_pretrained(folder)
    vocab = {c: i for i, c in enumerate(sorted({chr(i) for i in range(33, 127)}))}
    vocab.update({k + "</w>": len(vocab) + i for i, k in enumerate(list(vocab))})
    vocab.update({"<|startoftext|>": len(vocab), "<|endoftext|>": len(vocab) + 1})
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"))
    CLIPProcessor(CLIPImageProcessor(), tokenizer).save_pretrained(folder)
    return folder


def encoded_images(count: int, size: int = 256) -> list[bytes]:
    rng = np.random.default_rng(0)
    out = []
    for _ in range(count):
        buffer = io.BytesIO()
        Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(buffer, "JPEG", quality=90)
        out.append(buffer.getvalue())
    return out


def bare_rate(embedder: Embedder, images: list[Image.Image], batch: int) -> float:
    items = [embedder.preprocess(im) for im in images]
    embedder.embed_batch(items[:batch])
    started = time.perf_counter()
    for i in range(0, len(items), batch):
        embedder.embed_batch(items[i:i + batch])
    return len(items) / (time.perf_counter() - started)


def pipeline_rate(embedder: Embedder, files: list[bytes], batch: int, workers: int) -> float:
    def work(data: bytes):
        return embedder.preprocess(decode_image(Path("x.jpg"), data).image)

    started = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        pending: list = []
        for item in pool.map(work, files):
            pending.append(item)
            if len(pending) == batch:
                embedder.embed_batch(pending)
                pending = []
        if pending:
            embedder.embed_batch(pending)
    return len(files) / (time.perf_counter() - started)


def measure(embedder: Embedder, files: list[bytes], batch: int, workers: int) -> dict[str, float]:
    images = [decode_image(Path("x.jpg"), f).image for f in files]
    bare = [bare_rate(embedder, images, batch) for _ in range(3)]
    pipe = [pipeline_rate(embedder, files, batch, workers) for _ in range(3)]
    return {"bare_img_s": statistics.median(bare), "pipeline_img_s": statistics.median(pipe),
            "ratio": statistics.median(pipe) / statistics.median(bare), "bare_runs": bare, "pipeline_runs": pipe}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=2048)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--workers", type=int, default=12)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "gpu.json")
    args = parser.parse_args()
    import torch

    files = encoded_images(args.images)
    results: dict[str, object] = {"device": torch.cuda.get_device_name(0) if args.device == "cuda" else "cpu", "torch": torch.__version__,
                                  "images": args.images, "batch": args.batch, "workers": args.workers,
                                  "date": time.strftime("%Y-%m-%d")}
    with tempfile.TemporaryDirectory() as tmp:
        clip = load_embedder(str(random_clip_b32(Path(tmp))), args.device)
        results["clip_vit_b32"] = measure(clip, files, args.batch, args.workers)
    try:
        results["mobilenet_v2"] = measure(load_embedder("mobilenet-v2", args.device), files, args.batch, args.workers)
    except Exception as error:  # weights package not installed there
        results["mobilenet_v2"] = f"not run: {error}"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
