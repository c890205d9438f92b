"""Outliers: how unlike the rest of the data each point is, and which points to flag.

Two measures of "unlike", on one scale:
  * with vectors and at least two labelled classes: the squared Mahalanobis distance to the
    nearest class mean, in the linear probe's shared within-class covariance
    (analysis/linear_probe.py) — far from every class the data is labelled with;
  * otherwise: isolation in the kNN graph, (d_k(i) + mean of d_k over i's k neighbours) / 2,
    d_k the cosine distance to the k-th nearest neighbour (a small group of outliers that are
    each other's neighbours still scores high through its sparse neighbourhood).

The raw measure is turned into a robust z-score, score = (log raw - median) / (1.4826 MAD),
so 0 is typical and 3 is three "standard deviations" out whatever the measure was.

The flag is chosen on the data, not by a fixed cut: Efron's local false-discovery rate with
an empirical null. Typical points make up the N(0, 1) bulk of the z-scores; where the observed
density f(z) is more than twice the null's pi0 * phi(z), a point at that z is more likely an
outlier than not (fdr = pi0 phi(z) / f(z) < 0.5), and it is flagged.
bench/bench_label_quality.py reports precision and recall on planted outliers.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analysis.knn import KnnGraph
from analysis.label_quality import DEFAULT_K, encode_labels, truncated_graph
from analysis.linear_probe import CrossValidatedProbe, nearest_class_distance

FLAG_FDR = 0.5  # flag where an outlier is more likely than a typical point
_BINS = 200
_MAD_TO_SD = 1.4826


@dataclass(frozen=True)
class OutlierResult:
    """score: (n,) robust z-score of the measure (0 typical, higher = more unusual);
    flagged: (n,) bool, local fdr < FLAG_FDR on the high side; probability: (n,) 1 - local fdr,
    the estimated chance of being an outlier; raw: (n,) the measure itself; method:
    "class-distance" or "neighbours"; cutoff: the lowest flagged score (inf if none)."""

    score: np.ndarray
    flagged: np.ndarray
    probability: np.ndarray
    raw: np.ndarray
    method: str
    cutoff: float


def outlier_scores(graph: KnnGraph, k: int = DEFAULT_K, vectors: np.ndarray | None = None,
                   labels: np.ndarray | None = None, probe: CrossValidatedProbe | None = None) -> OutlierResult:
    """Outlier score and flag of every point (see the module docstring); row i of `vectors`
    and `labels` belongs to graph row i. A `probe` built on them (shared with
    `mislabel_scores`) saves fitting the class means and covariance again."""
    raw, method = None, "neighbours"
    if probe is not None:
        raw = probe.nearest_class_distance()
    elif vectors is not None and labels is not None:
        raw = nearest_class_distance(vectors, encode_labels(labels)[1])
    if raw is not None:
        method = "class-distance"
    if raw is None:
        raw, method = neighbour_isolation(graph, k), "neighbours"
    score = robust_z(np.log(np.maximum(raw, 1e-12)))
    probability = 1.0 - local_fdr(score)
    flagged = (score > 0) & (probability > 1.0 - FLAG_FDR)
    cutoff = float(score[flagged].min()) if flagged.any() else float("inf")
    return OutlierResult(score, flagged, probability, raw, method, cutoff)


def neighbour_isolation(graph: KnnGraph, k: int = DEFAULT_K) -> np.ndarray:
    """(d_k(i) + mean of d_k over i's k neighbours) / 2, in cosine distance."""
    graph = truncated_graph(graph, k)
    kth = graph.distances()[:, -1].astype(np.float64)
    return 0.5 * (kth + kth[graph.indices].mean(axis=1))


def robust_z(values: np.ndarray) -> np.ndarray:
    """(values - median) / (1.4826 * median absolute deviation): N(0, 1) for a normal bulk."""
    median = float(np.median(values))
    spread = _MAD_TO_SD * float(np.median(np.abs(values - median)))
    if spread <= 0:
        spread = float(np.std(values)) or 1.0
    return (values - median) / spread


def local_fdr(z: np.ndarray) -> np.ndarray:
    """(n,) Efron's local false-discovery rate pi0 * phi(z) / f(z), f the smoothed histogram
    density of z and pi0 = min(1, f(0) / phi(0)), the share of points the null explains."""
    if len(z) < 2:
        return np.ones(len(z))
    density, centres = _smoothed_density(z)
    null = np.exp(-0.5 * centres ** 2) / np.sqrt(2 * np.pi)
    pi0 = min(1.0, float(np.interp(0.0, centres, density)) / max(float(null[np.argmin(np.abs(centres))]), 1e-300))
    fdr = np.clip(pi0 * null / np.maximum(density, 1e-300), 0.0, 1.0)
    return np.interp(z, centres, fdr)


def _smoothed_density(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Histogram density of z on _BINS bins, smoothed with a Gaussian kernel (Silverman's
    bandwidth); returns (density, bin centres)."""
    low, high = float(z.min()), float(z.max())
    if high - low < 1e-9:
        high = low + 1.0
    counts, edges = np.histogram(z, bins=_BINS, range=(low, high))
    width = edges[1] - edges[0]
    # At least one bin wide: identical scores (std 0) would otherwise make a 0/0 kernel.
    bandwidth = max(1.06 * min(float(np.std(z)), 1.0) * len(z) ** -0.2, width)
    reach = min(int(np.ceil(4 * bandwidth / width)), _BINS // 2 - 1)
    offsets = np.arange(-reach, reach + 1) * width
    kernel = np.exp(-0.5 * (offsets / bandwidth) ** 2)
    smoothed = np.convolve(counts, kernel / kernel.sum(), mode="same")
    return smoothed / (len(z) * width), 0.5 * (edges[1:] + edges[:-1])
