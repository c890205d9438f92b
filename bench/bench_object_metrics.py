"""What the object metrics (issue 22) cost: per image, the colour means added to the image
metrics; per box at `analyze`, the box metrics and the mask measures (rasterise, fill, Hu
shape); per metric, the IQR severity levels. Synthetic inputs of realistic sizes, medians of
repeated runs, each beside its baseline in the same process.

    python bench/bench_object_metrics.py [--runs 5] [--boxes 100000] [--masks 2000]

Writes bench/results/object_metrics.json; the table is in docs/BENCHMARKS.md.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis.image_metrics import _float_planes, image_metrics  # noqa: E402
from analysis.object_metrics import box_geometry, box_shape_features, shape_scores  # noqa: E402
from analysis.severity import iqr_fences, severity  # noqa: E402
from detection.masks import hu_features, rasterise  # noqa: E402
from scoring.object_metrics import mask_measures  # noqa: E402


def median_seconds(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return float(np.median(times))


def colour_cost(runs: int) -> dict:
    """image_metrics on a 640x480 photo-sized and a 28x28 picture, and the three channel means
    alone (the part this issue added) on the same planes."""
    rng = np.random.default_rng(0)
    out = {}
    for name, shape in (("640x480", (480, 640, 3)), ("28x28", (28, 28, 3))):
        rgb = rng.integers(0, 256, shape, dtype=np.uint8)
        planes = _float_planes(rgb, 512)
        repeat = 200 if shape[0] > 100 else 5000
        whole = median_seconds(lambda: [image_metrics(rgb) for _ in range(repeat)], runs) / repeat
        means = median_seconds(lambda: [[p.mean(dtype=np.float64) for p in planes] for _ in range(repeat)],
                               runs) / repeat
        out[name] = {"image_metrics_ms": whole * 1e3, "colour_means_ms": means * 1e3, "share": means / whole}
    return out


def box_cost(boxes: int, runs: int) -> dict:
    rng = np.random.default_rng(1)
    sizes = np.tile([640.0, 480.0], (boxes, 1))
    xy = rng.uniform(0, 300, (boxes, 2))
    wh = rng.uniform(5, 300, (boxes, 2))
    labels = rng.integers(0, 80, boxes).astype(str)
    bbox = np.column_stack([xy, wh])

    def run() -> None:
        box_geometry(bbox, sizes)
        shape_scores(labels, box_shape_features(bbox, sizes))

    seconds = median_seconds(run, runs)
    return {"boxes": boxes, "seconds": seconds, "boxes_per_second": boxes / seconds}


def mask_cost(masks: int, runs: int) -> dict:
    """COCO-like masks: a 24-point polygon around each box in a 640x480 image."""
    rng = np.random.default_rng(2)
    angles = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    records, boxes = [], []
    for _ in range(masks):
        cx, cy = rng.uniform(100, 540), rng.uniform(100, 380)
        rx, ry = rng.uniform(10, 90, 2)
        radius = 1 + 0.15 * rng.normal(size=24)
        xs, ys = cx + rx * radius * np.cos(angles), cy + ry * radius * np.sin(angles)
        records.append({"polygons": [np.column_stack([xs, ys]).ravel().tolist()]})
        boxes.append([xs.min(), ys.min(), np.ptp(xs), np.ptp(ys)])
    boxes_array, sizes = np.array(boxes), np.tile([640.0, 480.0], (masks, 1))
    seconds = median_seconds(lambda: mask_measures(records, boxes_array, sizes), runs)
    # Baseline: every mask drawn over the whole image (the first version), then the same shape.
    whole = median_seconds(lambda: [hu_features(rasterise(r, 640, 480)) for r in records], runs)
    return {"masks": masks, "seconds": seconds, "ms_per_mask": seconds / masks * 1e3,
            "baseline_whole_image_ms_per_mask": whole / masks * 1e3, "speedup": whole / seconds}


def severity_cost(values: int, runs: int) -> dict:
    data = np.random.default_rng(3).lognormal(size=values)
    seconds = median_seconds(lambda: severity(data, iqr_fences(data)), runs)
    return {"values": values, "seconds": seconds}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--boxes", type=int, default=100_000)
    parser.add_argument("--masks", type=int, default=2_000)
    args = parser.parse_args(argv)
    result = {"machine": platform.processor() or platform.machine(), "python": platform.python_version(),
              "at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "runs": args.runs,
              "colour": colour_cost(args.runs), "boxes": box_cost(args.boxes, args.runs),
              "masks": mask_cost(args.masks, max(1, args.runs // 2)), "severity": severity_cost(1_000_000, args.runs)}
    out = Path(__file__).with_name("results") / "object_metrics.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
