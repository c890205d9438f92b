"""Uncertainty sampling: the candidates a classifier is least sure about.

From class probabilities (n, C), a model's imported ones or the cross-validated linear probe's
(`probe_probabilities`), three classic scores, higher = more uncertain (Settles, "Active
Learning Literature Survey", 2009):

    least confidence   1 - max_c p_c
    margin             1 - (p_top1 - p_top2)
    entropy            -sum_c p_c log p_c      (natural log)
"""
from __future__ import annotations

import numpy as np

from analysis.linear_probe import CrossValidatedProbe, first_occurrence
from analysis.selection.base import Batch, Pool, SelectionInputError, top_scoring


def least_confidence_scores(probabilities: np.ndarray) -> np.ndarray:
    return 1.0 - np.asarray(probabilities, dtype=np.float64).max(axis=1)


def margin_scores(probabilities: np.ndarray) -> np.ndarray:
    p = np.asarray(probabilities, dtype=np.float64)
    if p.shape[1] < 2:
        return np.zeros(len(p))
    top_two = -np.partition(-p, 1, axis=1)[:, :2]
    return 1.0 - (top_two[:, 0] - top_two[:, 1])


def entropy_scores(probabilities: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(probabilities, dtype=np.float64), 0.0, 1.0)
    return -np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0).sum(axis=1)


SCORES = {"least-confidence": least_confidence_scores, "margin": margin_scores, "entropy": entropy_scores}


def _probabilities(pool: Pool, strategy: str) -> np.ndarray:
    if pool.probabilities is None:
        raise SelectionInputError(f"{strategy} needs class probabilities: import a model's with "
                                  "`predictions` (a probability per class), or label points of at least two "
                                  "classes so the linear probe can give them")
    return pool.probabilities


def least_confidence(pool: Pool, budget: int, seed: int = 0) -> Batch:
    return top_scoring(pool, least_confidence_scores(_probabilities(pool, "least-confidence")), budget,
                       "least-confidence")


def margin(pool: Pool, budget: int, seed: int = 0) -> Batch:
    return top_scoring(pool, margin_scores(_probabilities(pool, "margin")), budget, "margin")


def entropy(pool: Pool, budget: int, seed: int = 0) -> Batch:
    return top_scoring(pool, entropy_scores(_probabilities(pool, "entropy")), budget, "entropy")


def probe_probabilities(vectors: np.ndarray, codes: np.ndarray, n_classes: int) -> np.ndarray | None:
    """(n, n_classes) class probabilities of the cross-validated linear probe (the one label
    quality trains, analysis/linear_probe.py) for every point, from the labelled ones
    (`codes` -1 = unlabelled); None with fewer than two labelled classes. Classes the probe
    does not keep for a point (beyond its top few) get probability 0."""
    result = CrossValidatedProbe(vectors, codes).predict()
    if result is None:
        return None
    dense = np.zeros((len(codes), n_classes))
    counted = first_occurrence(result.classes) & np.isfinite(result.log_probs)
    rows, slots = np.nonzero(counted)
    dense[rows, result.classes[rows, slots]] = np.exp(result.log_probs[rows, slots])
    totals = dense.sum(axis=1, keepdims=True)
    return np.divide(dense, totals, out=np.full_like(dense, 1.0 / n_classes), where=totals > 0)
