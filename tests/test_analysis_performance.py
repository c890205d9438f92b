"""classification_report against scikit-learn on the same arrays."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

from analysis.performance import classification_report


def test_matches_sklearn_with_a_class_never_predicted_and_one_never_true() -> None:
    rng = np.random.default_rng(0)
    y_true = rng.choice(["ant", "bee", "cat", "dog"], 300)
    y_pred = np.where(rng.random(300) < 0.7, y_true, rng.choice(["ant", "bee", "eel"], 300))
    report = classification_report(y_true, y_pred)
    classes = ["ant", "bee", "cat", "dog", "eel"]
    assert report.classes == classes
    assert report.accuracy == pytest.approx(accuracy_score(y_true, y_pred))
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=classes, average=None, zero_division=0)
    assert report.precision == pytest.approx(precision)
    assert report.recall == pytest.approx(recall)
    assert report.f1 == pytest.approx(f1)
    assert report.support.tolist() == support.tolist()
    assert report.confusion.tolist() == confusion_matrix(y_true, y_pred, labels=classes).tolist()
    assert report.macro_f1 == pytest.approx(f1.mean())
    assert report.precision[classes.index("eel")] == 0.0 and report.support[classes.index("eel")] == 0


def test_small_known_case() -> None:
    report = classification_report(np.array(["a", "a", "b", "b"]), np.array(["a", "b", "b", "b"]))
    assert report.accuracy == 0.75
    assert report.confusion.tolist() == [[1, 1], [0, 2]]
    assert report.precision.tolist() == [1.0, pytest.approx(2 / 3)]
    assert report.recall.tolist() == [0.5, 1.0]
    assert report.per_class()[1] == {"class": "b", "precision": pytest.approx(2 / 3), "recall": 1.0,
                                     "f1": pytest.approx(0.8), "support": 2}


def test_rejects_mismatched_lengths() -> None:
    with pytest.raises(ValueError):
        classification_report(np.array(["a"]), np.array(["a", "b"]))
