"""Score a collection's data quality and write the scores into its payloads.

Reads the kNN graph saved at indexing time (rebuilt only when the points changed since) and
the vectors, runs the pure functions of `analysis/` over them and stores per point:

    mislabel_score (float, P(label wrong)), suggested_label (keyword), neighbour_agreement,
    probe_agreement (floats), outlier_score (float, robust z), uniqueness (float),
    duplicate_group (int, -1 = none), exact_duplicate_group (int), split_leak_group (int: a
    near-duplicate group with members in two or more splits, -1 = none),
    quality_flags (keywords: "mislabel", "outlier", "duplicate")

all indexed so that other tools can filter on them. On an object collection (one point per
box) the same analyses run over the boxes, plus duplicate boxes (analysis/boxes.py):
duplicate_box_group (int, -1 = none), max_box_iou (float) and the flag "duplicate_box", and the
object metrics (scoring/object_metrics.py): relative_area, border_distance, shape_score and the
flag "shape_outlier"; given the other collection of a detection dataset (`partner`), each
image's object_count and object_density.
Ranked confused class pairs go to `confused-pairs.json` in the collection folder. Then the
clusters (scoring/clusters.py): `cluster` per point and the cluster table in `clusters.json`.
A named vector's analysis (`analyze --vector NAME2`) leaves those fields (the default vector's)
as they are and writes the same scores, with its Leiden clusters, into `scores_by_vector.NAME2`
of each point, its confused pairs into `confused-pairs-NAME2.json` and its record into the
metadata's `analysis_by_vector`, so both models' label-error flags coexist; `mislabel_flagged_by`
lists every vector whose last analysis flags the label.
`python app.py analyze` runs this; indexing runs it at its end. Image metrics missing from
older collections are added here too, by
decoding the files again (no re-embedding).
"""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from analysis.boxes import duplicate_boxes
from analysis.clusters import ClusterConfig, ClusteringUnavailable, find_clusters
from analysis.image_metrics import image_metrics, uniqueness
from analysis.knn import KnnGraph, build_knn_graph, graph_file
from analysis.leaks import split_leak_groups
from analysis.label_quality import (
    DEFAULT_K, confused_class_pairs, encode_labels, exact_duplicate_groups, near_duplicate_groups,
)
from analysis.linear_probe import CrossValidatedProbe
from analysis.mislabels import mislabel_scores
from analysis.outliers import outlier_scores
from detection.boxes import is_object_collection, prediction_point_ids
from detection.geometry import crop_region
from imaging.images import ImageSkipped, decode_image
from imaging.progress import progress_bar
from scoring.clusters import compute_clusters
from scoring.object_metrics import add_object_counts, add_object_metrics
from store import DEFAULT_VECTOR, Collection
from store.schema import (
    AREA, ASPECT_RATIO, BBOX, BOX_SCORE_FIELDS, CLUSTER, DUPLICATE_BOX_FLAG, DUPLICATE_BOX_GROUP, DUPLICATE_FLAG,
    DUPLICATE_GROUP, EXACT_DUPLICATE_GROUP, IMAGE_ID, LABEL, MAX_BOX_IOU, METRIC_FIELDS, MISLABEL_FLAG,
    MISLABEL_FLAGGED_BY, MISLABEL_SCORE, NEIGHBOUR_AGREEMENT, OUTLIER_FLAG, OUTLIER_SCORE, PATH, PROBE_AGREEMENT,
    QUALITY_FLAGS, SCORE_FIELDS, SCORES_BY_VECTOR, SHA1, SPLIT, SPLIT_LEAK_GROUP, SUGGESTED_LABEL, UNIQUENESS,
)

CONFUSED_PAIRS_FILE = "confused-pairs.json"
ANALYSIS_BY_VECTOR = "analysis_by_vector"  # metadata: each named vector's last analysis (analyze --vector)


