"""Point ids of a whole collection as one numpy array, with id -> row lookups by binary search.

Ten million ids as Python strings, plus a dict from id to row, are about 2 GB of objects; as
16-byte keys (a UUID's bytes, big-endian, so byte order is the order of the canonical strings)
they are 160 MB, and a lookup is a binary search in a sorted copy made on the first lookup.
Ids that are not canonical UUID strings (Qdrant also allows unsigned integers) are kept as a
numpy str array instead: slower and bigger, equally correct.
"""
from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence

import numpy as np

HEX_POSITIONS = np.array([i for i in range(36) if i not in (8, 13, 18, 23)])
_NIBBLE = np.full(128, 255, dtype=np.uint8)
for _i, _c in enumerate("0123456789abcdef"):
    _NIBBLE[ord(_c)] = _i
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
CHUNK = 1 << 20  # ids converted at a time (bounds the temporaries)


def uuid_keys(ids: np.ndarray) -> np.ndarray | None:
    """Canonical lowercase UUID strings (a numpy str array) as S16 keys; None if any is not one."""
    if ids.dtype.kind != "U" or (len(ids) and ids.dtype.itemsize != 36 * 4):
        return None
    keys = np.empty(len(ids), dtype="S16")
    raw = keys.view(np.uint8).reshape(-1, 16)
    codes = ids.view(np.uint32).reshape(-1, 36)
    for start in range(0, len(ids), CHUNK):
        part = codes[start:start + CHUNK]
        if (part[:, [8, 13, 18, 23]] != ord("-")).any():
            return None
        hexes = part[:, HEX_POSITIONS]
        if (hexes >= 128).any():
            return None
        nibbles = _NIBBLE[hexes]
        if (nibbles == 255).any():
            return None
        raw[start:start + CHUNK] = (nibbles[:, 0::2] << 4) | nibbles[:, 1::2]
    return keys


def uuid_strings(keys: np.ndarray) -> np.ndarray:
    """S16 keys back to canonical UUID strings (a numpy str array)."""
    raw = keys.view(np.uint8).reshape(-1, 16)
    out = np.empty((len(keys), 36), dtype=np.uint8)
    out[:, [8, 13, 18, 23]] = ord("-")
    for start in range(0, len(keys), CHUNK):
        part = raw[start:start + CHUNK]
        nibbles = np.empty((len(part), 32), dtype=np.uint8)
        nibbles[:, 0::2], nibbles[:, 1::2] = part >> 4, part & 15
        out[start:start + CHUNK, HEX_POSITIONS] = _HEX[nibbles]
    return out.view("S36").ravel().astype("U36")


class PointIds:
    """Row-ordered point ids: `strings(rows)`, `rows(ids)`, `take(mask)`; never changed in place."""

    def __init__(self, keys: np.ndarray) -> None:
        self.keys = keys  # S16 UUID keys, or a str array for other ids
        self.is_uuid = keys.dtype == np.dtype("S16")
        self._sorted: tuple[np.ndarray, np.ndarray] | None = None  # (order, keys[order])
        self._lock = threading.Lock()

    @classmethod
    def from_strings(cls, ids: Sequence[str] | np.ndarray) -> PointIds:
        array = ids if isinstance(ids, np.ndarray) and ids.dtype.kind == "U" else np.array(list(ids), dtype=str)
        if not len(array):
            array = array.astype("U36")
        keys = uuid_keys(array)
        return cls(keys if keys is not None else array)

    def __len__(self) -> int:
        return len(self.keys)

    def strings(self, rows: np.ndarray | Sequence[int] | None = None) -> np.ndarray:
        """The ids of `rows` (all rows when None) as a numpy str array."""
        keys = self.keys if rows is None else self.keys[np.asarray(rows, dtype=np.int64)]
        return uuid_strings(keys) if self.is_uuid else keys.astype(str)

    def string(self, row: int) -> str:
        return str(self.strings([row])[0])

    def _query_keys(self, ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(keys of `ids`, which of them could be keys at all)."""
        array = np.array([str(i).lower() if self.is_uuid else str(i) for i in ids], dtype=str)
        if not self.is_uuid:
            return array, np.ones(len(array), dtype=bool)
        valid = np.char.str_len(array) == 36 if len(array) else np.zeros(0, dtype=bool)
        keys = np.zeros(len(array), dtype="S16")
        if valid.any():
            parsed = uuid_keys(array[valid].astype("U36"))
            if parsed is None:  # some are not UUIDs: parse one by one
                for at in np.flatnonzero(valid):
                    one = uuid_keys(np.array([array[at]], dtype="U36"))
                    valid[at] = one is not None
                    if one is not None:
                        keys[at] = one[0]
            else:
                keys[valid] = parsed
        return keys, valid

    def rows(self, ids: Iterable[str]) -> np.ndarray:
        """Each id's row, -1 where it is not here."""
        ids = list(ids)
        if not ids:
            return np.empty(0, dtype=np.int64)
        order, ordered = self._sorted_keys()
        keys, valid = self._query_keys(ids)
        at = np.searchsorted(ordered, keys)
        inside = at < len(ordered)
        found = np.zeros(len(ids), dtype=bool)
        found[inside] = ordered[at[inside]] == keys[inside]
        found &= valid
        out = np.full(len(ids), -1, dtype=np.int64)
        out[found] = order[at[found]]
        return out

    def find(self, other: PointIds) -> np.ndarray:
        """The row here of each of `other`'s ids, -1 where it is not here (keys compared as
        they are, no strings made, when both hold UUID keys)."""
        if not len(other):
            return np.empty(0, dtype=np.int64)
        if not (self.is_uuid and other.is_uuid):
            return self.rows(other.strings().tolist())
        order, ordered = self._sorted_keys()
        keys = other.keys
        out = np.full(len(keys), -1, dtype=np.int64)
        if not len(ordered):
            return out
        at = np.minimum(np.searchsorted(ordered, keys), len(ordered) - 1)
        found = ordered[at] == keys
        out[found] = order[at[found]]
        return out

    def append(self, other: PointIds) -> PointIds:
        """These ids, then `other`'s."""
        if not len(other):
            return self
        if self.is_uuid and other.is_uuid:
            return PointIds(np.concatenate([self.keys, other.keys]))
        return PointIds.from_strings(np.concatenate([self.strings(), other.strings()]))

    def row(self, point_id: str) -> int | None:
        row = int(self.rows([point_id])[0])
        return None if row < 0 else row

    def _sorted_keys(self) -> tuple[np.ndarray, np.ndarray]:
        with self._lock:
            if self._sorted is None:
                order = np.argsort(self.keys, kind="stable")
                self._sorted = (order, self.keys[order])
            return self._sorted

    def take(self, keep: np.ndarray) -> PointIds:
        """The ids of the rows `keep` (a mask or row numbers) selects."""
        kept = self.keys[keep]
        if not self.is_uuid:
            width = int(np.char.str_len(kept).max()) if len(kept) else 1
            kept = kept.astype(f"<U{width}")
        return PointIds(kept)
