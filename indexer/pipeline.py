"""Index a dataset into a collection: decode, embed, write, then build the graph and the map.

Decoding and preprocessing run in a thread pool, a bounded window ahead of inference, so
the model never waits on file I/O and memory stays flat however large the dataset. Each
batch is written (by one writer thread, while the next batch is embedded) as soon as it is
embedded: a killed run loses nothing already written,
and the next run embeds only files that are new or whose content hash changed.

When the labels carry bounding boxes (COCO, YOLO, VOC), the same run also fills the object
collection NAME-objects (indexer/objects.py): the decode worker that decodes an image cuts the
crops of its boxes from the same pixels, and image and box batches share the embed / write
steps, then each collection gets its own graph and map.

The decode-and-embed stage is the engine: here in this process (`engine="local"`), or on a
Ray cluster (`engine="ray"`, indexer/ray_engine.py); both hand back batches of prepared images
with their vectors, which the same steps write. The steps after the vectors are written
(graph, map, report: `finish_index`) also serve vectors read from a file
(indexer/embeddings_file.py). The quality scores come after the pipeline, from the command
(scoring/indexing.py `index_and_analyze`): scoring sits above the indexer.

Each collection records what made its vectors (model, precision, runtime, device). Vectors of
two models or two precisions in one collection would make every distance between them
wrong, so a run that would embed differently refuses and says how to re-embed everything
(`reembed`): the content hashes are cleared first, so every image (and box) counts as
changed, is embedded again and keeps its payload (tags, labels set in the app, subsets,
predictions); an interrupted re-embed continues with the points not yet done.
"""
from __future__ import annotations

import hashlib
import json
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from analysis.image_metrics import MAX_ANALYSIS_SIDE, METRIC_FIELDS, image_metrics
from analysis.knn import GRAPH_FILE, build_knn_graph
from detection.geometry import CONTEXT_MARGIN
from imaging.images import ImageSkipped, decode_image
from imaging.progress import progress_bar
from indexer.models import DEFAULT_MODEL, Embedder, ModelLoadError, load_embedder
from indexer.objects import Crops, ObjectIndex, ObjectReport, crops, link_collections, object_collection_name
from indexer.projection import ProjectionConfig, project, projection_method
from indexer.sources import Dataset, ImageSource, SourceError, read_dataset
from store import Collection, Store, point_id
from store.schema import (
    DEVICE, HEIGHT, LABEL, LABELS, MODEL, ORIGINAL_LABEL, PATH, PRECISION, RUNTIME, SHA1, SPLIT, TAGS, WIDTH, X, Y,
)

REPORT_FILE = "index-report.json"
# Only fields something filters or facets on. `path` and `sha1` are read, never filtered on, and
# an index on a field unique per point is a map the embedded engine rebuilds in RAM on every
# open (~0.1 s each at 70,000 points: a third of the time to open the collection).
KEYWORD_INDEXES = (LABEL, TAGS, SPLIT)
UNUSED_INDEXES = (PATH, SHA1)  # collections indexed before this change have them: dropped
PROJECTION_FIELDS = (X, Y)


class VectorSpace(Protocol):
    """What a collection records about where its vectors come from: an `Embedder`, or the
    description of a file of vectors (indexer/embeddings_file.py)."""

    name: str
    dimension: int
    precision: str | None  # None: not known (vectors from a file)
    runtime: str | None
    device: str | None

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
    precision: str = "auto"  # auto / fp32 / bf16 (indexer.models); auto keeps the collection's
    reembed: bool = False  # embed every image again (after a model or precision change)
    batch_size: int = 32
    workers: int = 2
    neighbours: int = 15
    projection: ProjectionConfig = field(default_factory=ProjectionConfig)
    image_metrics: bool = True  # brightness, sharpness, ... from the pixels decoded for embedding
    analyze: bool = True  # mislabel / outlier / duplicate scores over the new graph (scoring/indexing.py)
    progress: bool = True
    objects: bool = True  # labels with boxes: also the object collection NAME-objects, one point per box
    crop_margin: float = CONTEXT_MARGIN  # context around each box's crop, a share of its size per side
    crop_mode: str = "box"  # "mask": a box with a mask is embedded with its background blanked
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
    objects: ObjectReport | None = None  # the object collection's part, when the labels carry boxes
    embedding: dict[str, Any] = field(default_factory=dict)  # model, precision, runtime, device that ran

    @property
    def images_per_second(self) -> float:
        return self.embedded / self.embed_seconds if self.embed_seconds else 0.0

    @property
    def objects_per_second(self) -> float:
        """Boxes embedded per second of the same pass that embedded the images."""
        return self.objects.embedded / self.embed_seconds if self.objects and self.embed_seconds else 0.0

    def summary(self) -> str:
        ran = self.embedding
        how = f" by {ran[MODEL]} in {ran[PRECISION]} ({ran[RUNTIME]} on {ran[DEVICE]})" if ran else ""
        text = (f"{self.collection}: {self.found} images found, {self.embedded} embedded{how} "
                f"({self.images_per_second:.0f} img/s), {self.unchanged} unchanged, {len(self.skipped)} skipped, "
                f"{len(self.removed)} removed; {self.total_points} points in the collection")
        return text + ("\n" + self.objects.summary(self.embed_seconds) if self.objects else "")


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
    crops: Crops | None = None  # its boxes' crops, when it has boxes to embed


