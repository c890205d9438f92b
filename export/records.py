"""The record every export format writes: one dict per point.

Each record carries id, path, label, labels, tags, split, subsets, x, y and then every other
payload field the points have (image metrics, quality scores, suggested_label,
quality_flags, original_label, prediction, review, ...: declared fields in the schema's
order, then any other field by name), so a file written today keeps the fields added
tomorrow without a code change. A record of an object collection (one point per box) leads
with annotation_id, bbox, image_id, original_label (the class before a relabel, '' if none),
suggested_label and quality_flags. Analysed collections also get, per quality flag, a yes/no
column (`mislabel_flag`, `outlier_flag`, `duplicate_flag`, and `duplicate_box_flag` for
boxes) and the review status (`mislabel_review`, ...: pending, accepted, kept, tagged,
excluded; empty when neither flagged nor decided; see review/decisions.py). Boxes of a
detector run also get `missing_label_review`, `badly_placed_review` and `spurious_review`
(pending, accepted / excluded; review/detection.py).
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from store import Collection, PointFilter
from store.schema import (
    ANNOTATION_ID, BBOX, CATEGORIES, COLLECTION_KIND, DUPLICATE_BOX_FLAG, FIELDS, IMAGE_ID, LABEL, LABELS,
    LIST_FIELDS, OBJECTS_KIND, ORIGINAL_LABEL, PATH, QUALITY_FLAG_VALUES, QUALITY_FLAGS, REVIEW, SPLIT, SUBSETS,
    SUGGESTED_LABEL, TAGS, X, Y, LABEL_SOURCE, SOURCE, flag_column, review_column, DETECTION_REASON,
)

ID = "id"  # the point id (not a payload field)
BASE_FIELDS = (ID, PATH, LABEL, TAGS, X, Y, SPLIT, SUBSETS)
# Object collections: one row per box; the box's own fields lead, the other fields follow.
OBJECT_BASE_FIELDS = (ID, PATH, ANNOTATION_ID, BBOX, LABEL, ORIGINAL_LABEL, TAGS, SUGGESTED_LABEL, QUALITY_FLAGS,
                      X, Y, SPLIT, SUBSETS, IMAGE_ID, SOURCE)  # source: label / added / prediction
__all__ = ["BASE_FIELDS", "ExportRecords", "LIST_FIELDS", "OBJECT_BASE_FIELDS", "collect_records", "extra_fields",
           "is_number"]


@dataclass
class ExportRecords:
    """The matching points of a collection, ready for a writer. `fields`: the columns after
    BASE_FIELDS, in order."""

    collection: str
    source_root: str | None
    records: list[dict[str, Any]]
    fields: list[str]  # the columns after base_fields, in order
    objects: bool = False  # an object collection: one record per box
    categories: list[dict[str, Any]] | None = None  # object collections: the source's [{"id", "name"}]

    @property
    def base_fields(self) -> tuple[str, ...]:
        return OBJECT_BASE_FIELDS if self.objects else BASE_FIELDS

    def __len__(self) -> int:
        return len(self.records)

    def absolute_path(self, record: dict[str, Any]) -> str:
        """The image's file on this machine (the stored relative path when the root is unknown)."""
        path = str(record.get(PATH) or "")
        return str(Path(self.source_root) / path) if self.source_root else path


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def extra_fields(payloads: Iterable[dict[str, Any]], base: Sequence[str] = BASE_FIELDS) -> list[str]:
    """Payload fields beyond the `base` record that at least one point has: declared fields in
    the schema's order, then the others sorted."""
    found: set[str] = set()
    for payload in payloads:
        found.update(payload)
    found -= {*base, LABELS}
    declared = [name for name in FIELDS if name in found]
    return declared + sorted(found - set(declared))


