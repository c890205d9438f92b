"""The record every export format writes: one dict per point.

Each record carries id, path, label, labels, tags, split, subsets, x, y and every numeric
payload field (image metrics, quality scores, prediction confidence, ...), so a file written
today keeps the scores added tomorrow without a code change. A record of an object collection
(one point per box) also carries annotation_id, bbox, image_id, original_label (the class
before a relabel, '' if none), suggested_label and quality_flags.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from store import Collection, PointFilter
from store.schema import (
    ANNOTATION_ID, BBOX, CATEGORIES, COLLECTION_KIND, IMAGE_ID, LABEL, LABELS, LIST_FIELDS, OBJECTS_KIND,
    ORIGINAL_LABEL, PATH, QUALITY_FLAGS, SPLIT, SUBSETS, SUGGESTED_LABEL, TAGS, X, Y,
)

ID = "id"  # the point id (not a payload field)
BASE_FIELDS = (ID, PATH, LABEL, TAGS, X, Y, SPLIT, SUBSETS)
# Object collections: one row per box; the box's own fields lead, numeric scores follow.
OBJECT_BASE_FIELDS = (ID, PATH, ANNOTATION_ID, BBOX, LABEL, ORIGINAL_LABEL, TAGS, SUGGESTED_LABEL, QUALITY_FLAGS,
                      X, Y, SPLIT, SUBSETS, IMAGE_ID)
__all__ = ["BASE_FIELDS", "ExportRecords", "LIST_FIELDS", "OBJECT_BASE_FIELDS", "collect_records", "is_number",
           "numeric_fields"]


@dataclass
class ExportRecords:
    """The matching points of a collection, ready for a writer."""

    collection: str
    source_root: str | None
    records: list[dict[str, Any]]
    numeric_fields: list[str]
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


def numeric_fields(payloads: Iterable[dict[str, Any]], skip: Iterable[str] = (X, Y)) -> list[str]:
    """Payload fields holding a number on at least one point (sorted; `skip` left out)."""
    skipped = set(skip)
    found: set[str] = set()
    for payload in payloads:
        found.update(k for k, v in payload.items() if k not in skipped and is_number(v))
    return sorted(found)


def to_record(point_id: str, payload: dict[str, Any], numeric: Sequence[str], objects: bool = False) -> dict[str, Any]:
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
                       QUALITY_FLAGS: list(payload.get(QUALITY_FLAGS) or [])})
    for name in numeric:
        if name not in record:
            record[name] = _number(payload.get(name))
    return record


def collect_records(collection: Collection, flt: PointFilter | None = None) -> ExportRecords:
    """Every matching point as a record, in a stable order (by path, then id)."""
    raw = [(r.id, r.payload) for batch in collection.scroll(None, flt) for r in batch]
    metadata = collection.read_metadata()
    objects = metadata.get(COLLECTION_KIND) == OBJECTS_KIND
    numeric = [f for f in numeric_fields(p for _, p in raw) if not (objects and f == ANNOTATION_ID)]
    records = sorted((to_record(pid, payload, numeric, objects) for pid, payload in raw),
                     key=lambda r: (str(r[PATH]), r.get(ANNOTATION_ID) or 0, r[ID]))
    root = metadata.get("source_root")
    return ExportRecords(collection.name, str(root) if root else None, records, numeric, objects,
                         list(metadata.get(CATEGORIES) or []) if objects else None)


def _number(value: Any) -> float | int | None:
    if not is_number(value) or (isinstance(value, float) and not math.isfinite(value)):
        return None
    return value
