"""Two embedding models of the same points, compared: where their neighbourhoods disagree, and
which one separates the labels better.

Pure numpy / sklearn over two kNN graphs (analysis/knn.py) and the vectors behind them, rows
aligned (row i is the same point in both):

- `neighbour_overlap`: per point, the share of its k nearest neighbours under model A that
  are also among its k nearest under model B (1: the same neighbourhood, 0: none shared).
  Symmetric, since both lists have k entries.
- `model_report`: per model, the cross-validated linear-probe accuracy (the probe of
  analysis/linear_probe.py, the same one that judges label errors), the kNN vote accuracy,
  cluster purity and adjusted Rand index of its Leiden clusters against the labels, the labels
  it flags as likely errors (analysis/mislabels.py) and its most confused class pairs.
- `verdict`: one line naming the model whose embedding separates these labels better: higher
  probe accuracy, unless the two are within VERDICT_MARGIN, where the cluster ARI decides.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from analysis.knn import KnnGraph
from analysis.label_quality import DEFAULT_K, confused_class_pairs, encode_labels, truncated_graph

OVERLAP_BLOCK = 65_536  # rows compared at once: (block, k, k) booleans
VERDICT_MARGIN = 0.005  # probe accuracies closer than this are a tie on accuracy


def neighbour_overlap(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(n,) float32 share of row i's neighbours in `a` (n, k) that are also in `b` (n, k)."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"neighbour lists of shape {a.shape} and {b.shape}: same points and k needed")
    out = np.empty(len(a), dtype=np.float32)
    k = max(a.shape[1], 1)
    for start in range(0, len(a), OVERLAP_BLOCK):
        stop = start + OVERLAP_BLOCK
        shared = (a[start:stop, :, None] == b[start:stop, None, :]).any(axis=2).sum(axis=1)
        out[start:stop] = shared / k
    return out


def aligned(first: KnnGraph, second: KnnGraph, k: int = DEFAULT_K) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ids, neighbours in `first`, neighbours in `second`) of the points both graphs hold,
    each as row numbers into `ids`, k per row. A neighbour that is not in both graphs becomes
    -1 in the first and -2 in the second, so it never counts as shared."""
    k = min(k, first.k, second.k)
    common, in_first, in_second = np.intersect1d(first.ids, second.ids, assume_unique=True, return_indices=True)
    return common, _renumbered(first, in_first, k, -1), _renumbered(second, in_second, k, -2)


def _renumbered(graph: KnnGraph, rows: np.ndarray, k: int, absent: int) -> np.ndarray:
    new_row = np.full(len(graph), absent, dtype=np.int64)
    new_row[rows] = np.arange(len(rows))
    return new_row[graph.indices[rows, :k]]


@dataclass
class ModelReport:
    """One model's fit to the labels (fields described in the module docstring)."""

    name: str
    points: int
    probe_accuracy: float | None
    knn_accuracy: float | None
    cluster_purity: float | None
    cluster_ari: float | None
    clusters: int
    flagged: np.ndarray = field(repr=False)  # (n,) bool: likely label errors under this model
    confused_pairs: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "points": self.points, "probe_accuracy": self.probe_accuracy,
                "knn_accuracy": self.knn_accuracy, "cluster_purity": self.cluster_purity,
                "cluster_ari": self.cluster_ari, "clusters": self.clusters, "label_errors": int(self.flagged.sum()),
                "confused_pairs": self.confused_pairs}