@dataclass
class QualitySummary:
    points: int = 0
    k: int = DEFAULT_K
    mislabels: int = 0
    outliers: int = 0
    duplicate_groups: int = 0
    exact_duplicate_groups: int = 0
    confused_pairs: list[dict[str, Any]] = field(default_factory=list)
    metrics_added: int = 0
    duplicate_boxes: int | None = None  # object collections: boxes overlapping another of their image
    shape_outliers: int | None = None   # object collections: boxes of a shape unusual for their class
    clusters: str = ""  # scoring/clusters.py's summary line
    split_leaks: int = 0  # near-duplicate groups with members in two or more splits

    def summary(self) -> str:
        top = ", ".join(f"{p['class_a']}<->{p['class_b']} ({p['count']})" for p in self.confused_pairs[:3])
        boxes = "" if self.duplicate_boxes is None else f", {self.duplicate_boxes} duplicate boxes"
        boxes += "" if self.shape_outliers is None else f", {self.shape_outliers} shape outliers"
        return (f"{self.points} points scored (k={self.k}): {self.mislabels} likely mislabels, {self.outliers} "
                f"outliers, {self.duplicate_groups} near-duplicate groups, {self.exact_duplicate_groups} exact "
                f"duplicate groups{boxes}" + (f", {self.split_leaks} near-duplicate groups across splits (leaks)"
                                                  if self.split_leaks else "") + (f"; most confused: {top}" if top else "")
                + (f"\n{self.clusters}" if self.clusters else ""))


def load_graph(collection: Collection, vector: str = DEFAULT_VECTOR) -> KnnGraph | None:
    """The saved graph of the collection's vector `vector` (default: the unnamed one)."""
    path = collection.artifact_dir / graph_file(vector)
    return KnnGraph.load(path) if path.exists() else None


def current_graph(collection: Collection, k: int, seed: int = 0,
                  vectors: tuple[np.ndarray, np.ndarray] | None = None, vector: str = DEFAULT_VECTOR) -> KnnGraph:
    """The saved graph when it still covers exactly the collection's points, else a new one
    (from `vectors` = (ids, vectors) when given, else read from the collection)."""
    graph = load_graph(collection, vector)
    ids = set(collection.ids()) if vectors is None else set(vectors[0].tolist())
    if graph is not None and graph.k >= k and len(graph) == len(ids) and ids.issuperset(graph.ids):
        return graph
    point_ids, matrix = collection.vectors(using=vector) if vectors is None else vectors
    graph = build_knn_graph(point_ids, matrix, k=max(k, 15), seed=seed)
    graph.save(collection.artifact_dir / graph_file(vector))
    return graph


