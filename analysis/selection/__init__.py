"""Choosing the next batch to label: strategies over a `Pool` of points (pure numpy).

    from analysis.selection import Pool, select, STRATEGIES, DEFAULT_STRATEGY
    batch = select("margin-coreset", Pool(vectors, labelled, candidates, probabilities), budget=200)
    batch.rows, batch.scores

One file per family: diversity.py (from the vectors alone: k-center, representative,
cluster-balanced), uncertainty.py (from class probabilities: margin, entropy,
least-confidence; `probe_probabilities` gives them without a model), hybrid.py (both),
boxes.py (a detector run's box scores: the images with the most uncertain boxes).
`random` is the baseline every strategy is measured against (bench/bench_active_learning.py).
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from analysis.selection.base import Batch, Pool, SelectionInputError, Strategy
from analysis.selection.boxes import DEFAULT_THRESHOLD, RunBoxes, uncertain_boxes
from analysis.selection.diversity import balanced, cluster_balanced, cluster_groups, k_center_greedy, representative
from analysis.selection.hybrid import class_balanced_margin, margin_clusters, margin_coreset
from analysis.selection.uncertainty import entropy, least_confidence, margin, probe_probabilities


def random_batch(pool: Pool, budget: int, seed: int = 0) -> Batch:
    """A seeded uniform sample of the candidates (the baseline)."""
    rows = pool.candidate_rows
    picked = np.random.default_rng(seed).permutation(rows)[:budget]
    return Batch(picked, np.zeros(len(picked)), "random")


STRATEGIES: dict[str, Strategy] = {
    "class-balanced-margin": class_balanced_margin,
    "margin-coreset": margin_coreset,
    "margin-clusters": margin_clusters,
    "margin": margin,
    "entropy": entropy,
    "least-confidence": least_confidence,
    "k-center": k_center_greedy,
    "representative": representative,
    "cluster-balanced": cluster_balanced,
    "random": random_batch,
    "uncertain-boxes": uncertain_boxes,
}
# Strategies that read class probabilities (the caller computes the probe's when no model's exist).
USES_PROBABILITIES = frozenset({"margin-coreset", "margin-clusters", "class-balanced-margin", "margin", "entropy",
                                "least-confidence"})
USES_GRAPH = frozenset({"representative", "cluster-balanced"})
USES_RUN = frozenset({"uncertain-boxes"})  # reads a detector run's boxes (Pool.boxes), on an image collection
# The benchmark's winner at 600 labels among the strategies that need no model (the probe's
# probabilities): bench/bench_active_learning.py, docs/BENCHMARKS.md.
DEFAULT_STRATEGY = "class-balanced-margin"
BALANCE_WIDTH = 5  # a balanced batch is drawn from the strategy's top BALANCE_WIDTH x budget


def select(strategy: str, pool: Pool, budget: int, seed: int = 0, balanced_groups: bool = False) -> Batch:
    """The next `budget` candidates to label under `strategy` (fewer when fewer candidates).

    balanced_groups: share the batch evenly over `pool.groups` (k-means clusters when None),
    labelled points counted, taking each group's candidates in the strategy's order from its
    top BALANCE_WIDTH x budget."""
    if strategy not in STRATEGIES:
        raise SelectionInputError(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    if budget < 1:
        raise SelectionInputError(f"the budget must be at least 1, not {budget}")
    if not pool.candidates.any():
        raise SelectionInputError("no candidates: every point in the filter is labelled already")
    available = int(pool.candidates.sum())
    if not balanced_groups:
        return STRATEGIES[strategy](pool, min(budget, available), seed)
    wide = STRATEGIES[strategy](pool, min(budget * BALANCE_WIDTH, available), seed)
    groups = pool.groups if pool.groups is not None else cluster_groups(pool, budget, seed)
    rank = np.full(len(pool.candidates), -np.inf)
    rank[wide.rows] = -np.arange(len(wide.rows), dtype=np.float64)
    short = np.zeros(len(pool.candidates), dtype=bool)
    short[wide.rows] = True
    batch = balanced(replace(pool, candidates=short), min(budget, available), rank, groups, wide.strategy)
    strategy_score = dict(zip(wide.rows.tolist(), wide.scores.tolist()))
    return Batch(batch.rows, np.array([strategy_score[r] for r in batch.rows.tolist()]), f"{wide.strategy}, balanced")


__all__ = ["Batch", "DEFAULT_STRATEGY", "DEFAULT_THRESHOLD", "Pool", "RunBoxes", "STRATEGIES", "SelectionInputError",
           "USES_GRAPH", "USES_PROBABILITIES", "USES_RUN", "probe_probabilities", "random_batch", "select"]
