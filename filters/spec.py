"""Which points an action applies to: a filter as a person states it (app or command line),
checked against the collection and turned into a store `PointFilter`.

    spec = FilterSpec(tags_any=["snowy"], labels=["cat"], subset="train-a")
    flt = spec.resolve(collection)          # a store PointFilter; unknown names -> SelectionError
    count_matching(collection, spec)        # the live count
    matching_ids(collection, spec)          # the points, for an action (actions/)

Exclusion: points tagged `excluded` are left out of exports, counts and analyses by default
(`default_filter()`, the store's rule), and come back with `include_excluded=True` or by removing the tag.

Direction: a filter may name a saved subset (`subset=`) or a review status (`review=`), so
filters/ imports subsets/ and review/, never the reverse: a saved subset is a named group of
points in the payloads, which needs no filter to exist, and comparing subsets takes the
store's `default_filter`.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from analysis.severity import LEVELS, tail_rows
from review import ReviewError, matching_ids as review_ids, parse_status_filter
from store import Collection, PointFilter, default_filter
from store.schema import EXCLUDED_TAG, LABEL, SUBSETS
from subsets.saved import list_subsets, validate_subset_name


class SelectionError(ValueError):
    """A filter names something the collection does not have, or matches nothing."""


class EmptySelection(SelectionError):
    pass


@dataclass
class FilterSpec:
    """A filter as a person states it; every given part must hold (AND).

    tags_any / tags_all / tags_none: the point has any / all / none of these tags
    labels:    the label is one of these
    subset:    the point is in this saved subset (store.subsets)
    ids:       the current map selection (None: no constraint; []: nothing)
    ranges:    numeric field -> (low, high), inclusive, either end None
    review:    "[ISSUE:]STATUS", e.g. "accepted", "pending", "outlier:kept": the points whose
               review status for the issue (default mislabel) is that (review/decisions.py)
    outliers:  numeric field -> "moderate" or "severe": the points in that tail of the field's
               values over the whole collection (analysis/severity.py: 1.5 / 3 x IQR)
    labelled:  True: only points with a label; False: only unlabelled ones (label "" or none);
               None: both
    include_excluded: also points tagged `excluded` (left out by default)
    """

    tags_any: list[str] = field(default_factory=list)
    tags_all: list[str] = field(default_factory=list)
    tags_none: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    subset: str | None = None
    ids: list[str] | None = None
    ranges: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
    review: str | None = None
    outliers: dict[str, str] = field(default_factory=dict)
    labelled: bool | None = None
    include_excluded: bool = False

    def is_empty(self) -> bool:
        """True when nothing narrows the points down (the exclusion default aside)."""
        return not (self.tags_any or self.tags_all or self.tags_none or self.labels or self.subset
                    or self.ids is not None or self.ranges or self.review or self.outliers
                    or self.labelled is not None)

    def to_filter(self) -> PointFilter:
        """The store filter, without checking names against a collection. A `review` part
        needs the collection (a decision applies only while the point is unchanged): use
        `resolve`."""
        if self.review or self.outliers or self.labelled is not None:
            raise SelectionError("review, outlier and labelled filters are resolved against a collection: "
                                 "use FilterSpec.resolve")
        tags_none = list(self.tags_none)
        # Asking for excluded points by tag means wanting them: no default exclusion then.
        wants_excluded = EXCLUDED_TAG in self.tags_any or EXCLUDED_TAG in self.tags_all
        if not self.include_excluded and not wants_excluded and EXCLUDED_TAG not in tags_none:
            tags_none.append(EXCLUDED_TAG)
        values: dict[str, list[str]] = {}
        if self.subset:
            values[SUBSETS] = [self.subset]
        return PointFilter(labels=list(self.labels) or None, tags_any=list(self.tags_any) or None,
                           tags_all=list(self.tags_all) or None, tags_none=tags_none or None,
                           ids=None if self.ids is None else list(self.ids), ranges=dict(self.ranges),
                           values=values)

    def resolve(self, collection: Collection) -> PointFilter:
        """The store filter, after checking that every tag, label and subset asked for exists."""
        self.check(collection)
        if not self.review and not self.outliers and self.labelled is None:
            return self.to_filter()
        flt = replace(self, review=None, outliers={}, labelled=None).to_filter()
        if self.labelled is not None:
            _narrow(flt, labelled_ids(collection, self.labelled))
        if self.review:
            _narrow(flt, review_ids(collection, *parse_status_filter(self.review)))
        for name, level in self.outliers.items():
            _narrow(flt, outlier_ids(collection, name, level))
        return flt

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
            validate_subset_name(self.subset)
            subsets = list_subsets(collection)
            if self.subset not in subsets:
                raise SelectionError(f"no subset {self.subset!r} in collection '{collection.name}'; "
                                     f"subsets: {_listing({k: v.count for k, v in subsets.items()})}")
        for name, (low, high) in self.ranges.items():
            if low is not None and high is not None and low > high:
                raise SelectionError(f"range for {name!r} is empty: {low} > {high}")
        for name, level in self.outliers.items():
            if level not in LEVELS:
                raise SelectionError(f"bad --outlier {name}:{level}: use FIELD:moderate or FIELD:severe")
        if self.review:
            try:
                parse_status_filter(self.review)
            except ReviewError as error:
                raise SelectionError(str(error)) from None

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
        if self.review:
            parts.append(f"review {self.review}")
        for name, level in self.outliers.items():
            parts.append(f"{level} outliers of {name}")
        if self.labelled is not None:
            parts.append("labelled" if self.labelled else "unlabelled")
        parts.append("excluded points included" if self.include_excluded else f"without '{EXCLUDED_TAG}'")
        return "; ".join(parts)


def _narrow(flt: PointFilter, ids: list[str]) -> None:
    """Keep only `ids` in the filter's id list (AND with any ids already there)."""
    flt.ids = ids if flt.ids is None else [i for i in flt.ids if i in set(ids)]


