"""Trustworthiness of a 2-D map, estimated on evaluation points against the whole set.

scikit-learn's `trustworthiness` ranks every point against every other one (n x n distances),
which does not fit past a few tens of thousands of points. The penalty it sums is a sum over
points, so the mean penalty of a random set of evaluation points, each ranked against all n
points (high-dimensional cosine distance, 2-D euclidean), estimates it without bias; with all
points as evaluation points the two are equal (tested). The standard error comes from the
spread of the per-point penalties.
"""
from __future__ import annotations

import numpy as np


def point_penalties(vectors: np.ndarray, coords: np.ndarray, rows: np.ndarray, k: int = 10,
                    block: int = 32) -> np.ndarray:
    """sum over each evaluation row's k nearest map neighbours of max(0, rank - k), where rank
    is that neighbour's 1-based rank by cosine distance from the row among all other points."""
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    unit = unit.astype(np.float32)
    coords = np.asarray(coords, np.float32)
    out = np.empty(len(rows), np.float64)
    for start in range(0, len(rows), block):
        chunk = rows[start:start + block]
        own = np.arange(len(chunk))
        far = 1.0 - unit[chunk] @ unit.T
        far[own, chunk] = -np.inf  # the point itself: counted below as rank 0's place
        near = ((coords[chunk, None, :] - coords[None, :, :]) ** 2).sum(-1)
        near[own, chunk] = np.inf
        neighbours = np.argpartition(near, k, axis=1)[:, :k]
        limits = np.take_along_axis(far, neighbours, axis=1)
        # Points strictly closer than the neighbour, itself included (at -inf): its 1-based rank.
        ranks = np.stack([(far < limits[:, j:j + 1]).sum(axis=1) for j in range(k)], axis=1)
        out[start:start + len(chunk)] = np.maximum(ranks - k, 0).sum(axis=1)
    return out


def trustworthiness(penalties: np.ndarray, n: int, k: int = 10) -> tuple[float, float]:
    """(estimate, standard error) of scikit-learn's trustworthiness from `point_penalties`."""
    scale = 2.0 / (k * (2.0 * n - 3.0 * k - 1.0))
    return 1.0 - scale * float(penalties.mean()), scale * float(penalties.std(ddof=1) / np.sqrt(len(penalties)))
