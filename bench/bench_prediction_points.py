"""What drawing a detector's false positives on the map costs (issue 20 item 4): writing the
prediction points (crop embedding, placement by the 10 nearest labelled boxes, upsert) beside
the missing-label ranking of the same run (crop embedding, a 10-neighbour vote), the baseline
measured in the same script on the same collection. Real mobilenet-v2 fp32, a real index run of
the missing-label fixture (tests/test_evaluation_missing_labels.py): per image two labelled
objects found, one unlabelled object and one background box predicted at equal confidence.

    .venv/bin/python bench/bench_prediction_points.py --images 60 --runs 3
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=60)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    from evaluation.evaluate import evaluate_run
    from evaluation.missing_labels import score_missing_labels
    from evaluation.prediction_points import write_prediction_points
    from evaluation.readers import import_detections
    from indexer.models import load_embedder
    from indexer.pipeline import IndexOptions
    from scoring.indexing import index_and_analyze
    from store import open_store
    from test_evaluation_missing_labels import missing_label_dataset

    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        os.environ["EMBEDSCAPE_ARTIFACTS"] = str(base / "artifacts")
        root, labels, predictions, _ = missing_label_dataset(base, args.images)
        (base / "run.json").write_text(json.dumps(predictions))
        embedder = load_embedder("mobilenet-v2", precision="fp32")
        store = open_store(path=str(base / "qdrant"))
        try:
            index_and_analyze(root, store, IndexOptions("m", "mobilenet-v2", labels_file=labels, progress=False,
                                                    analyze=False, precision="fp32"), embedder)
            objects, images = store.open("m-objects"), store.open("m")
            import_detections(objects, images, base / "run.json", "det")
            evaluation = evaluate_run(objects, images, "det")
            ranking_s, points_s = [], []
            for _ in range(args.runs):
                started = time.perf_counter()
                ranking = score_missing_labels(objects, images, evaluation, embedder)
                ranking_s.append(time.perf_counter() - started)
                started = time.perf_counter()
                written, _ = write_prediction_points(objects, images, evaluation, embedder, ranking)
                points_s.append(time.perf_counter() - started)
        finally:
            store.close()
    rank, points = statistics.median(ranking_s), statistics.median(points_s)
    print(json.dumps({"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                      "machine": f"{platform.machine()} {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}",
                      "images": args.images, "candidates": len(ranking.predictions), "points": written,
                      "ranking_s": round(rank, 3), "points_s": round(points, 3),
                      "ms_per_point": round(1000 * points / max(written, 1), 2),
                      "ratio_points_to_ranking": round(points / rank, 2)}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
