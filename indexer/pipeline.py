"""Index a dataset into a collection: decode, embed, write, then build the graph and the map.

Decoding and preprocessing run in a thread pool, a bounded window ahead of inference, so
the model never waits on file I/O and memory stays flat however large the dataset. Each
batch is written (by one writer thread, while the next batch is embedded) as soon as it is
embedded: a killed run loses nothing already written,
and the next run embeds only files that are new or whose content hash changed.

The decode-and-embed stage is the engine: here in this process (`engine="local"`), or on a
Ray cluster (`engine="ray"`, indexer/ray_engine.py); both hand back batches of prepared images
with their vectors, which the same steps write. The steps after the vectors are written
(graph, map, scores, report: `finish_index`) also serve vectors read from a file
(indexer/embeddings_file.py).
"""
from __future__ import annotations

import hashlib
import json
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from tqdm import tqdm

from analysis.image_metrics import METRIC_FIELDS, image_metrics
from analysis.knn import GRAPH_FILE, build_knn_graph
from indexer.images import ImageSkipped, decode_image
from indexer.models import DEFAULT_MODEL, Embedder, load_embedder
from indexer.projection import ProjectionConfig, project
from indexer.sources import Dataset, ImageSource, SourceError, read_dataset
from store import Collection, Store, point_id

REPORT_FILE = "index-report.json"
# Only fields something filters or facets on. `path` and `sha1` are read, never filtered on, and
# an index on a field unique per point is a map the embedded engine rebuilds in RAM on every
# open (~0.1 s each at 70,000 points: a third of the time to open the collection).
KEYWORD_INDEXES = ("label", "tags", "split")
UNUSED_INDEXES = ("path", "sha1")  # collections indexed before this change have them: dropped
PROJECTION_FIELDS = ("x", "y")


class VectorSpace(Protocol):
    """What a collection records about where its vectors come from: an `Embedder`, or the
    description of a file of vectors (indexer/embeddings_file.py)."""

    name: str
    dimension: int

    @property
    def has_text(self) -> bool: ...


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
    engine: str = "local"  # "ray": decode and embed on a Ray cluster (indexer/ray_engine.py)
    ray_actors: int | None = None  # Ray: embedding actors (None: one per GPU, or per `workers` CPUs)


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
class PreparedImage:
    """One file after decoding: ready to embed (`item`), unchanged since the last run, or skipped."""

    source: ImageSource
    sha1: str = ""
    item: Any = None
    width: int = 0
    height: int = 0
    metrics: dict[str, float] = field(default_factory=dict)
    skip_reason: str = ""
    unchanged: bool = False


def index_dataset(root: str | Path, store: Store, options: IndexOptions,
                  embedder: Embedder | None = None) -> IndexReport:
    """Index (or re-index) the images under `root` into `options.collection`."""
    dataset = read_dataset(root, options.labels_file)
    sources = dataset.images[: options.limit] if options.limit else dataset.images
    if not sources:
        raise SourceError(f"no images found under {dataset.root} (looked for common image extensions, "
                          "recursively); check the path")
    if options.engine == "ray":
        from indexer.ray_engine import import_ray

        import_ray()  # without Ray, say how to install it before anything is written
    embedder = embedder or load_embedder(options.model, options.device, options.runtime)
    collection = open_collection(store, options, embedder, dataset)
    report = IndexReport(options.collection, str(dataset.root), found=len(sources), problems=dataset.problems)
    sources = _with_usable_names(sources, report)
    known = collection.columns(["sha1", "label", "split", "original_label"])
    known_rows = {pid: i for i, pid in enumerate(known.ids)}
    relabelled: list[ImageSource] = []
    triage = partial(_triage, known=known, known_rows=known_rows, report=report, relabelled=relabelled)
    if options.engine == "ray":
        from indexer.ray_engine import ray_embedded_batches

        stored_sha1 = [_stored_sha1(known, known_rows, s) for s in sources]
        batches = ray_embedded_batches(sources, stored_sha1, options, triage)
    else:
        batches = _embedded(sources, embedder, known, known_rows, options, triage)
    started = time.perf_counter()
    # One writer thread: batch n is written to Qdrant while batch n+1 is embedded.
    with ThreadPoolExecutor(max_workers=1) as writer:
        writing: Future[None] | None = None
        for batch, vectors in batches:
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
    finish_index(collection, options, report)
    return report


def finish_index(collection: Collection, options: IndexOptions, report: IndexReport) -> None:
    """The steps after the vectors are written: the neighbour graph and the map, the quality
    scores (unless `options.analyze` is off), the merge into one segment, the saved report."""
    collection.flush()
    _build_map(collection, options, report)
    if options.analyze and collection.count() >= 2:
        from scoring.analyze import analyze_collection

        report.quality = analyze_collection(collection, add_metrics=False).summary()
    collection.flush()
    collection.optimize()
    report.total_points = collection.count()
    _save_report(collection, report)


def open_collection(store: Store, options: IndexOptions, embedder: VectorSpace, dataset: Dataset,
                    with_indexes: bool = True) -> Collection:
    """Open (or create) the collection for `dataset`, refusing one made by another model or
    from another folder, with the payload indexes the indexer writes (`with_indexes=False`:
    the caller creates them with `create_payload_indexes`, e.g. after a bulk write)."""
    metadata = {"source_root": str(dataset.root), "layout": dataset.layout, "model": embedder.name,
                "has_text_encoder": embedder.has_text, "created_at": _now()}
    collection = store.open_or_create(options.collection, embedder.dimension, metadata)
    refuse_other_source(collection, embedder.name, dataset.root)
    if with_indexes:
        create_payload_indexes(collection, options)
    collection.update_metadata(layout=dataset.layout, has_text_encoder=embedder.has_text)
    return collection