def analyze_collection(collection: Collection, k: int = DEFAULT_K, add_metrics: bool = True,
                       clusters: ClusterConfig | None = ClusterConfig(),
                       vector: str = DEFAULT_VECTOR, partner: Collection | None = None) -> QualitySummary:
    """Score every point's label, outlierness and duplicates with the neighbours and probe of
    `vector` (a named vector: `analyze --vector`; the scores then are that model's).
    `partner`: the other collection of a detection dataset (the image collection of an
    object collection, or the reverse), for the images' object counts."""
    summary = QualitySummary(k=k)
    if add_metrics:
        summary.metrics_added = add_missing_image_metrics(collection)
    if partner is not None:
        objects = collection if is_object_collection(collection) else partner
        add_object_counts(partner if objects is collection else collection, objects)
    if collection.count() < 2:
        return summary
    point_ids, matrix = collection.vectors(using=vector)
    predictions = prediction_point_ids(collection)  # a detector's false positives are not labels
    if predictions:
        keep = np.array([pid not in predictions for pid in point_ids.tolist()], bool)
        point_ids, matrix = point_ids[keep], matrix[keep]
    if len(point_ids) < 2:
        return summary
    graph = current_graph(collection, k, vectors=(point_ids, matrix), vector=vector)
    small = graph.truncated(min(k, graph.k))
    vector_row = {pid: i for i, pid in enumerate(point_ids)}
    vectors = matrix[np.array([vector_row[pid] for pid in graph.ids])]
    columns = collection.columns([LABEL, SHA1, SPLIT])
    row_of = {pid: i for i, pid in enumerate(columns.ids)}
    order = np.array([row_of[pid] for pid in graph.ids])
    labels = np.array([columns.values[LABEL][i] or "" for i in order], dtype=str)
    hashes = np.array([columns.values[SHA1][i] or pid for i, pid in zip(order, graph.ids)], dtype=str)
    splits = np.array([columns.values[SPLIT][i] or "" for i in order], dtype=str)

    probe = CrossValidatedProbe(vectors, encode_labels(labels)[1])  # fold statistics, shared by both
    mislabels = mislabel_scores(small, labels, probe=probe)
    outliers = outlier_scores(small, probe=probe)
    near = near_duplicate_groups(small)
    leaks = split_leak_groups(near, splits)
    exact = exact_duplicate_groups(hashes)
    unique = uniqueness(small)
    pairs = confused_class_pairs(small, labels)

    payloads = [_payload(i, mislabels, outliers, near, exact, unique) for i in range(len(graph))]
    if vector != DEFAULT_VECTOR:  # a named vector's scores go beside the default one's
        _write_named_scores(collection, graph, payloads, mislabels.flagged, vector, clusters)
        _summarise(summary, collection, graph, mislabels, outliers, near, exact, pairs, vector)
        return summary
    for payload, leak in zip(payloads, leaks):  # split leaks: near-duplicates of the default vector's graph
        payload[SPLIT_LEAK_GROUP] = int(leak)
    _add_flagged_by(collection, graph.ids, payloads, mislabels.flagged, vector)
    if is_object_collection(collection):
        summary.duplicate_boxes = add_duplicate_boxes(collection, graph.ids, payloads)
        summary.shape_outliers = add_object_metrics(collection, graph.ids, payloads)
    collection.set_payloads(list(graph.ids), payloads)
    collection.index_fields([*SCORE_FIELDS, *([MISLABEL_FLAGGED_BY] if MISLABEL_FLAGGED_BY in payloads[0] else [])])
    collection.flush()
    summary.split_leaks = int(len(set(leaks[leaks >= 0].tolist())))
    _summarise(summary, collection, graph, mislabels, outliers, near, exact, pairs, vector)
    if clusters is not None:  # after the flags are written: the cluster table counts them
        summary.clusters = compute_clusters(collection, graph, clusters).summary()
    return summary


def _write_named_scores(collection: Collection, graph: KnnGraph, scores: list[dict[str, Any]], flagged: np.ndarray,
                        vector: str, clusters: ClusterConfig | None) -> None:
    """A named vector's scores (and its Leiden clusters) into SCORES_BY_VECTOR[vector] of each
    point, keeping the other named vectors' entries; the default vector's fields stay as they are."""
    if clusters is not None and clusters.method == "leiden":
        try:
            found = find_clusters(graph, None, clusters)
            for score, cluster in zip(scores, found.tolist()):
                score[CLUSTER] = int(cluster)
        except ClusteringUnavailable:
            pass
    column = collection.columns([SCORES_BY_VECTOR])
    before = dict(zip(column.ids.tolist(), column.values[SCORES_BY_VECTOR]))
    flags_by: list[dict[str, Any]] = [{} for _ in scores]
    _add_flagged_by(collection, graph.ids, flags_by, flagged, vector)
    payloads = [{SCORES_BY_VECTOR: {**(before.get(pid) or {}), vector: score}, **flagged_by}
                for pid, score, flagged_by in zip(graph.ids.tolist(), scores, flags_by)]
    collection.set_payloads(list(graph.ids), payloads)
    collection.index_fields([MISLABEL_FLAGGED_BY])
    collection.flush()