def index_dataset(root: str | Path, store: Store, options: IndexOptions,
                  embedder: Embedder | None = None) -> IndexReport:
    """Index (or re-index) the images under `root` into `options.collection` (and their boxes
    into its object collection)."""
    dataset = read_dataset(root, options.labels_file)
    sources = dataset.images[: options.limit] if options.limit else dataset.images
    if not sources:
        raise SourceError(f"no images found under {dataset.root} (looked for common image extensions, "
                          "recursively); check the path")
    if options.engine == "ray":
        from indexer.ray_engine import import_ray

        import_ray()  # without Ray, say how to install it before anything is written
        if options.objects and dataset.has_boxes:
            raise SourceError("--engine ray embeds whole images only; these labels carry boxes, whose crops are "
                              "cut from each decoded image by the local engine. Index without --engine ray, or "
                              "with --no-objects for the images alone")
    recorded = store.open(options.collection).read_metadata() if store.exists(options.collection) else {}
    embedder = embedder or _load_embedder(options, recorded)
    report = IndexReport(options.collection, str(dataset.root), found=len(sources), problems=dataset.problems,
                         embedding=embedding_of(embedder))
    collection = open_collection(store, options, embedder, dataset, report)
    sources = _with_usable_names(sources, report)
    objects = _open_objects(store, options, embedder, dataset, collection, sources, report)
    report.objects = objects.report if objects else None
    known = collection.columns([SHA1, LABEL, SPLIT, ORIGINAL_LABEL, WIDTH, HEIGHT])
    known_rows = {pid: i for i, pid in enumerate(known.ids)}
    relabelled: list[ImageSource] = []
    triage = partial(_triage, known=known, known_rows=known_rows, report=report, relabelled=relabelled)
    started = time.perf_counter()
    if options.engine == "ray":
        from indexer.ray_engine import ray_embedded_batches

        stored_sha1 = [_stored_sha1(known, known_rows, s) for s in sources]
        # Every worker embeds in the precision the driver chose (and the collection records).
        batches = ray_embedded_batches(sources, stored_sha1, replace(options, precision=embedder.precision), triage)
        report.embedded = _write_embedded(batches, collection, known_rows)
    else:
        writers: dict[str, Callable[[np.ndarray, list[Any]], None]] = {
            "image": lambda vectors, batch: _write_batch(collection, vectors, batch, known_rows)}
        if objects is not None:
            writers["object"] = objects.write
        jobs = _embed_jobs(_decoded(sources, embedder, known, known_rows, options, triage, objects), objects)
        report.embedded = embed_and_write(jobs, embedder, writers, options.batch_size)["image"]
    report.embed_seconds = time.perf_counter() - started
    _write_labels(collection, relabelled)
    report.relabelled = len(relabelled)
    report.removed = _drop_removed(collection, dataset)
    finish_index(collection, options, report, objects)
    return report


