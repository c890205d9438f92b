"""Clusters of similar points, what each one holds, and a short name for it.

Pure functions over numpy arrays: the collection's kNN graph (`analysis.knn.KnnGraph`), the
2D map coordinates, labels, image metrics and quality flags. Nothing here is specific to
images: a point may as well be a detected object.

Methods, registered by name in CLUSTER_METHODS (optional libraries load on first use):

    leiden       community detection (Leiden, modularity) on the symmetrised kNN graph,
                 weights = cosine similarity; needs `graspologic-native` (MIT, Rust). The default:
                 every point gets a cluster, and on Fashion-MNIST it matches the labels as well as
                 k-means with the same number of clusters or better, 4-37x faster (docs/BENCHMARKS.md).
    hdbscan-map  density-based (scikit-learn's HDBSCAN) on the 2D map; finds the map's islands,
                 which on UMAP maps hold several classes each (its leaf mode: a third of the points
                 left as noise instead).

Cluster ids are renumbered by size (0 = largest); clusters under `min_size` points and HDBSCAN's
noise get NO_CLUSTER (-1).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from analysis.cluster_names import name_clusters
from analysis.knn import KnnGraph

NO_CLUSTER = -1
CLUSTER_NEIGHBOURS = 15   # graph neighbours per point the graph methods use (same as the map's UMAP)
IMPURE_BELOW = 0.7        # purity under which a cluster is where classes get confused
TOP_VALUES = 3            # labels / content words kept per cluster


@dataclass(frozen=True)
class ClusterConfig:
    method: str = "leiden"
    resolution: float = 1.0   # leiden: higher gives more, smaller clusters
    min_size: int = 5         # smaller clusters become NO_CLUSTER
    seed: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"method": self.method, "resolution": self.resolution, "min_size": self.min_size, "seed": self.seed}


class ClusteringUnavailable(RuntimeError):
    """A method's optional requirement is missing; the message says what to install."""


# --- finding clusters -------------------------------------------------------------------
def leiden_clusters(graph: KnnGraph, coords: np.ndarray | None, config: ClusterConfig) -> np.ndarray:
    """Leiden communities of the kNN graph made undirected (an edge where either point lists the
    other, weight = their cosine similarity, as UMAP's union of neighbour sets)."""
    try:
        import graspologic_native
    except ImportError as error:
        raise ClusteringUnavailable("clustering with leiden needs graspologic-native: "
                                    "pip install graspologic-native (or choose --clusters hdbscan-map)") from error
    rows, cols, weights = undirected_edges(graph.truncated(min(CLUSTER_NEIGHBOURS, graph.k)))
    n = len(graph)
    if len(rows) == 0:
        return np.arange(n, dtype=np.int64)
    names = np.arange(n).astype(str).tolist()
    edges = list(zip([names[i] for i in rows.tolist()], [names[j] for j in cols.tolist()], weights.tolist()))
    _, membership = graspologic_native.leiden(edges, resolution=float(config.resolution), seed=int(config.seed))
    # Points without an edge (only possible with all-zero weights) become their own community.
    labels = np.array([membership.get(name, -1) for name in names], dtype=np.int64)
    alone = labels < 0
    labels[alone] = labels.max(initial=-1) + 1 + np.arange(int(alone.sum()))
    return labels


