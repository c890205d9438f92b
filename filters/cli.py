"""The command line's filter flags, shared by export, tag, delete and subset save.

    add_filter_arguments(parser)      # --tag, --tag-all, --tag-none, --label, --labelled, --unlabelled, --subset, ...
    spec = spec_from_args(args)       # -> FilterSpec
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path

from filters.spec import FilterSpec, SelectionError
from store.schema import EXCLUDED_TAG


def add_filter_arguments(parser: argparse.ArgumentParser, tag_flag: bool = True) -> None:
    """The filter flags shared by export, tag, delete and subset save. `tag_flag=False` leaves
    out `--tag` (select-next names its batch's tag with it; --tag-all filters by tag there)."""
    group = parser.add_argument_group("filters (all given must hold)")
    if tag_flag:
        group.add_argument("--tag", action="append", default=[], metavar="T", dest="tags_any",
                           help="has any of these tags (repeatable)")
    group.add_argument("--tag-all", action="append", default=[], metavar="T", dest="tags_all",
                       help="has all of these tags (repeatable)")
    group.add_argument("--tag-none", action="append", default=[], metavar="T", dest="tags_none",
                       help="has none of these tags (repeatable)")
    group.add_argument("--label", action="append", default=[], metavar="L", dest="labels",
                       help="label is any of these (repeatable)")
    labelled = group.add_mutually_exclusive_group()
    labelled.add_argument("--labelled", action="store_const", const=True, dest="labelled",
                          help="only points with a label")
    labelled.add_argument("--unlabelled", action="store_const", const=False, dest="labelled",
                          help="only points without a label (images no labels file names)")
    group.add_argument("--subset", metavar="S", help="in this saved subset")
    group.add_argument("--range", action="append", default=[], metavar="FIELD:LOW:HIGH", dest="ranges",
                       help="numeric field within [LOW, HIGH]; leave an end empty, e.g. mislabel_score:0.5:")
    group.add_argument("--outlier", action="append", default=[], metavar="FIELD:moderate|severe", dest="outliers",
                       help="in that tail of the field's values: moderate (1.5-3 x IQR beyond the quartiles) "
                            "or severe (over 3 x IQR), e.g. sharpness:severe (repeatable)")
    group.add_argument("--ids-file", type=Path, metavar="FILE", help="only these point ids (one a line)")
    group.add_argument("--review", metavar="[ISSUE:]STATUS",
                       help="review status: pending, reviewed, accepted, kept, tagged (mislabels by default), "
                            "or outlier:... (kept, excluded, tagged) and duplicate:... (kept, tagged); of a detector "
                            "run's boxes missing_label:... and badly_placed:... (pending, accepted), "
                            "spurious:... (pending, excluded)")
    group.add_argument("--include-excluded", action="store_true",
                       help=f"also points tagged '{EXCLUDED_TAG}' (left out by default)")


def spec_from_args(args: argparse.Namespace) -> FilterSpec:
    return FilterSpec(tags_any=list(getattr(args, "tags_any", None) or []), tags_all=list(args.tags_all),
                      tags_none=list(args.tags_none),
                      labels=list(args.labels), subset=args.subset, ids=_read_ids(args.ids_file),
                      ranges=dict(parse_range(r) for r in args.ranges), review=args.review,
                      outliers=dict(parse_outlier(o) for o in getattr(args, "outliers", [])),
                      labelled=getattr(args, "labelled", None),
                      include_excluded=args.include_excluded)


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


def parse_outlier(text: str) -> tuple[str, str]:
    """'sharpness:severe' -> ('sharpness', 'severe')."""
    name, sep, level = text.rpartition(":")
    level = level.strip().lower()
    if not name or not sep or level not in ("moderate", "severe"):
        raise SelectionError(f"bad --outlier {text!r}: use FIELD:moderate or FIELD:severe, e.g. sharpness:severe")
    return name, level


def _read_ids(path: Path | None) -> list[str] | None:
    if path is None:
        return None
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise SelectionError(f"cannot read --ids-file {path}: {error.strerror or error}") from error
    return [line.strip() for line in text.splitlines() if line.strip()]
