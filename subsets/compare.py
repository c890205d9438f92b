"""Compare two saved subsets of a collection: reads them through the store, then analysis.compare.

    result = compare_saved_subsets(collection, "day", "night")   # analysis.compare.SubsetComparison
    print(format_comparison(result, "day", "night"))             # the CLI's table
    class_rows(result) / field_rows(result)                      # rows for a UI table
"""
from __future__ import annotations

import math
from typing import Any

from store import Collection, default_filter
from store.schema import NOT_MEASUREMENTS
from subsets.saved import group_arrays, subset_arrays


def compare_saved_subsets(collection: Collection, a: str, b: str, include_excluded: bool = False) -> Any:
    """Sizes, overlap, class shares and a KS test per numeric field for subsets `a` and `b`
    (points tagged `excluded` left out unless `include_excluded`)."""
    from analysis.compare import compare_subsets

    arrays = subset_arrays(collection, a, b, default_filter(include_excluded), skip_fields=sorted(NOT_MEASUREMENTS))
    return compare_subsets(arrays.a_mask, arrays.b_mask, arrays.labels, arrays.numeric)


def compare_splits(collection: Collection, a: str, b: str, include_excluded: bool = False) -> Any:
    """`compare_saved_subsets` for two values of the `split` field (e.g. train and test)."""
    from analysis.compare import compare_subsets
    from store import StoreError
    from store.schema import SPLIT

    known = collection.facet(SPLIT)
    for name in (a, b):
        if name not in known:
            raise StoreError(f"no split {name!r} in '{collection.name}'; splits: {', '.join(sorted(known)) or 'none'}")
    arrays = group_arrays(collection, SPLIT, a, b, default_filter(include_excluded),
                          skip_fields=sorted(NOT_MEASUREMENTS))
    return compare_subsets(arrays.a_mask, arrays.b_mask, arrays.labels, arrays.numeric)


def class_rows(result: Any) -> list[dict[str, Any]]:
    """Per class: share in A, share in B and the difference, largest difference first."""
    rows = [{"class": c, "share_a": float(sa), "share_b": float(sb), "difference": float(d)}
            for c, sa, sb, d in zip(result.classes, result.share_a, result.share_b, result.share_diff)]
    return sorted(rows, key=lambda r: (-abs(r["difference"]), r["class"]))


def field_rows(result: Any) -> list[dict[str, Any]]:
    """Per numeric field: KS statistic and p-value, sample sizes and means; smallest p first."""
    rows = [{"field": name, "p_value": f.p_value, "statistic": f.statistic, "n_a": f.n_a, "n_b": f.n_b,
             "mean_a": f.mean_a, "mean_b": f.mean_b} for name, f in result.fields.items()]
    return sorted(rows, key=lambda r: (math.isnan(r["p_value"]), r["p_value"], r["field"]))


def format_comparison(result: Any, a: str, b: str) -> str:
    """A readable plain-text report."""
    lines = [f"subset A: {a} ({result.size_a} points)", f"subset B: {b} ({result.size_b} points)",
             f"overlap:  {result.overlap} points in both", ""]
    classes = class_rows(result)
    if classes:
        width = max(len("class"), *(len(r["class"]) for r in classes))
        lines.append(f"{'class':<{width}}  {'A share':>8}  {'B share':>8}  {'A - B':>8}")
        for r in classes:
            lines.append(f"{r['class']:<{width}}  {r['share_a']:>8.1%}  {r['share_b']:>8.1%}  "
                         f"{r['difference']:>+8.1%}")
    else:
        lines.append("no labels in either subset")
    lines.append("")
    fields = field_rows(result)
    if fields:
        width = max(len("field"), *(len(r["field"]) for r in fields))
        lines.append(f"{'field':<{width}}  {'KS p-value':>10}  {'KS stat':>8}  {'mean A':>10}  {'mean B':>10}  "
                     "n A / n B")
        for r in fields:
            lines.append(f"{r['field']:<{width}}  {_num(r['p_value'], '.3g'):>10}  {_num(r['statistic'], '.3f'):>8}  "
                         f"{_num(r['mean_a'], '.4g'):>10}  {_num(r['mean_b'], '.4g'):>10}  {r['n_a']} / {r['n_b']}")
        lines.append("(a small p-value: the field's values differ between A and B)")
    else:
        lines.append("no numeric payload fields to compare")
    return "\n".join(lines)


def _num(value: float, fmt: str) -> str:
    return "-" if value is None or math.isnan(value) else format(value, fmt)
