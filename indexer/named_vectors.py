"""A second (third, ...) embedding of the points a collection already holds, as a Qdrant named
vector: `python app.py index PATH --collection NAME --model M2 --add-vector [NAME2]`, or
`--embeddings FILE --add-vector NAME2` for vectors the user has.

Every existing point gets the vector (ids, payloads and the default vector stay as they are:
`Collection.set_vectors`); only the points that lack it are embedded, so a killed run resumes
and a re-index that re-embedded changed images (an upsert drops a point's other vectors, as in
Qdrant) is brought up to date by running the same command again. The vector then gets its own
neighbour graph (`knn-NAME2.npz`) and 2D map (`map-NAME2.npz`, ids and coordinates) beside the
collection, and the collection's metadata records it under `vectors` with the model, precision
and dimension, as it records the default vector's at the top level.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from analysis.knn import build_knn_graph, graph_file, normalise
from imaging.progress import progress_bar
from indexer.models import Embedder, load_embedder
from indexer.pipeline import IndexOptions, PreparedImage, embed_and_write, embedding_of, prepare_image
from indexer.projection import project, projection_method
from indexer.sources import ImageSource, SourceError
from store import Collection, PointFilter, Store, StoreError, point_id
from store.schema import COLLECTION_KIND, MODEL, OBJECTS_KIND, PATH, PRECISION, VECTORS

MAP_FILE = "map-{name}.npz"  # a named vector's 2D map: ids and (n, 2) float32 coordinates


def map_file(name: str) -> str:
    return MAP_FILE.format(name=name)


@dataclass
class AddVectorReport:
    collection: str
    vector: str
    model: str
    dimension: int = 0
    written: int = 0
    already: int = 0  # points that had the vector before this run
    skipped: list[dict[str, str]] = field(default_factory=list)  # images that could not be embedded
    unknown_rows: int = 0  # --embeddings rows whose path is no point of the collection
    seconds: float = 0.0
    missing: int = 0  # points still without the vector

    def summary(self) -> str:
        text = (f"{self.collection}: vector '{self.vector}' ({self.model}, {self.dimension}-d) written to "
                f"{self.written} points in {self.seconds:.1f} s, {self.already} had it already")
        if self.unknown_rows:
            text += f", {self.unknown_rows} rows of the file name no point of the collection (left out)"
        if self.missing:
            text += (f"; {self.missing} points have no '{self.vector}' vector (listed above) and are left out of "
                     "its map and comparisons")
        return text


def open_for_vector(store: Store, collection_name: str) -> Collection:
    """The collection to add a vector to: it must exist and hold images (a box collection's
    points are crops, which this command does not cut)."""
    if not store.exists(collection_name):
        raise StoreError(f"--add-vector adds a vector to the points of an existing collection, and there is no "
                         f"collection '{collection_name}': index it first (python app.py index PATH "
                         f"--collection {collection_name})")
    collection = store.open(collection_name)
    if collection.read_metadata().get(COLLECTION_KIND) == OBJECTS_KIND:
        raise StoreError(f"'{collection_name}' is a collection of boxes; --add-vector embeds whole images: "
                         "name the image collection")
    return collection


def check_vector_name(collection: Collection, name: str, model: str, precision: str | None) -> None:
    """Refuse to mix two models (or precisions) under one vector name, and to shadow the default."""
    about = collection.read_metadata().get(VECTORS, {}).get(name)
    if about is None:
        return
    if about.get(MODEL) != model or (precision and about.get(PRECISION) not in (None, precision)):
        raise StoreError(f"vector '{name}' of collection '{collection.name}' holds {about.get(MODEL)} "
                         f"({about.get(PRECISION) or 'precision not recorded'}) vectors, not {model} "
                         f"({precision or 'precision not recorded'}); give another name to --add-vector")


def default_vector_name(model: str) -> str:
    """`--add-vector` without a name: the model's name made fit for a vector name."""
    base = Path(model.rstrip("/")).name or model
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in base)[:64] or "vector2"


def add_model_vector(root: str | Path, store: Store, options: IndexOptions, name: str,
                     embedder: Embedder | None = None) -> AddVectorReport:
    """Embed every point of `options.collection` lacking vector `name` with `options.model`."""
    collection = open_for_vector(store, options.collection)
    embedder = embedder or load_embedder(options.model, options.device, options.runtime,
                                         "auto" if options.precision == "auto" else options.precision)
    check_vector_name(collection, name, embedder.name, embedder.precision)
    collection.add_vector(name, embedder.dimension)
    report = AddVectorReport(options.collection, name, embedder.name, embedder.dimension)
    started = time.perf_counter()
    todo = collection.columns([PATH], PointFilter(lacks_vector=name))
    report.already = collection.count() - len(todo)
    base = Path(root).expanduser().resolve()
    sources = [ImageSource(base / str(path), str(path)) for path in todo.values[PATH]]
    id_of = dict(zip(todo.values[PATH], todo.ids.tolist()))

    def write(vectors: np.ndarray, batch: list[PreparedImage]) -> None:
        collection.set_vectors(name, [id_of[w.source.relative_path] for w in batch], vectors)

    jobs = (("image", work) for work in _prepared(sources, embedder, options, report))
    report.written = embed_and_write(jobs, embedder, {"image": write}, options.batch_size)["image"]
    report.seconds = time.perf_counter() - started
    finish_vector(collection, name, options, report, embedding_of(embedder))
    return report