def _add_flagged_by(collection: Collection, ids: np.ndarray, payloads: list[dict[str, Any]], flagged: np.ndarray,
                    vector: str) -> None:
    """Collections with named vectors: which vectors' analyses flag each label (this one's flags
    replace its previous ones), so the review queue can put the labels every model doubts first."""
    if not collection.vector_names():
        return
    name = vector or "default"
    column = collection.columns([MISLABEL_FLAGGED_BY])
    before = dict(zip(column.ids.tolist(), column.values[MISLABEL_FLAGGED_BY]))
    for pid, payload, on in zip(ids.tolist(), payloads, flagged.tolist()):
        others = [v for v in before.get(pid) or [] if v != name]
        payload[MISLABEL_FLAGGED_BY] = sorted([*others, name]) if on else others


def _summarise(summary: QualitySummary, collection: Collection, graph: KnnGraph, mislabels: Any, outliers: Any,
               near: np.ndarray, exact: np.ndarray, pairs: list[Any], vector: str = DEFAULT_VECTOR) -> None:
    """The summary, the confused pairs and the metadata's record of the analysis (a named
    vector's: under ANALYSIS_BY_VECTOR, beside the default vector's `analysis`)."""
    summary.points = len(graph)
    summary.mislabels = int(mislabels.flagged.sum())
    summary.outliers = int(outliers.flagged.sum())
    summary.duplicate_groups = int(len(set(near[near >= 0].tolist())))
    summary.exact_duplicate_groups = int(len(set(exact[exact >= 0].tolist())))
    summary.confused_pairs = [_pair_record(p, graph.ids) for p in pairs]
    _save_pairs(collection, summary.confused_pairs, vector)
    record = {
        "k": summary.k, "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "mislabels": summary.mislabels, "outliers": summary.outliers, "outlier_cutoff": float(outliers.cutoff),
        "split_leak_groups": summary.split_leaks,
        "outlier_method": outliers.method, "neighbour_vote_weight": float(mislabels.vote_weight),
        "noise_shrinkage": float(mislabels.noise.shrinkage), "vector": vector}
    if vector == DEFAULT_VECTOR:
        collection.update_metadata(analysis=record)
    else:
        by_vector = collection.read_metadata().get(ANALYSIS_BY_VECTOR) or {}
        collection.update_metadata(**{ANALYSIS_BY_VECTOR: {**by_vector, vector: record}})


def _payload(i: int, mislabels: Any, outliers: Any, near: np.ndarray, exact: np.ndarray,
             unique: np.ndarray) -> dict[str, Any]:
    flags = [name for name, on in ((MISLABEL_FLAG, mislabels.flagged[i]), (OUTLIER_FLAG, outliers.flagged[i]),
                                   (DUPLICATE_FLAG, near[i] >= 0 or exact[i] >= 0)) if on]
    payload = {MISLABEL_SCORE: float(mislabels.score[i]), SUGGESTED_LABEL: str(mislabels.suggested_label[i]),
               NEIGHBOUR_AGREEMENT: float(mislabels.neighbour_agreement[i]),
               OUTLIER_SCORE: float(outliers.score[i]), UNIQUENESS: float(unique[i]),
               DUPLICATE_GROUP: int(near[i]), EXACT_DUPLICATE_GROUP: int(exact[i]), QUALITY_FLAGS: flags}
    if np.isfinite(mislabels.probe_agreement[i]):
        payload[PROBE_AGREEMENT] = float(mislabels.probe_agreement[i])
    return payload


