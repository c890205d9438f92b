"""Which points an action applies to: filters from the app or the command line, validated
against the collection, plus the actions on a selection (tag, exclude, delete).

    spec = FilterSpec(tags_any=["snowy"], labels=["cat"], subset="train-a")
    flt = spec.resolve(collection)          # a store PointFilter; unknown names -> SelectionError
    count_matching(collection, spec)        # the live count
    tag_matching(collection, spec, add="reviewed")

Exclusion: points tagged `excluded` are left out of exports, counts and analyses by default
(`default_filter()`), and come back with `include_excluded=True` or by removing the tag.
"""
from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from export.errors import ExportError
from store import Collection, PointFilter, StoreError

EXCLUDED_TAG = "excluded"


class SelectionError(ExportError):
    """A filter names something the collection does not have, or matches nothing."""


class EmptySelection(SelectionError):
    pass


def default_filter(include_excluded: bool = False) -> PointFilter:
    """What the map, exports and analyses show by default: everything not tagged `excluded`."""
    return PointFilter() if include_excluded else PointFilter(tags_none=[EXCLUDED_TAG])


@dataclass
class FilterSpec:
    """A filter as a person states it; every given part must hold (AND).

    tags_any / tags_all / tags_none: the point has any / all / none of these tags
    labels:    the label is one of these
    subset:    the point is in this saved subset (store.subsets)
    ids:       the current map selection (None: no constraint; []: nothing)
    ranges:    numeric field -> (low, high), inclusive, either end None
    include_excluded: also points tagged `excluded` (left out by default)
    """

    tags_any: list[str] = field(default_factory=list)
    tags_all: list[str] = field(default_factory=list)
    tags_none: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    subset: str | None = None
    ids: list[str] | None = None
    ranges: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
    include_excluded: bool = False

    def is_empty(self) -> bool:
        """True when nothing narrows the points down (the exclusion default aside)."""
        return not (self.tags_any or self.tags_all or self.tags_none or self.labels or self.subset
                    or self.ids is not None or self.ranges)

    def to_filter(self) -> PointFilter:
        """The store filter, without checking names against a collection."""
        tags_none = list(self.tags_none)
        # Asking for excluded points by tag means wanting them: no default exclusion then.
        wants_excluded = EXCLUDED_TAG in self.tags_any or EXCLUDED_TAG in self.tags_all
        if not self.include_excluded and not wants_excluded and EXCLUDED_TAG not in tags_none:
            tags_none.append(EXCLUDED_TAG)
        values: dict[str, list[str]] = {}
        if self.subset:
            from store.subsets import SUBSET_FIELD

            values[SUBSET_FIELD] = [self.subset]
        return PointFilter(labels=list(self.labels) or None, tags_any=list(self.tags_any) or None,
                           tags_all=list(self.tags_all) or None, tags_none=tags_none or None,
                           ids=None if self.ids is None else list(self.ids), ranges=dict(self.ranges),
                           values=values)

    def resolve(self, collection: Collection) -> PointFilter:
        """The store filter, after checking that every tag, label and subset asked for exists."""
        self.check(collection)
        return self.to_filter()

    def check(self, collection: Collection) -> None:
        wanted_tags = [t for t in [*self.tags_any, *self.tags_all] if t]
        if wanted_tags:
            known = collection.tag_counts()
            for tag in wanted_tags:
                if tag not in known:
                    raise SelectionError(f"no points have tag {tag!r}; known tags: {_listing(known)}")
        if self.labels:
            known = collection.label_counts()
            for label in self.labels:
                if label not in known:
                    raise SelectionError(f"no points have label {label!r}; known labels: {_listing(known)}")
        if self.subset:
            from store.subsets import list_subsets, validate_subset_name

            validate_subset_name(self.subset)
            subsets = list_subsets(collection)
            if self.subset not in subsets:
                raise SelectionError(f"no subset {self.subset!r} in collection '{collection.name}'; "
                                     f"subsets: {_listing({k: v.count for k, v in subsets.items()})}")
        for name, (low, high) in self.ranges.items():
            if low is not None and high is not None and low > high:
                raise SelectionError(f"range for {name!r} is empty: {low} > {high}")

    def describe(self) -> str:
        """One line for people: what this filter keeps."""
        parts = []
        for title, items in (("tags any of", self.tags_any), ("tags all of", self.tags_all),
                             ("tags none of", self.tags_none), ("label", self.labels)):
            if items:
                parts.append(f"{title} {', '.join(items)}")
        if self.subset:
            parts.append(f"subset {self.subset}")
        if self.ids is not None:
            parts.append(f"{len(self.ids)} selected points")
        for name, (low, high) in self.ranges.items():
            parts.append(f"{'' if low is None else f'{low} <= '}{name}{'' if high is None else f' <= {high}'}")
        parts.append("excluded points included" if self.include_excluded else f"without '{EXCLUDED_TAG}'")
        return "; ".join(parts)