def finish_index(collection: Collection, options: IndexOptions, report: IndexReport,
                 objects: ObjectIndex | None = None) -> None:
    """The steps after the vectors are written, for the collection and its object collection:
    the neighbour graph and the map, the merge into one segment, the saved report. The quality
    scores and the images' object counts are scoring's: the command runs them afterwards
    (scoring/indexing.py), so the indexer never imports the layer above it."""
    collection.flush()
    report.projection_seconds = _map_and_optimize(collection, options)
    report.total_points = collection.count()
    if objects is not None:
        objects.finish({s["path"]: s["reason"] for s in report.skipped})
        objects.report.projection_seconds = _map_and_optimize(objects.collection, options)
        objects.report.total_points = objects.collection.count()
        save_report(objects.collection, report)
    save_report(collection, report)


def _open_objects(store: Store, options: IndexOptions, embedder: Embedder, dataset: Dataset, images: Collection,
                  sources: list[ImageSource], report: IndexReport) -> ObjectIndex | None:
    """The object collection NAME-objects, linked to the image collection, when there are boxes."""
    if not (options.objects and dataset.has_boxes):
        return None
    name = object_collection_name(options.collection)
    collection = open_collection(store, replace(options, collection=name), embedder, dataset, report)
    link_collections(images, collection, dataset, options.crop_margin, options.crop_mode)
    return ObjectIndex(collection, dataset, sources, options.crop_margin, options.crop_mode)


def embed_and_write(jobs: Iterator[tuple[str, Any]], embedder: Embedder,
                    writers: dict[str, Callable[[np.ndarray, list[Any]], None]], batch_size: int) -> Counter[str]:
    """Embed (kind, job) pairs in batches of one kind (each job has `.item`, the embedder's
    input) and hand each batch to `writers[kind]`; returns how many of each kind.

    One writer thread: batch n is written to Qdrant while batch n+1 is embedded."""
    counts: Counter[str] = Counter()
    pending: dict[str, list[Any]] = {kind: [] for kind in writers}
    with ThreadPoolExecutor(max_workers=1) as writer:
        writing: Future[None] | None = None

        def embed(kind: str) -> None:
            nonlocal writing
            batch, pending[kind] = pending[kind], []
            vectors = embedder.embed_batch([job.item for job in batch])
            if writing is not None:
                writing.result()  # at most one batch in flight; a failed write stops the run here
            writing = writer.submit(writers[kind], vectors, batch)
            counts[kind] += len(batch)

        for kind, job in jobs:
            pending[kind].append(job)
            if len(pending[kind]) == batch_size:
                embed(kind)
        for kind in writers:
            if pending[kind]:
                embed(kind)
        if writing is not None:
            writing.result()
    return counts


def _embed_jobs(works: Iterator[PreparedImage], objects: ObjectIndex | None) -> Iterator[tuple[str, Any]]:
    """("image", work) for each image to embed, then ("object", box) for each of its boxes to embed."""
    for work in works:
        if work.item is not None:
            yield "image", work
        if work.crops is not None and objects is not None:
            for box in objects.record(work.crops):
                yield "object", box


def _write_embedded(batches: Iterator[tuple[list[PreparedImage], np.ndarray]], collection: Collection,
                    known_rows: dict[str, int]) -> int:
    """Write batches whose vectors an engine computed (Ray); returns how many images.
    One writer thread: batch n is written to Qdrant while batch n+1 arrives."""
    written = 0
    with ThreadPoolExecutor(max_workers=1) as writer:
        writing: Future[None] | None = None
        for batch, vectors in batches:
            if writing is not None:
                writing.result()  # at most one batch in flight; a failed write stops the run here
            writing = writer.submit(_write_batch, collection, vectors, batch, known_rows)
            written += len(batch)
        if writing is not None:
            writing.result()
    return written


def _load_embedder(options: IndexOptions, recorded: dict[str, Any]) -> Embedder:
    """The embedder for this run. With precision "auto", an existing collection keeps the
    precision it records (so a re-index on another machine adds no vectors of another
    precision); with `reembed`, "auto" chooses afresh for this machine."""
    kept = options.precision == "auto" and not options.reembed and recorded.get(PRECISION)
    try:
        return load_embedder(options.model, options.device, options.runtime, kept or options.precision)
    except ModelLoadError as error:
        if not kept:
            raise
        raise ModelLoadError(f"collection '{options.collection}' holds {kept} vectors of {recorded.get(MODEL)}, "
                             f"and this run cannot make more: {error}. To re-embed every image in fp32 "
                             "(tags, labels and subsets are kept): --precision fp32 --reembed") from error


