"""Write a synthetic embeddings file: N clustered vectors with labels, for `index --embeddings`.

    python bench/make_embeddings.py OUT.parquet --rows 1000000 --dim 64 [--images FOLDER]

Vectors are drawn around 20 class centres (the label), so the map and the scores have
structure to find; 1% of the rows carry another class's label (mislabels to find). Written
in row groups of 100,000, so memory stays small at 10M rows. `--images FOLDER` also writes a
tiny PNG per row (only sensible for small N): without it, index with --allow-missing-files.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

CLASSES = 20
GROUP = 100_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fixed-size", action="store_true", help="fixed-size list column instead of list")
    parser.add_argument("--images", type=Path, help="also write a tiny PNG per row under this folder")
    args = parser.parse_args()
    write_embeddings(args.out, args.rows, args.dim, args.seed, args.fixed_size, args.images)


def write_embeddings(out: Path, rows: int, dim: int, seed: int = 0, fixed_size: bool = False,
                     images: Path | None = None) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(CLASSES, dim)).astype(np.float32) * 3
    vector_type = pa.list_(pa.float32(), dim) if fixed_size else pa.list_(pa.float32())
    schema = pa.schema([("path", pa.string()), ("embedding", vector_type), ("label", pa.string()),
                        ("split", pa.string())])
    out.parent.mkdir(parents=True, exist_ok=True)
    with pq.ParquetWriter(out, schema) as writer:
        for start in range(0, rows, GROUP):
            n = min(GROUP, rows - start)
            classes = rng.integers(0, CLASSES, n)
            vectors = centres[classes] + rng.normal(size=(n, dim)).astype(np.float32)
            shown = np.where(rng.random(n) < 0.01, rng.integers(0, CLASSES, n), classes)
            paths = [f"c{c:02d}/{start + i:08d}.png" for i, c in enumerate(classes)]
            values = pa.array(vectors.reshape(-1))
            column = (pa.FixedSizeListArray.from_arrays(values, dim) if fixed_size
                      else pa.ListArray.from_arrays(pa.array(np.arange(0, (n + 1) * dim, dim, dtype=np.int32)), values))
            writer.write_batch(pa.record_batch([pa.array(paths), column, pa.array([f"class-{c:02d}" for c in shown]),
                                                pa.array(np.where(rng.random(n) < 0.8, "train", "test"))],
                                               schema=schema))
            if images is not None:
                _write_images(images, paths, classes)


def _write_images(folder: Path, paths: list[str], classes: np.ndarray) -> None:
    from PIL import Image

    for path, c in zip(paths, classes):
        target = folder / path
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (8, 8), (int(c) * 12, 100, 200 - int(c) * 8)).save(target)


if __name__ == "__main__":
    main()