def add_duplicate_boxes(collection: Collection, ids: np.ndarray, payloads: list[dict[str, Any]]) -> int:
    """Object collections: duplicate_box_group and max_box_iou into each box's payload, the
    duplicate_box flag where it overlaps another box of its image; returns how many are flagged."""
    columns = collection.columns([IMAGE_ID, BBOX])
    row_of = {pid: i for i, pid in enumerate(columns.ids)}
    rows = [row_of[pid] for pid in ids]
    image_keys = np.array([str(columns.values[IMAGE_ID][i] or f"?{i}") for i in rows], dtype=str)
    boxes = np.array([_bbox(columns.values[BBOX][i]) for i in rows], dtype=np.float64).reshape(len(rows), 4)
    result = duplicate_boxes(image_keys, boxes)
    for payload, group, iou in zip(payloads, result.group, result.max_iou):
        payload.update({DUPLICATE_BOX_GROUP: int(group), MAX_BOX_IOU: float(iou)})
        if group >= 0:
            payload[QUALITY_FLAGS] = [*payload[QUALITY_FLAGS], DUPLICATE_BOX_FLAG]
    collection.index_fields(BOX_SCORE_FIELDS)
    return int(result.flagged.sum())


def _bbox(value: Any) -> list[float]:
    """A stored bbox, or an empty box (overlapping nothing) when a point has none."""
    return [float(v) for v in value] if isinstance(value, list) and len(value) == 4 else [0.0, 0.0, 0.0, 0.0]


def _pair_record(pair: Any, ids: np.ndarray) -> dict[str, Any]:
    return {"class_a": pair.class_a, "class_b": pair.class_b, "a_to_b": int(pair.a_to_b), "b_to_a": int(pair.b_to_a),
            "count": int(pair.count), "share": float(pair.share), "ids": [str(ids[i]) for i in pair.indices]}


def pairs_file(vector: str = DEFAULT_VECTOR) -> str:
    """The confused pairs of `vector`'s analysis: CONFUSED_PAIRS_FILE, a named vector's beside it."""
    return CONFUSED_PAIRS_FILE if vector == DEFAULT_VECTOR else f"confused-pairs-{vector}.json"


def _save_pairs(collection: Collection, pairs: list[dict[str, Any]], vector: str = DEFAULT_VECTOR) -> None:
    path = collection.artifact_dir / pairs_file(vector)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(pairs))


def confused_pairs(collection: Collection, vector: str = DEFAULT_VECTOR) -> list[dict[str, Any]]:
    """The ranked confused class pairs of the last analysis of `vector` ([] before any)."""
    path = collection.artifact_dir / pairs_file(vector)
    return json.loads(path.read_text()) if path.exists() else []


def add_missing_image_metrics(collection: Collection, workers: int = 2) -> int:
    """Compute METRIC_FIELDS for points indexed without them; returns how many were added.
    Object points get the metrics of the pixels inside their box (their area and aspect ratio
    are the box's, set at indexing)."""
    root = Path(collection.read_metadata().get("source_root", "."))
    # The first and the last metric: collections made before the colour metrics lack the last.
    columns = collection.columns([PATH, BBOX, METRIC_FIELDS[0], METRIC_FIELDS[-1]])
    todo = [(pid, p, b) for pid, p, b, first, last in zip(
        columns.ids, columns.values[PATH], columns.values[BBOX], columns.values[METRIC_FIELDS[0]],
        columns.values[METRIC_FIELDS[-1]]) if (first is None or last is None) and p]
    if not todo:
        return 0

    def metrics_of(item: tuple[str, str, Any]) -> dict[str, float] | None:
        try:
            pixels = np.asarray(decode_image(root / item[1]).image)
        except ImageSkipped:
            return None
        if item[2] is None:
            return image_metrics(pixels)
        left, top, right, bottom = crop_region(tuple(_bbox(item[2])), pixels.shape[1], pixels.shape[0], margin=0.0)
        metrics = image_metrics(pixels[top:bottom, left:right])
        return {k: v for k, v in metrics.items() if k not in (AREA, ASPECT_RATIO)}

    with ThreadPoolExecutor(workers) as pool:
        results = list(progress_bar(pool.map(metrics_of, todo), total=len(todo), desc="image metrics", unit="img"))
    done = [(pid, m) for (pid, _, _), m in zip(todo, results) if m is not None]
    collection.set_payloads([pid for pid, _ in done], [m for _, m in done])
    collection.index_fields(METRIC_FIELDS)
    return len(done)
