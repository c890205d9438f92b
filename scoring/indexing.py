"""Indexing followed by the quality scores: what `python app.py index` (and the first-start
demo) runs.

The pipeline (indexer/pipeline.py) writes the vectors, the neighbour graph and the map; the
scores are scoring's, and scoring sits above the indexer (README.md, Layout), so the command
runs them after the pipeline instead of the pipeline importing them:

    report = index_and_analyze(root, store, IndexOptions(collection="c"))
    report = embeddings_and_analyze(root, store, options, EmbeddingsInput(file))   # index --embeddings

After the pipeline: the images' object counts (a detection dataset), the mislabel / outlier /
duplicate scores of each collection over its new graph (unless `options.analyze` is off), the
merge into one segment again, and the report saved with the scores' summaries.
"""
from __future__ import annotations

from pathlib import Path

from indexer.embeddings_file import EmbeddingsInput, index_embeddings
from indexer.models import Embedder
from indexer.objects import ObjectReport, object_collection_name
from indexer.pipeline import IndexOptions, IndexReport, index_dataset, save_report
from scoring.analyze import analyze_collection
from scoring.object_metrics import add_object_counts
from store import Collection, Store


def index_and_analyze(root: str | Path, store: Store, options: IndexOptions,
                      embedder: Embedder | None = None) -> IndexReport:
    """`index_dataset`, then `score_indexed`."""
    report = index_dataset(root, store, options, embedder)
    score_indexed(store, options, report)
    return report


def embeddings_and_analyze(root: str | Path, store: Store, options: IndexOptions,
                           source: EmbeddingsInput) -> IndexReport:
    """`index_embeddings` (vectors from a file: `index --embeddings`), then `score_indexed`."""
    report = index_embeddings(root, store, options, source)
    score_indexed(store, options, report)
    return report


def score_indexed(store: Store, options: IndexOptions, report: IndexReport) -> None:
    """The steps after the pipeline, for the collection it wrote and its object collection."""
    images = store.open(report.collection)
    parts: list[tuple[Collection, IndexReport | ObjectReport]] = [(images, report)]
    if report.objects is not None:
        objects = store.open(object_collection_name(report.collection))
        add_object_counts(images, objects)
        parts.append((objects, report.objects))
    if options.analyze:
        for collection, part in parts:
            if collection.count() >= 2:
                part.quality = analyze_collection(collection, add_metrics=False).summary()
                collection.flush()
                collection.optimize()
    for collection, _ in parts:
        save_report(collection, report)
