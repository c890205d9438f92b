"""Find a collection's clusters, name them, and store them: the `cluster` payload field and the
cluster table.

    summary = compute_clusters(collection, graph)      # `analyze` calls this after the scores
    cluster_table(collection)                          # -> list of dicts, largest cluster first

Per point, `cluster` (integer, indexed, -1 = none) is written into the payload, so any tool
filters on it. The cluster table goes to `clusters.json` in the collection's artifact folder
(beside `confused-pairs.json`; `push` copies it to a server's artifact folder): one record per
cluster with id, name, size, centre `x`/`y` and `radius` on the map (where to write its name),
the most common labels with counts, `dominant_label`, `purity`, `impure`, the mean of each
image metric, `flag_shares` (share of members flagged `mislabel`, `outlier`, `duplicate` by
the analysis) and `content` (the model's most common classes with their shares, counted over
`content_scored` members: up to CONTENT_SAMPLE per cluster, see indexer/concepts.py) and
`confident_content` (the same, counting only members whose word has a probability of at least
CONFIDENT_WORD: the only words a name may use, see analysis/cluster_names.py).
The method and its parameters go to the collection metadata under `clusters`.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np

from analysis.clusters import ClusterConfig, ClusterStats, describe_clusters, find_clusters
from analysis.knn import KnnGraph
from store import Collection
from store.base import WRITE_BATCH, chunked
from store.schema import (
    CLUSTER, DUPLICATE_FLAG, LABEL, METRIC_FIELDS, MISLABEL_FLAG, OUTLIER_FLAG, QUALITY_FLAGS, X, Y,
)

CLUSTERS_FILE = "clusters.json"
# Members per cluster whose model class is computed: shares within about +-3 % at this size,
# and reading every vector back (20 of the 34 s at 70,000 points) is not needed for a name.
CONTENT_SAMPLE = 256
# A member's model word counts towards its cluster's name only at this probability or more.
CONFIDENT_WORD = 0.5
FLAGS = (MISLABEL_FLAG, OUTLIER_FLAG, DUPLICATE_FLAG)
log = logging.getLogger(__name__)


@dataclass
class ClusterSummary:
    clusters: list[ClusterStats] = field(default_factory=list)
    points: int = 0
    clustered: int = 0
    method: str = ""
    content_source: str = ""      # how the content words were found ("" = none)
    content_note: str = ""        # why there are none, when the model could not give them
    seconds: float = 0.0

    def summary(self) -> str:
        if not self.clusters:
            return "no clusters"
        impure = sorted((c for c in self.clusters if c.impure), key=lambda c: c.purity or 0.0)
        count = f"{len(self.clusters)} cluster" + ("s" if len(self.clusters) > 1 else "")
        text = (f"{count} ({self.method}) hold {self.clustered} of {self.points} points; "
                f"largest: " + ", ".join(f"'{c.name}' ({c.size})" for c in self.clusters[:3]))
        if impure:
            text += ("; classes get confused in " + ", ".join(
                f"'{c.name}' ({' / '.join(n for n, _ in c.labels[:2])}, purity {c.purity:.2f})" for c in impure[:3]))
        if self.content_note:
            text += f"; {self.content_note}"
        return text


def compute_clusters(collection: Collection, graph: KnnGraph, config: ClusterConfig = ClusterConfig(),
                     content_words: bool = True) -> ClusterSummary:
    """Cluster the points of `graph` (which covers the collection), write `cluster` into every
    payload, save the table, and note the method in the metadata."""
    started = time.perf_counter()
    columns = collection.columns([LABEL, X, Y, QUALITY_FLAGS, *METRIC_FIELDS])
    row_of = {pid: i for i, pid in enumerate(columns.ids)}
    order = np.array([row_of[pid] for pid in graph.ids], dtype=np.int64)
    coords = np.nan_to_num(np.column_stack([columns.array(X), columns.array(Y)])[order])
    clusters = find_clusters(graph, coords, config)
    flags = [columns.values[QUALITY_FLAGS][i] or [] for i in order]
    summary = ClusterSummary(points=len(graph), clustered=int((clusters >= 0).sum()), method=config.method)
    content, confident = (_content_words(collection, graph, clusters, summary) if content_words
                          else (None, None))
    summary.clusters = describe_clusters(
        clusters, coords, labels=[columns.values[LABEL][i] or "" for i in order],
        metrics={name: columns.array(name)[order] for name in METRIC_FIELDS},
        flags={flag: np.fromiter((flag in f for f in flags), dtype=bool, count=len(flags)) for flag in FLAGS},
        content=content, content_confident=confident)
    _write_clusters(collection, graph.ids, clusters)
    _save_table(collection, summary.clusters)
    summary.seconds = time.perf_counter() - started
    collection.update_metadata(clusters={**config.as_dict(), "count": len(summary.clusters),
                                         "clustered": summary.clustered, "content": summary.content_source,
                                         "at": datetime.now(timezone.utc).isoformat(timespec="seconds")})
    return summary


def _content_words(collection: Collection, graph: KnnGraph, clusters: np.ndarray,
                   summary: ClusterSummary) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The model's top class of up to CONTENT_SAMPLE random members of each cluster ("" for the
    other rows) and whether it is confident (probability >= CONFIDENT_WORD), or (None, None)
    without a model that can give one (the reason goes into `summary.content_note`)."""
    from indexer.concepts import load_content_words
    from indexer.models import ModelLoadError

    model = collection.read_metadata().get("model")
    try:
        words = load_content_words(model)
    except (ModelLoadError, OSError) as error:
        summary.content_note = f"no content words: {error}"
        log.warning(summary.content_note)
        return None, None
    if words is None:
        return None, None
    summary.content_source = words.source
    rows = sample_members(clusters, CONTENT_SAMPLE)
    out, confident = np.full(len(graph), "", dtype=object), np.zeros(len(graph), dtype=bool)
    for chunk in chunked(rows.tolist(), WRITE_BATCH * 10):
        row_of = {str(graph.ids[row]): row for row in chunk}
        records = [r for r in collection.retrieve(list(row_of), [], with_vectors=True) if r.vector is not None]
        if records:
            rows_read = [row_of[r.id] for r in records]
            found, probability = words.top_words_with_confidence(np.vstack([r.vector for r in records]))
            out[rows_read], confident[rows_read] = found, probability >= CONFIDENT_WORD
    return out.astype(str), confident


