"""Selection from the vectors alone: cover the space, pick its typical points, balance its groups.

- k-center greedy (the "coreset" of Sener & Savarese, ICLR 2018): repeatedly take the candidate
  farthest (cosine distance) from everything labelled or already chosen, so the batch covers
  the parts of the space nobody has labelled yet.
- representativeness: the candidates in the densest parts of the neighbour graph (highest mean
  similarity to their k neighbours), skipping a candidate that is a graph neighbour of one
  already chosen, so the batch is typical without being a pile of near duplicates.
- balanced sampling: the budget is shared out over groups (clusters of `analyze`, or predicted
  classes) so that labelled + chosen counts come out as even as the groups allow (water-filling:
  each pick goes to the group with the fewest), the best-scoring candidates of a group first.
"""
from __future__ import annotations

import heapq

import numpy as np

from analysis.selection.base import Batch, Pool, SelectionInputError

# Above this many values (points x dimensions), k-center runs on a PCA projection: each of its
# `budget` steps reads every candidate's vector, and 64 dimensions keep a step on a million
# points to ~20-40 ms (the same reduction the kNN graph uses, analysis/knn.py).
REDUCE_ABOVE = 20_000_000
REDUCED_DIMENSIONS = 64
CENTRE_BLOCK = 1024
SHORT_LIST = 2048  # k-center: candidates kept up to date between full passes
ROW_BLOCK = 65_536


def k_center_greedy(pool: Pool, budget: int, seed: int = 0) -> Batch:
    """Coreset: farthest-first traversal from the labelled points over the candidates. Scores:
    each pick's cosine distance to its nearest centre when it was taken (falls as the space fills).

    The greedy's picks (up to floating-point near-ties), computed lazily: similarities only grow
    as centres are added, so after a full pass the SHORT_LIST least covered candidates are the
    only ones that can be picked until the best of them (kept up to date, cheaply) falls to the
    level of the first left out. Picks are taken from the short list until then; the next full
    pass applies all centres added since in one matrix product. Each pass yields many picks."""
    vectors = _reduced(pool.vectors, seed)
    candidates = pool.candidate_rows
    points = np.ascontiguousarray(vectors[candidates])
    nearest = _nearest_centre_similarity(points, vectors[np.flatnonzero(pool.labelled)])
    budget = min(budget, len(candidates))
    chosen: list[int] = []
    scores: list[float] = []
    if budget and not np.isfinite(nearest).any():  # nothing labelled yet: begin at a seeded random candidate
        first = int(np.random.default_rng(seed).integers(len(points)))
        chosen, scores = [first], [2.0]
        nearest = points @ points[first]
        nearest[first] = np.inf
    pending: list[int] = []  # centres not yet applied to `nearest`
    while len(chosen) < budget:
        _apply(points, nearest, pending)
        short = np.argpartition(nearest, min(SHORT_LIST, len(nearest) - 1))[:SHORT_LIST]
        level = float(nearest[short].max())  # every candidate left out is at least this covered
        covered = nearest[short].copy()
        while len(chosen) < budget:
            best = int(np.argmin(covered))
            if covered[best] > level and len(short) < len(nearest):
                break  # one left out may now be less covered: full pass
            pick = int(short[best])
            chosen.append(pick)
            scores.append(1.0 - float(covered[best]))
            pending.append(pick)
            np.maximum(covered, points[short] @ points[pick], out=covered)
            covered[best] = np.inf
            nearest[pick] = np.inf
    return Batch(candidates[np.array(chosen, dtype=np.int64)], np.array(scores), "k-center")


def _apply(points: np.ndarray, nearest: np.ndarray, pending: list[int]) -> None:
    """Bring `nearest` up to date with the centres in `pending` (one blocked product), then
    empty it; taken points stay at +inf."""
    if not pending:
        return
    taken = nearest == np.inf
    np.maximum(nearest, _nearest_centre_similarity(points, points[pending]), out=nearest)
    nearest[taken] = np.inf
    pending.clear()


