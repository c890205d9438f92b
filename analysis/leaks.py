"""Leaks between splits: near-duplicate groups whose members sit in different splits.

A test image with a near copy in train measures memory, not generalisation. Given each point's
near-duplicate group (analysis/label_quality.near_duplicate_groups, -1 = none) and its split
(`""` = none), the groups with members in two or more named splits are leaks.
"""
from __future__ import annotations

import numpy as np


def split_leak_groups(groups: np.ndarray, splits: np.ndarray) -> np.ndarray:
    """(n,) the point's group id where its group spans two or more named splits, else -1."""
    groups = np.asarray(groups, dtype=np.int64)
    splits = np.asarray(splits).astype(str)
    named = (groups >= 0) & (splits != "")
    if not named.any():
        return np.full(len(groups), -1, dtype=np.int64)
    pairs = np.unique(np.stack([groups[named], np.unique(splits[named], return_inverse=True)[1].ravel()]), axis=1)
    spanning = np.unique(pairs[0])[np.bincount(np.searchsorted(np.unique(pairs[0]), pairs[0])) > 1]
    return np.where(np.isin(groups, spanning), groups, -1)
