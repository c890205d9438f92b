"""Index a dataset into a collection: decode, embed, write, then build the graph and the map.

Decoding and preprocessing run in a thread pool, a bounded window ahead of inference, so
the model never waits on file I/O and memory stays flat however large the dataset. Each
batch is written (by one writer thread, while the next batch is embedded) as soon as it is
embedded: a killed run loses nothing already written,
and the next run embeds only files that are new or whose content hash changed.
"""
from __future__ import annotations

import hashlib
import json
import time
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from analysis.image_metrics import MAX_ANALYSIS_SIDE, METRIC_FIELDS, image_metrics
from analysis.knn import GRAPH_FILE, build_knn_graph
from indexer.images import ImageSkipped, decode_image
from indexer.models import DEFAULT_MODEL, Embedder, load_embedder
from indexer.projection import ProjectionConfig, project, projection_method
from indexer.sources import Dataset, ImageSource, SourceError, read_dataset
from store import Collection, Store, point_id

REPORT_FILE = "index-report.json"
# Only fields something filters or facets on. `path` and `sha1` are read, never filtered on, and
# an index on a field unique per point is a map the embedded engine rebuilds in RAM on every
# open (~0.1 s each at 70,000 points: a third of the time to open the collection).
KEYWORD_INDEXES = ("label", "tags", "split")
UNUSED_INDEXES = ("path", "sha1")  # collections indexed before this change have them: dropped
PROJECTION_FIELDS = ("x", "y")


@dataclass
class IndexOptions:
    collection: str
    model: str = DEFAULT_MODEL
    labels_file: Path | None = None
    limit: int | None = None
    device: str = "auto"
    runtime: str = "auto"  # mobilenet-v2 on the CPU: openvino / onnxruntime / torch
    batch_size: int = 32
    workers: int = 2
    neighbours: int = 15
    projection: ProjectionConfig = field(default_factory=ProjectionConfig)
    image_metrics: bool = True  # brightness, sharpness, ... from the pixels decoded for embedding
    analyze: bool = True  # mislabel / outlier / duplicate scores over the new graph
    progress: bool = True


@dataclass
class IndexReport:
    collection: str
    source_root: str
    found: int = 0
    embedded: int = 0
    unchanged: int = 0
    relabelled: int = 0
    removed: list[str] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    embed_seconds: float = 0.0
    projection_seconds: float = 0.0
    total_points: int = 0
    report_file: str = ""
    quality: str = ""

    @property
    def images_per_second(self) -> float:
        return self.embedded / self.embed_seconds if self.embed_seconds else 0.0

    def summary(self) -> str:
        return (f"{self.collection}: {self.found} images found, {self.embedded} embedded "
                f"({self.images_per_second:.0f} img/s), {self.unchanged} unchanged, {len(self.skipped)} skipped, "
                f"{len(self.removed)} removed; {self.total_points} points in the collection")


@dataclass
class _Work:
    """One file after the decode workers: ready to embed, unchanged, or skipped."""

    source: ImageSource
    sha1: str = ""
    item: Any = None
    width: int = 0
    height: int = 0
    metrics: dict[str, float] = field(default_factory=dict)
    skip_reason: str = ""


def index_dataset(root: str | Path, store: Store, options: IndexOptions,
                  embedder: Embedder | None = None) -> IndexReport:
    """Index (or re-index) the images under `root` into `options.collection`."""
    dataset = read_dataset(root, options.labels_file)
    sources = dataset.images[: options.limit] if options.limit else dataset.images
    if not sources:
        raise SourceError(f"no images found under {dataset.root} (looked for common image extensions, "
                          "recursively); check the path")
    embedder = embedder or load_embedder(options.model, options.device, options.runtime)
    collection = _open_collection(store, options, embedder, dataset)
    report = IndexReport(options.collection, str(dataset.root), found=len(sources), problems=dataset.problems)
    sources = _with_usable_names(sources, report)
    known = collection.columns(["sha1", "label", "split", "original_label"])
    known_rows = {pid: i for i, pid in enumerate(known.ids)}
    relabelled: list[ImageSource] = []
    started = time.perf_counter()
    # One writer thread: batch n is written to Qdrant while batch n+1 is embedded.
    with ThreadPoolExecutor(max_workers=1) as writer:
        writing: Future[None] | None = None
        for batch in _batched(_decoded(sources, embedder, known, known_rows, options, report, relabelled),
                              options.batch_size):
            vectors = embedder.embed_batch([w.item for w in batch])
            if writing is not None:
                writing.result()  # at most one batch in flight; a failed write stops the run here
            writing = writer.submit(_write_batch, collection, vectors, batch, known_rows)
            report.embedded += len(batch)
        if writing is not None:
            writing.result()
    report.embed_seconds = time.perf_counter() - started
    _write_labels(collection, relabelled)
    report.relabelled = len(relabelled)
    report.removed = _drop_removed(collection, dataset)
    collection.flush()
    _build_map(collection, options, report)
    if options.analyze and collection.count() >= 2:
        from indexer.quality import analyze_collection

        report.quality = analyze_collection(collection, add_metrics=False).summary()
    collection.flush()
    collection.optimize()
    report.total_points = collection.count()
    _save_report(collection, report)
    return report