def _prepared(sources: list[ImageSource], embedder: Embedder, options: IndexOptions,
              report: AddVectorReport) -> Any:
    """Decoded images, in order, a bounded window ahead (threads); the unusable ones reported."""
    from concurrent.futures import ThreadPoolExecutor

    bar = progress_bar(total=len(sources), unit="img", desc=f"embedding {report.vector}",
                       disable=not options.progress)
    with ThreadPoolExecutor(max_workers=options.workers) as pool:
        window = max(options.batch_size * 3, 1)
        for start in range(0, len(sources), window):
            for work in pool.map(lambda s: prepare_image(s, embedder, None, False), sources[start:start + window]):
                bar.update(1)
                if work.skip_reason:
                    report.skipped.append({"path": work.source.relative_path, "reason": work.skip_reason})
                else:
                    yield work
    bar.close()


def finish_vector(collection: Collection, name: str, options: IndexOptions, report: AddVectorReport,
                  embedding: dict[str, Any]) -> None:
    """The vector's graph and map, and its record in the metadata."""
    collection.flush()
    report.missing = collection.count(PointFilter(lacks_vector=name))
    ids, vectors = collection.vectors(using=name)
    about: dict[str, Any] = {**embedding, "dimension": report.dimension, "points": len(ids),
                             "added_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    if len(ids) >= 2:
        graph = build_knn_graph(ids, vectors, k=options.neighbours, seed=options.projection.seed)
        graph.save(collection.artifact_dir / graph_file(name))
        coords = project(vectors, graph, options.projection)
        save_map(collection.artifact_dir / map_file(name), ids, coords)
        about["projection"] = {"method": projection_method(len(ids), options.projection),
                               "graph_neighbours": graph.k, "graph_file": graph_file(name),
                               "map_file": map_file(name)}
    metadata = collection.read_metadata()
    metadata.setdefault(VECTORS, {}).setdefault(name, {}).update(about)
    collection.write_metadata(metadata)
    collection.optimize()


def save_map(path: Path, ids: np.ndarray, coords: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, ids=np.asarray(ids).astype(str), coords=np.asarray(coords, dtype=np.float32))
    tmp.replace(path)


def load_map(collection: Collection, name: str) -> tuple[np.ndarray, np.ndarray] | None:
    """(ids, (n, 2) coordinates) of vector `name`'s map, None when it has none yet."""
    path = collection.artifact_dir / map_file(name)
    if not path.exists():
        return None
    with np.load(path, allow_pickle=False) as data:
        return data["ids"], data["coords"]


def add_file_vector(root: str | Path, store: Store, options: IndexOptions, name: str, source: Any) -> AddVectorReport:
    """Vector `name` of the existing points from a file of vectors (indexer/embeddings_file.py's
    formats); rows whose path is no point of the collection are counted and left out."""
    from indexer.embeddings_file import EmbeddingsRejected, check_embeddings, open_embeddings, relative_path

    collection = open_for_vector(store, options.collection)
    base = Path(root).expanduser().resolve()
    reader = open_embeddings(source.file, source.paths_file, source.column)
    known = collection.vector_names().get(name)
    checked = check_embeddings(reader, base, known, not source.allow_missing_files, options.progress)
    if checked.counts:
        raise EmbeddingsRejected(reader.name, checked.rows, checked.problems, checked.counts)
    model = options.model or f"embeddings:{reader.name}"
    check_vector_name(collection, name, model, None)
    collection.add_vector(name, checked.dimension)
    report = AddVectorReport(options.collection, name, model, checked.dimension)
    started = time.perf_counter()
    for batch in reader.batches():
        paths = [relative_path(text, base)[0] for text in batch.paths]
        vectors = normalise(batch.values.reshape(len(batch), checked.dimension))
        wanted = [point_id(p) for p in paths]
        present = {r.id for r in collection.retrieve(wanted, [])}
        rows = [i for i, pid in enumerate(wanted) if pid in present]
        report.unknown_rows += len(wanted) - len(rows)
        if rows:
            collection.set_vectors(name, [wanted[i] for i in rows], vectors[rows])
        report.written += len(rows)
    report.seconds = time.perf_counter() - started
    if not report.written:
        raise SourceError(f"no row of {reader.name} names a point of collection '{options.collection}' (paths are "
                          f"relative to {base}); nothing was written")
    embedding = {MODEL: model, PRECISION: None, "vectors_from": {"file": reader.name, "format": reader.format}}
    finish_vector(collection, name, options, report, embedding)
    return report