def _listing(counts: dict[str, int]) -> str:
    if not counts:
        return "none"
    shown = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:30]
    more = f", ... ({len(counts) - 30} more)" if len(counts) > 30 else ""
    return ", ".join(f"{k} ({v})" for k, v in shown) + more


# --- actions on a selection --------------------------------------------------------------------
def count_matching(collection: Collection, spec: FilterSpec) -> int:
    return collection.count(spec.resolve(collection))


def matching_ids(collection: Collection, spec: FilterSpec, require: bool = True) -> list[str]:
    """Ids of the matching points; with `require`, EmptySelection when there are none."""
    ids = collection.ids(spec.resolve(collection))
    if require and not ids:
        raise EmptySelection(f"no points match the filter ({spec.describe()}) in '{collection.name}'")
    return ids


def validate_tag(tag: str) -> str:
    tag = (tag or "").strip()
    if not tag or len(tag) > 100 or any(c in tag for c in "\n\r\t"):
        raise SelectionError(f"invalid tag {tag!r}: use 1-100 characters, no tabs or newlines")
    return tag


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


# --- the command line's filter flags -------------------------------------------------------------
def add_filter_arguments(parser: argparse.ArgumentParser) -> None:
    """The filter flags shared by export, tag, delete and subset save."""
    group = parser.add_argument_group("filters (all given must hold)")
    group.add_argument("--tag", action="append", default=[], metavar="T", dest="tags_any",
                       help="has any of these tags (repeatable)")
    group.add_argument("--tag-all", action="append", default=[], metavar="T", dest="tags_all",
                       help="has all of these tags (repeatable)")
    group.add_argument("--tag-none", action="append", default=[], metavar="T", dest="tags_none",
                       help="has none of these tags (repeatable)")
    group.add_argument("--label", action="append", default=[], metavar="L", dest="labels",
                       help="label is any of these (repeatable)")
    group.add_argument("--subset", metavar="S", help="in this saved subset")
    group.add_argument("--range", action="append", default=[], metavar="FIELD:LOW:HIGH", dest="ranges",
                       help="numeric field within [LOW, HIGH]; leave an end empty, e.g. mislabel_score:0.5:")
    group.add_argument("--ids-file", type=Path, metavar="FILE", help="only these point ids (one a line)")
    group.add_argument("--include-excluded", action="store_true",
                       help=f"also points tagged '{EXCLUDED_TAG}' (left out by default)")


def spec_from_args(args: argparse.Namespace) -> FilterSpec:
    return FilterSpec(tags_any=list(args.tags_any), tags_all=list(args.tags_all), tags_none=list(args.tags_none),
                      labels=list(args.labels), subset=args.subset, ids=_read_ids(args.ids_file),
                      ranges=dict(parse_range(r) for r in args.ranges), include_excluded=args.include_excluded)


def parse_range(text: str) -> tuple[str, tuple[float | None, float | None]]:
    """'score:0.5:1' -> ('score', (0.5, 1.0)); either bound may be empty."""
    name, sep, rest = text.partition(":")
    low_text, sep2, high_text = rest.partition(":")
    if not name or not sep or not sep2:
        raise SelectionError(f"bad --range {text!r}: use FIELD:LOW:HIGH, e.g. mislabel_score:0.5:")
    try:
        low = float(low_text) if low_text.strip() else None
        high = float(high_text) if high_text.strip() else None
    except ValueError as error:
        raise SelectionError(f"bad --range {text!r}: bounds must be numbers") from error
    if (low is not None and not math.isfinite(low)) or (high is not None and not math.isfinite(high)):
        raise SelectionError(f"bad --range {text!r}: bounds must be finite")
    return name, (low, high)


def _read_ids(path: Path | None) -> list[str] | None:
    if path is None:
        return None
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise SelectionError(f"cannot read --ids-file {path}: {error.strerror or error}") from error
    return [line.strip() for line in text.splitlines() if line.strip()]


__all__ = [
    "EXCLUDED_TAG", "EmptySelection", "FilterSpec", "SelectionError", "StoreError", "add_filter_arguments",
    "count_matching", "default_filter", "delete_matching", "delete_points", "exclude", "matching_ids", "parse_range",
    "restore",
    "spec_from_args", "tag_matching", "validate_tag",
]
