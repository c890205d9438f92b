"""A second "model" for any image folder that needs no weights: each image's pixels, grey and
shrunk to 16x16 (256-d), written as a `.npy` matrix with its CSV of paths, the input
`index --embeddings FILE --add-vector NAME2` takes. On the Fashion-MNIST demo it is the
baseline every learned embedding should beat, and a genuinely different neighbourhood for
`compare-models` to measure against mobilenet-v2:

    python scripts/pixel_vectors.py data/demo/fashion-mnist data/demo/pixels.npy
    python app.py index data/demo/fashion-mnist --collection fashion-mnist \\
        --embeddings data/demo/pixels.npy --model pixels-16x16 --add-vector pixels
    python app.py compare-models --collection fashion-mnist
"""
from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np
from PIL import Image

SIDE = 16
SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def pixel_vector(path: Path, side: int = SIDE) -> np.ndarray:
    """The image in grey, shrunk to side x side, centred: a float32 vector of side * side."""
    with Image.open(path) as image:
        grey = np.asarray(image.convert("L").resize((side, side), Image.BILINEAR), dtype=np.float32) / 255.0
    return (grey - grey.mean()).ravel()


def write_pixel_vectors(root: Path, out: Path, side: int = SIDE) -> int:
    """Write out (.npy) and out with .csv (its `path` column, relative to root); returns rows."""
    paths = sorted(p for p in root.rglob("*") if p.suffix.lower() in SUFFIXES and p.is_file())
    vectors = np.zeros((len(paths), side * side), dtype=np.float32)
    for row, path in enumerate(paths):
        vectors[row] = pixel_vector(path, side)
    vectors[np.abs(vectors).sum(axis=1) == 0, 0] = 1e-3  # a flat image: not an all-zero vector
    out.parent.mkdir(parents=True, exist_ok=True)
    np.save(out, vectors)
    with open(out.with_suffix(".csv"), "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path"])
        writer.writerows([[p.relative_to(root).as_posix()] for p in paths])
    return len(paths)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", type=Path, help="the image folder (the collection's PATH)")
    parser.add_argument("out", type=Path, help="the .npy to write (its .csv of paths beside it)")
    parser.add_argument("--side", type=int, default=SIDE, help=f"shrink to side x side pixels (default {SIDE})")
    args = parser.parse_args(argv)
    rows = write_pixel_vectors(args.root, args.out, args.side)
    print(f"{rows} images -> {args.out} ({args.side * args.side}-d) and {args.out.with_suffix('.csv')}")
    return 0 if rows else 1


if __name__ == "__main__":
    sys.exit(main())
