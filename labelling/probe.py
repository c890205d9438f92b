"""The linear probe's cross-validated predictions for a collection that has labels but no model.

Every labelled point is predicted by a probe (analysis/linear_probe.py, the one label quality
trains) fitted without the point's own fold, so its accuracy is a held-out accuracy: the Model
performance tab shows it, named as such, where no model's predictions were imported.
"""
from __future__ import annotations

import numpy as np

from analysis.label_quality import encode_labels
from analysis.selection import probe_probabilities
from store import Collection
from store.schema import LABEL

PROBE_NAME = "linear probe (cross-validated on the labels)"


def probe_predictions(collection: Collection) -> dict[str, str]:
    """Point id -> the probe's out-of-fold predicted label, for every labelled point ({} with
    fewer than two labelled classes)."""
    ids, vectors = collection.vectors()
    columns = collection.columns([LABEL])
    label_of = dict(zip(columns.ids.tolist(), columns.values[LABEL]))
    labels = np.array([label_of.get(pid) or "" for pid in ids.tolist()], dtype=str)
    classes, codes = encode_labels(labels)
    if len(classes) < 2:
        return {}
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    probabilities = probe_probabilities(unit.astype(np.float32), codes, len(classes))
    if probabilities is None:
        return {}
    labelled = np.flatnonzero(codes >= 0)
    predicted = classes[probabilities[labelled].argmax(axis=1)]
    return dict(zip(ids[labelled].tolist(), predicted.tolist()))
