"""Write the points of a collection (or a filtered part of it) to files other tools read.

    export_points(collection, "coco", Path("out.json"), flt)     -> ExportResult
    export_to_tempfile(collection, "csv", flt)                   -> Path   (downloads from the app)

Formats: csv, jsonl, coco, imagefolder (copy or symlink), paths, and for object collections
yolo (export/detection.py). Every record carries id, path, label, tags, x, y, split, subsets
and every other payload field (scores, suggested labels, flags, predictions, review
decisions), plus yes/no flag and review-status columns; a box's record leads with its
annotation_id and bbox. Filters: filters/ (FilterSpec, default_filter: points tagged
`excluded` are left out).
"""
from __future__ import annotations

import io
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from export.errors import ExportError
from export.detection import write_yolo
from export.formats import EXTENSIONS, FOLDER_FORMATS, FORMATS, TEXT_WRITERS, write_imagefolder
from export.records import BASE_FIELDS, ExportRecords, collect_records
from filters import EmptySelection, default_filter
from store import Collection, PointFilter

CSV_FIELDS = BASE_FIELDS  # the leading columns; every other payload field follows

__all__ = ["CSV_FIELDS", "ExportError", "ExportResult", "FORMATS", "export_points", "export_records",
           "export_to_tempfile"]


@dataclass
class ExportResult:
    format: str
    out: Path
    count: int
    missing: list[str] = field(default_factory=list)  # images not found (imagefolder, yolo)
    unit: str = "points"  # "boxes" for an object collection's coco / yolo

    def summary(self) -> str:
        text = f"wrote {self.count} {self.unit} to {self.out} ({self.format})"
        if self.missing:
            text += f"; {len(self.missing)} image files were missing and skipped"
        return text


def export_points(collection: Collection, fmt: str, out: Path | str, flt: PointFilter | None = None,
                  link: str = "copy") -> ExportResult:
    """Write the points matching `flt` (default: all but `excluded`) to `out` in `fmt`.

    Raises EmptySelection when nothing matches (nothing is written) and ExportError when
    `out` cannot be written. imagefolder writes a folder; `link` is copy or symlink.
    """
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    data = collect_records(collection, default_filter() if flt is None else flt)
    if not data.records:
        raise EmptySelection(f"no points match the filter in '{collection.name}'; nothing written")
    return export_records(data, fmt, Path(out), link)


def export_records(data: ExportRecords, fmt: str, out: Path, link: str = "copy") -> ExportResult:
    unit = "boxes" if data.objects else "points"
    try:
        if fmt == "yolo":
            if not data.objects:
                raise ExportError(f"yolo exports boxes: use it on an object collection ({data.collection}-objects), "
                                  "or export this image collection as imagefolder, coco, csv or jsonl")
            out.mkdir(parents=True, exist_ok=True)
            count, missing = write_yolo(data, out, link)
            return ExportResult(fmt, out, count, missing, unit)
        if fmt == "imagefolder":
            out.mkdir(parents=True, exist_ok=True)
            written = write_imagefolder(data, out, link)
            return ExportResult(fmt, out, written.count, written.missing)
        if out.is_dir():
            raise ExportError(f"cannot write {out}: it is a folder; give a file name")
        out.parent.mkdir(parents=True, exist_ok=True)
        # Written beside the target, then renamed: a failed export leaves no half file.
        buffer = io.StringIO(newline="")
        written = TEXT_WRITERS[fmt](data, buffer)
        tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
        tmp.write_text(buffer.getvalue(), encoding="utf-8", newline="")
        tmp.replace(out)
        return ExportResult(fmt, out, written.count, unit="images" if fmt == "paths" else unit)
    except OSError as error:
        raise ExportError(f"cannot write {out}: {error.strerror or error}") from error


def export_to_tempfile(collection: Collection, fmt: str, flt: PointFilter | None = None,
                       name: str | None = None) -> Path:
    """Export into a new temporary folder and return the file to offer as a download
    (imagefolder, yolo: a .zip of copies). `name` (e.g. a subset) goes into the file name."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    folder = Path(tempfile.mkdtemp(prefix="embedscape-export-"))
    label = f"{collection.name}-{name}" if name else collection.name
    stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in label)
    if fmt not in FOLDER_FORMATS:
        return export_points(collection, fmt, folder / f"{stem}{EXTENSIONS[fmt]}", flt).out
    result = export_points(collection, fmt, folder / stem, flt, link="copy")
    archive = shutil.make_archive(str(folder / stem), "zip", root_dir=result.out)
    shutil.rmtree(result.out, ignore_errors=True)
    return Path(archive)
