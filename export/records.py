"""The record every export format writes: one dict per point.

Each record carries id, path, label, labels, tags, split, subsets, x, y and then every other
payload field the points have (image metrics, quality scores, suggested_label,
quality_flags, original_label, prediction, review, ...: declared fields in the schema's
order, then any other field by name), so a file written today keeps the fields added
tomorrow without a code change. Analysed collections also get, per quality flag, a yes/no
column (`mislabel_flag`, `outlier_flag`, `duplicate_flag`) and the review status
(`mislabel_review`, ...: pending, accepted, kept, tagged, excluded; empty when neither
flagged nor decided; see review/decisions.py).
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from store import Collection, PointFilter
from store.schema import (
    FIELDS, LABEL, LABELS, LIST_FIELDS, PATH, QUALITY_FLAG_VALUES, QUALITY_FLAGS, REVIEW, SPLIT, SUBSETS, TAGS, X, Y,
    flag_column, review_column,
)

ID = "id"  # the point id (not a payload field)
BASE_FIELDS = (ID, PATH, LABEL, TAGS, X, Y, SPLIT, SUBSETS)
__all__ = ["BASE_FIELDS", "ExportRecords", "LIST_FIELDS", "collect_records", "is_number", "extra_fields"]


@dataclass
class ExportRecords:
    """The matching points of a collection, ready for a writer. `fields`: the columns after
    BASE_FIELDS, in order."""

    collection: str
    source_root: str | None
    records: list[dict[str, Any]]
    fields: list[str]

    def __len__(self) -> int:
        return len(self.records)

    def absolute_path(self, record: dict[str, Any]) -> str:
        """The image's file on this machine (the stored relative path when the root is unknown)."""
        path = str(record.get(PATH) or "")
        return str(Path(self.source_root) / path) if self.source_root else path


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def extra_fields(payloads: Iterable[dict[str, Any]]) -> list[str]:
    """Payload fields beyond the base record that at least one point has: declared fields in
    the schema's order, then the others sorted."""
    found: set[str] = set()
    for payload in payloads:
        found.update(payload)
    found -= {*BASE_FIELDS, LABELS}
    declared = [name for name in FIELDS if name in found]
    return declared + sorted(found - set(declared))


def to_record(point_id: str, payload: dict[str, Any], fields: Sequence[str]) -> dict[str, Any]:
    record: dict[str, Any] = {
        ID: point_id, PATH: payload.get(PATH, ""), LABEL: payload.get(LABEL, ""),
        LABELS: list(payload.get(LABELS) or ([payload[LABEL]] if payload.get(LABEL) else [])),
        TAGS: list(payload.get(TAGS) or []), X: _number(payload.get(X)), Y: _number(payload.get(Y)),
        SPLIT: payload.get(SPLIT, ""), SUBSETS: list(payload.get(SUBSETS) or []),
    }
    for name in fields:
        value = payload.get(name)
        record[name] = _number(value) if is_number(value) else value
    return record


def collect_records(collection: Collection, flt: PointFilter | None = None) -> ExportRecords:
    """Every matching point as a record, in a stable order (by path, then id)."""
    raw = [(r.id, r.payload) for batch in collection.scroll(None, flt) for r in batch]
    fields = extra_fields(p for _, p in raw)
    records = sorted((to_record(pid, payload, fields) for pid, payload in raw), key=lambda r: (str(r[PATH]), r[ID]))
    if QUALITY_FLAGS in fields or REVIEW in fields:
        fields += _add_flag_and_review_columns(collection, records)
    root = collection.read_metadata().get("source_root")
    return ExportRecords(collection.name, str(root) if root else None, records, fields)


def _add_flag_and_review_columns(collection: Collection, records: list[dict[str, Any]]) -> list[str]:
    from review.book import statuses  # the review rules; reads the whole collection once

    found = statuses(collection)
    for record in records:
        flags = record.get(QUALITY_FLAGS) or []
        for flag in QUALITY_FLAG_VALUES:
            record[flag_column(flag)] = flag in flags
            record[review_column(flag)] = found.get(flag, {}).get(record[ID], "")
    return [column for flag in QUALITY_FLAG_VALUES for column in (flag_column(flag), review_column(flag))]


def _number(value: Any) -> float | int | None:
    if not is_number(value) or (isinstance(value, float) and not math.isfinite(value)):
        return None
    return value