def embedding_of(space: VectorSpace) -> dict[str, Any]:
    """The metadata that says what made a collection's vectors (a file of vectors records no
    precision, runtime or device)."""
    return {MODEL: space.name, PRECISION: space.precision, RUNTIME: space.runtime, DEVICE: space.device}


def open_collection(store: Store, options: IndexOptions, space: VectorSpace, dataset: Dataset,
                    report: IndexReport | None = None, with_indexes: bool = True) -> Collection:
    """Open (or create) the collection for `dataset`, refusing one from another folder or whose
    vectors another model or precision made (`_check_same_embedding`), with the payload indexes
    the indexer writes (`with_indexes=False`: the caller creates them with
    `create_payload_indexes`, e.g. after a bulk write)."""
    metadata = {"source_root": str(dataset.root), "layout": dataset.layout, **embedding_of(space),
                "has_text_encoder": space.has_text, "created_at": _now()}
    collection = store.open_or_create(options.collection, space.dimension, metadata)
    if space.precision is None:  # vectors from a file: only the model name can be compared
        refuse_other_source(collection, space.name, dataset.root)
    else:
        refuse_other_source(collection, None, dataset.root)
        _check_same_embedding(options, collection.read_metadata(), space, report)
    if with_indexes:
        create_payload_indexes(collection, options)
    if options.reembed:
        _start_reembed(collection)
    collection.update_metadata(layout=dataset.layout, has_text_encoder=space.has_text, **embedding_of(space))
    if options.labels_file is not None:  # a detector's COCO results name images by this file's ids
        collection.update_metadata(labels_file=str(Path(options.labels_file).expanduser().resolve()))
    return collection


def create_payload_indexes(collection: Collection, options: IndexOptions) -> None:
    for name in KEYWORD_INDEXES:
        collection.create_index(name, "keyword")
    for name in UNUSED_INDEXES:
        collection.drop_index(name)
    for name in METRIC_FIELDS if options.image_metrics else ():
        collection.create_index(name, "float")


def refuse_other_source(collection: Collection, model: str | None, root: Path) -> None:
    """Raise when the collection indexes another folder, or (with `model`) holds vectors of
    another model."""
    existing = collection.read_metadata()
    if model is not None and existing.get(MODEL) not in (None, model):
        raise SourceError(f"collection '{collection.name}' was indexed with model {existing[MODEL]}; "
                          f"index with --model {existing[MODEL]} or choose a new --collection")
    if existing.get("source_root") not in (None, str(root)):
        raise SourceError(f"collection '{collection.name}' indexes {existing['source_root']}, not "
                          f"{root}; choose a new --collection for another dataset")


def _check_same_embedding(options: IndexOptions, existing: dict[str, Any], embedder: VectorSpace,
                          report: IndexReport | None) -> None:
    """Refuse to add vectors made by another model or in another precision, unless every
    image is being embedded again."""
    was = {MODEL: existing.get(MODEL), PRECISION: existing.get(PRECISION)}
    now = {MODEL: embedder.name, PRECISION: embedder.precision}
    if options.reembed or was == now:
        return
    if was[MODEL] in (None, now[MODEL]) and was[PRECISION] is None:
        if was[MODEL] is not None and report is not None:
            report.problems.append(
                f"collection '{options.collection}' was indexed before its precision was recorded; it now records "
                f"{now[PRECISION]}. If its vectors were made in another precision (OpenVINO chose bf16 by itself on "
                "CPUs with bfloat16), embed them all again with --reembed")
        return
    held = f"{was[MODEL]} in {was[PRECISION] or 'an unrecorded precision'}"
    keep = f"--model {was[MODEL]}" + (f" --precision {was[PRECISION]}" if was[PRECISION] else "")
    raise SourceError(
        f"collection '{options.collection}' holds vectors of {held}; this run would add vectors of {now[MODEL]} in "
        f"{now[PRECISION]}, and vectors of two models or precisions in one collection make their distances "
        f"meaningless. To embed every image again with {now[MODEL]} in {now[PRECISION]} (tags, labels set in the "
        f"app, subsets and predictions are kept): add --reembed. To add to the collection as it is: {keep}. "
        "Or choose a new --collection.")