def create_payload_indexes(collection: Collection, options: IndexOptions) -> None:
    for name in KEYWORD_INDEXES:
        collection.create_index(name, "keyword")
    for name in UNUSED_INDEXES:
        collection.drop_index(name)
    for name in METRIC_FIELDS if options.image_metrics else ():
        collection.create_index(name, "float")


def refuse_other_source(collection: Collection, model: str, root: Path) -> None:
    """Raise when the collection holds vectors of another model, or of another folder."""
    existing = collection.read_metadata()
    if existing.get("model") not in (None, model):
        raise SourceError(f"collection '{collection.name}' was indexed with model {existing['model']}; "
                          f"index with --model {existing['model']} or choose a new --collection")
    if existing.get("source_root") not in (None, str(root)):
        raise SourceError(f"collection '{collection.name}' indexes {existing['source_root']}, not "
                          f"{root}; choose a new --collection for another dataset")


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


def prepare_image(source: ImageSource, embedder: Embedder, stored_sha1: str | None,
                  with_metrics: bool) -> PreparedImage:
    """Read, hash, decode and preprocess one file; unchanged when its hash is `stored_sha1`.
    Never raises: a file that cannot be used comes back with its skip reason."""
    try:
        data = source.path.read_bytes()
    except OSError as error:
        return PreparedImage(source, skip_reason=f"cannot read file: {error.strerror or error}")
    sha1 = hashlib.sha1(data).hexdigest()
    if stored_sha1 == sha1:
        return PreparedImage(source, sha1=sha1, unchanged=True)
    try:
        decoded = decode_image(source.path, data)
        metrics = image_metrics(np.asarray(decoded.image)) if with_metrics else {}
        return PreparedImage(source, sha1, embedder.preprocess(decoded.image), decoded.width, decoded.height,
                             metrics)
    except ImageSkipped as skipped:
        return PreparedImage(source, sha1, skip_reason=skipped.reason)
    except Exception as error:  # one bad file must never stop the run
        return PreparedImage(source, sha1, skip_reason=f"unexpected error: {type(error).__name__}: {error}")


def _stored_sha1(known: Any, known_rows: dict[str, int], source: ImageSource) -> str | None:
    row = known_rows.get(point_id(source.relative_path))
    return None if row is None else known.values["sha1"][row]


def _embedded(sources: Sequence[ImageSource], embedder: Embedder, known: Any, known_rows: dict[str, int],
              options: IndexOptions, triage: Callable[[PreparedImage], bool],
              ) -> Iterator[tuple[list[PreparedImage], np.ndarray]]:
    """The local engine: batches of decoded files and their vectors, embedded in this process."""
    for batch in _batched(_decoded(sources, embedder, known, known_rows, options, triage), options.batch_size):
        yield batch, embedder.embed_batch([w.item for w in batch])


def _decoded(sources: Sequence[ImageSource], embedder: Embedder, known: Any, known_rows: dict[str, int],
             options: IndexOptions, triage: Callable[[PreparedImage], bool]) -> Iterator[PreparedImage]:
    """Files to embed, in order (`triage` records the unchanged and skipped ones)."""
    def work(source: ImageSource) -> PreparedImage:
        return prepare_image(source, embedder, _stored_sha1(known, known_rows, source), options.image_metrics)

    bar = tqdm(total=len(sources), unit="img", desc=f"indexing {options.collection}", disable=not options.progress,
               smoothing=0.1)
    window: deque[Future[PreparedImage]] = deque()
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
            if triage(result):
                yield result
    bar.close()


def _triage(result: PreparedImage, known: Any, known_rows: dict[str, int], report: IndexReport,
            relabelled: list[ImageSource]) -> bool:
    """True when `result` is to be embedded. Records skipped and unchanged files in the report,
    and collects unchanged files whose label or split changed (e.g. an edited labels file)."""
    if result.skip_reason:
        report.skipped.append({"path": result.source.relative_path, "reason": result.skip_reason})
        return False
    if not result.unchanged:
        return True
    report.unchanged += 1
    row = known_rows[point_id(result.source.relative_path)]
    # A label a user set in the app (original_label kept) wins over the source's.
    source_label = known.values["original_label"][row] or known.values["label"][row]
    if (source_label, known.values["split"][row]) != (result.source.label, result.source.split):
        relabelled.append(result.source)
    return False


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


def _batched(items: Iterator[PreparedImage], size: int) -> Iterator[list[PreparedImage]]:
    batch: list[PreparedImage] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _write_batch(collection: Collection, vectors: np.ndarray, batch: list[PreparedImage],
                 known_rows: dict[str, int]) -> None:
    ids = [point_id(w.source.relative_path) for w in batch]
    # A changed file keeps everything users and analyses wrote on its point (tags above all).
    changed = [i for i in ids if i in known_rows]
    previous = {r.id: r.payload for r in collection.retrieve(changed)} if changed else {}
    payloads = [merge_payload(previous.get(pid, {}), _payload(w)) for pid, w in zip(ids, batch)]
    collection.upsert(ids, vectors, payloads)


def _payload(work: PreparedImage) -> dict[str, Any]:
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
    collection.update_metadata(projection={**options.projection.as_dict(), "method": "umap",
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