def _open_collection(store: Store, options: IndexOptions, embedder: Embedder, dataset: Dataset) -> Collection:
    metadata = {"source_root": str(dataset.root), "layout": dataset.layout, "model": embedder.name,
                "has_text_encoder": embedder.has_text, "created_at": _now()}
    collection = store.open_or_create(options.collection, embedder.dimension, metadata)
    existing = collection.read_metadata()
    if existing.get("model") not in (None, embedder.name):
        raise SourceError(f"collection '{options.collection}' was indexed with model {existing['model']}; "
                          f"index with --model {existing['model']} or choose a new --collection")
    if existing.get("source_root") not in (None, str(dataset.root)):
        raise SourceError(f"collection '{options.collection}' indexes {existing['source_root']}, not "
                          f"{dataset.root}; choose a new --collection for another dataset")
    for name in KEYWORD_INDEXES:
        collection.create_index(name, "keyword")
    for name in UNUSED_INDEXES:
        collection.drop_index(name)
    for name in METRIC_FIELDS if options.image_metrics else ():
        collection.create_index(name, "float")
    collection.update_metadata(layout=dataset.layout, has_text_encoder=embedder.has_text)
    return collection


def _with_usable_names(sources: Sequence[ImageSource], report: IndexReport) -> list[ImageSource]:
    """Point ids and payloads are UTF-8 text: a file name that is not (Linux allows any bytes)
    is skipped with its reason instead of stopping the run."""
    usable = []
    for source in sources:
        try:
            source.relative_path.encode("utf-8")
            usable.append(source)
        except UnicodeEncodeError:
            shown = source.relative_path.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
            report.skipped.append({"path": shown, "reason": "file name is not valid UTF-8; rename the file"})
    return usable


def _decoded(sources: Sequence[ImageSource], embedder: Embedder, known: Any, known_rows: dict[str, int],
             options: IndexOptions, report: IndexReport, relabelled: list[ImageSource]) -> Iterator[_Work]:
    """Files to embed, in order; records unchanged and skipped files in the report, and
    collects unchanged files whose label or split changed (e.g. an edited labels file)."""
    # A model with a fixed input size lets photos decode at a reduced scale (see decode_image).
    min_side: int | None = getattr(embedder, "input_size", None)

    def work(source: ImageSource) -> _Work:
        row = known_rows.get(point_id(source.relative_path))
        try:
            data = source.path.read_bytes()
        except OSError as error:
            return _Work(source, skip_reason=f"cannot read file: {error.strerror or error}")
        sha1 = hashlib.sha1(data).hexdigest()
        if row is not None and known.values["sha1"][row] == sha1:
            return _Work(source, sha1=sha1)
        try:
            decoded = decode_image(source.path, data, min_side,
                                   MAX_ANALYSIS_SIDE if options.image_metrics else None)
            metrics = (image_metrics(np.asarray(decoded.image), (decoded.width, decoded.height))
                       if options.image_metrics else {})
            return _Work(source, sha1, embedder.preprocess(decoded.image), decoded.width, decoded.height, metrics)
        except ImageSkipped as skipped:
            return _Work(source, sha1, skip_reason=skipped.reason)
        except Exception as error:  # one bad file must never stop the run
            return _Work(source, sha1, skip_reason=f"unexpected error: {type(error).__name__}: {error}")

    bar = tqdm(total=len(sources), unit="img", desc=f"indexing {options.collection}", disable=not options.progress,
               smoothing=0.1)
    window: deque[Future[_Work]] = deque()
    with ThreadPoolExecutor(max_workers=options.workers) as pool:
        pending = iter(sources)
        for source in pending:
            window.append(pool.submit(work, source))
            if len(window) >= options.batch_size * 3:
                break
        while window:
            result = window.popleft().result()
            next_source = next(pending, None)
            if next_source is not None:
                window.append(pool.submit(work, next_source))
            bar.update(1)
            if result.skip_reason:
                report.skipped.append({"path": result.source.relative_path, "reason": result.skip_reason})
            elif result.item is None:
                report.unchanged += 1
                row = known_rows[point_id(result.source.relative_path)]
                # A label a user set in the app (original_label kept) wins over the source's.
                source_label = known.values["original_label"][row] or known.values["label"][row]
                if (source_label, known.values["split"][row]) != (result.source.label, result.source.split):
                    relabelled.append(result.source)
            else:
                yield result
    bar.close()


