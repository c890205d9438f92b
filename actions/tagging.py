"""Tagging by filter: add or remove a tag on every point a filter matches, and the
`excluded` tag's two actions (exclude / restore).

    tag_matching(collection, FilterSpec(labels=["cat"]), add="reviewed")  -> (matched, changed)
    exclude(collection, ids); restore(collection, ids)
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from filters.spec import FilterSpec, SelectionError, matching_ids
from store import Collection
from store.schema import EXCLUDED_TAG, validate_tag


def tag_matching(collection: Collection, spec: FilterSpec, add: str | None = None,
                 remove: str | None = None) -> tuple[int, int]:
    """Add and/or remove a tag on every matching point; returns (points matched, points changed)."""
    if not add and not remove:
        raise SelectionError("say which tag to add or remove")
    if remove == EXCLUDED_TAG:  # restoring excluded points must be able to see them
        spec = replace(spec, include_excluded=True)
    ids = matching_ids(collection, spec)
    changed = 0
    if add:
        changed += collection.add_tag(ids, validate_tag(add))
    if remove:
        changed += collection.remove_tag(ids, validate_tag(remove))
    return len(ids), changed


def exclude(collection: Collection, ids: Sequence[str]) -> int:
    """Hide points from the map, exports and analyses (reversible: `restore`)."""
    return collection.add_tag(list(ids), EXCLUDED_TAG)


def restore(collection: Collection, ids: Sequence[str]) -> int:
    return collection.remove_tag(list(ids), EXCLUDED_TAG)
