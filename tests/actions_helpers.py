"""Test data for the action tests (export, subsets, push, CLI): a small collection written
straight through the store API, with tiny PNGs on disk, tags, scores and an excluded point."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from store import Collection, Store, point_id

LABELS = ("cat", "dog", "bird")
DIM = 8
N = 30


def payload_for(i: int) -> dict[str, Any]:
    label = LABELS[i % 3]
    tags = []
    if i % 4 == 0:
        tags.append("snowy")
    if i % 5 == 0:
        tags.append("blurry")
    if i == 7:
        tags.append("excluded")
    return {"path": f"{label}/img{i:02d}.png", "label": label, "labels": [label], "tags": tags,
            "split": "train" if i % 2 else "test", "x": float(i), "y": float(-i), "width": 8, "height": 6,
            "sha1": f"{i:040d}", "mislabel_score": round(i / N, 4), "brightness": float((i * 37) % 100)}


def build_collection(store: Store, root: Path | None = None, name: str = "things", n: int = N,
                     seed: int = 0) -> tuple[Collection, dict[str, dict[str, Any]], np.ndarray]:
    """`n` points (payload_for(i)); PNGs under `root` when given (source_root metadata)."""
    rng = np.random.default_rng(seed)
    metadata: dict[str, Any] = {"model": "test"}
    if root is not None:
        from PIL import Image

        for i in range(n):
            path = root / payload_for(i)["path"]
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8), "RGB").save(path)
        metadata["source_root"] = str(root)
    collection = store.create(name, DIM, metadata)
    for field in ("label", "tags", "path", "split", "sha1"):
        collection.create_index(field, "keyword")
    for field in ("mislabel_score", "brightness"):
        collection.create_index(field, "float")
    payloads = {point_id(payload_for(i)["path"]): payload_for(i) for i in range(n)}
    vectors = rng.normal(size=(n, DIM)).astype(np.float32)
    collection.upsert(list(payloads), vectors, list(payloads.values()))
    collection.flush()
    return collection, payloads, vectors


def ids_where(payloads: dict[str, dict[str, Any]], keep) -> set[str]:
    return {pid for pid, p in payloads.items() if keep(p)}


def visible(p: dict[str, Any]) -> bool:
    return "excluded" not in p["tags"]