def _write_labels(collection: Collection, sources: list[ImageSource]) -> None:
    ids = [point_id(s.relative_path) for s in sources]
    previous = {r.id: r.payload for r in collection.retrieve(ids, ["label", "original_label", "tags"])}
    collection.set_payloads(ids, [merge_payload(previous.get(pid, {}), {"label": s.label, "labels": list(s.labels),
                                                                        "split": s.split})
                                  for pid, s in zip(ids, sources)])


def merge_payload(previous: dict[str, Any], fresh: dict[str, Any]) -> dict[str, Any]:
    """Fresh source fields over the stored payload, keeping tags, scores and user labels.

    When a user relabelled the point (`original_label` is set), the source's label becomes
    the new `original_label` and the user's label stays.
    """
    merged = {"tags": [], **previous, **fresh}
    if previous.get("original_label"):
        merged["label"] = previous.get("label", fresh.get("label", ""))
        merged["original_label"] = fresh.get("label", previous["original_label"])
    return merged


def _batched(items: Iterator[_Work], size: int) -> Iterator[list[_Work]]:
    batch: list[_Work] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _write_batch(collection: Collection, vectors: np.ndarray, batch: list[_Work], known_rows: dict[str, int]) -> None:
    ids = [point_id(w.source.relative_path) for w in batch]
    # A changed file keeps everything users and analyses wrote on its point (tags above all).
    changed = [i for i in ids if i in known_rows]
    previous = {r.id: r.payload for r in collection.retrieve(changed)} if changed else {}
    payloads = [merge_payload(previous.get(pid, {}), _payload(w)) for pid, w in zip(ids, batch)]
    collection.upsert(ids, vectors, payloads)


def _payload(work: _Work) -> dict[str, Any]:
    source = work.source
    return {"path": source.relative_path, "label": source.label, "labels": list(source.labels),
            "split": source.split, "width": work.width, "height": work.height, "sha1": work.sha1, **work.metrics}


def _drop_removed(collection: Collection, dataset: Dataset) -> list[str]:
    """Points whose file is gone from disk are deleted (and listed in the report)."""
    paths = collection.columns(["path"])
    gone = [(pid, p) for pid, p in zip(paths.ids, paths.values["path"]) if not (dataset.root / str(p)).exists()]
    collection.delete([pid for pid, _ in gone])
    return sorted(str(p) for _, p in gone)


def _build_map(collection: Collection, options: IndexOptions, report: IndexReport) -> None:
    started = time.perf_counter()
    ids, vectors = collection.vectors()
    if len(ids) < 2:
        # No neighbours to map by: a lone point sits at the centre (the UI needs x, y on every point).
        collection.set_payloads(list(ids), [{"x": 0.0, "y": 0.0} for _ in ids])
        return
    graph = build_knn_graph(ids, vectors, k=options.neighbours, seed=options.projection.seed)
    graph.save(collection.artifact_dir / GRAPH_FILE)
    coords = project(vectors, graph, options.projection)
    collection.set_payloads(list(ids), [{"x": float(x), "y": float(y)} for x, y in coords])
    collection.flush()
    report.projection_seconds = time.perf_counter() - started
    collection.update_metadata(projection={**options.projection.as_dict(),
                                           "method": projection_method(len(ids), options.projection),
                                           "graph_neighbours": graph.k, "graph_file": GRAPH_FILE},
                               indexed_at=_now(), points=len(ids))


def _save_report(collection: Collection, report: IndexReport) -> None:
    path = collection.artifact_dir / REPORT_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    report.report_file = str(path)
    data = {**asdict(report), "images_per_second": report.images_per_second, "summary": report.summary(),
            "finished_at": _now()}
    path.write_text(json.dumps(data, indent=2))


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
