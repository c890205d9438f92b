"""Classification performance of predictions against ground truth, on any selection of points.

Matches scikit-learn's `accuracy_score`, `precision_recall_fscore_support(average=None,
zero_division=0)` and `confusion_matrix` over the sorted union of the classes in both arrays,
without scikit-learn: one `np.bincount` builds the confusion matrix and every score follows
from it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PerformanceReport:
    """classes: sorted class names (union of true and predicted); per-class arrays align with it.
    confusion: (C, C) int counts, rows = true class, columns = predicted class.
    A precision / recall / F1 whose denominator is 0 is reported as 0 (sklearn zero_division=0)."""

    classes: list[str]
    accuracy: float
    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    support: np.ndarray
    confusion: np.ndarray

    @property
    def macro_f1(self) -> float:
        return float(self.f1.mean()) if len(self.classes) else 0.0

    def per_class(self) -> list[dict[str, float | int | str]]:
        """One row per class, for tables."""
        return [{"class": name, "precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
                for name, p, r, f, s in zip(self.classes, self.precision, self.recall, self.f1, self.support)]


def classification_report(y_true: np.ndarray, y_pred: np.ndarray) -> PerformanceReport:
    """Accuracy, per-class precision / recall / F1 / support and the confusion matrix."""
    y_true, y_pred = np.asarray(y_true).astype(str), np.asarray(y_pred).astype(str)
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise ValueError(f"y_true and y_pred must be 1-D and of equal length, got {y_true.shape} and {y_pred.shape}")
    classes, codes = np.unique(np.concatenate([y_true, y_pred]), return_inverse=True)
    n_classes = len(classes)
    true_codes, pred_codes = codes[: len(y_true)], codes[len(y_true):]
    confusion = np.bincount(true_codes * n_classes + pred_codes,
                            minlength=n_classes * n_classes).reshape(n_classes, n_classes)
    hits = np.diag(confusion).astype(np.float64)
    support = confusion.sum(axis=1)
    predicted = confusion.sum(axis=0)
    precision = _safe_divide(hits, predicted)
    recall = _safe_divide(hits, support)
    f1 = _safe_divide(2 * hits, predicted + support)
    accuracy = float(hits.sum() / len(y_true)) if len(y_true) else 0.0
    return PerformanceReport(classes=[str(c) for c in classes], accuracy=accuracy, precision=precision,
                             recall=recall, f1=f1, support=support, confusion=confusion)


def _safe_divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    numerator = np.asarray(numerator, dtype=np.float64)
    return np.divide(numerator, denominator, out=np.zeros_like(numerator), where=np.asarray(denominator) > 0)
