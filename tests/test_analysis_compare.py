"""compare_subsets: sizes, class shares, and KS tests equal to scipy's."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import ks_2samp

from analysis.compare import compare_subsets


def test_sizes_overlap_and_class_shares() -> None:
    labels = np.array(["cat", "cat", "dog", "dog", "dog", "", "eel", "cat"])
    a = np.array([1, 1, 1, 0, 0, 1, 0, 0], bool)  # cat, cat, dog, (unlabelled)
    b = np.array([0, 0, 1, 1, 1, 0, 1, 1], bool)  # dog, dog, dog, eel, cat
    result = compare_subsets(a, b, labels, {})
    assert (result.size_a, result.size_b, result.overlap) == (4, 5, 1)
    assert result.classes == ["cat", "dog", "eel"]
    assert result.share_a == pytest.approx([2 / 3, 1 / 3, 0.0])
    assert result.share_b == pytest.approx([0.2, 0.6, 0.2])
    assert result.share_diff == pytest.approx([2 / 3 - 0.2, 1 / 3 - 0.6, -0.2])


def test_ks_statistics_equal_scipy_with_nans_dropped() -> None:
    rng = np.random.default_rng(0)
    n = 400
    a = np.arange(n) < 200
    b = ~a
    shifted = np.where(a, rng.normal(0, 1, n), rng.normal(1.0, 1, n))
    same = rng.normal(0, 1, n)
    same[[3, 250, 399]] = np.nan
    result = compare_subsets(a, b, np.full(n, "x"), {"shifted": shifted, "same": same})
    for name, values in {"shifted": shifted, "same": same}.items():
        va, vb = values[a], values[b]
        expected = ks_2samp(va[~np.isnan(va)], vb[~np.isnan(vb)])
        assert result.fields[name].statistic == pytest.approx(expected.statistic)
        assert result.fields[name].p_value == pytest.approx(expected.pvalue)
    assert result.fields["shifted"].p_value < 1e-3 < result.fields["same"].p_value
    assert (result.fields["same"].n_a, result.fields["same"].n_b) == (199, 198)
    assert result.fields["shifted"].mean_a < result.fields["shifted"].mean_b


def test_empty_side_gives_nan_test_and_no_labels_is_allowed() -> None:
    a = np.array([True, True, False])
    b = np.zeros(3, bool)
    result = compare_subsets(a, b, None, {"v": np.array([1.0, 2.0, 3.0])})
    assert math.isnan(result.fields["v"].p_value) and math.isnan(result.fields["v"].statistic)
    assert result.classes == [] and result.size_b == 0
    with pytest.raises(ValueError):
        compare_subsets(a, np.zeros(2, bool), None, {})
