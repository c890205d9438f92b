"""Data-quality scores from the shared kNN graph: mislabels, outliers, duplicates, confused classes.

Everything here reads one `KnnGraph` (built once at indexing time) and numpy arrays; nothing
talks to Qdrant or loads a model. The setting follows cleanlab's Datalab run on features
(k = 10 neighbours, no model); the neighbour votes are weighted by cosine similarity, and the
mislabel rule is an empirical-Bayes test on a label-noise matrix estimated from the votes
(see `mislabel_scores`). bench/bench_label_quality.py compares both on Fashion-MNIST.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix, csr_matrix
from scipy.sparse.csgraph import connected_components
from scipy.stats import binom

from analysis.knn import KnnGraph

DEFAULT_K = 10
NEAR_DUPLICATE_THRESHOLD = 0.97
OUTLIER_IQR_FACTOR = 1.5
# Points whose neighbours vote at least this share for one class are taken as being of that
# class when the label-noise matrix is estimated (see `mislabel_scores`).
CONFIDENT_SHARE = 0.7
# Flag when mislabelled points are expected to outnumber correct ones at the point's agreement.
ERROR_PROBABILITY_CUTOFF = 0.5
_EPS = 1e-12


@dataclass(frozen=True)
class MislabelResult:
    """Per point (n,): `score` = similarity-weighted share of the neighbour vote against the
    given label (0..1); `suggested_label` = the neighbours' similarity-weighted majority label
    ("" when no labelled neighbour); `error_probability` = estimated chance that the given label
    is wrong (0..1); `flagged` = likely label error (rule in `mislabel_scores`).
    `classes` (C,) sorted class names; `noise_matrix` (C, C) scipy.sparse CSR, the estimated
    P(given label = c | true class = j), row j, column c, that the rule used (diagonal 0)."""

    score: np.ndarray
    suggested_label: np.ndarray
    flagged: np.ndarray
    error_probability: np.ndarray
    classes: np.ndarray
    noise_matrix: csr_matrix


@dataclass(frozen=True)
class OutlierResult:
    """score: (n,) isolation, in cosine distance (higher = more isolated; see `outlier_scores`).
    flagged: (n,) bool, score above `cutoff` = Q3 + 1.5 * IQR of the scores."""

    score: np.ndarray
    flagged: np.ndarray
    cutoff: float


@dataclass(frozen=True)
class ConfusedPair:
    """Two classes whose points lean toward each other in the neighbour vote.

    a_to_b: points labelled class_a whose neighbours' weighted vote goes to class_b; b_to_a the
    reverse; count = a_to_b + b_to_a; share = count / (size of a + size of b);
    indices: the rows involved, ascending."""

    class_a: str
    class_b: str
    a_to_b: int
    b_to_a: int
    count: int
    share: float
    indices: np.ndarray


# ---------------------------------------------------------------- neighbour votes


def _encode(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Class names (sorted, empty label excluded) and a code per point (-1 = no label)."""
    labels = np.asarray(labels).astype(str)
    classes, codes = np.unique(labels, return_inverse=True)
    codes = codes.reshape(-1).astype(np.int64)
    if len(classes) and classes[0] == "":
        return classes[1:], codes - 1
    return classes, codes


def _graph_k(graph: KnnGraph, k: int) -> KnnGraph:
    return graph.truncated(k) if k < graph.k else graph


