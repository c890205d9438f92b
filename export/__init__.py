"""Write the points of a collection (or a filtered part of it) to files other tools read."""
from __future__ import annotations

import csv
from pathlib import Path

from store import Collection, PointFilter

CSV_FIELDS = ("id", "path", "label", "tags", "x", "y", "split")
FORMATS = ("csv",)


class ExportError(ValueError):
    """The export cannot be written; the message says why."""


def export_points(collection: Collection, fmt: str, out: Path, flt: PointFilter | None = None) -> int:
    """Write matching points to `out` in `fmt`; returns the number of points written."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    out = Path(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("w", newline="", encoding="utf-8") as handle:
            return _write_csv(collection, flt, handle)
    except PermissionError as error:
        raise ExportError(f"cannot write {out}: permission denied") from error


def _write_csv(collection: Collection, flt: PointFilter | None, handle) -> int:
    writer = csv.writer(handle)
    writer.writerow(CSV_FIELDS)
    count = 0
    for batch in collection.scroll(["path", "label", "tags", "x", "y", "split"], flt):
        for record in batch:
            p = record.payload
            # Tags joined with '|' keep one row per point and survive a spreadsheet round trip.
            writer.writerow([record.id, p.get("path", ""), p.get("label", ""), "|".join(p.get("tags") or []),
                             p.get("x", ""), p.get("y", ""), p.get("split", "")])
            count += 1
    return count