def sample_members(clusters: np.ndarray, per_cluster: int, seed: int = 0) -> np.ndarray:
    """Row numbers of up to `per_cluster` random members of each cluster (all of a smaller one)."""
    rng = np.random.default_rng(seed)
    order = np.argsort(clusters, kind="stable")
    bounds = np.searchsorted(clusters[order], np.arange(int(clusters.max(initial=-1)) + 2))
    picks = [rng.permutation(order[bounds[c]:bounds[c + 1]])[:per_cluster] for c in range(len(bounds) - 1)]
    return np.sort(np.concatenate(picks)) if picks else np.zeros(0, np.int64)


def _write_clusters(collection: Collection, ids: np.ndarray, clusters: np.ndarray) -> None:
    """One payload write per cluster (and chunk), not one per point."""
    for cluster in np.unique(clusters):
        members = [str(i) for i in ids[clusters == cluster]]
        for chunk in chunked(members, WRITE_BATCH * 10):
            collection.set_payload(list(chunk), {CLUSTER: int(cluster)})
    collection.index_fields([CLUSTER])
    collection.flush()


def _save_table(collection: Collection, clusters: list[ClusterStats]) -> None:
    path = collection.artifact_dir / CLUSTERS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps([c.as_dict() for c in clusters]))
    tmp.replace(path)


def cluster_table(collection: Collection) -> list[dict[str, Any]]:
    """The cluster table of the last analysis, largest cluster first ([] before any)."""
    path = collection.artifact_dir / CLUSTERS_FILE
    return json.loads(path.read_text()) if path.exists() else []


def cluster_summaries(collection: Collection) -> list[dict[str, Any]]:
    """What `info` lists of each cluster: id, name, size, and its most common labels with
    their counts (`dominant_label` first)."""
    return [{"id": r["id"], "name": r["name"], "size": r["size"], "dominant_label": r.get("dominant_label", ""),
             "labels": r.get("labels", [])} for r in cluster_table(collection)]