def _nearest_centre_similarity(points: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """(n,) float32 cosine similarity of each point to its most similar centre (-inf: none),
    in blocks of rows and centres: a million points x a thousand centres at once would be 4 GB."""
    nearest = np.full(len(points), -np.inf, dtype=np.float32)
    for row in range(0, len(points), ROW_BLOCK):
        part = nearest[row:row + ROW_BLOCK]
        for start in range(0, len(centres), CENTRE_BLOCK):
            np.maximum(part, (points[row:row + ROW_BLOCK] @ centres[start:start + CENTRE_BLOCK].T).max(axis=1),
                       out=part)
    return nearest


def _reduced(vectors: np.ndarray, seed: int) -> np.ndarray:
    """Unit float32 vectors, PCA-reduced to REDUCED_DIMENSIONS when the matrix is large."""
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.size > REDUCE_ABOVE and vectors.shape[1] > REDUCED_DIMENSIONS:
        from sklearn.decomposition import PCA

        sample = np.random.default_rng(seed).choice(len(vectors), min(len(vectors), 50_000), replace=False)
        pca = PCA(n_components=REDUCED_DIMENSIONS, svd_solver="randomized", random_state=seed).fit(vectors[sample])
        vectors = pca.transform(vectors).astype(np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def density_scores(pool: Pool) -> np.ndarray:
    """(n,) mean cosine similarity of each point to its graph neighbours (higher = denser)."""
    if pool.graph is None:
        raise SelectionInputError("representativeness needs the collection's neighbour graph (run `analyze`)")
    return pool.graph.similarities.astype(np.float64).mean(axis=1)


def representative(pool: Pool, budget: int, seed: int = 0) -> Batch:
    """The densest candidates, none a graph neighbour of another chosen one (while enough are
    left; then the densest of the rest)."""
    density = density_scores(pool)
    rows = pool.candidate_rows
    order = rows[np.lexsort((rows, -density[rows]))]
    blocked = np.zeros(len(density), dtype=bool)  # a chosen point's neighbours
    taken_mask = np.zeros(len(density), dtype=bool)
    chosen: list[int] = []
    for row in order:
        if len(chosen) == budget:
            break
        if not blocked[row] and not taken_mask[pool.graph.indices[row]].any():  # neighbours either way
            chosen.append(int(row))
            blocked[pool.graph.indices[row]] = True
            taken_mask[row] = True
    if len(chosen) < budget:
        taken = set(chosen)
        chosen += [int(r) for r in order if int(r) not in taken][:budget - len(chosen)]
    picked = np.array(chosen, dtype=np.int64)
    return Batch(picked, density[picked], "representative")


def balanced(pool: Pool, budget: int, scores: np.ndarray, groups: np.ndarray, strategy: str) -> Batch:
    """Share `budget` over `groups` (-1 = no group, never chosen while grouped candidates remain)
    so labelled + chosen per group come out as even as possible; within a group, highest score first."""
    rows = pool.candidate_rows
    groups = np.asarray(groups, dtype=np.int64)
    grouped = rows[groups[rows] >= 0]
    if len(grouped) == 0:
        raise SelectionInputError(f"{strategy}: no candidate belongs to a group")
    queues: dict[int, list[int]] = {}
    for row in grouped[np.lexsort((grouped, -scores[grouped]))]:
        queues.setdefault(int(groups[row]), []).append(int(row))
    have = np.bincount(groups[pool.labelled & (groups >= 0)], minlength=int(groups.max()) + 1)
    heap = [(int(have[g]), g, 0) for g in queues]
    heapq.heapify(heap)
    chosen: list[int] = []
    while heap and len(chosen) < budget:
        count, group, position = heapq.heappop(heap)
        chosen.append(queues[group][position])
        if position + 1 < len(queues[group]):
            heapq.heappush(heap, (count + 1, group, position + 1))
    picked = np.array(chosen, dtype=np.int64)
    return Batch(picked, scores[picked], strategy)


def cluster_groups(pool: Pool, budget: int, seed: int) -> np.ndarray:
    """The pool's groups, or k-means clusters of every point when it has none (k = sqrt of the
    budget times 4, at most 50: enough groups to spread a batch, few enough to fill each)."""
    if pool.groups is not None and (pool.groups[pool.candidates] >= 0).any():
        return pool.groups
    from sklearn.cluster import MiniBatchKMeans

    k = int(min(50, max(2, 4 * np.sqrt(max(budget, 1))), pool.candidates.sum()))
    return MiniBatchKMeans(n_clusters=k, random_state=seed, n_init=3).fit_predict(_reduced(pool.vectors, seed))


def cluster_balanced(pool: Pool, budget: int, seed: int = 0) -> Batch:
    """Clusters evened out (the pool's `groups`, else k-means); within a cluster the candidates
    nearest its densest part first (graph density), or a seeded random order without a graph."""
    groups = cluster_groups(pool, budget, seed)
    scores = density_scores(pool) if pool.graph is not None else np.random.default_rng(seed).random(len(groups))
    return balanced(pool, budget, scores, groups, "cluster-balanced")
