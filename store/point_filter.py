"""One translation of a `PointFilter` into a Qdrant filter, for both backends.

The embedded engine (qdrant_edge) and qdrant-client spell the same conditions with different
classes and argument names; which conditions a PointFilter means is decided once, here, and
each backend only names its classes in a `Dialect`:

    to_qdrant_filter(PointFilter(labels=["cat"], tags_none=["excluded"]), EDGE)   # store/edge.py
    to_qdrant_filter(flt, CLIENT)                                                 # store/server.py
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from store.base import PointFilter
from store.schema import LABEL, TAGS


@dataclass(frozen=True)
class Dialect:
    """How one backend builds each kind of condition a PointFilter needs."""

    has_id: Callable[[Sequence[str]], Any]
    match_any: Callable[[str, list[str]], Any]
    match_value: Callable[[str, str], Any]
    in_range: Callable[[str, float | None, float | None], Any]
    has_vector: Callable[[str], Any]
    combine: Callable[[list[Any] | None, list[Any] | None], Any]  # (must, must_not) -> the filter


def to_qdrant_filter(flt: PointFilter | None, dialect: Dialect) -> Any | None:
    """The backend's filter for `flt`; None when it does not narrow anything down."""
    if flt is None or flt.is_empty():
        return None
    must: list[Any] = []
    must_not: list[Any] = []
    if flt.ids is not None:
        must.append(dialect.has_id(flt.ids))
    if flt.labels:
        must.append(dialect.match_any(LABEL, list(flt.labels)))
    if flt.tags_any:
        must.append(dialect.match_any(TAGS, list(flt.tags_any)))
    for tag in flt.tags_all or []:
        must.append(dialect.match_value(TAGS, tag))
    if flt.tags_none:
        must_not.append(dialect.match_any(TAGS, list(flt.tags_none)))
    for key, values in flt.values.items():
        must.append(dialect.match_any(key, list(values)))
    for key, (low, high) in flt.ranges.items():
        must.append(dialect.in_range(key, low, high))
    if flt.lacks_vector is not None:
        must_not.append(dialect.has_vector(flt.lacks_vector))
    return dialect.combine(must or None, must_not or None)
