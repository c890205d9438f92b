"""The clusters `analyze` found, aligned to the table's rows: for colouring the map by cluster
and for the Clusters tab.

`load_clusters(table)` reads the cluster table (scoring/clusters.py `cluster_table`, a JSON
file) and the `cluster` payload column once per table, and returns None for a collection that
has no clusters yet. Like the other scores, clusters written by a later `analyze` show after
a restart.
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any

import numpy as np

from store.schema import CLUSTER
from ui.table import PointTable

NO_CLUSTER_NAME = "no cluster"
_loaded: weakref.WeakKeyDictionary[PointTable, ClusterView | None] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class ClusterView:
    records: list[dict[str, Any]]   # the cluster table, record i is cluster i (largest first)
    codes: np.ndarray               # int64 per table row: its cluster, -1 for none

    def __len__(self) -> int:
        return len(self.records)

    @property
    def names(self) -> list[str]:
        return [str(r.get("name") or f"cluster {r['id']}") for r in self.records]

    @property
    def centres(self) -> np.ndarray:
        return np.array([[float(r.get("x", 0.0)), float(r.get("y", 0.0))] for r in self.records]).reshape(-1, 2)

    def rows_of(self, cluster: int) -> np.ndarray:
        return np.flatnonzero(self.codes == cluster)


def load_clusters(table: PointTable) -> ClusterView | None:
    """The table's clusters (read once per table), or None where `analyze` found none yet."""
    if table not in _loaded:
        _loaded[table] = _read(table)
    return _loaded[table]


def _read(table: PointTable) -> ClusterView | None:
    from scoring.clusters import cluster_table  # reads a JSON file; no models, no Qdrant client

    try:
        records = sorted(cluster_table(table.collection), key=lambda r: int(r["id"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not records or [int(r["id"]) for r in records] != list(range(len(records))):
        return None
    values = table.numeric(CLUSTER)
    codes = np.where(np.isfinite(values) & (values >= 0) & (values < len(records)), values, -1).astype(np.int64)
    if not (codes >= 0).any():
        return None
    return ClusterView(records, codes)
