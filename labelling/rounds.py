"""Rounds of the labelling loop, kept in the collection metadata, and the learning curve.

Each `select-next` appends one record to the metadata's `rounds` list:

    {"round": 2, "tag": "batch-2", "strategy": "margin-coreset", "budget": 200, "size": 200,
     "at": "2026-12-06T08:00:00+00:00", "labelled": 300, "probe_accuracy": 0.81,
     "probabilities_from": "linear probe (cross-validated)", "filter": "without 'excluded'"}

`labelled` and `probe_accuracy` are the state when the batch was chosen: how many points had
a label, and the cross-validated accuracy of the linear probe on them (each point predicted by
a model that never saw it: the model-free learning curve). `rounds_report` adds the state now
and, per round, how many of its batch carry a label by now.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import numpy as np

from analysis.label_quality import encode_labels
from analysis.selection import probe_probabilities
from store import Collection, PointFilter
from store.schema import LABEL

ROUNDS = "rounds"  # the collection-metadata key


def rounds(collection: Collection) -> list[dict[str, Any]]:
    return list(collection.read_metadata().get(ROUNDS) or [])


def next_round(collection: Collection) -> int:
    return len(rounds(collection)) + 1


def probe_accuracy(vectors: np.ndarray, codes: np.ndarray) -> float | None:
    """Cross-validated accuracy of the linear probe on the labelled points (None: < 2 classes)."""
    labelled = codes >= 0
    n_classes = int(codes.max(initial=-1)) + 1
    if n_classes < 2 or labelled.sum() < 2:
        return None
    probabilities = probe_probabilities(vectors, codes, n_classes)
    if probabilities is None:
        return None
    return float((probabilities[labelled].argmax(axis=1) == codes[labelled]).mean())


def record_round(collection: Collection, result: Any, budget: int, described_filter: str) -> None:
    record = {"round": result.round, "tag": result.tag, "strategy": result.strategy, "budget": budget,
              "size": len(result.ids), "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "labelled": result.labelled, "probe_accuracy": result.probe_accuracy,
              "probabilities_from": result.probabilities_from, "filter": described_filter}
    collection.update_metadata(**{ROUNDS: [*rounds(collection), record]})


@dataclass
class RoundsReport:
    """rounds: the recorded rounds, each with `batch_labelled` (its points labelled by now);
    now: {"labelled", "points", "probe_accuracy"} of the collection as it is."""

    rounds: list[dict[str, Any]]
    now: dict[str, Any]

    def lines(self) -> list[str]:
        out = ["round  tag                 strategy                  size  labelled-of-batch  labelled  probe accuracy"]
        for r in self.rounds:
            out.append(f"{r['round']:<6} {r['tag'][:19]:<19} {r['strategy'][:25]:<25} {r['size']:>4}  "
                       f"{r['batch_labelled']:>17}  {r['labelled']:>8}  {_percent(r.get('probe_accuracy'))}")
        out.append(f"{'now':<6} {'':<19} {'':<25} {'':>4}  {'':>17}  {self.now['labelled']:>8}  "
                   f"{_percent(self.now['probe_accuracy'])}")
        return out


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def rounds_report(collection: Collection) -> RoundsReport:
    """The recorded rounds with their batches' progress, and the collection's state now."""
    ids, vectors = collection.vectors()
    columns = collection.columns([LABEL])
    label_of = dict(zip(columns.ids.tolist(), columns.values[LABEL]))
    labels = np.array([label_of.get(pid) or "" for pid in ids.tolist()], dtype=str)
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    codes = encode_labels(labels)[1]
    recorded = []
    for record in rounds(collection):
        batch = collection.ids(PointFilter(tags_any=[record["tag"]]))
        recorded.append({**record, "batch_labelled": sum(1 for pid in batch if label_of.get(pid))})
    now = {"labelled": int((codes >= 0).sum()), "points": len(codes), "probe_accuracy": probe_accuracy(unit, codes)}
    return RoundsReport(recorded, now)
