"""Tagging by filter: add or remove a tag on every point a filter matches, and the
`excluded` tag's two actions (exclude / restore), written through the one point editor
(actions/edits.py), which applies the tag rule.

    tag_matching(collection, FilterSpec(labels=["cat"]), add="reviewed")  -> (matched, changed)
    exclude(collection, ids); restore(collection, ids)
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from actions.edits import CollectionWriter, PointEditor
from filters.spec import FilterSpec, SelectionError, matching_ids
from store import Collection
from store.schema import EXCLUDED_TAG


def tag_matching(collection: Collection, spec: FilterSpec, add: str | None = None,
                 remove: str | None = None) -> tuple[int, int]:
    """Add and/or remove a tag on every matching point; returns (points matched, points changed)."""
    if not add and not remove:
        raise SelectionError("say which tag to add or remove")
    if remove == EXCLUDED_TAG:  # restoring excluded points must be able to see them
        spec = replace(spec, include_excluded=True)
    ids = matching_ids(collection, spec)
    editor = _editor(collection)
    changed = editor.add_tag(ids, add)[1] if add else 0
    if remove:
        changed += editor.remove_tag(ids, remove)[1]
    return len(ids), changed


def exclude(collection: Collection, ids: Sequence[str]) -> int:
    """Hide points from the map, exports and analyses (reversible: `restore`)."""
    return _editor(collection).exclude(list(ids))


def restore(collection: Collection, ids: Sequence[str]) -> int:
    return _editor(collection).restore(list(ids))


def _editor(collection: Collection) -> PointEditor:
    return PointEditor(CollectionWriter(collection))
