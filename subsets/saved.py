"""Saved subsets: named groups of points, kept in the Qdrant payloads so other tools see them.

Each point lists the subsets it belongs to in its `subsets` payload field (a keyword list,
indexed); the collection metadata keeps, per subset, when it was saved and how it was made.

    save_subset(collection, "hard-cats", ids, description="lasso on the map")
    list_subsets(collection)             -> {"hard-cats": SubsetInfo(count=120, ...)}
    rename_subset(collection, "hard-cats", "cats-hard"); delete_subset(collection, "cats-hard")
    subset_filter("hard-cats")           -> PointFilter for any store call
    subset_arrays(collection, "a", "b")  -> masks, labels and numeric columns for analysis.compare

Subsets are written through the store's keyword-list edit (`Collection.edit_list`), the same
read-modify-write that tags use, under the same per-collection lock.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import numpy as np

from store import Collection, PointFilter, StoreError
from store.schema import LABEL, SUBSETS

METADATA_KEY = "subsets"
MAX_NAME = 100


@dataclass
class SubsetInfo:
    name: str
    count: int
    created_at: str | None = None
    description: str = ""


def validate_subset_name(name: str) -> str:
    """Letters, digits, '-', '_', '.' and spaces inside; never a path separator or '..'."""
    text = name if isinstance(name, str) else ""
    if (not text or len(text) > MAX_NAME or text != text.strip() or text.startswith(".")
            or not all(c.isalnum() or c in "-_. " for c in text)):
        raise StoreError(f"invalid subset name {name!r}: use letters, digits, '-', '_', '.' and spaces "
                         f"(not first or last, no '/' or '\\', at most {MAX_NAME} characters)")
    return text


def subset_filter(name: str) -> PointFilter:
    return PointFilter(values={SUBSETS: [validate_subset_name(name)]})


def ensure_subset_index(collection: Collection) -> None:
    collection.index_fields([SUBSETS])


def list_subsets(collection: Collection) -> dict[str, SubsetInfo]:
    """Every saved subset with its current size, by name (a subset whose points were all
    deleted stays listed, with count 0, until it is deleted)."""
    try:
        counts = collection.facet(SUBSETS)
    except Exception:  # the engine facets only indexed fields: index, then ask again
        ensure_subset_index(collection)
        counts = collection.facet(SUBSETS)
    saved = _saved(collection)
    names = sorted(set(counts) | set(saved))
    return {n: SubsetInfo(n, counts.get(n, 0), saved.get(n, {}).get("created_at"),
                          saved.get(n, {}).get("description", "")) for n in names}


def subset_ids(collection: Collection, name: str) -> list[str]:
    return collection.ids(subset_filter(name))


def save_subset(collection: Collection, name: str, ids: Sequence[str], description: str = "",
                replace: bool = False) -> int:
    """Save `ids` as subset `name`; returns its size. An existing name is refused unless
    `replace`, which makes the subset exactly `ids`."""
    validate_subset_name(name)
    wanted = list(dict.fromkeys(str(i) for i in ids))
    if not wanted:
        raise StoreError(f"nothing to save as subset {name!r}: the selection is empty")
    ensure_subset_index(collection)
    subsets = list_subsets(collection)
    if name in subsets and not replace:
        raise StoreError(f"subset {name!r} already exists in '{collection.name}' ({subsets[name].count} points); "
                         "choose another name, delete it first, or replace it")
    existing = set(subset_ids(collection, name))
    keep = set(wanted)
    _edit(collection, [i for i in existing if i not in keep], lambda s: [x for x in s if x != name])
    _edit(collection, [i for i in wanted if i not in existing], lambda s: s if name in s else [*s, name])
    size = collection.count(subset_filter(name))
    if size == 0:
        raise StoreError(f"none of the {len(wanted)} given ids is a point of '{collection.name}'")
    _update_saved(collection, lambda saved: saved.__setitem__(name, {
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "description": description}))
    return size


def rename_subset(collection: Collection, old: str, new: str) -> int:
    """Rename subset `old` to `new` on every point; returns how many points it holds."""
    validate_subset_name(old)
    validate_subset_name(new)
    subsets = list_subsets(collection)
    if old not in subsets:
        raise StoreError(f"no subset {old!r} in '{collection.name}'; subsets: {', '.join(subsets) or 'none'}")
    if new in subsets and new != old:
        raise StoreError(f"subset {new!r} already exists in '{collection.name}'; choose another name")
    if new == old:
        return subsets[old].count
    ids = subset_ids(collection, old)
    _edit(collection, ids, lambda s: list(dict.fromkeys(new if x == old else x for x in s)))

    def move(saved: dict[str, Any]) -> None:
        saved[new] = saved.pop(old, {})

    _update_saved(collection, move)
    return len(ids)


def delete_subset(collection: Collection, name: str) -> int:
    """Forget subset `name` (its points stay); returns how many points it held."""
    validate_subset_name(name)
    subsets = list_subsets(collection)
    if name not in subsets:
        raise StoreError(f"no subset {name!r} in '{collection.name}'; subsets: {', '.join(subsets) or 'none'}")
    ids = subset_ids(collection, name)
    _edit(collection, ids, lambda s: [x for x in s if x != name])
    _update_saved(collection, lambda saved: saved.pop(name, None))
    return len(ids)


@dataclass
class SubsetArrays:
    """Two subsets over their union of points, in the shape analysis.compare takes."""

    ids: np.ndarray
    a_mask: np.ndarray
    b_mask: np.ndarray
    labels: np.ndarray
    numeric: dict[str, np.ndarray]


def subset_arrays(collection: Collection, a: str, b: str, flt: PointFilter | None = None,
                  skip_fields: Sequence[str] = ()) -> SubsetArrays:
    """Masks, labels and every numeric payload field (as float, NaN where missing) of the
    points in subset `a` or `b` (and matching `flt`, e.g. the default exclusion)."""
    for name in (a, b):
        validate_subset_name(name)
    known = list_subsets(collection)
    for name in (a, b):
        if name not in known:
            raise StoreError(f"no subset {name!r} in '{collection.name}'; subsets: {', '.join(known) or 'none'}")
    return group_arrays(collection, SUBSETS, a, b, flt, skip_fields)


def group_arrays(collection: Collection, field_name: str, a: str, b: str, flt: PointFilter | None = None,
                 skip_fields: Sequence[str] = ()) -> SubsetArrays:
    """`subset_arrays` for any keyword field (SUBSETS, a list; or e.g. SPLIT): A = the points
    whose `field_name` is or holds `a`, B the same for `b`."""
    union = PointFilter(**{**(flt.__dict__ if flt else {}),
                           "values": {**(flt.values if flt else {}), field_name: [a, b]}})
    rows = [(r.id, r.payload) for batch in collection.scroll(None, union) for r in batch]
    skipped = set(skip_fields)
    fields = sorted({k for _, p in rows for k, v in p.items()
                     if k not in skipped and isinstance(v, (int, float)) and not isinstance(v, bool)})
    member = [_members(p.get(field_name)) for _, p in rows]
    numeric = {f: np.array([_float(p.get(f)) for _, p in rows], dtype=np.float64) for f in fields}
    return SubsetArrays(ids=np.array([i for i, _ in rows], dtype=str),
                        a_mask=np.array([a in m for m in member], dtype=bool),
                        b_mask=np.array([b in m for m in member], dtype=bool),
                        labels=np.array([str(p.get(LABEL) or "") for _, p in rows], dtype=object).astype(str),
                        numeric=numeric)


def _members(value: Any) -> set[str]:
    if isinstance(value, (list, tuple)):
        return set(value)
    return set() if value in (None, "") else {str(value)}


def _float(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else np.nan


def _edit(collection: Collection, ids: Sequence[str], edit: Callable[[list[str]], list[str]]) -> int:
    """Edit the `subsets` list of each point (one write per distinct new list)."""
    return collection.edit_list(SUBSETS, ids, edit) if ids else 0


def _saved(collection: Collection) -> dict[str, dict[str, Any]]:
    saved = collection.read_metadata().get(METADATA_KEY)
    return dict(saved) if isinstance(saved, dict) else {}


def _update_saved(collection: Collection, change: Callable[[dict[str, Any]], Any]) -> None:
    saved = _saved(collection)
    change(saved)
    collection.update_metadata(**{METADATA_KEY: saved})
