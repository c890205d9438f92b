"""Likely label errors: the probability that each point's given label is wrong, and its suggested class.

Two opinions on each point's class, both blind to the point's own label:
  * its k nearest neighbours' labels, each vote weighted by cosine similarity (the shared
    `KnnGraph`), and
  * when the vectors are given, a linear probe's cross-validated probabilities
    (analysis/linear_probe.py).
They are mixed into one belief Q(class | point), with the share of each chosen on the data
(lowest negative log-likelihood of the given labels).

Labels are assumed to be noisy through a matrix T[j, c] = P(given label c | true class j),
estimated from the points the beliefs are confident about (cleanlab's confident joint). The
posterior of the true class is then P(j | point, given c) ~ Q(j | point) T[j, c], and

    score = P(given label is wrong) = 1 - P(c | point, given c)    (spreads over 0..1)
    suggested_label = the most probable true class (the given label when that wins)
    flagged = score > 0.5: the label is more likely wrong than right.

Real noise is either spread over all classes or concentrated in look-alike pairs; the
estimated T is therefore shrunk toward "equally likely to become any other class" by the
amount that best predicts held-out labels (two halves, each scoring the other). Uniform
noise ends up with a near-uniform T (the ranking is then the probe's self-confidence);
pair-wise noise keeps its structure, which is what separates a flipped shirt from a merely
shirt-like T-shirt.

The analysis runs in ROUNDS passes: each later pass leaves out the labels the pass before
flagged, both from the neighbour votes and from the probe's training, so wrong labels stop
vouching for their neighbours and stop pulling the class boundaries. The reported
neighbour_agreement is the first pass's plain vote (what the neighbours' labels say).
bench/bench_label_quality.py measures all of this against cleanlab.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix, csr_matrix

from analysis.knn import KnnGraph
from analysis.label_quality import DEFAULT_K, encode_labels, truncated_graph
from analysis.linear_probe import CrossValidatedProbe, ProbeResult, first_occurrence

ROUNDS = 3  # passes; each later one leaves out the labels the one before flagged
FLAG_PROBABILITY = 0.5  # flag when the label is more likely wrong than right
MIX_WEIGHTS = np.linspace(0.0, 1.0, 11)  # share of the neighbour vote in the belief, chosen by likelihood
SHRINKAGES = (0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0)  # of T toward uniform noise, chosen on held-out labels
_FLOOR = 1e-6  # belief floor in likelihoods (a class no neighbour votes for is unlikely, not impossible)


@dataclass(frozen=True)
class NoiseModel:
    """T[j, c] = P(given label c | true class j), shrunk toward uniform noise.

    rates: (C, C) CSR, the confident-joint estimate off the diagonal; stay: (C,) its diagonal;
    uniform: the overall off-diagonal rate; shrinkage: the share of uniform noise mixed in."""

    rates: csr_matrix
    stay: np.ndarray
    uniform: float
    shrinkage: float

    def probability(self, true: np.ndarray, given: np.ndarray) -> np.ndarray:
        """T[true, given] elementwise (any shapes that broadcast; class codes >= 0)."""
        true, given = np.broadcast_arrays(np.asarray(true), np.asarray(given))
        n_classes = len(self.stay)
        off = self.shrinkage * self.uniform + (1 - self.shrinkage) * _lookup(self.rates, true, given)
        diagonal = (1 - self.shrinkage * (n_classes - 1) * self.uniform
                    - (1 - self.shrinkage) * (1 - self.stay[true]))
        return np.where(true == given, diagonal, off)

    @property
    def matrix(self) -> csr_matrix:
        """The unshrunk off-diagonal estimate (what the confident joint saw)."""
        return self.rates

    def dense(self) -> np.ndarray:
        """(C, C) T as an array (small class counts only: tests, reports)."""
        n = len(self.stay)
        true, given = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
        return self.probability(true, given)


@dataclass(frozen=True)
class MislabelResult:
    """Per point (n,): `score` = P(given label is wrong) (0..1; 0 for unlabelled points, points
    nothing can be said about, and everywhere when the evidence does not predict the labels
    better than the class frequencies: see `informative`); `suggested_label` = the most probable true class
    ("" when nothing votes); `flagged` = score > FLAG_PROBABILITY; `neighbour_agreement` =
    similarity-weighted share of the neighbour vote for the given label; `probe_agreement`
    = the linear probe's probability of the given label (NaN without vectors);
    `suggested_probability` = the posterior of the suggested class.
    `classes` (C,) sorted class names; `noise` the fitted NoiseModel; `vote_weight` the
    neighbour vote's share in the belief (1.0 without a probe)."""

    score: np.ndarray
    suggested_label: np.ndarray
    flagged: np.ndarray
    neighbour_agreement: np.ndarray
    probe_agreement: np.ndarray
    suggested_probability: np.ndarray
    classes: np.ndarray
    noise: NoiseModel
    vote_weight: float

    @property
    def error_probability(self) -> np.ndarray:
        return self.score


