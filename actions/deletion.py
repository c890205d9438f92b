"""Deleting points: the one action that cannot be undone (tag points `excluded` instead to hide
them reversibly; see actions.tagging).

    delete_matching(collection, FilterSpec(tags_any=["junk"]))  -> how many were deleted
"""
from __future__ import annotations

from collections.abc import Sequence

from filters.spec import FilterSpec, matching_ids
from store import Collection


def delete_points(collection: Collection, ids: Sequence[str]) -> int:
    """Delete points from the collection (not reversible; re-indexing the folder adds files
    still on disk back: tag them `excluded` to keep them out for good). Returns how many."""
    ids = list(ids)
    collection.delete(ids)
    collection.flush()
    return len(ids)


def delete_matching(collection: Collection, spec: FilterSpec) -> int:
    """Delete every matching point; returns how many."""
    return delete_points(collection, matching_ids(collection, spec))
