"""Density image of a map view: embedscape's numpy renderer beside datashader, same points.

    .venv/bin/python bench/bench_density.py [--points 1000000 10000000] [--runs 5]

Points: 10 labelled Gaussian clusters (as the UI benchmark's map), rendered on a 900 x 620
pixel view (the map's plot area in the UI benchmark's window) coloured by label:
  * ours: ui/map/density.py `render` (bins, per-pixel counts and colour sums, log opacity), then PNG;
  * datashader: Canvas.points + count_cat + shade(how="log") + to_pil, PNG, the usual pipeline.
Times are CPU seconds of this process (time.process_time: this machine is shared, and CPU time
is what a request costs), median of `runs`; datashader's first call (numba compiling its
aggregation) is reported apart. With a selection, ours draws twice (dimmed, then selected).
"""
from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ui.map import density  # noqa: E402
from ui.figure import PALETTE  # noqa: E402

VIEW = density.View(-26.0, 26.0, -26.0, 26.0, 900, 620)


def points(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 10, n).astype(np.uint16)
    angle = codes * (2 * np.pi / 10)
    x = (20 * np.cos(angle) + rng.normal(0, 1.5, n)).astype(np.float32)
    y = (20 * np.sin(angle) + rng.normal(0, 1.5, n)).astype(np.float32)
    return x, y, codes


def cpu(fn) -> float:
    started = time.process_time()
    fn()
    return time.process_time() - started


def ours(x, y, codes, selected=None) -> bytes:
    return density.png(density.render(x, y, codes, density.hex_colours(PALETTE[:10]), VIEW, selected))


def datashader_pipeline(frame) -> bytes:
    import datashader as ds
    import datashader.transfer_functions as tf

    canvas = ds.Canvas(plot_width=VIEW.width, plot_height=VIEW.height, x_range=(VIEW.x0, VIEW.x1),
                       y_range=(VIEW.y0, VIEW.y1))
    image = tf.shade(canvas.points(frame, "x", "y", ds.count_cat("c")), color_key=PALETTE[:10], how="log")
    buffer = io.BytesIO()
    image.to_pil().save(buffer, "PNG", compress_level=1)
    return buffer.getvalue()


def run(n: int, runs: int) -> dict[str, object]:
    x, y, codes = points(n)
    selected = np.zeros(n, dtype=bool)
    selected[: n // 10] = True
    result: dict[str, object] = {"points": n}
    times = [cpu(lambda: ours(x, y, codes)) for _ in range(runs)]
    result["ours_s"], result["ours_runs_s"] = round(statistics.median(times), 3), [round(t, 3) for t in times]
    times = [cpu(lambda: ours(x, y, codes, selected)) for _ in range(runs)]
    result["ours_with_selection_s"] = round(statistics.median(times), 3)
    try:
        import pandas as pd
    except ImportError:
        return result
    try:
        import datashader  # noqa: F401
    except ImportError:
        result["datashader"] = "not installed (pip install -r bench/requirements.txt)"
        return result
    frame = pd.DataFrame({"x": x, "y": y, "c": pd.Categorical(codes, categories=range(10))})
    result["datashader_first_call_s"] = round(cpu(lambda: datashader_pipeline(frame)), 3)
    times = [cpu(lambda: datashader_pipeline(frame)) for _ in range(runs)]
    result["datashader_s"] = round(statistics.median(times), 3)
    result["datashader_runs_s"] = [round(t, 3) for t in times]
    result["ratio_datashader_over_ours"] = round(result["datashader_s"] / result["ours_s"], 2)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--points", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    results = [run(n, args.runs) for n in args.points]
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "density.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
