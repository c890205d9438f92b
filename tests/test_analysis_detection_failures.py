"""Where a detector fails: the metric that decides misses comes first, its bins show it, a
metric unrelated to misses comes last; clusters are categories; the FP rate per bin."""
from __future__ import annotations

import numpy as np
import pytest

from analysis.detection_failures import failures_by_metric


def test_the_metric_behind_the_misses_ranks_first_with_its_bins() -> None:
    rng = np.random.default_rng(0)
    area = rng.uniform(0, 1000, 2000)
    brightness = rng.uniform(0, 1, 2000)
    cluster = rng.integers(0, 4, 2000).astype(float)
    found = (area > 400) & ~((cluster == 3) & (rng.random(2000) < 0.5))
    predicted_area = rng.uniform(0, 1000, 500)
    false_positive = predicted_area < 200
    table = failures_by_metric({"brightness": brightness, "area": area, "cluster": cluster}, found, {"cluster"},
                               {"area": predicted_area}, false_positive, n_bins=5)
    assert [m.name for m in table] == ["area", "cluster", "brightness"]
    assert table[0].separation > 0.4 and table[2].separation < 0.02
    bins = table[0].bins
    assert len(bins) == 5 and sum(b.boxes for b in bins) == 2000
    assert bins[0].recall == 0.0 and bins[1].recall == 0.0 and bins[-1].recall > 0.8
    assert bins[0].fp_rate == 1.0 and bins[-1].fp_rate == 0.0
    assert sum(b.predictions for b in bins) == 500
    clusters = {b.label: b for b in table[1].bins}
    assert set(clusters) == {"0", "1", "2", "3"}
    assert clusters["3"].recall < clusters["0"].recall
    assert np.isnan(clusters["0"].fp_rate)  # predictions have no cluster
    expected = found[(cluster == 3)].mean()
    assert clusters["3"].recall == pytest.approx(expected)


def test_nothing_to_separate() -> None:
    values = np.arange(10.0)
    table = failures_by_metric({"area": values, "flat": np.ones(10)}, np.ones(10, bool))
    assert [m.name for m in table] == ["area"] and table[0].separation == 0.0
