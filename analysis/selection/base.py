"""What every selection strategy reads and returns: the pool of points and the chosen batch.

A strategy is a function `(pool, budget, seed) -> Batch`; `analysis.selection` registers them
by name. Pure numpy over arrays, no store: the caller (loop/select.py, the benchmark) builds the
`Pool` from a collection or from a simulation.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from analysis.knn import KnnGraph


class SelectionInputError(ValueError):
    """A strategy cannot run on this pool (e.g. uncertainty without any class probabilities)."""


@dataclass(frozen=True)
class Pool:
    """The points a batch is chosen from, and what is known about them.

    vectors:       (n, d) float32 unit vectors of every point, labelled or not
    labelled:      (n,) bool, the point has a label (k-center starts from these; balance counts them)
    candidates:    (n,) bool, the point may be chosen (unlabelled, inside the user's filter)
    probabilities: (n, C) class probabilities (a model's, or the cross-validated probe's), or None
    graph:         the collection's kNN graph over the same rows, or None (representativeness)
    groups:        (n,) int group per point (cluster or class) for balanced sampling, -1 = none
    boxes:         a detector run's predicted boxes over these rows (boxes.RunBoxes), or None
    """

    vectors: np.ndarray
    labelled: np.ndarray
    candidates: np.ndarray
    probabilities: np.ndarray | None = None
    graph: KnnGraph | None = None
    groups: np.ndarray | None = None
    boxes: Any = None  # boxes.RunBoxes (typed loosely: boxes.py imports this module)

    def __post_init__(self) -> None:
        n = len(self.vectors)
        for name in ("labelled", "candidates"):
            if len(getattr(self, name)) != n:
                raise SelectionInputError(f"{name} has {len(getattr(self, name))} rows for {n} vectors")
        if self.probabilities is not None and len(self.probabilities) != n:
            raise SelectionInputError(f"probabilities have {len(self.probabilities)} rows for {n} vectors")

    @property
    def candidate_rows(self) -> np.ndarray:
        return np.flatnonzero(self.candidates)


@dataclass(frozen=True)
class Batch:
    """rows: the chosen rows of the pool, in the order chosen; scores: each one's score under
    the strategy (higher = wanted more; what it measures depends on the strategy)."""

    rows: np.ndarray
    scores: np.ndarray
    strategy: str


Strategy = Callable[[Pool, int, int], Batch]


def top_scoring(pool: Pool, scores: np.ndarray, budget: int, strategy: str) -> Batch:
    """The `budget` candidates with the highest score (ties: lower row first)."""
    rows = pool.candidate_rows
    order = np.lexsort((rows, -scores[rows]))[:budget]
    return Batch(rows[order], scores[rows[order]], strategy)