@dataclass(frozen=True)
class _Beliefs:
    """Candidate true classes per point and the belief in each: classes (n, m), -1 = empty
    slot, each class at most once per row; belief (n, m), 0 in empty slots."""

    classes: np.ndarray
    belief: np.ndarray

    def at(self, codes: np.ndarray) -> np.ndarray:
        """(n,) belief in class codes[i] for point i (0 when not a candidate)."""
        return np.where(self.classes == codes[:, None], self.belief, 0.0).sum(axis=1)

    def best(self) -> np.ndarray:
        """(n,) the most believed class (-1 without candidates); ties go to the earlier slot."""
        scored = np.where(self.classes >= 0, self.belief, -1.0)
        rows = np.arange(len(scored))
        return np.where((self.classes >= 0).any(axis=1), self.classes[rows, scored.argmax(axis=1)], -1)


def mislabel_scores(graph: KnnGraph, labels: np.ndarray, k: int = DEFAULT_K, vectors: np.ndarray | None = None,
                    probe: CrossValidatedProbe | None = None) -> MislabelResult:
    """Score every point's label (see the module docstring). `vectors` (n, d), row i the
    vector of graph row i, turn on the linear probe (or pass a `probe` built on them and the
    same labels, shared with `outlier_scores`); without either the neighbour vote alone is
    the belief. Points with an empty label get score 0 and no flag; they do not vote."""
    classes, codes = encode_labels(labels)
    if len(codes) != len(graph):
        raise ValueError(f"{len(codes)} labels for a graph of {len(graph)} points")
    if vectors is not None and len(vectors) != len(codes):
        raise ValueError(f"{len(vectors)} vectors for a graph of {len(graph)} points")
    graph = truncated_graph(graph, k)
    votes = first_votes = _neighbour_votes(graph, codes)
    labelled = codes >= 0
    model = probe if probe is not None else None if vectors is None else CrossValidatedProbe(vectors, codes)
    if model is not None and len(model.codes) != len(codes):
        raise ValueError(f"a probe of {len(model.codes)} points for a graph of {len(graph)} points")
    probe = None if model is None else model.predict(extra=votes.classes)
    beliefs, weight = _mixed(votes, probe, codes)
    noise = fit_noise(beliefs, codes, len(classes))
    posterior = _posterior(beliefs, noise, codes)
    for _ in range(ROUNDS - 1):
        # Again without the labels the last pass flagged: they no longer vote for their
        # neighbours, nor teach the probe.
        judged = (posterior.classes >= 0).any(axis=1)
        trusted = labelled & ~(judged & (posterior.at(codes) < 1.0 - FLAG_PROBABILITY))
        votes = _neighbour_votes(graph, np.where(trusted, codes, -1))
        if model is not None and probe is not None:
            probe = model.predict(train=trusted, extra=votes.classes) or probe
        beliefs, weight = _mixed(votes, probe, codes)
        noise = fit_noise(beliefs, codes, len(classes))
        posterior = _posterior(beliefs, noise, codes)
    votes = first_votes
    return _result(classes, codes, votes, probe, posterior, noise, weight, informative(beliefs, codes))


def informative(beliefs: _Beliefs, codes: np.ndarray) -> bool:
    """Whether the beliefs (all out-of-sample: neighbours and cross-validated probe) predict
    the given labels better than always guessing the most frequent class does, by more than
    two binomial standard errors. Where they do not (images unrelated to their labels, or
    far too few of them), nothing tells a wrong label from a right one, so no label is
    scored or flagged. (Agreement, not likelihood: with 30 % wrong labels the likelihood of
    the given labels is poor even when the evidence is excellent.)"""
    labelled = np.flatnonzero(codes >= 0)
    if len(labelled) == 0:
        return False
    majority = np.bincount(codes[labelled]).max() / len(labelled)
    agreement = float((_Beliefs(beliefs.classes[labelled], beliefs.belief[labelled]).best() == codes[labelled]).mean())
    return agreement > majority + 2 * np.sqrt(majority * (1 - majority) / len(labelled))


