"""A view of the explorer as URL query parameters, and back: what a shared link carries.

    colour=label|data|tag|cluster      the "Colour by" choice
    field=NAME                         colour by a numeric payload field (wins over `colour`)
    label=NAME (repeated)              the "Show labels" filter
    tag=NAME (repeated)                the "Show tags" filter
    view=X0,X1,Y0,Y1                   the map's zoom (axis ranges, data units)
    ids=BASE64URL                      a small selection: its point ids, 16 bytes each
    subset=NAME                        a selection saved as a subset (subsets/saved.py)
    selection=TOKEN                    a selection handed over by the other explorer (ui/handoff.py)

Point ids are UUIDs (store: UUID5 of the path), sent as their 16 raw bytes in unpadded
base64url: 22 characters a point instead of 36, so a link of MAX_QUERY_CHARS holds about 90
points; a bigger selection goes as a subset (ui/map/share_link.py saves it). Pure functions: no
Gradio, no store; what cannot be read is reported in `problems`, never raised, and the rest of
the view still applies.
"""
from __future__ import annotations

import base64
import binascii
import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

COLOUR, FIELD, LABEL, TAG, VIEW, IDS, SUBSET, SELECTION = (
    "colour", "field", "label", "tag", "view", "ids", "subset", "selection")
COLOUR_MODES = ("data", "label", "tag", "cluster")
MAX_QUERY_CHARS = 2000  # a link's query longer than this takes its selection as a subset
ID_BYTES = 16
ID_CHARS = 21  # at least this many base64url characters per id (16 bytes: 21.3)
MAX_NAME_CHARS = 200  # a label, tag, field or subset name longer than this is not one


@dataclass
class LinkSpec:
    """What a link asks for; empty fields leave that part of the view as it is."""

    colour: str | None = None
    colour_field: str | None = None  # a numeric payload field; wins over `colour`
    labels: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    view: tuple[float, float, float, float] | None = None  # x0, x1, y0, y1
    ids: list[str] | None = None
    subset: str | None = None
    handoff: str | None = None


def encode_ids(ids: Sequence[str]) -> str | None:
    """Point ids as unpadded base64url of their UUID bytes; None if one is not a UUID."""
    raw = bytearray()
    for point in ids:
        try:
            raw += uuid.UUID(str(point)).bytes
        except ValueError:
            return None
    return base64.urlsafe_b64encode(bytes(raw)).decode("ascii").rstrip("=")


def decode_ids(text: str) -> list[str]:
    """The ids `encode_ids` wrote; ValueError if `text` is not such a list."""
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError) as error:
        raise ValueError("not base64url") from error
    if not raw or len(raw) % ID_BYTES:
        raise ValueError(f"{len(raw)} bytes is not a whole number of {ID_BYTES}-byte ids")
    return [str(uuid.UUID(bytes=raw[i:i + ID_BYTES])) for i in range(0, len(raw), ID_BYTES)]


def format_view(view: Sequence[float]) -> str:
    return ",".join(f"{v:.7g}" for v in view)


def parse_view(text: str) -> tuple[float, float, float, float]:
    """'x0,x1,y0,y1' as four finite numbers with x0 < x1 and y0 < y1; ValueError otherwise."""
    parts = text.split(",")
    if len(parts) != 4:
        raise ValueError("needs four numbers x0,x1,y0,y1")
    x0, x1, y0, y1 = (float(p) for p in parts)
    if not all(math.isfinite(v) for v in (x0, x1, y0, y1)) or not (x0 < x1 and y0 < y1):
        raise ValueError("needs finite numbers with x0 < x1 and y0 < y1")
    return x0, x1, y0, y1


def encode_query(spec: LinkSpec) -> str:
    """The query string (without '?') for `spec`, parameters in the order of the module doc."""
    pairs: list[tuple[str, str]] = []
    if spec.colour_field:
        pairs.append((FIELD, spec.colour_field))
    elif spec.colour:
        pairs.append((COLOUR, spec.colour))
    pairs += [(LABEL, name) for name in spec.labels] + [(TAG, name) for name in spec.tags]
    if spec.view is not None:
        pairs.append((VIEW, format_view(spec.view)))
    if spec.subset:
        pairs.append((SUBSET, spec.subset))
    elif spec.ids:
        encoded = encode_ids(spec.ids)
        if encoded is None:
            raise ValueError("only UUID point ids fit in a link")
        pairs.append((IDS, encoded))
    if spec.handoff:
        pairs.append((SELECTION, spec.handoff))
    return urlencode(pairs, safe=",")


def decode_query(query: Any) -> tuple[LinkSpec, list[str]]:
    """The view a page's query parameters ask for, and a sentence per parameter that could not
    be read. `query`: Starlette's QueryParams (repeated keys), or any mapping of one value each."""
    spec, problems = LinkSpec(), []

    def values(key: str) -> list[str]:
        found = query.getlist(key) if hasattr(query, "getlist") else ([query[key]] if key in query else [])
        return [str(v) for v in found]

    def single(key: str) -> str | None:
        found = [v for v in values(key) if v.strip()]
        return found[-1].strip() if found else None

    def names(key: str) -> list[str]:
        kept = []
        for value in values(key):
            if not value or len(value) > MAX_NAME_CHARS or not value.isprintable():
                problems.append(f"{key}={value[:40]!r} is not a {key} name")
            elif value not in kept:
                kept.append(value)
        return kept

    colour = single(COLOUR)
    if colour is not None:
        if colour in COLOUR_MODES:
            spec.colour = colour
        else:
            problems.append(f"colour={colour[:40]!r} is not one of {', '.join(COLOUR_MODES)}")
    spec.colour_field = (names(FIELD) or [None])[-1]
    spec.labels, spec.tags = names(LABEL), names(TAG)
    view = single(VIEW)
    if view is not None:
        try:
            spec.view = parse_view(view)
        except ValueError as error:
            problems.append(f"view={view[:60]!r} {error}")
    ids = single(IDS)
    if ids is not None:
        try:
            spec.ids = decode_ids(ids)
        except ValueError as error:
            problems.append(f"ids: {error}")
    subset = single(SUBSET)
    if subset is not None:
        spec.subset = subset
    spec.handoff = single(SELECTION)
    return spec, problems

