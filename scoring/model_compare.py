"""`compare-models`: two vectors of one collection (the default one and a named one added with
`index --add-vector`, or two named ones) compared on its points and labels.

Reads each vector's saved neighbour graph (building it when missing or stale), writes each
point's neighbour overlap into the `model_overlap` payload field (colourable, filterable,
sortable, exported), and keeps the whole table (analysis/model_compare.py) in
`model-comparison.json` beside the collection, with each model's clusters and the overlap in
`model-comparison.npz` for the explorer.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np

from analysis.clusters import ClusterConfig, ClusteringUnavailable, find_clusters
from analysis.knn import KnnGraph, build_knn_graph, graph_file
from analysis.label_quality import DEFAULT_K
from analysis.model_compare import ModelReport, aligned, flag_agreement, model_report, neighbour_overlap, verdict
from store import DEFAULT_VECTOR, Collection, StoreError
from store.schema import LABEL, MODEL, MODEL_OVERLAP, PATH, PRECISION, VECTORS

COMPARISON_FILE = "model-comparison.json"
COMPARISON_ARRAYS = "model-comparison.npz"
DEFAULT_NAME = "default"  # how the command line and the tables call the unnamed vector
REVIEW_LIST = 50  # points with the least-shared neighbourhoods kept in the table


def vector_label(name: str) -> str:
    return name or DEFAULT_NAME


def vector_key(text: str) -> str:
    """A vector as the user names it ("default" is the unnamed one) -> its Qdrant name."""
    return DEFAULT_VECTOR if text in (DEFAULT_NAME, DEFAULT_VECTOR) else text


def checked_vector(collection: Collection, text: str) -> str:
    """The Qdrant name of the vector the user named, refused when the collection lacks it."""
    name = vector_key(text)
    known = [DEFAULT_VECTOR, *collection.vector_names()]
    if name not in known:
        raise StoreError(f"collection '{collection.name}' has no vector '{name}' (its vectors: "
                         f"{', '.join(vector_label(n) for n in known)})")
    return name


def resolve_pair(collection: Collection, first: str | None, second: str | None) -> tuple[str, str]:
    """The two vectors to compare; left out, the collection's only two."""
    known = [DEFAULT_VECTOR, *collection.vector_names()]
    if first is None or second is None:
        if len(known) != 2:
            names = ", ".join(vector_label(n) for n in known)
            raise StoreError(f"collection '{collection.name}' has {len(known)} vectors ({names}); name the two to "
                             "compare: compare-models --collection NAME A B"
                             + ("" if len(known) > 2 else ". Add one with: index PATH --collection NAME --model M2 "
                                                           "--add-vector"))
        return known[0], known[1]
    pair = checked_vector(collection, first), checked_vector(collection, second)
    if pair[0] == pair[1]:
        raise StoreError("compare-models needs two different vectors")
    return pair


def vector_graph(collection: Collection, name: str, k: int = DEFAULT_K) -> tuple[KnnGraph, np.ndarray]:
    """(graph, vectors in graph row order) of vector `name`: the saved graph when it still covers
    exactly the points that have the vector, else a new one (saved)."""
    ids, vectors = collection.vectors(using=name)
    if len(ids) < 2:
        raise StoreError(f"vector '{vector_label(name)}' of '{collection.name}' is on {len(ids)} points; a "
                         "comparison needs at least 2")
    path = collection.artifact_dir / graph_file(name)
    graph = KnnGraph.load(path) if path.exists() else None
    if graph is None or graph.k < k or len(graph) != len(ids) or not np.array_equal(np.sort(graph.ids), np.sort(ids)):
        graph = build_knn_graph(ids, vectors, k=max(k, 15))
        graph.save(path)
        return graph, vectors
    row = {pid: i for i, pid in enumerate(ids.tolist())}
    return graph, vectors[np.fromiter((row[pid] for pid in graph.ids.tolist()), dtype=np.int64, count=len(graph))]