def _result(classes: np.ndarray, codes: np.ndarray, votes: _Beliefs, probe: ProbeResult | None,
            posterior: _Beliefs, noise: NoiseModel, weight: float, informative: bool) -> MislabelResult:
    judged = (codes >= 0) & (posterior.classes >= 0).any(axis=1) & informative
    score = np.where(judged, np.clip(1.0 - posterior.at(codes), 0.0, 1.0), 0.0)
    best = posterior.best()
    names = np.append(classes, "")[best]  # code -1 -> ""
    probe_agreement = np.full(len(codes), np.nan) if probe is None else probe.probability_of(codes)
    return MislabelResult(score=score, suggested_label=names, flagged=judged & (score > FLAG_PROBABILITY),
                          neighbour_agreement=np.where(codes >= 0, votes.at(codes), 0.0),
                          probe_agreement=np.where(codes >= 0, probe_agreement, np.nan),
                          suggested_probability=np.where(best >= 0, posterior.at(best), 0.0),
                          classes=classes, noise=noise, vote_weight=weight)


# ---------------------------------------------------------------- beliefs


def _neighbour_votes(graph: KnnGraph, codes: np.ndarray) -> _Beliefs:
    """Each point's neighbours' classes and their similarity-weighted share of the vote
    (unlabelled neighbours do not vote); the classes in order of their nearest voter."""
    neighbour_codes = codes[graph.indices].astype(np.int64)
    weights = np.where(neighbour_codes >= 0, np.clip(graph.similarities, 0.0, None).astype(np.float64) + 1e-12, 0.0)
    total = weights.sum(axis=1, keepdims=True)
    same = neighbour_codes[:, :, None] == neighbour_codes[:, None, :]
    share = np.einsum("nij,nj->ni", same, weights) / np.where(total > 0, total, 1.0)
    keep = first_occurrence(neighbour_codes)
    return _Beliefs(np.where(keep, neighbour_codes, -1), np.where(keep, share, 0.0))


