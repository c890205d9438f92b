"""Where a detector fails: recall and false-positive rate in bins of each metric, metrics ranked
by how much they separate found boxes from missed ones. Pure numpy (+ sklearn's mutual information).

    table = failures_by_metric({"area": areas, "cluster": clusters}, found,
                               {"area": prediction_areas}, false_positive)
    table[0].name, table[0].separation, table[0].bins[0].recall

A numeric metric is cut at its quantiles (equal-count bins over the labelled boxes; the
predictions fall into the same bins); an integer-coded category (a cluster) is one bin per
value, the largest first. The separation is the uncertainty coefficient U(found | bin): the
share of the entropy of found-or-missed that knowing the bin removes (0: the metric says
nothing about misses; 1: it tells them apart). Unlike a correlation it treats a metric whose
misses sit at both ends (very small and very large boxes) or in one cluster the same way.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

N_BINS = 5
MAX_CATEGORIES = 12


@dataclass(frozen=True)
class FailureBin:
    low: float
    high: float
    label: str            # how the bin is shown: "12.5 – 80.1", or a category
    boxes: int            # labelled boxes in it
    recall: float         # found / boxes (NaN without boxes)
    predictions: int      # predictions in it (metrics the predictions have)
    fp_rate: float        # false positives / predictions (NaN without predictions)


@dataclass(frozen=True)
class MetricFailures:
    name: str
    separation: float
    bins: list[FailureBin]


def failures_by_metric(box_metrics: dict[str, np.ndarray], found: np.ndarray, categorical: set[str] = frozenset(),
                       prediction_metrics: dict[str, np.ndarray] | None = None,
                       false_positive: np.ndarray | None = None, n_bins: int = N_BINS) -> list[MetricFailures]:
    """One MetricFailures per metric with values, most separating first. `found`: per labelled box,
    whether the detector found it; `false_positive`: per prediction."""
    found = np.asarray(found, bool)
    prediction_metrics = prediction_metrics or {}
    table = []
    for name, values in box_metrics.items():
        values = np.asarray(values, np.float64)
        known = np.isfinite(values)
        if known.sum() < 2 or len(np.unique(values[known])) < 2:
            continue
        edges = _categories(values[known]) if name in categorical else _quantile_edges(values[known], n_bins)
        codes = _bin(values, edges, name in categorical)
        separation = _uncertainty(codes[known], found[known])
        predicted = prediction_metrics.get(name)
        pred_codes = None if predicted is None else _bin(np.asarray(predicted, np.float64), edges, name in categorical)
        bins = [_summary(edges, i, name in categorical, codes, found, pred_codes, false_positive)
                for i in range(len(edges) if name in categorical else len(edges) - 1)]
        table.append(MetricFailures(name, separation, bins))
    return sorted(table, key=lambda m: -m.separation)


def _quantile_edges(values: np.ndarray, n_bins: int) -> np.ndarray:
    edges = np.unique(np.quantile(values, np.linspace(0, 1, n_bins + 1)))
    return edges if len(edges) > 1 else np.array([edges[0], edges[0]])


def _categories(values: np.ndarray) -> np.ndarray:
    kinds, counts = np.unique(values, return_counts=True)
    return kinds[np.argsort(-counts, kind="stable")][:MAX_CATEGORIES]


def _bin(values: np.ndarray, edges: np.ndarray, categorical: bool) -> np.ndarray:
    """Each value's bin, -1 for none (NaN, outside the range, a rare category)."""
    if categorical:
        lookup = {float(v): i for i, v in enumerate(edges)}
        return np.array([lookup.get(float(v), -1) for v in values], np.int64)
    codes = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, len(edges) - 2)
    return np.where(np.isfinite(values) & (values >= edges[0]) & (values <= edges[-1]), codes, -1)


def _uncertainty(codes: np.ndarray, found: np.ndarray) -> float:
    """U(found | bin) = I(found; bin) / H(found), 0 when every box is found or every one missed."""
    # Imported here: sklearn and scipy.stats cost about a second of the app's start, and only
    # the detection report's failure table needs them.
    from sklearn.metrics import mutual_info_score

    share = found.mean()
    if share in (0.0, 1.0):
        return 0.0
    entropy = -(share * np.log(share) + (1 - share) * np.log(1 - share))
    return float(mutual_info_score(found, codes) / entropy)


def _summary(edges: np.ndarray, i: int, categorical: bool, codes: np.ndarray, found: np.ndarray,
             pred_codes: np.ndarray | None, false_positive: np.ndarray | None) -> FailureBin:
    inside = codes == i
    boxes = int(inside.sum())
    recall = float(found[inside].mean()) if boxes else float("nan")
    predictions, rate = 0, float("nan")
    if pred_codes is not None and false_positive is not None:
        in_bin = pred_codes == i
        predictions = int(in_bin.sum())
        rate = float(np.asarray(false_positive, bool)[in_bin].mean()) if predictions else float("nan")
    if categorical:
        return FailureBin(float(edges[i]), float(edges[i]), f"{edges[i]:g}", boxes, recall, predictions, rate)
    return FailureBin(float(edges[i]), float(edges[i + 1]), f"{edges[i]:.3g} – {edges[i + 1]:.3g}", boxes, recall,
                      predictions, rate)