def _neighbour_votes(graph: KnnGraph, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Similarity-weighted vote of each point's neighbours; unlabelled neighbours do not vote.

    Returns (suggested, top_share, own_share), each (n,): the winning class code (-1 when no
    neighbour is labelled; ties go to the class of the nearer neighbour), its share of the
    vote, and the share for the point's own label (0 when unlabelled). Works per neighbour slot
    with an (n, k, k) comparison, so memory does not grow with the number of classes."""
    neighbour_codes = codes[graph.indices]
    weights = np.where(neighbour_codes >= 0, np.clip(graph.similarities, 0.0, None).astype(np.float64) + _EPS, 0.0)
    total = weights.sum(axis=1)
    same_class = neighbour_codes[:, :, None] == neighbour_codes[:, None, :]
    slot_votes = np.einsum("nij,nj->ni", same_class, weights)  # vote mass of each slot's class
    best_slot = slot_votes.argmax(axis=1)
    rows = np.arange(len(codes))
    has_votes = total > 0
    safe_total = np.where(has_votes, total, 1.0)
    suggested = np.where(has_votes, neighbour_codes[rows, best_slot], -1)
    top_share = slot_votes[rows, best_slot] / safe_total
    own = (weights * (neighbour_codes == codes[:, None])).sum(axis=1) / safe_total
    return suggested, top_share, np.where(codes >= 0, own, 0.0)


# ---------------------------------------------------------------- mislabels


@dataclass(frozen=True)
class _Votes:
    """The neighbour vote of every point, in class codes."""

    classes: np.ndarray
    codes: np.ndarray  # (n,) given label, -1 = none
    suggested: np.ndarray  # (n,) weighted majority class, -1 = no labelled neighbour
    top_share: np.ndarray  # (n,) share of the vote for the suggested class
    own_share: np.ndarray  # (n,) share of the vote for the given label (0 if unlabelled)

    @property
    def judged(self) -> np.ndarray:
        """Points with a label and at least one labelled neighbour."""
        return (self.codes >= 0) & (self.suggested >= 0)

    def suggested_names(self) -> np.ndarray:
        return np.append(self.classes, "")[self.suggested]  # code -1 -> ""


def _votes(graph: KnnGraph, labels: np.ndarray, k: int) -> _Votes:
    classes, codes = _encode(labels)
    if len(codes) != len(graph):
        raise ValueError(f"{len(codes)} labels for a graph of {len(graph)} points")
    return _Votes(classes, codes, *_neighbour_votes(_graph_k(graph, k), codes))


def mislabel_scores(graph: KnnGraph, labels: np.ndarray, k: int = DEFAULT_K) -> MislabelResult:
    """Likely label errors from the labels of each point's k nearest neighbours.

    Each neighbour votes for its label with weight = its cosine similarity; `score` is the
    share of the vote against the point's own label, `suggested_label` the winning label.

    Rule for `flagged` (an empirical-Bayes local false-discovery-rate test):
    1. Noise matrix: among points whose neighbours vote >= CONFIDENT_SHARE (70 %) for one class
       j, T[j, c] = the share whose given label is c != j, i.e. P(label c | true class j).
    2. A point of true class j mislabelled as c sits among class-j neighbours, each labelled c
       with probability T[j, c], so its agreement a = round(k * own share) ~ Binomial(k, T[j, c]).
       The expected number of mislabelled points with label c and agreement a is
       E[c, a] = sum_j N_j T[j, c] Binom(a; k, T[j, c]), N_j = points whose vote goes to j.
    3. error_probability = min(E[c, a] / H[c, a], 1), H[c, a] the observed number of points
       with label c and agreement a: the share of them expected to be mislabelled.
    4. flagged = error_probability > 0.5 and suggested_label != given label.
    Unlike confident learning's per-cell counts, this does not flag the points of two
    naturally overlapping classes just because their neighbourhoods mix: at agreement levels
    where correctly labelled points dominate, nothing is flagged.
    Points with an empty label, or with no labelled neighbour, get score 0 and no flag.
    """
    votes = _votes(graph, labels, k)
    n_classes = len(votes.classes)
    judged = votes.judged
    noise = _noise_matrix(votes, n_classes)
    error = _error_probability(votes, noise, min(k, graph.k))
    flagged = judged & (votes.suggested != votes.codes) & (error > ERROR_PROBABILITY_CUTOFF)
    return MislabelResult(score=np.where(judged, 1.0 - votes.own_share, 0.0), suggested_label=votes.suggested_names(),
                          flagged=flagged, error_probability=error, classes=votes.classes, noise_matrix=noise)


def _noise_matrix(votes: _Votes, n_classes: int) -> csr_matrix:
    """(C, C) sparse estimate of P(given label c | true class j), off the diagonal only, from
    the points whose neighbour vote is confident. Sparse: at most one entry per such point."""
    confident = votes.judged & (votes.top_share >= CONFIDENT_SHARE)
    totals = np.bincount(votes.suggested[confident], minlength=n_classes)
    wrong = confident & (votes.suggested != votes.codes)
    counts = coo_matrix((np.ones(int(wrong.sum())), (votes.suggested[wrong], votes.codes[wrong])),
                        shape=(n_classes, n_classes)).tocsr()  # tocsr sums repeated (j, c) pairs
    return csr_matrix(counts.multiply(1.0 / np.maximum(totals, 1)[:, None]))


def _error_probability(votes: _Votes, noise: csr_matrix, k: int) -> np.ndarray:
    """(n,) expected share of mislabelled points among those with the same label and agreement."""
    n_classes = noise.shape[0]
    judged = votes.judged
    error = np.zeros(len(votes.codes))
    if not judged.any():
        return error
    agreement = np.rint(votes.own_share * k).astype(np.int64)
    label, level = votes.codes[judged], agreement[judged]
    observed = np.bincount(label * (k + 1) + level, minlength=n_classes * (k + 1)).reshape(n_classes, k + 1)
    true_sizes = np.bincount(votes.suggested[judged], minlength=n_classes).astype(np.float64)
    expected = _expected_mislabelled(true_sizes, noise, k)
    ratio = np.divide(expected, observed, out=np.zeros_like(expected), where=observed > 0)
    error[judged] = np.clip(ratio[label, level], 0.0, 1.0)
    return error


def _expected_mislabelled(true_sizes: np.ndarray, noise: csr_matrix, k: int) -> np.ndarray:
    """(C, k + 1) expected number of mislabelled points per given label and agreement level:
    E[c, a] = sum_j N_j T[j, c] Binom(a; k, T[j, c]), over the non-zero T[j, c]."""
    entries = noise.tocoo()
    mislabelled = true_sizes[entries.row] * entries.data  # expected points of true j labelled c
    levels = np.arange(k + 1)
    per_level = mislabelled[:, None] * binom.pmf(levels[None, :], k, entries.data[:, None])
    keys = entries.col[:, None] * (k + 1) + levels[None, :]
    n_classes = noise.shape[0]
    expected = np.bincount(keys.ravel(), weights=per_level.ravel(), minlength=n_classes * (k + 1))
    return expected.astype(np.float64).reshape(n_classes, k + 1)  # bincount of nothing is int


# ---------------------------------------------------------------- confused class pairs


def confused_class_pairs(graph: KnnGraph, labels: np.ndarray, k: int = DEFAULT_K,
                         min_count: int = 1) -> list[ConfusedPair]:
    """Class pairs whose points' neighbour votes go to each other, most confused first.

    A point of class a "leans to" b when its neighbours' similarity-weighted majority label is
    b. Pairs are unordered (class_a < class_b by name), ranked by count, then share."""
    votes = _votes(graph, labels, k)
    lean = np.flatnonzero(votes.judged & (votes.suggested != votes.codes))
    if len(lean) == 0:
        return []
    n_classes = len(votes.classes)
    given, toward = votes.codes[lean], votes.suggested[lean]
    low, high = np.minimum(given, toward), np.maximum(given, toward)
    unique_keys, inverse = np.unique(low * n_classes + high, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    members = np.split(lean[order], np.cumsum(np.bincount(inverse))[:-1])
    forward = np.bincount(inverse, weights=given < toward, minlength=len(unique_keys)).astype(np.int64)  # a -> b
    sizes = np.bincount(votes.codes[votes.codes >= 0], minlength=n_classes)
    pairs = [_pair(votes.classes, key, n_classes, rows, int(a_to_b), sizes)
             for key, rows, a_to_b in zip(unique_keys, members, forward)]
    pairs = [pair for pair in pairs if pair.count >= min_count]
    return sorted(pairs, key=lambda pair: (-pair.count, -pair.share, pair.class_a, pair.class_b))


def _pair(classes: np.ndarray, key: int, n_classes: int, rows: np.ndarray, a_to_b: int,
          sizes: np.ndarray) -> ConfusedPair:
    a, b = divmod(int(key), n_classes)
    count = len(rows)
    return ConfusedPair(class_a=str(classes[a]), class_b=str(classes[b]), a_to_b=a_to_b, b_to_a=count - a_to_b,
                        count=count, share=count / max(int(sizes[a] + sizes[b]), 1), indices=np.sort(rows))


# ---------------------------------------------------------------- outliers


def outlier_scores(graph: KnnGraph, k: int = DEFAULT_K, iqr_factor: float = OUTLIER_IQR_FACTOR) -> OutlierResult:
    """How isolated each point is: score = (d_k(i) + mean of d_k over i's k neighbours) / 2,
    where d_k is the cosine distance to the k-th nearest neighbour.

    Blending in the neighbours' d_k makes a small group of outliers that are each other's
    nearest neighbours (say, a batch of images from another domain) still score high, because
    their neighbourhood is sparse; a lone outlier keeps a high score through its own d_k.
    Rule: flagged when the score is above Q3 + iqr_factor * IQR of all scores (Tukey's fence).
    """
    graph = _graph_k(graph, k)
    kth = graph.distances()[:, -1].astype(np.float64)
    score = 0.5 * (kth + kth[graph.indices].mean(axis=1))
    q1, q3 = np.percentile(score, [25, 75])
    cutoff = float(q3 + iqr_factor * (q3 - q1))
    return OutlierResult(score=score, flagged=score > cutoff, cutoff=cutoff)


# ---------------------------------------------------------------- duplicates


def _component_groups(n: int, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Group id per point for the connected components of the given edges; points alone in
    their component get -1. Groups are numbered 0, 1, ... in order of their first row."""
    adjacency = coo_matrix((np.ones(len(rows), dtype=np.int8), (rows, cols)), shape=(n, n)).tocsr()
    _, component = connected_components(adjacency, directed=True, connection="weak")
    return _renumber_groups(component)


def _renumber_groups(component: np.ndarray) -> np.ndarray:
    """Map component labels to 0..g-1 by first appearance; singleton components become -1."""
    _, first, inverse, counts = np.unique(component, return_index=True, return_inverse=True,
                                          return_counts=True)
    shared = counts > 1
    order = np.argsort(first[shared], kind="stable")
    new_id = np.full(len(counts), -1, dtype=np.int64)
    new_id[np.flatnonzero(shared)[order]] = np.arange(int(shared.sum()))
    return new_id[inverse.reshape(-1)]


def near_duplicate_groups(graph: KnnGraph, threshold: float = NEAR_DUPLICATE_THRESHOLD) -> np.ndarray:
    """(n,) group id per point (-1 = no near duplicate): connected components of the graph's
    edges with cosine similarity >= threshold. All k neighbours of the graph are considered."""
    rows, slots = np.nonzero(graph.similarities >= threshold)
    return _component_groups(len(graph), rows, graph.indices[rows, slots].astype(np.int64))


def exact_duplicate_groups(hashes: np.ndarray) -> np.ndarray:
    """(n,) group id per point (-1 = unique or empty hash): points sharing a content hash."""
    hashes = np.asarray(hashes).astype(str)
    _, key = np.unique(hashes, return_inverse=True)
    key = key.reshape(-1).astype(np.int64)
    empty = np.flatnonzero(hashes == "")
    key[empty] = key.max(initial=0) + 1 + np.arange(len(empty))  # each empty hash on its own
    return _renumber_groups(key)