def _union(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Row-wise union of two (n, *) class-code arrays, as one (n, m) array with -1 gaps."""
    both = np.hstack([first, second])
    return np.where(first_occurrence(both), both, -1)


def _mixed(votes: _Beliefs, probe: ProbeResult | None, codes: np.ndarray) -> tuple[_Beliefs, float]:
    """Q = w * vote + (1 - w) * probe over the union of their classes, w by likelihood."""
    if probe is None:
        return votes, 1.0
    classes = _union(votes.classes, probe.classes)
    vote = _values_at(classes, votes.classes, votes.belief)
    probe_values = _values_at(classes, probe.classes, np.exp(probe.log_probs))
    labelled = np.flatnonzero(codes >= 0)
    own = classes[labelled] == codes[labelled, None]
    losses = [-np.log(np.where(own, w * vote[labelled] + (1 - w) * probe_values[labelled], 0.0).sum(axis=1)
                      + _FLOOR).mean() for w in MIX_WEIGHTS]
    weight = float(MIX_WEIGHTS[int(np.argmin(losses))])
    belief = np.where(classes >= 0, weight * vote + (1 - weight) * probe_values, 0.0)
    return _Beliefs(classes, belief), weight


def _values_at(classes: np.ndarray, source_classes: np.ndarray, source_values: np.ndarray) -> np.ndarray:
    """(n, m) value of each class of `classes` in (source_classes, source_values), 0 if absent."""
    hit = (classes[:, :, None] == source_classes[:, None, :]) & (classes[:, :, None] >= 0)
    return np.einsum("nij,nj->ni", hit, source_values)


# ---------------------------------------------------------------- noise matrix


def confident_joint(beliefs: _Beliefs, codes: np.ndarray, n_classes: int) -> csr_matrix:
    """(C, C) sparse counts of (true j, given c), calibrated so column c sums to the number
    of points labelled c.

    A point counts as of class j when its belief in j reaches j's threshold, the average
    belief of the points labelled j in their own label (cleanlab's per-class threshold); of
    several such classes, the most believed. At most one entry per point: C may be large."""
    labelled = np.flatnonzero(codes >= 0)
    own = beliefs.at(codes)
    sizes = np.bincount(codes[labelled], minlength=n_classes)
    thresholds = np.bincount(codes[labelled], weights=own[labelled], minlength=n_classes) / np.maximum(sizes, 1)
    candidate = beliefs.classes[labelled]
    above = (candidate >= 0) & (beliefs.belief[labelled] >= thresholds[np.maximum(candidate, 0)] - 1e-12)
    scored = np.where(above, beliefs.belief[labelled], -1.0)
    confident = above.any(axis=1)
    true = candidate[np.arange(len(labelled)), scored.argmax(axis=1)][confident]
    given = codes[labelled][confident]
    joint = coo_matrix((np.ones(len(true)), (true, given)), shape=(n_classes, n_classes)).tocsr()
    column_totals = np.asarray(joint.sum(axis=0)).ravel()
    return csr_matrix(joint.multiply((sizes / np.maximum(column_totals, 1))[None, :]))


def _noise_from_joint(joint: csr_matrix, shrinkage: float) -> NoiseModel:
    sizes = np.asarray(joint.sum(axis=1)).ravel()
    rates = csr_matrix(joint.multiply(1.0 / np.maximum(sizes, 1e-12)[:, None]))
    stay = np.where(sizes > 0, rates.diagonal(), 1.0)
    rates.setdiag(0.0)
    rates.eliminate_zeros()
    n_classes = len(sizes)
    uniform = float((sizes * (1 - stay)).sum() / max(sizes.sum() * (n_classes - 1), 1e-12)) if n_classes > 1 else 0.0
    return NoiseModel(rates, stay, uniform, shrinkage)


def fit_noise(beliefs: _Beliefs, codes: np.ndarray, n_classes: int, seed: int = 0) -> NoiseModel:
    """The noise model, its shrinkage toward uniform noise chosen by held-out likelihood:
    the points are split in two halves; each half's T scores the other half's labels."""
    labelled = codes >= 0
    half = np.random.default_rng(seed).permutation(len(codes)) % 2 == 0
    parts = [(labelled & half, labelled & ~half), (labelled & ~half, labelled & half)]
    joints = [confident_joint(_rows(beliefs, fit), codes[fit], n_classes) for fit, _ in parts]
    scores = []
    for shrinkage in SHRINKAGES:
        total = 0.0
        for joint, (_, held_out) in zip(joints, parts):
            total += _log_likelihood(_rows(beliefs, held_out), codes[held_out], _noise_from_joint(joint, shrinkage))
        scores.append(total)
    best = SHRINKAGES[int(np.argmax(scores))]
    return _noise_from_joint(confident_joint(beliefs, codes, n_classes), best)


def _rows(beliefs: _Beliefs, mask: np.ndarray) -> _Beliefs:
    return _Beliefs(beliefs.classes[mask], beliefs.belief[mask])


def _log_likelihood(beliefs: _Beliefs, codes: np.ndarray, noise: NoiseModel) -> float:
    """sum over points of log P(given label) = log sum_j Q(j) T[j, given]."""
    if len(codes) == 0:
        return 0.0
    transition = noise.probability(np.maximum(beliefs.classes, 0), codes[:, None])
    mass = np.where(beliefs.classes >= 0, beliefs.belief * transition, 0.0).sum(axis=1)
    return float(np.log(mass + _FLOOR * noise.uniform + 1e-12).sum())


def _posterior(beliefs: _Beliefs, noise: NoiseModel, codes: np.ndarray) -> _Beliefs:
    """P(true class j | point, given label) ~ p(j) T[j, given] over the candidates, p the
    beliefs cleaned of label noise (the candidates themselves where the point is unlabelled)."""
    if noise.stay.size == 0:
        return beliefs
    transition = noise.probability(np.maximum(beliefs.classes, 0), np.maximum(codes, 0)[:, None])
    joint = np.where(beliefs.classes >= 0, beliefs.belief * np.where(codes[:, None] >= 0, transition, 1.0), 0.0)
    total = joint.sum(axis=1, keepdims=True)
    return _Beliefs(beliefs.classes, np.divide(joint, total, out=np.zeros_like(joint), where=total > 0))


def _lookup(matrix: csr_matrix, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """matrix[rows, cols] elementwise for a sparse matrix (0 where it has no entry)."""
    entries = matrix.tocoo()
    if entries.nnz == 0 or rows.size == 0:
        return np.zeros(rows.shape)
    width = matrix.shape[1]
    keys = entries.row.astype(np.int64) * width + entries.col
    order = np.argsort(keys)
    keys, values = keys[order], entries.data[order]
    wanted = rows.astype(np.int64) * width + cols
    at = np.clip(np.searchsorted(keys, wanted), 0, len(keys) - 1)
    return np.where(keys[at] == wanted, values[at], 0.0)