def _start_reembed(collection: Collection) -> None:
    """Clear every point's content hash, so that this run (or, if it is interrupted, the next
    one) embeds every image again. The hashes are cleared before the metadata names the new
    model and precision: a run killed in between leaves old vectors still marked as the old
    embedding, never as the new one."""
    ids = collection.columns([SHA1]).ids
    collection.delete_payload_keys(list(ids), [SHA1])
    collection.flush()
    collection.update_metadata(reembedded_at=_now())


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


@dataclass
class StoredImage:
    """What the collection holds of a file from an earlier run."""

    sha1: str
    width: int | None = None
    height: int | None = None

    @property
    def size(self) -> tuple[int, int] | None:
        return (self.width, self.height) if self.width and self.height else None


def prepare_image(source: ImageSource, embedder: Embedder, stored: StoredImage | str | None, with_metrics: bool,
                  objects: ObjectIndex | None = None, crop_margin: float = CONTEXT_MARGIN) -> PreparedImage:
    """Read, hash, decode and preprocess one file; unchanged when its hash is the stored one
    (`stored`: a StoredImage, or just its sha1). With `objects`, the crops of the file's boxes
    that need embedding come from the same decode. Never raises: a file that cannot be used
    comes back with its skip reason."""
    stored = StoredImage(stored) if isinstance(stored, str) else stored
    try:
        data = source.path.read_bytes()
    except OSError as error:
        return PreparedImage(source, skip_reason=f"cannot read file: {error.strerror or error}")
    sha1 = hashlib.sha1(data).hexdigest()
    unchanged = stored is not None and stored.sha1 == sha1
    boxes = objects.pending(source, sha1, stored.size if unchanged and stored else None) if objects else []
    if unchanged and not boxes:
        return PreparedImage(source, sha1=sha1, unchanged=True)
    # A model with a fixed input size lets a photo decode at a reduced scale (see decode_image);
    # crops are cut from full-scale pixels, so an image with boxes to embed decodes in full.
    min_side: int | None = None if boxes else getattr(embedder, "input_size", None)
    try:
        decoded = decode_image(source.path, data, min_side, MAX_ANALYSIS_SIDE if with_metrics else None, sha1)
        box_crops = crops(decoded, source, sha1, boxes, embedder, with_metrics, crop_margin,
                          objects.crop_mode) if boxes and objects else None
        if unchanged:  # only boxes to embed (new, or moved in the labels)
            return PreparedImage(source, sha1, unchanged=True, crops=box_crops)
        metrics = image_metrics(np.asarray(decoded.image), (decoded.width, decoded.height)) if with_metrics else {}
        return PreparedImage(source, sha1, embedder.preprocess(decoded.image), decoded.width, decoded.height,
                             metrics, crops=box_crops)
    except ImageSkipped as skipped:
        return PreparedImage(source, sha1, skip_reason=skipped.reason)
    except Exception as error:  # one bad file must never stop the run
        return PreparedImage(source, sha1, skip_reason=f"unexpected error: {type(error).__name__}: {error}")


def _stored_sha1(known: Any, known_rows: dict[str, int], source: ImageSource) -> str | None:
    row = known_rows.get(point_id(source.relative_path))
    return None if row is None else known.values[SHA1][row]


def _decoded(sources: Sequence[ImageSource], embedder: Embedder, known: Any, known_rows: dict[str, int],
             options: IndexOptions, triage: Callable[[PreparedImage], bool],
             objects: ObjectIndex | None = None) -> Iterator[PreparedImage]:
    """Files with something to embed (the image, or crops of its boxes), in order (`triage`
    records the unchanged and skipped ones). An image is decoded once, for its own point and
    the crops of its boxes."""
    def work(source: ImageSource) -> PreparedImage:
        row = known_rows.get(point_id(source.relative_path))
        stored = None if row is None else StoredImage(known.values[SHA1][row], known.values[WIDTH][row],
                                                       known.values[HEIGHT][row])
        return prepare_image(source, embedder, stored, options.image_metrics, objects, options.crop_margin)

    bar = progress_bar(total=len(sources), unit="img", desc=f"indexing {options.collection}",
                       disable=not options.progress, smoothing=0.1)
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
    """True when `result` has something to embed: the image, or crops of its boxes. Records
    skipped and unchanged files in the report, and collects unchanged files whose label or split
    changed (e.g. an edited labels file)."""
    if result.skip_reason:
        report.skipped.append({"path": result.source.relative_path, "reason": result.skip_reason})
        return False
    if result.unchanged:
        report.unchanged += 1
        row = known_rows[point_id(result.source.relative_path)]
        # A label a user set in the app (original_label kept) wins over the source's.
        source_label = known.values[ORIGINAL_LABEL][row] or known.values[LABEL][row]
        if (source_label, known.values[SPLIT][row]) != (result.source.label, result.source.split):
            relabelled.append(result.source)
    return not result.unchanged or result.crops is not None