def to_record(point_id: str, payload: dict[str, Any], fields: Sequence[str], objects: bool = False) -> dict[str, Any]:
    record: dict[str, Any] = {
        ID: point_id, PATH: payload.get(PATH, ""), LABEL: payload.get(LABEL, ""),
        LABELS: list(payload.get(LABELS) or ([payload[LABEL]] if payload.get(LABEL) else [])),
        TAGS: list(payload.get(TAGS) or []), X: _number(payload.get(X)), Y: _number(payload.get(Y)),
        SPLIT: payload.get(SPLIT, ""), SUBSETS: list(payload.get(SUBSETS) or []),
    }
    if objects:
        bbox = payload.get(BBOX)
        record.update({ANNOTATION_ID: payload.get(ANNOTATION_ID), IMAGE_ID: payload.get(IMAGE_ID, ""),
                       BBOX: [float(v) for v in bbox] if isinstance(bbox, list) else None,
                       ORIGINAL_LABEL: payload.get(ORIGINAL_LABEL) or "",
                       SUGGESTED_LABEL: payload.get(SUGGESTED_LABEL) or "",
                       QUALITY_FLAGS: list(payload.get(QUALITY_FLAGS) or []),
                       SOURCE: payload.get(SOURCE) or LABEL_SOURCE})
    for name in fields:
        if name not in record:
            value = payload.get(name)
            record[name] = _number(value) if is_number(value) else value
    return record


def collect_records(collection: Collection, flt: PointFilter | None = None) -> ExportRecords:
    """Every matching point as a record, in a stable order (by path, then id)."""
    raw = [(r.id, r.payload) for batch in collection.scroll(None, flt) for r in batch]
    metadata = collection.read_metadata()
    objects = metadata.get(COLLECTION_KIND) == OBJECTS_KIND
    fields = extra_fields((p for _, p in raw), OBJECT_BASE_FIELDS if objects else BASE_FIELDS)
    records = sorted((to_record(pid, payload, fields, objects) for pid, payload in raw),
                     key=lambda r: (str(r[PATH]), r.get(ANNOTATION_ID) or 0, r[ID]))
    if any(QUALITY_FLAGS in p or REVIEW in p for _, p in raw):
        fields += _add_flag_and_review_columns(collection, records, objects)
    if objects and any(REVIEW in p or DETECTION_REASON in p or SOURCE in p for _, p in raw):
        fields += _add_detector_review_columns(collection, records)
    root = metadata.get("source_root")
    return ExportRecords(collection.name, str(root) if root else None, records, fields, objects,
                         list(metadata.get(CATEGORIES) or []) if objects else None)


def _add_flag_and_review_columns(collection: Collection, records: list[dict[str, Any]], objects: bool) -> list[str]:
    from review.book import statuses  # the review rules; reads the whole collection once

    found = statuses(collection)
    flags = (*QUALITY_FLAG_VALUES, DUPLICATE_BOX_FLAG) if objects else QUALITY_FLAG_VALUES
    for record in records:
        has = record.get(QUALITY_FLAGS) or []
        for flag in flags:
            record[flag_column(flag)] = flag in has
        for issue in QUALITY_FLAG_VALUES:
            record[review_column(issue)] = found.get(issue, {}).get(record[ID], "")
    return [*(flag_column(flag) for flag in flags), *(review_column(issue) for issue in QUALITY_FLAG_VALUES)]


def _add_detector_review_columns(collection: Collection, records: list[dict[str, Any]]) -> list[str]:
    """A detector run's review status per box: missing_label_review, badly_placed_review,
    spurious_review (review/detection.py; empty when neither a candidate nor decided)."""
    from review.detection import DETECTOR_ISSUES, detection_statuses

    for issue in DETECTOR_ISSUES:
        found = detection_statuses(collection, issue)
        for record in records:
            record[review_column(issue)] = found.get(record[ID], "")
    return [review_column(issue) for issue in DETECTOR_ISSUES]


def _number(value: Any) -> float | int | None:
    if not is_number(value) or (isinstance(value, float) and not math.isfinite(value)):
        return None
    return value