def labelled_ids(collection: Collection, labelled: bool) -> list[str]:
    """The points with a label (`labelled`) or without one (label "" or no label field: an
    image no labels file names, a detector's false positive drawn on the map)."""
    columns = collection.columns([LABEL])
    distinct, codes = columns.text(LABEL)
    named = np.array([bool(v) for v in distinct.tolist()] + [False], dtype=bool)  # code -1 (absent): last
    return columns.ids[np.flatnonzero(named[codes] == labelled)].tolist()


def outlier_ids(collection: Collection, name: str, level: str) -> list[str]:
    """The points in the `level` tail of field `name`, its fences taken over every point of
    the collection that has a value (as the Metrics tab's histogram draws them)."""
    columns = collection.columns([name])
    try:
        values = columns.array(name, dtype=np.float64)
    except (TypeError, ValueError):
        raise SelectionError(f"{name!r} is not a numeric field; outliers are found in numbers") from None
    if not np.isfinite(values).any():
        raise SelectionError(f"no points have a numeric {name!r}; nothing to find outliers of")
    return [str(columns.ids[i]) for i in tail_rows(values, level)]


def _listing(counts: dict[str, int]) -> str:
    if not counts:
        return "none"
    shown = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:30]
    more = f", ... ({len(counts) - 30} more)" if len(counts) > 30 else ""
    return ", ".join(f"{k} ({v})" for k, v in shown) + more


def count_matching(collection: Collection, spec: FilterSpec) -> int:
    return collection.count(spec.resolve(collection))


def matching_ids(collection: Collection, spec: FilterSpec, require: bool = True) -> list[str]:
    """Ids of the matching points; with `require`, EmptySelection when there are none."""
    ids = collection.ids(spec.resolve(collection))
    if require and not ids:
        raise EmptySelection(f"no points match the filter ({spec.describe()}) in '{collection.name}'")
    return ids