@dataclass
class Comparison:
    collection: str
    vectors: tuple[str, str]
    models: tuple[str, str]
    k: int
    points: int
    mean_overlap: float
    reports: tuple[ModelReport, ModelReport]
    agreement: dict[str, Any]
    verdict: str
    review: list[dict[str, Any]] = field(default_factory=list)  # least-shared neighbourhoods first

    def as_dict(self) -> dict[str, Any]:
        return {"collection": self.collection, "vectors": [vector_label(v) for v in self.vectors],
                "models": list(self.models), "k": self.k, "points": self.points, "mean_overlap": self.mean_overlap,
                "per_model": [r.as_dict() for r in self.reports], "label_error_agreement": self.agreement,
                "verdict": self.verdict, "most_different": self.review}


def compare_models(collection: Collection, first: str | None = None, second: str | None = None,
                   k: int = DEFAULT_K, clusters: bool = True) -> Comparison:
    a, b = resolve_pair(collection, first, second)
    graph_a, vectors_a = vector_graph(collection, a, k)
    graph_b, vectors_b = vector_graph(collection, b, k)
    common, near_a, near_b = aligned(graph_a, graph_b, k)
    overlap = neighbour_overlap(near_a, near_b)
    columns = collection.columns([LABEL, PATH])
    label_of = dict(zip(columns.ids.tolist(), (v or "" for v in columns.values[LABEL])))
    reports, found = [], []
    for name, graph, vectors in ((a, graph_a, vectors_a), (b, graph_b, vectors_b)):
        labels = np.array([label_of.get(pid, "") for pid in graph.ids.tolist()], dtype=str)
        groups = _clusters(graph) if clusters else None
        reports.append(model_report(vector_label(name), graph, vectors, labels, k, groups))
        found.append(groups)
    flags = [_on(graph, report.flagged, common) for graph, report in ((graph_a, reports[0]), (graph_b, reports[1]))]
    path_of = dict(zip(columns.ids.tolist(), columns.values[PATH]))
    order = np.argsort(overlap, kind="stable")[:REVIEW_LIST]
    result = Comparison(collection.name, (a, b), (_model(collection, a), _model(collection, b)), k, len(common),
                        float(overlap.mean()) if len(overlap) else 0.0, (reports[0], reports[1]),
                        flag_agreement(flags[0], flags[1]), verdict(reports[0], reports[1]),
                        [{"id": str(common[i]), "path": path_of.get(str(common[i])), "overlap": float(overlap[i])}
                         for i in order])
    _write(collection, result, common, overlap, [(graph_a, found[0]), (graph_b, found[1])])
    return result


def _clusters(graph: KnnGraph) -> np.ndarray | None:
    try:
        return find_clusters(graph, None, ClusterConfig())
    except ClusteringUnavailable:
        return None