def _write_labels(collection: Collection, sources: list[ImageSource]) -> None:
    ids = [point_id(s.relative_path) for s in sources]
    previous = {r.id: r.payload for r in collection.retrieve(ids, [LABEL, ORIGINAL_LABEL, TAGS])}
    collection.set_payloads(ids, [merge_payload(previous.get(pid, {}), {LABEL: s.label, LABELS: list(s.labels),
                                                                        SPLIT: s.split})
                                  for pid, s in zip(ids, sources)])


def merge_payload(previous: dict[str, Any], fresh: dict[str, Any]) -> dict[str, Any]:
    """Fresh source fields over the stored payload, keeping tags, scores and user labels.

    When a user relabelled the point (`original_label` is set), the source's label becomes
    the new `original_label` and the user's label stays.
    """
    merged = {TAGS: [], **previous, **fresh}
    if previous.get(ORIGINAL_LABEL):
        merged[LABEL] = previous.get(LABEL, fresh.get(LABEL, ""))
        merged[ORIGINAL_LABEL] = fresh.get(LABEL, previous[ORIGINAL_LABEL])
    return merged


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
    return {PATH: source.relative_path, LABEL: source.label, LABELS: list(source.labels),
            SPLIT: source.split, WIDTH: work.width, HEIGHT: work.height, SHA1: work.sha1, **work.metrics}


def _drop_removed(collection: Collection, dataset: Dataset) -> list[str]:
    """Points whose file is gone from disk are deleted (and listed in the report)."""
    paths = collection.columns([PATH])
    gone = [(pid, p) for pid, p in zip(paths.ids, paths.values[PATH]) if not (dataset.root / str(p)).exists()]
    collection.delete([pid for pid, _ in gone])
    return sorted(str(p) for _, p in gone)


def _map_and_optimize(collection: Collection, options: IndexOptions) -> float:
    """kNN graph and map, then one segment; returns the projection seconds."""
    seconds = _build_map(collection, options)
    collection.flush()
    collection.optimize()
    return seconds


def _build_map(collection: Collection, options: IndexOptions) -> float:
    """The kNN graph (saved) and the 2D map of the collection; returns the seconds it took."""
    started = time.perf_counter()
    ids, vectors = collection.vectors()
    if len(ids) < 2:
        # No neighbours to map by: a lone point sits at the centre (the UI needs x, y on every point).
        collection.set_payloads(list(ids), [{X: 0.0, Y: 0.0} for _ in ids])
        return 0.0
    graph = build_knn_graph(ids, vectors, k=options.neighbours, seed=options.projection.seed)
    graph.save(collection.artifact_dir / GRAPH_FILE)
    coords = project(vectors, graph, options.projection)
    collection.set_payloads(list(ids), [{X: float(x), Y: float(y)} for x, y in coords])
    collection.flush()
    seconds = time.perf_counter() - started
    collection.update_metadata(projection={**options.projection.as_dict(),
                                           "method": projection_method(len(ids), options.projection),
                                           "graph_neighbours": graph.k, "graph_file": GRAPH_FILE},
                               indexed_at=_now(), points=len(ids))
    return seconds


def save_report(collection: Collection, report: IndexReport) -> None:
    """The report, as JSON, in the collection's folder (again after the scores: scoring/indexing.py)."""
    path = collection.artifact_dir / REPORT_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    report.report_file = str(path)
    data = {**asdict(report), "images_per_second": report.images_per_second,
            "objects_per_second": report.objects_per_second, "summary": report.summary(), "finished_at": _now()}
    path.write_text(json.dumps(data, indent=2))


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
