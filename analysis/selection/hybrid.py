"""Uncertainty and diversity together: the most uncertain candidates, spread out.

Uncertainty alone picks many near-identical points from one confused border; diversity alone
spends labels on regions the classifier already gets right. Each hybrid here narrows the
candidates to the PREFILTER x budget most uncertain by margin, then spreads the batch over them:

- margin-coreset: k-center greedy over that short list, from the labelled points
  (in the spirit of Ash et al.'s BADGE, ICLR 2020, with margins instead of gradient embeddings);
- margin-clusters: k-means of the short list into `budget` clusters, the most uncertain of each
  (Zhdanov, "Diverse mini-batch Active Learning", 2019; Citovsky et al.'s cluster-margin, 2021);
- class-balanced-margin: margin with the budget shared evenly over predicted classes.

Without any class probabilities (fewer than two labelled classes, no model) each falls back to
k-center greedy, which needs no labels. Which one is the default is decided by
bench/bench_active_learning.py (docs/BENCHMARKS.md), not by taste.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from analysis.selection.base import Batch, Pool
from analysis.selection.diversity import _reduced, balanced, k_center_greedy
from analysis.selection.uncertainty import margin_scores

PREFILTER = 10  # short list = this many times the budget, most uncertain first


def _short_list(pool: Pool, budget: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows of the PREFILTER x budget most uncertain candidates, margin score of every point)."""
    scores = margin_scores(pool.probabilities)
    rows = pool.candidate_rows
    keep = rows[np.lexsort((rows, -scores[rows]))][:PREFILTER * budget]
    return keep, scores


def _cold_start(pool: Pool, budget: int, seed: int, strategy: str) -> Batch:
    batch = k_center_greedy(pool, budget, seed)
    return Batch(batch.rows, batch.scores, f"{strategy} (k-center: no class probabilities yet)")


def margin_coreset(pool: Pool, budget: int, seed: int = 0) -> Batch:
    if pool.probabilities is None:
        return _cold_start(pool, budget, seed, "margin-coreset")
    keep, scores = _short_list(pool, budget)
    short = np.zeros(len(pool.candidates), dtype=bool)
    short[keep] = True
    batch = k_center_greedy(replace(pool, candidates=short), budget, seed)
    return Batch(batch.rows, scores[batch.rows], "margin-coreset")


def margin_clusters(pool: Pool, budget: int, seed: int = 0) -> Batch:
    if pool.probabilities is None:
        return _cold_start(pool, budget, seed, "margin-clusters")
    from sklearn.cluster import KMeans

    keep, scores = _short_list(pool, budget)
    if len(keep) <= budget:
        return Batch(keep, scores[keep], "margin-clusters")
    vectors = _reduced(pool.vectors[keep], seed)
    clusters = KMeans(n_clusters=budget, random_state=seed, n_init=1).fit_predict(vectors)
    chosen = [keep[clusters == c][np.argmax(scores[keep[clusters == c]])] for c in np.unique(clusters)]
    picked = np.array(sorted(chosen, key=lambda row: (-scores[row], row)), dtype=np.int64)
    return Batch(picked, scores[picked], "margin-clusters")


def class_balanced_margin(pool: Pool, budget: int, seed: int = 0) -> Batch:
    if pool.probabilities is None:
        return _cold_start(pool, budget, seed, "class-balanced-margin")
    # Labelled points count toward their predicted class too (out-of-fold, mostly their label).
    predicted = np.asarray(pool.probabilities).argmax(axis=1)
    return balanced(pool, budget, margin_scores(pool.probabilities), predicted, "class-balanced-margin")