def model_report(name: str, graph: KnnGraph, vectors: np.ndarray, labels: np.ndarray, k: int = DEFAULT_K,
                 clusters: np.ndarray | None = None) -> ModelReport:
    """`vectors` row i and `labels[i]` belong to graph row i; `clusters` (n,) of the graph rows
    (-1: none), e.g. from analysis.clusters.find_clusters."""
    from analysis.linear_probe import CrossValidatedProbe
    from analysis.mislabels import mislabel_scores

    classes, codes = encode_labels(labels)
    small = truncated_graph(graph, k)
    labelled = codes >= 0
    if len(classes) < 2 or labelled.sum() < 2:
        return ModelReport(name, len(graph), None, None, None, None, 0, np.zeros(len(graph), bool))
    probe = CrossValidatedProbe(vectors, codes)
    result = probe.predict()
    probe_accuracy = None
    if result is not None:
        predicted = result.classes[np.arange(len(codes)), np.argmax(result.log_probs, axis=1)]
        probe_accuracy = float((predicted[labelled] == codes[labelled]).mean())
    flagged = mislabel_scores(small, labels, probe=probe).flagged
    purity, ari, count = _cluster_fit(clusters, codes)
    pairs = [{"class_a": p.class_a, "class_b": p.class_b, "count": p.count, "share": round(p.share, 4)}
             for p in confused_class_pairs(small, labels)[:5]]
    return ModelReport(name, len(graph), probe_accuracy, _knn_accuracy(small, codes), purity, ari, count,
                       np.asarray(flagged, bool), pairs)


def _knn_accuracy(graph: KnnGraph, codes: np.ndarray) -> float | None:
    """Leave-one-out accuracy of the unweighted majority label of each point's neighbours."""
    neighbour_codes = codes[graph.indices]
    votes = np.zeros((len(codes), int(codes.max()) + 2), dtype=np.int32)  # last column: unlabelled
    rows = np.repeat(np.arange(len(codes)), graph.k)
    np.add.at(votes, (rows, np.where(neighbour_codes >= 0, neighbour_codes, votes.shape[1] - 1).ravel()), 1)
    votes[:, -1] = 0
    labelled = (codes >= 0) & (votes.sum(axis=1) > 0)
    return float((votes.argmax(axis=1)[labelled] == codes[labelled]).mean()) if labelled.any() else None


def _cluster_fit(clusters: np.ndarray | None, codes: np.ndarray) -> tuple[float | None, float | None, int]:
    """(purity, adjusted Rand index, number of clusters) of the clusters against the labels,
    over the labelled points in a cluster."""
    if clusters is None:
        return None, None, 0
    from sklearn.metrics import adjusted_rand_score

    clusters = np.asarray(clusters)
    inside = (clusters >= 0) & (codes >= 0)
    if not inside.any():
        return None, None, 0
    table = np.zeros((int(clusters.max()) + 1, int(codes.max()) + 1), dtype=np.int64)
    np.add.at(table, (clusters[inside], codes[inside]), 1)
    purity = float(table.max(axis=1).sum() / inside.sum())
    return purity, float(adjusted_rand_score(codes[inside], clusters[inside])), int((table.sum(axis=1) > 0).sum())


def flag_agreement(first: np.ndarray, second: np.ndarray) -> dict[str, float | int]:
    """How far two models' label-error flags agree: both, only one, and their Jaccard index."""
    both, either = int((first & second).sum()), int((first | second).sum())
    return {"both": both, "only_first": int((first & ~second).sum()), "only_second": int((second & ~first).sum()),
            "jaccard": both / either if either else 1.0}


def verdict(first: ModelReport, second: ModelReport) -> str:
    """Which of the two separates the labels better, and by what measure."""
    if first.probe_accuracy is None or second.probe_accuracy is None:
        return "no verdict: the points need at least two labelled classes"
    gap = first.probe_accuracy - second.probe_accuracy
    if abs(gap) >= VERDICT_MARGIN:
        better, worse = (first, second) if gap > 0 else (second, first)
        return (f"{better.name} separates these labels better: linear-probe accuracy {better.probe_accuracy:.1%} "
                f"against {worse.probe_accuracy:.1%}")
    if first.cluster_ari is not None and second.cluster_ari is not None and first.cluster_ari != second.cluster_ari:
        better, worse = (first, second) if first.cluster_ari > second.cluster_ari else (second, first)
        return (f"{better.name} and {worse.name} are level on linear-probe accuracy ({better.probe_accuracy:.1%}, "
                f"{worse.probe_accuracy:.1%}); {better.name}'s clusters follow the labels more closely "
                f"(ARI {better.cluster_ari:.2f} against {worse.cluster_ari:.2f})")
    return f"{first.name} and {second.name} separate these labels equally well"
