"""`index --embeddings` at scale: where the time of a 1M-row run goes, and the write rate
against the bare engine.

    flock /work/bench.lock .venv/bin/python bench/bench_embeddings_file.py --rows 1000000 --dim 64 --runs 3

Each run indexes the same synthetic Parquet file (bench/make_embeddings.py: 20 classes, 1%
mislabelled, no image files, so --allow-missing-files) into a fresh embedded collection and
times each phase: the check pass, the write pass, reading the vectors back + the kNN graph,
the projection, the quality scores, the rest (map coordinates written, optimize, report).
The baseline is the bare engine: the same rows (ids, vectors, the same payload keys) upserted
into qdrant-edge directly in batches, with no check and no writer thread; it is the floor any
importer over this engine pays. `--phases write` stops after the write pass (for 10M rows).
Prints a JSON summary (medians) at the end.
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import numpy as np  # noqa: E402

import indexer.pipeline as pipeline  # noqa: E402
from indexer.embeddings_file import EmbeddingsInput, index_embeddings, open_embeddings  # noqa: E402
from indexer.pipeline import IndexOptions  # noqa: E402
from make_embeddings import write_embeddings  # noqa: E402
from store import open_store, point_id  # noqa: E402


class PhaseTimer:
    """Wraps the pipeline's graph and projection functions to time them inside a real run."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._originals: dict[str, Any] = {}

    def wrap(self, name: str, label: str) -> None:
        original = getattr(pipeline, name)
        self._originals[name] = original

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[label] = self.seconds.get(label, 0.0) + time.perf_counter() - started

        setattr(pipeline, name, timed)

    def restore(self) -> None:
        for name, original in self._originals.items():
            setattr(pipeline, name, original)


def bare_engine_write(file: Path, folder: Path, dim: int) -> float:
    """Rows/s of upserting the file's rows into qdrant-edge with nothing else going on."""
    import pyarrow.parquet as pq

    store = open_store(path=str(folder))
    collection = store.create("bare", dim, {})
    started = time.perf_counter()
    rows = 0
    for batch in pq.ParquetFile(file).iter_batches(batch_size=4096):
        paths = batch.column("path").to_pylist()
        vectors = np.asarray(batch.column("embedding").flatten().to_numpy(), np.float32).reshape(-1, dim)
        payloads = [{"path": p, "label": lab, "split": s} for p, lab, s in
                    zip(paths, batch.column("label").to_pylist(), batch.column("split").to_pylist())]
        collection.upsert([point_id(p) for p in paths], vectors, payloads)
        rows += len(paths)
    collection.flush()
    seconds = time.perf_counter() - started
    store.close()
    return rows / seconds


def one_run(file: Path, folder: Path, phases: str) -> dict[str, float]:
    timer = PhaseTimer()
    timer.wrap("build_knn_graph", "knn_graph")
    timer.wrap("project", "projection")
    store = open_store(path=str(folder / "qdrant"))
    images = folder / "images"
    images.mkdir(exist_ok=True)
    options = IndexOptions(collection="bench", model="synthetic", progress=False, analyze=phases == "all")
    started = time.perf_counter()
    try:
        if phases == "write":
            from indexer.embeddings_file import check_embeddings, write_embeddings

            reader = open_embeddings(file)
            checked = check_embeddings(reader, images.resolve(), None, check_files=False, progress=False)
            check_s = time.perf_counter() - started
            collection = store.create("bench", checked.dimension, {})
            written_at = time.perf_counter()
            rows = write_embeddings(collection, reader, images.resolve(), checked.dimension, progress=False)
            collection.flush()
            write_s = time.perf_counter() - written_at
            return {"rows": rows, "check_s": check_s, "write_s": write_s, "write_rows_per_s": rows / write_s,
                    "total_s": time.perf_counter() - started}
        report = index_embeddings(images, store, options, EmbeddingsInput(file, allow_missing_files=True))
    finally:
        store.close()
        timer.restore()
    total = time.perf_counter() - started
    result = {"rows": report.found, "check_s": report.check_seconds, "write_s": report.embed_seconds,
              "write_rows_per_s": report.embedded / report.embed_seconds, **{f"{k}_s": v for k, v in timer.seconds.items()},
              "map_total_s": report.projection_seconds, "total_s": total}
    result["analysis_and_rest_s"] = total - report.check_seconds - report.embed_seconds - report.projection_seconds
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--phases", choices=["all", "no-analyze", "write"], default="all")
    parser.add_argument("--baseline-runs", type=int, default=1)
    parser.add_argument("--workdir", type=Path, help="keep data here (default: a temporary folder)")
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-embeddings-"))
    file = work / f"embeddings-{args.rows}x{args.dim}.parquet"
    if not file.exists():
        write_embeddings(file, args.rows, args.dim)
    baseline = []
    for run in range(args.baseline_runs):
        shutil.rmtree(work / "bare", ignore_errors=True)
        baseline.append(bare_engine_write(file, work / "bare", args.dim))
        print(f"bare engine run {run + 1}: {baseline[-1]:.0f} rows/s", flush=True)
    shutil.rmtree(work / "bare", ignore_errors=True)
    runs = []
    for run in range(args.runs):
        shutil.rmtree(work / "run", ignore_errors=True)
        (work / "run").mkdir(parents=True)
        runs.append(one_run(file, work / "run", args.phases))
        print(f"run {run + 1}: " + json.dumps({k: round(v, 2) for k, v in runs[-1].items()}), flush=True)
    shutil.rmtree(work / "run", ignore_errors=True)
    medians = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
    bare = statistics.median(baseline) if baseline else float("nan")
    print(json.dumps({"rows": args.rows, "dim": args.dim, "runs": args.runs, "phases": args.phases,
                      "medians": {k: round(v, 2) for k, v in medians.items()},
                      "bare_engine_rows_per_s": round(bare), "write_vs_bare": round(medians["write_rows_per_s"] / bare, 2)},
                     indent=2))


if __name__ == "__main__":
    main()
