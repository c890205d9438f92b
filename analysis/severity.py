"""How far into a metric's tails a value lies: Tukey's fences, as Encord Active marks every
metric's outliers. Pure numpy.

    fences = iqr_fences(values)            # from the finite values; None when there are none
    level = severity(values, fences)       # (n,) NONE / MODERATE / SEVERE per value
    rows = tail_rows(values, "severe")     # the rows in that tail (both ends)

With Q1 and Q3 the quartiles and IQR = Q3 - Q1, a value is a **severe** outlier beyond
3 x IQR from the quartiles (below Q1 - 3 IQR or above Q3 + 3 IQR) and a **moderate** one
between 1.5 x IQR and 3 x IQR (Tukey's inner and outer fences). On a normal distribution about
0.7 % of values are past the inner fences and 0.0002 % past the outer ones; a long-tailed
metric (sharpness, area) has many more, which is what they are there to show. NaN is never an
outlier. A metric whose middle half is one value (IQR 0) calls every other value severe.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MODERATE_IQR, SEVERE_IQR = 1.5, 3.0
NONE, MODERATE, SEVERE = 0, 1, 2
LEVELS = {"moderate": MODERATE, "severe": SEVERE}


@dataclass(frozen=True)
class Fences:
    q1: float
    q3: float

    @property
    def iqr(self) -> float:
        return self.q3 - self.q1

    def low(self, factor: float) -> float:
        return self.q1 - factor * self.iqr

    def high(self, factor: float) -> float:
        return self.q3 + factor * self.iqr

    def as_dict(self) -> dict[str, float]:
        return {"q1": self.q1, "q3": self.q3, "moderate_low": self.low(MODERATE_IQR),
                "moderate_high": self.high(MODERATE_IQR), "severe_low": self.low(SEVERE_IQR),
                "severe_high": self.high(SEVERE_IQR)}


def iqr_fences(values: np.ndarray) -> Fences | None:
    values = np.asarray(values, np.float64)
    finite = values[np.isfinite(values)]
    if len(finite) == 0:
        return None
    q1, q3 = np.percentile(finite, [25, 75])
    return Fences(float(q1), float(q3))


def severity(values: np.ndarray, fences: Fences | None = None) -> np.ndarray:
    """(n,) int8: SEVERE beyond the outer fences, MODERATE between inner and outer, else NONE."""
    values = np.asarray(values, np.float64)
    fences = fences if fences is not None else iqr_fences(values)
    out = np.zeros(len(values), np.int8)
    if fences is None:
        return out
    with np.errstate(invalid="ignore"):
        out[(values < fences.low(MODERATE_IQR)) | (values > fences.high(MODERATE_IQR))] = MODERATE
        out[(values < fences.low(SEVERE_IQR)) | (values > fences.high(SEVERE_IQR))] = SEVERE
    return out


def parse_level(text: str) -> int:
    """'moderate' / 'severe' -> MODERATE / SEVERE; ValueError naming both otherwise."""
    level = LEVELS.get(text.strip().lower())
    if level is None:
        raise ValueError(f"unknown outlier level {text!r}: use moderate or severe")
    return level


def tail_rows(values: np.ndarray, level: str | int, fences: Fences | None = None) -> np.ndarray:
    """Rows whose value is in the `level` tail ('moderate': between the fences, 'severe': past
    the outer ones), both ends."""
    wanted = parse_level(level) if isinstance(level, str) else int(level)
    return np.flatnonzero(severity(values, fences) == wanted)
