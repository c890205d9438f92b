"""Filters: which points an action, an export or a count applies to.

    FilterSpec(...)                  a filter as a person states it (tags, labels, subset, ranges, ids)
    spec.resolve(collection)         -> store PointFilter, names checked (SelectionError if unknown)
    default_filter()                 everything not tagged `excluded`
    count_matching / matching_ids    the live count / the matching ids
    filters.cli                      the command line's filter flags
"""
from filters.spec import (
    EmptySelection, FilterSpec, SelectionError, count_matching, default_filter, matching_ids,
)

__all__ = ["EmptySelection", "FilterSpec", "SelectionError", "count_matching", "default_filter", "matching_ids"]