def undirected_edges(graph: KnnGraph) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each undirected edge of the kNN graph once (row < col), weight = the larger similarity of
    its two directions; similarities <= 0 are dropped (no affinity)."""
    from scipy import sparse

    n, k = graph.indices.shape
    rows = np.repeat(np.arange(n), k)
    cols = graph.indices.ravel().astype(np.int64)
    weights = np.clip(graph.similarities.ravel().astype(np.float64), 0.0, None)
    keep = (rows != cols) & (weights > 0)
    matrix = sparse.coo_matrix((weights[keep], (rows[keep], cols[keep])), shape=(n, n)).tocsr()
    upper = sparse.triu(matrix.maximum(matrix.T), k=1).tocoo()
    return upper.row.astype(np.int64), upper.col.astype(np.int64), upper.data


def hdbscan_map_clusters(graph: KnnGraph, coords: np.ndarray | None, config: ClusterConfig) -> np.ndarray:
    """HDBSCAN on the 2D map coordinates; noise is NO_CLUSTER."""
    from sklearn.cluster import HDBSCAN

    if coords is None or len(coords) != len(graph):
        raise ValueError("hdbscan-map needs the map coordinates of every point")
    size = max(config.min_size, 2)
    found = HDBSCAN(min_cluster_size=size, copy=True).fit_predict(np.asarray(coords, dtype=np.float64))
    return found.astype(np.int64)


Method = Callable[[KnnGraph, "np.ndarray | None", ClusterConfig], np.ndarray]
CLUSTER_METHODS: dict[str, Method] = {"leiden": leiden_clusters, "hdbscan-map": hdbscan_map_clusters}


def find_clusters(graph: KnnGraph, coords: np.ndarray | None = None,
                  config: ClusterConfig = ClusterConfig()) -> np.ndarray:
    """(n,) int64 cluster id per graph row: 0 is the largest cluster, NO_CLUSTER for none."""
    method = CLUSTER_METHODS.get(config.method)
    if method is None:
        raise ValueError(f"unknown clustering method {config.method!r}; choose one of {', '.join(CLUSTER_METHODS)}")
    return order_by_size(method(graph, coords, config), config.min_size)


def order_by_size(labels: np.ndarray, min_size: int = 1) -> np.ndarray:
    """Renumber clusters 0, 1, ... from the largest (ties: the one seen first); clusters under
    `min_size` points, and negative ids, become NO_CLUSTER."""
    labels = np.asarray(labels, dtype=np.int64)
    out = np.full(len(labels), NO_CLUSTER, dtype=np.int64)
    member = labels >= 0
    if not member.any():
        return out
    ids, first, counts = np.unique(labels[member], return_index=True, return_counts=True)
    order = np.lexsort((first, -counts))
    kept = order[counts[order] >= max(1, min_size)]
    new_id = np.full(len(ids), NO_CLUSTER, dtype=np.int64)
    new_id[kept] = np.arange(len(kept))
    out[member] = new_id[np.searchsorted(ids, labels[member])]
    return out


# --- describing clusters -----------------------------------------------------------------
def cluster_count(clusters: np.ndarray) -> int:
    return int(clusters.max(initial=NO_CLUSTER)) + 1


def top_values(clusters: np.ndarray, values: Sequence[str] | np.ndarray,
               top: int = TOP_VALUES) -> list[list[tuple[str, int]]]:
    """Per cluster, its `top` most common values with their counts, most common first (ties: by
    value); empty values ("") are not counted."""
    values = np.asarray(values, dtype=str)
    k = cluster_count(clusters)
    member = (clusters >= 0) & (values != "")
    names, codes = np.unique(values[member], return_inverse=True)
    counts = np.zeros((k, len(names)), dtype=np.int64)
    np.add.at(counts, (clusters[member], codes), 1)
    out = []
    for row in counts:
        present = np.flatnonzero(row)
        order = present[np.lexsort((names[present], -row[present]))][:top]
        out.append([(str(names[i]), int(row[i])) for i in order])
    return out


def cluster_centres(clusters: np.ndarray, coords: np.ndarray, grid: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Where to write each cluster's name on the map: ((k, 2) centres, (k,) radii).

    The centre is the median of the members in the cluster's densest cell of a grid x grid
    raster of the map (with its 8 neighbouring cells), so it sits on the cluster's points even
    when the cluster is curved or split into islands, where the mean could fall in empty space.
    The radius is the median distance of the members to the centre.
    """
    coords = np.asarray(coords, dtype=np.float64)
    k = cluster_count(clusters)
    centres, radii = np.zeros((k, 2)), np.zeros(k)
    if k == 0:
        return centres, radii
    low, span = coords.min(axis=0), np.ptp(coords, axis=0)
    cells = np.clip(((coords - low) / np.where(span > 0, span, 1.0) * grid).astype(np.int64), 0, grid - 1)
    member = clusters >= 0
    counts = np.zeros((k, grid + 2, grid + 2), dtype=np.int64)
    np.add.at(counts, (clusters[member], cells[member, 0] + 1, cells[member, 1] + 1), 1)
    # 3x3 box sum: a dense spot of several cells beats one crowded cell.
    box = sum(counts[:, 1 + dx:grid + 1 + dx, 1 + dy:grid + 1 + dy] for dx in (-1, 0, 1) for dy in (-1, 0, 1))
    densest = box.reshape(k, -1).argmax(axis=1)
    best = np.column_stack([densest // grid, densest % grid])
    order = np.argsort(clusters, kind="stable")
    bounds = np.searchsorted(clusters[order], np.arange(k + 1))
    for c in range(k):
        rows = order[bounds[c]:bounds[c + 1]]
        near = np.abs(cells[rows] - best[c]).max(axis=1) <= 1
        centres[c] = np.median(coords[rows[near]], axis=0)
        radii[c] = float(np.median(np.linalg.norm(coords[rows] - centres[c], axis=1)))
    return centres, radii


@dataclass
class ClusterStats:
    """One row of the cluster table."""

    id: int
    size: int
    x: float
    y: float
    radius: float
    labels: list[tuple[str, int]] = field(default_factory=list)     # most common labels, with counts
    purity: float | None = None       # share of the labelled members that have the dominant label
    labelled: int = 0                 # members with a label
    metrics: dict[str, float] = field(default_factory=dict)         # mean of each metric over members
    flag_shares: dict[str, float] = field(default_factory=dict)     # flag -> share of members flagged
    content: list[tuple[str, float]] = field(default_factory=list)  # most common model classes, with shares
    content_scored: int = 0           # members the content shares are counted over
    confident_content: list[tuple[str, float]] = field(default_factory=list)  # the same, confident members only
    name: str = ""

    @property
    def dominant_label(self) -> str:
        return self.labels[0][0] if self.labels else ""

    @property
    def impure(self) -> bool:
        """Several classes share this cluster: where the classes in `labels` get confused."""
        return self.purity is not None and self.purity < IMPURE_BELOW and len(self.labels) > 1

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "size": self.size, "x": self.x, "y": self.y,
                "radius": self.radius, "labels": [[name, count] for name, count in self.labels],
                "dominant_label": self.dominant_label, "purity": self.purity, "labelled": self.labelled,
                "impure": self.impure, "metrics": self.metrics, "flag_shares": self.flag_shares,
                "content": [[word, round(share, 4)] for word, share in self.content],
                "content_scored": self.content_scored,
                "confident_content": [[word, round(share, 4)] for word, share in self.confident_content]}


def describe_clusters(clusters: np.ndarray, coords: np.ndarray, labels: Sequence[str] | np.ndarray | None = None,
                      metrics: Mapping[str, np.ndarray] | None = None,
                      flags: Mapping[str, np.ndarray] | None = None,
                      content: Sequence[str] | np.ndarray | None = None,
                      content_confident: np.ndarray | None = None) -> list[ClusterStats]:
    """The cluster table: size, centre, labels and purity, mean metrics (NaN values skipped),
    the share of members carrying each flag (bool arrays), the most common content words (one
    per point, e.g. the model's top class; "" for a point not scored, so a sample of each
    cluster may be given) with their share of the scored members, the same counted over the
    members whose word is confident (`content_confident`, bool per point; None: all are), and
    a name (analysis/cluster_names.py)."""
    k = cluster_count(clusters)
    sizes = np.bincount(clusters[clusters >= 0], minlength=k)
    centres, radii = cluster_centres(clusters, coords)
    stats = [ClusterStats(c, int(sizes[c]), float(centres[c, 0]), float(centres[c, 1]), float(radii[c]))
             for c in range(k)]
    if labels is not None:
        labels = np.asarray(labels, dtype=str)
        labelled = np.bincount(clusters[(clusters >= 0) & (labels != "")], minlength=k)
        for s, top in zip(stats, top_values(clusters, labels)):
            s.labels, s.labelled = top, int(labelled[s.id])
            s.purity = top[0][1] / s.labelled if top else None
    for name, values in (metrics or {}).items():
        for s, mean in zip(stats, _cluster_means(clusters, np.asarray(values, dtype=np.float64), k)):
            if np.isfinite(mean):
                s.metrics[name] = float(mean)
    for name, flagged in (flags or {}).items():
        counts = np.bincount(clusters[(clusters >= 0) & np.asarray(flagged, dtype=bool)], minlength=k)
        for s in stats:
            s.flag_shares[name] = float(counts[s.id] / s.size) if s.size else 0.0
    if content is not None:
        _describe_content(stats, clusters, np.asarray(content, dtype=str), content_confident)
    name_clusters(stats)
    return stats


def _describe_content(stats: list[ClusterStats], clusters: np.ndarray, content: np.ndarray,
                      confident: np.ndarray | None) -> None:
    scored = np.bincount(clusters[(clusters >= 0) & (content != "")], minlength=len(stats))
    sure = content if confident is None else np.where(np.asarray(confident, dtype=bool), content, "")
    for s, top, top_sure in zip(stats, top_values(clusters, content), top_values(clusters, sure)):
        s.content_scored = int(scored[s.id])
        s.content = [(word, count / s.content_scored) for word, count in top]
        s.confident_content = [(word, count / s.content_scored) for word, count in top_sure]


def _cluster_means(clusters: np.ndarray, values: np.ndarray, k: int) -> np.ndarray:
    keep = (clusters >= 0) & np.isfinite(values)
    sums = np.bincount(clusters[keep], weights=values[keep], minlength=k)
    counts = np.bincount(clusters[keep], minlength=k)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
