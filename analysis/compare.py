"""Compare two subsets of a collection (e.g. two saved lasso selections).

Sizes and overlap, the class mix of each subset, and for every numeric field (image metrics,
scores) a two-sample Kolmogorov–Smirnov test of whether the two subsets' values come from the
same distribution (scipy.stats.ks_2samp, NaN and infinite values dropped), as Encord Active does per metric.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.stats import ks_2samp


@dataclass(frozen=True)
class FieldComparison:
    """KS statistic and p-value (NaN when either side has no finite value), the sample sizes
    used and each side's mean."""

    statistic: float
    p_value: float
    n_a: int
    n_b: int
    mean_a: float
    mean_b: float


@dataclass(frozen=True)
class SubsetComparison:
    """classes: sorted class names present in either subset (empty label excluded);
    share_a / share_b: (C,) each class's share of the labelled points of A / B;
    share_diff = share_a - share_b; fields: one FieldComparison per numeric field."""

    size_a: int
    size_b: int
    overlap: int
    classes: list[str]
    share_a: np.ndarray
    share_b: np.ndarray
    share_diff: np.ndarray
    fields: dict[str, FieldComparison] = field(default_factory=dict)


def compare_subsets(a_mask: np.ndarray, b_mask: np.ndarray, labels: np.ndarray | None,
                    numeric: dict[str, np.ndarray]) -> SubsetComparison:
    """Compare the points selected by boolean masks `a_mask` and `b_mask` (same length n).
    `labels` (n,) str or None; `numeric` maps a field name to its (n,) values."""
    a_mask, b_mask = np.asarray(a_mask, dtype=bool), np.asarray(b_mask, dtype=bool)
    if a_mask.shape != b_mask.shape:
        raise ValueError(f"masks differ in shape: {a_mask.shape} vs {b_mask.shape}")
    classes, share_a, share_b = _class_shares(a_mask, b_mask, labels)
    fields = {name: compare_values(np.asarray(values, dtype=np.float64)[a_mask],
                                   np.asarray(values, dtype=np.float64)[b_mask])
              for name, values in numeric.items()}
    return SubsetComparison(size_a=int(a_mask.sum()), size_b=int(b_mask.sum()), overlap=int((a_mask & b_mask).sum()),
                            classes=classes, share_a=share_a, share_b=share_b, share_diff=share_a - share_b,
                            fields=fields)


def _class_shares(a_mask: np.ndarray, b_mask: np.ndarray,
                  labels: np.ndarray | None) -> tuple[list[str], np.ndarray, np.ndarray]:
    if labels is None:
        return [], np.zeros(0), np.zeros(0)
    labels = np.asarray(labels).astype(str)
    classes = np.unique(labels[(a_mask | b_mask) & (labels != "")])
    return [str(c) for c in classes], _shares(labels[a_mask], classes), _shares(labels[b_mask], classes)


def _shares(subset_labels: np.ndarray, classes: np.ndarray) -> np.ndarray:
    labelled = subset_labels[subset_labels != ""]
    counts = np.bincount(np.searchsorted(classes, labelled), minlength=len(classes)).astype(np.float64)
    return counts / len(labelled) if len(labelled) else counts


def compare_values(a: np.ndarray, b: np.ndarray) -> FieldComparison:
    """Two-sample KS test of the finite values of a and b."""
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if len(a) == 0 or len(b) == 0:
        statistic = p_value = float("nan")
    else:
        result = ks_2samp(a, b)
        statistic, p_value = float(result.statistic), float(result.pvalue)
    return FieldComparison(statistic=statistic, p_value=p_value, n_a=len(a), n_b=len(b),
                           mean_a=float(a.mean()) if len(a) else float("nan"),
                           mean_b=float(b.mean()) if len(b) else float("nan"))
