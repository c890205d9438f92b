"""Outlier severity per metric (Tukey's fences, 1.5 and 3 x IQR): the levels by hand, the
`--outlier FIELD:moderate|severe` filter on the embedded engine (through the command line), the
Metrics tab's shaded tails and counts, and its one-click tail selection in a real browser."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

import app
from analysis.severity import MODERATE, NONE, SEVERE, iqr_fences, parse_level, severity, tail_rows
from conftest import build_ui_collection
from filters import FilterSpec, SelectionError, matching_ids
from filters.cli import parse_outlier
from ui import metrics_page
from ui.table import PointTable

# 0..99 plus four planted values: quartiles 24.75 and 74.25 of the first hundred move a little
# with the extra four, so the fences are computed, not assumed (see test_levels_by_hand).
PLANTED = {"mild-low": -90.0, "mild-high": 200.0, "far-low": -250.0, "far-high": 400.0}


def planted_values() -> np.ndarray:
    return np.concatenate([np.arange(100, dtype=float), list(PLANTED.values())])


def test_levels_by_hand() -> None:
    values = planted_values()
    fences = iqr_fences(values)
    q1, q3 = np.percentile(values, [25, 75])
    assert (fences.q1, fences.q3) == (q1, q3)
    iqr = q3 - q1
    assert fences.low(1.5) == q1 - 1.5 * iqr and fences.high(3.0) == q3 + 3 * iqr
    # -90 and 200 lie between the inner and outer fences; -250 and 400 beyond the outer ones.
    assert fences.low(3.0) < -90 < fences.low(1.5) and fences.high(1.5) < 200 < fences.high(3.0)
    level = severity(values, fences)
    assert (level[:100] == NONE).all() and list(level[100:]) == [MODERATE, MODERATE, SEVERE, SEVERE]
    np.testing.assert_array_equal(tail_rows(values, "severe"), [102, 103])
    np.testing.assert_array_equal(tail_rows(values, "moderate"), [100, 101])
    with_nan = np.append(values, np.nan)
    assert severity(with_nan)[-1] == NONE
    assert iqr_fences(np.array([np.nan])) is None and not severity(np.array([np.nan])).any()
    with pytest.raises(ValueError, match="use moderate or severe"):
        parse_level("extreme")


@pytest.fixture
def planted(tmp_path: Path):
    """The UI collection (120 points) with `sharpness` 0..119 except four planted values."""
    store, collection, _ = build_ui_collection(tmp_path)
    ids = sorted(str(i) for i in collection.columns(["label"]).ids)
    values = np.arange(len(ids), dtype=float)
    values[:4] = list(PLANTED.values())
    collection.set_payloads(ids, [{"sharpness": float(v)} for v in values])
    collection.flush()
    yield store, collection, dict(zip(ids, values)), tmp_path
    store.close()


def expected(values: dict[str, float], level: str) -> set[str]:
    rows = tail_rows(np.array(list(values.values())), level)
    return {list(values)[i] for i in rows}


def test_the_filter_finds_each_tail(planted) -> None:
    _, collection, values, _ = planted
    severe = set(matching_ids(collection, FilterSpec(outliers={"sharpness": "severe"})))
    moderate = set(matching_ids(collection, FilterSpec(outliers={"sharpness": "moderate"})))
    assert severe == expected(values, "severe") and len(severe) == 2
    assert {values[i] for i in severe} == {-250.0, 400.0} and {values[i] for i in moderate} == {-90.0, 200.0}
    # AND with the other parts: a range keeps only the high end.
    both = FilterSpec(outliers={"sharpness": "severe"}, ranges={"sharpness": (0.0, None)})
    assert {values[i] for i in matching_ids(collection, both)} == {400.0}
    assert "severe outliers of sharpness" in both.describe()
    with pytest.raises(SelectionError, match="not a numeric field"):
        matching_ids(collection, FilterSpec(outliers={"label": "severe"}))
    with pytest.raises(SelectionError, match="no points have a numeric 'nothing'"):
        matching_ids(collection, FilterSpec(outliers={"nothing": "severe"}))
    with pytest.raises(SelectionError, match="FIELD:moderate or FIELD:severe"):
        FilterSpec(outliers={"sharpness": "wild"}).resolve(collection)


def test_the_command_line_flag(planted, capsys) -> None:
    store, collection, values, base = planted
    assert parse_outlier("sharpness:Severe") == ("sharpness", "severe")
    with pytest.raises(SelectionError, match="use FIELD:moderate or FIELD:severe"):
        parse_outlier("sharpness")
    store.close()   # the command line opens the embedded store itself
    argv = ["--qdrant-path", str(base / "qdrant")]
    out = base / "severe.csv"
    assert app.main([*argv, "export", "--collection", "ui", "--outlier", "sharpness:severe", "--format", "csv",
                     "--out", str(out)]) == 0
    assert {float(r["sharpness"]) for r in csv.DictReader(out.open())} == {-250.0, 400.0}
    assert app.main([*argv, "tag", "--collection", "ui", "--outlier", "sharpness:moderate", "--add", "odd"]) == 0
    assert app.main([*argv, "export", "--collection", "ui", "--outlier", "sharpness:extreme", "--format", "csv",
                     "--out", str(out)]) == 2
    assert "use FIELD:moderate or FIELD:severe" in capsys.readouterr().err


def test_the_histogram_shades_and_counts_the_tails(planted) -> None:
    _, collection, _, _ = planted
    table = PointTable(collection)
    values = table.numeric("sharpness")
    fences = iqr_fences(values)
    figure = metrics_page.histogram_figure("sharpness", metrics_page.histogram_data(values, None), fences)
    shaded = [(s.name, s.x0, s.x1) for s in figure.layout.shapes]
    assert shaded == [("severe outliers", -250.0, fences.low(3)),
                      ("moderate outliers", fences.low(3), fences.low(1.5)),
                      ("moderate outliers", fences.high(1.5), fences.high(3)),
                      ("severe outliers", fences.high(3), 400.0)]
    html = metrics_page.stats_html("sharpness", values, None)
    assert 'data-moderate="2" data-severe="2"' in html
    # A metric without outliers: nothing shaded.
    plain = np.arange(50, dtype=float)
    assert metrics_page.tail_spans(metrics_page.histogram_data(plain, None).edges, iqr_fences(plain)) == []


def test_browser_selects_a_tail_in_one_click(planted) -> None:
    browser_tests = pytest.importorskip("test_ui_browser")

    if not Path(browser_tests.CHROMIUM).exists():
        pytest.skip(f"needs {browser_tests.CHROMIUM}")
    _, collection, values, _ = planted
    with browser_tests.explorer_page(collection) as page:
        page.get_by_role("tab", name="Metrics").click()
        page.wait_for_selector("#es-metric-stats .es-metric-stats")
        page.locator("#es-metric input").click()
        page.get_by_role("option", name="sharpness", exact=True).click()
        page.wait_for_function("() => { const s = document.querySelector('#es-metric-stats .es-metric-tails');"
                               " return s && s.dataset.severe === '2'; }")
        page.wait_for_function("() => document.querySelectorAll('#es-metric-plot .shapelayer path').length >= 4")
        page.click("#es-metric-severe")
        browser_tests.wait_selected(page, 2)
        assert "2 of 120" in page.inner_text("#es-count")
        assert "Selected 2 severe outliers of sharpness" in page.inner_text("#es-metric-status")
        page.click("#es-metric-moderate")
        browser_tests.wait_selected(page, 2)
        page.wait_for_function("() => document.querySelector('#es-metric-status').innerText.includes('moderate')")
