"""A collection as a selection `Pool`: its vectors, which points are labelled, which may be
chosen, and the class probabilities, graph and groups the strategies read.

Labelled means a non-empty `label`. Candidates are the unlabelled points inside the request's
filter (by default everything not tagged `excluded`) that no earlier round chose: those are
out with the annotators (their round's tag says which). Class probabilities come from an
imported model (`prediction_probabilities`) when every candidate has them, else from the
cross-validated linear probe on the labelled points (the one label quality trains). With a
detector's run (`uncertain-boxes`, a detection dataset's images), an image with a labelled box
counts as labelled too, and the pool carries the run's boxes (labelling/detector.py).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from analysis.knn import KnnGraph
from analysis.label_quality import encode_labels
from analysis.selection import USES_GRAPH, USES_PROBABILITIES, USES_RUN, Pool, probe_probabilities
from filters import FilterSpec, SelectionError
from labelling.detector import DetectorSource, run_boxes
from labelling.rounds import rounds
from store import Collection, Columns, PointFilter
from store.schema import CLUSTER, LABEL, PREDICTION_PROBABILITIES, PREDICTION_SOURCE, SOURCE

PROBE, MODEL = "linear probe (cross-validated)", "imported model"


@dataclass
class CollectionPool:
    """`pool` over the rows of `ids`; `classes`: the label names behind the probability columns;
    `codes`: each row's class code (-1 = unlabelled); `probabilities_from`: PROBE, MODEL or None;
    `run`: the detector run whose boxes the pool carries, or None."""

    ids: np.ndarray
    pool: Pool
    classes: np.ndarray
    codes: np.ndarray
    probabilities_from: str | None
    run: str | None = None


def collection_pool(collection: Collection, spec: FilterSpec, strategy: str, balance: str | None,
                    detector: DetectorSource | None = None) -> CollectionPool:
    ids, vectors = collection.vectors()
    columns = collection.columns([LABEL, CLUSTER, SOURCE])
    row_of = {pid: i for i, pid in enumerate(columns.ids)}
    order = np.array([row_of[pid] for pid in ids], dtype=np.int64)
    labels = np.array([columns.values[LABEL][i] or "" for i in order], dtype=str)
    classes, codes = encode_labels(labels)
    labelled = codes >= 0
    boxes, run = None, None
    if strategy in USES_RUN:
        if detector is None:
            raise SelectionError(f"{strategy} chooses images of a detection dataset from a detector's run: give "
                                 "the image collection or its NAME-objects, which holds the run")
        boxes, with_boxes, run = run_boxes(detector, ids)
        labelled = labelled | with_boxes
    allowed = set(collection.ids(_without_earlier_rounds(collection, spec.resolve(collection))))
    # A detector's false positives drawn on the map (source=prediction) are not points to label:
    # they become labels only when accepted as missing labels (evaluation/accept.py).
    predicted = np.array([columns.values[SOURCE][i] == PREDICTION_SOURCE for i in order], dtype=bool)
    candidates = ~labelled & ~predicted & np.fromiter((pid in allowed for pid in ids), dtype=bool, count=len(ids))
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    probabilities, source = None, None
    if strategy in USES_PROBABILITIES or balance == "class":
        probabilities, source = _probabilities(collection, ids, candidates, classes, unit, codes)
    graph = _graph(collection, ids) if strategy in USES_GRAPH else None
    groups = _groups(columns, order, probabilities, balance)
    return CollectionPool(ids, Pool(unit.astype(np.float32), labelled, candidates, probabilities, graph, groups,
                                    boxes), classes, codes, source, run)


def _without_earlier_rounds(collection: Collection, flt: PointFilter) -> PointFilter:
    tags = [str(r["tag"]) for r in rounds(collection)]
    return replace(flt, tags_none=[*(flt.tags_none or []), *tags]) if tags else flt


def _probabilities(collection: Collection, ids: np.ndarray, candidates: np.ndarray, classes: np.ndarray,
                   unit: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray | None, str | None]:
    imported = _imported_probabilities(collection, ids, candidates, classes)
    if imported is not None:
        return imported, MODEL
    probe = probe_probabilities(unit, codes, len(classes)) if len(classes) >= 2 else None
    return probe, (PROBE if probe is not None else None)


def _imported_probabilities(collection: Collection, ids: np.ndarray, candidates: np.ndarray,
                            classes: np.ndarray) -> np.ndarray | None:
    """(n, C) from `prediction_probabilities` when every candidate has them (classes the
    labelled points do not have are left out), else None."""
    wanted = ids[candidates].tolist()
    found = {r.id: r.payload.get(PREDICTION_PROBABILITIES) for r in
             collection.retrieve(wanted, [PREDICTION_PROBABILITIES])} if wanted else {}
    if not wanted or any(not isinstance(found.get(pid), dict) for pid in wanted):
        return None
    column = {name: c for c, name in enumerate(classes.tolist())}
    dense = np.zeros((len(ids), max(len(classes), 1)))
    for row in np.flatnonzero(candidates):
        for name, p in found[ids[row]].items():
            if name in column:
                dense[row, column[name]] = float(p)
    totals = dense.sum(axis=1, keepdims=True)
    return np.divide(dense, totals, out=np.full_like(dense, 1.0 / dense.shape[1]), where=totals > 0)


def _graph(collection: Collection, ids: np.ndarray) -> KnnGraph:
    """The collection's saved kNN graph (built when missing or stale), its rows in `ids` order."""
    from scoring.analyze import current_graph

    graph = current_graph(collection, 15)
    position = {pid: i for i, pid in enumerate(ids.tolist())}
    to_ours = np.array([position[pid] for pid in graph.ids.tolist()], dtype=np.int64)
    rows = np.empty(len(ids), dtype=np.int64)
    rows[to_ours] = np.arange(len(ids))
    return KnnGraph(ids, to_ours[graph.indices[rows]].astype(np.int32), graph.similarities[rows])


def _groups(columns: Columns, order: np.ndarray, probabilities: np.ndarray | None,
            balance: str | None) -> np.ndarray | None:
    """Each row's group for a balanced batch: predicted class, or `analyze`'s cluster (None:
    no balance, or no clusters stored: the strategy makes k-means groups)."""
    if balance == "class":
        return None if probabilities is None else probabilities.argmax(axis=1)
    if balance == "cluster":
        clusters = columns.floats(CLUSTER)[order]
        return np.where(np.isfinite(clusters), clusters, -1).astype(np.int64) if np.isfinite(clusters).any() else None
    return None