def _on(graph: KnnGraph, values: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """`values` (one per graph row) at the rows of `ids`."""
    row = {pid: i for i, pid in enumerate(graph.ids.tolist())}
    return values[np.fromiter((row[pid] for pid in ids.tolist()), dtype=np.int64, count=len(ids))]


def _model(collection: Collection, name: str) -> str:
    metadata = collection.read_metadata()
    about = metadata if name == DEFAULT_VECTOR else metadata.get(VECTORS, {}).get(name, {})
    precision = about.get(PRECISION)
    return f"{about.get(MODEL) or 'model not recorded'}" + (f" ({precision})" if precision else "")


def _write(collection: Collection, result: Comparison, common: np.ndarray, overlap: np.ndarray,
           clustered: list[tuple[KnnGraph, np.ndarray | None]]) -> None:
    """The overlap into the payloads; the table, the overlap and both models' clusters as artifacts."""
    collection.set_payloads(common.tolist(), [{MODEL_OVERLAP: float(v)} for v in overlap.tolist()])
    collection.index_fields([MODEL_OVERLAP])
    collection.flush()
    arrays: dict[str, np.ndarray] = {"ids": common.astype(str), "overlap": overlap}
    for name, (graph, groups) in zip(result.vectors, clustered):
        if groups is not None:
            arrays[clusters_key(name)] = _on(graph, groups, common)
    collection.artifact_dir.mkdir(parents=True, exist_ok=True)
    np.savez(collection.artifact_dir / COMPARISON_ARRAYS, **arrays)
    table = {**result.as_dict(), "at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    (collection.artifact_dir / COMPARISON_FILE).write_text(json.dumps(table, indent=2))
    collection.update_metadata(model_comparison={"vectors": table["vectors"], "k": result.k, "at": table["at"],
                                                 "verdict": result.verdict})


def clusters_key(vector: str) -> str:
    """The array of COMPARISON_ARRAYS holding the Leiden clusters of `vector`'s graph."""
    return f"clusters_{vector_label(vector)}"


def saved_clusters(collection: Collection, vector: str) -> tuple[np.ndarray, np.ndarray] | None:
    """(ids, clusters) of `vector` from the last comparison that clustered it, or None."""
    path = collection.artifact_dir / COMPARISON_ARRAYS
    if not path.exists():
        return None
    with np.load(path, allow_pickle=False) as data:
        key = clusters_key(vector)
        return (data["ids"], data[key]) if key in data.files else None


def saved_overlap(collection: Collection) -> tuple[np.ndarray, np.ndarray] | None:
    """(ids, neighbour overlap) of every point of the last comparison, or None before any."""
    path = collection.artifact_dir / COMPARISON_ARRAYS
    if not path.exists():
        return None
    with np.load(path, allow_pickle=False) as data:
        return data["ids"], data["overlap"]


def saved_comparison(collection: Collection) -> dict[str, Any] | None:
    path = collection.artifact_dir / COMPARISON_FILE
    return json.loads(path.read_text()) if path.exists() else None


def format_comparison(table: dict[str, Any], worst: int = 10) -> str:
    """The table as text: one column per model, then the agreement, the verdict and the points
    whose neighbourhoods differ most."""
    first, second = table["per_model"]
    rows = [("vector", first["name"], second["name"]), ("model", *table["models"]),
            ("points", str(first["points"]), str(second["points"]))]
    for key, title in (("probe_accuracy", "linear-probe accuracy (5-fold)"), ("knn_accuracy", "kNN vote accuracy"),
                       ("cluster_purity", "cluster purity"), ("cluster_ari", "cluster ARI vs labels")):
        rows.append((title, *(_number(m[key], key != "cluster_ari") for m in (first, second))))
    rows.append(("clusters", str(first["clusters"]), str(second["clusters"])))
    rows.append(("likely label errors", str(first["label_errors"]), str(second["label_errors"])))
    rows.append(("most confused pairs", *(_pairs(m["confused_pairs"]) for m in (first, second))))
    width = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, width)).rstrip() for row in rows]
    agreement = table["label_error_agreement"]
    lines += ["", f"neighbour overlap (k={table['k']}, {table['points']} points): mean {table['mean_overlap']:.2f} "
              f"(export column {MODEL_OVERLAP})",
              f"label-error flags: {agreement['both']} by both, {agreement['only_first']} by {first['name']} only, "
              f"{agreement['only_second']} by {second['name']} only (Jaccard {agreement['jaccard']:.2f})",
              f"verdict: {table['verdict']}"]
    if worst and table["most_different"]:
        lines += ["", f"most different neighbourhoods ({min(worst, len(table['most_different']))}):"]
        lines += [f"  {p['overlap']:.2f}  {p['path']}" for p in table["most_different"][:worst]]
    return "\n".join(lines)


def _number(value: float | None, percent: bool) -> str:
    if value is None:
        return "-"
    return f"{value:.1%}" if percent else f"{value:.3f}"


def _pairs(pairs: list[dict[str, Any]]) -> str:
    return ", ".join(f"{p['class_a']}/{p['class_b']} ({p['count']})" for p in pairs[:3]) or "-"
