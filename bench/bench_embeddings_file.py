"""`index --embeddings` at scale: where the time of a 1M-row run goes, and the write rate
against the bare engine.

    .venv/bin/python bench/bench_embeddings_file.py --rows 1000000 --dim 64 --runs 3

Each run indexes the same synthetic Parquet file (bench/make_embeddings.py: 20 classes, 1%
mislabelled, no image files, so --allow-missing-files) into a fresh embedded collection and
times each phase: the check pass, the write pass, reading the vectors back + the kNN graph,
the projection, the quality scores, the rest (map coordinates written, optimize, report).
The baseline is the bare engine: the same rows (ids, vectors, the same payload keys) upserted
into qdrant-edge directly in batches, with no check and no writer thread, then the same payload
indexes (label, split, tags) built; it is the floor any importer over this engine pays.

Large runs go in pieces (each under the benchmark lock for a while only), on a collection kept
in --workdir: `--phases write` (check + write + optimize, leaves the collection),
then `--phases graph` (read the vectors back, build and save the kNN graph), then
`--phases analysis` (the quality scores over the saved graph, written into the payloads).
The projection is timed by bench/bench_projection.py. Prints a JSON summary (medians).
"""
from __future__ import annotations

import argparse
import json
import os
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
from indexer.embeddings_file import EmbeddingsInput, open_embeddings  # noqa: E402
from indexer.pipeline import IndexOptions  # noqa: E402
from make_embeddings import write_embeddings  # noqa: E402
from scoring.indexing import embeddings_and_analyze  # noqa: E402
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
    for name in pipeline.KEYWORD_INDEXES:  # the payload indexes an indexed collection has, built after the write
        collection.create_index(name, "keyword")
    collection.flush()
    seconds = time.perf_counter() - started
    store.close()
    return rows / seconds


def kept_collection_phase(folder: Path, phase: str) -> dict[str, float]:
    """Time the graph or the analysis on the collection a `write` run left in `folder`."""
    from analysis.knn import GRAPH_FILE, build_knn_graph
    from scoring.analyze import analyze_collection

    store = open_store(path=str(folder / "qdrant"))
    try:
        collection = store.open("bench")
        started = time.perf_counter()
        if phase == "graph":
            ids, vectors = collection.vectors()
            read = time.perf_counter() - started
            graph = build_knn_graph(ids, vectors, k=15)
            graph.save(collection.artifact_dir / GRAPH_FILE)
            return {"rows": len(ids), "read_vectors_s": read, "knn_graph_s": time.perf_counter() - started - read}
        summary = analyze_collection(collection, add_metrics=False)
        return {"rows": summary.points, "analysis_s": time.perf_counter() - started}
    finally:
        store.close()


def one_run(file: Path, folder: Path, phases: str) -> dict[str, float]:
    timer = PhaseTimer()
    timer.wrap("build_knn_graph", "knn_graph")
    timer.wrap("project", "projection")
    store = open_store(path=str(folder / "qdrant"))
    images = folder / "images"
    images.mkdir(exist_ok=True)
    options = IndexOptions(collection="bench", model="synthetic", progress=False, analyze=phases == "all",
                           image_metrics=False)
    started = time.perf_counter()
    try:
        if phases == "write":
            from indexer.embeddings_file import check_embeddings, write_embeddings

            reader = open_embeddings(file)
            checked = check_embeddings(reader, images.resolve(), None, check_files=False, progress=False)
            check_s = time.perf_counter() - started
            from indexer.embeddings_file import LAYOUT, FileVectors
            from indexer.pipeline import create_payload_indexes, open_collection
            from indexer.sources import Dataset

            # As index_embeddings does it: the payload indexes (label, split, tags) after the write.
            collection = open_collection(store, options, FileVectors("synthetic", checked.dimension),
                                         Dataset(images.resolve(), LAYOUT, []), with_indexes=False)
            written_at = time.perf_counter()
            rows = write_embeddings(collection, reader, images.resolve(), checked.dimension, progress=False)
            create_payload_indexes(collection, options)
            collection.flush()
            write_s = time.perf_counter() - written_at
            collection.optimize()
            return {"rows": rows, "check_s": check_s, "write_s": write_s, "write_rows_per_s": rows / write_s,
                    "optimize_s": time.perf_counter() - written_at - write_s, "total_s": time.perf_counter() - started}
        report = embeddings_and_analyze(images, store, options, EmbeddingsInput(file, allow_missing_files=True))
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
    parser.add_argument("--phases", choices=["all", "no-analyze", "write", "graph", "analysis"], default="all")
    parser.add_argument("--baseline-runs", type=int, default=1, help="0 for the graph and analysis phases")
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
        if args.phases in ("graph", "analysis"):
            runs.append(kept_collection_phase(work / "run", args.phases))
        else:
            shutil.rmtree(work / "run", ignore_errors=True)
            (work / "run").mkdir(parents=True)
            runs.append(one_run(file, work / "run", args.phases))
        print(f"run {run + 1}: " + json.dumps({k: round(v, 2) for k, v in runs[-1].items()}), flush=True)
    if args.phases not in ("write", "graph"):  # a kept collection is what the next phase reads
        shutil.rmtree(work / "run", ignore_errors=True)
    medians = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
    bare = statistics.median(baseline) if baseline else float("nan")
    summary = {"rows": args.rows, "dim": args.dim, "runs": args.runs, "phases": args.phases,
               "medians": {k: round(v, 2) for k, v in medians.items()}, "load_average": os.getloadavg()}
    if baseline:
        summary.update(bare_engine_rows_per_s=round(bare), write_vs_bare=round(medians["write_rows_per_s"] / bare, 2))
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
