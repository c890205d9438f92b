"""The Metrics and Filter & Export tabs: pure helpers on a small store collection, and one
browser run (range selection from the histogram tab, weak labelling and its undo)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import build_ui_collection
from filters import FilterSpec
from subsets.saved import list_subsets, save_subset
from ui import export_page, metrics_page
from ui.state import MapState
from ui.table import PointTable


def add_metrics(collection) -> dict[str, dict[str, float]]:
    """Known metric values: brightness k/100 for a shuffled k, sharpness 10*k, and a
    mislabel_score on the dogs only."""
    columns = collection.columns(["label"])
    ids = sorted(str(i) for i in columns.ids)
    labels = dict(zip((str(i) for i in columns.ids), columns.values["label"]))
    order = np.random.default_rng(1).permutation(len(ids))
    values: dict[str, dict[str, float]] = {}
    for pid, k in zip(ids, order):
        payload = {"brightness": round(float(k) / 100, 2), "sharpness": float(10 * k), "area": 2304.0}
        if labels[pid] == "dog":
            payload["mislabel_score"] = float(k % 7) / 7
        values[pid] = payload
    collection.set_payloads(list(values), list(values.values()))
    collection.flush()
    return values


@pytest.fixture
def metrics_collection(tmp_path: Path):
    store, collection, _ = build_ui_collection(tmp_path)
    values = add_metrics(collection)
    yield collection, values
    store.close()


def in_range(values: dict[str, dict[str, float]], name: str, low: float, high: float) -> set[str]:
    return {pid for pid, v in values.items() if name in v and low <= v[name] <= high}


# --- metrics helpers ----------------------------------------------------------------------------
def test_numeric_fields_and_columns_follow_the_store(metrics_collection) -> None:
    collection, values = metrics_collection
    table = PointTable(collection)
    fields = metrics_page.numeric_fields(table)
    assert fields[:3] == ["brightness", "sharpness", "area"]  # METRIC_FIELDS order first
    assert "mislabel_score" in fields and "x" not in fields and "y" not in fields
    brightness = table.numeric("brightness")
    assert [brightness[table.row_of[pid]] for pid in table.ids] == [values[pid]["brightness"] for pid in table.ids]
    score = table.numeric("mislabel_score")
    assert np.isnan(score).sum() == 80  # cats and birds have none
    assert table.numeric("brightness") is brightness  # loaded once


def test_histogram_data_is_normalised_over_shared_bins(metrics_collection) -> None:
    collection, _ = metrics_collection
    table = PointTable(collection)
    values = table.numeric("brightness")
    everything = metrics_page.histogram_data(values, None, bins=10)
    assert everything.all_count == 120 and everything.sel_count == 0
    assert everything.all_share.sum() == pytest.approx(1.0) and everything.sel_share.sum() == 0
    assert everything.edges[0] == 0.0 and everything.edges[-1] == pytest.approx(1.19)
    rows = np.flatnonzero(values < 0.3)
    hist = metrics_page.histogram_data(values, rows, bins=10)
    assert hist.sel_count == 30 and hist.sel_share.sum() == pytest.approx(1.0)
    assert hist.sel_share[3:].sum() == 0  # all below 0.3 falls in the first three bins of width 0.119
    stats = metrics_page.stats(values, rows)
    assert stats["count"] == 30 and stats["mean"] == pytest.approx(0.145) and stats["median"] == pytest.approx(0.145)
    scores = metrics_page.histogram_data(table.numeric("mislabel_score"), np.arange(120), bins=7)
    assert scores.all_count == 40 and scores.sel_count == 40  # NaN (no score) left out
    figure = metrics_page.histogram_figure("brightness", hist)
    assert [trace.type for trace in figure.data] == ["bar", "bar"]
    assert "30" in metrics_page.stats_html("brightness", values, rows)


def test_range_rows_are_the_points_in_the_closed_interval(metrics_collection) -> None:
    collection, values = metrics_collection
    table = PointTable(collection)
    rows = metrics_page.range_rows(table.numeric("brightness"), 0.2, 0.55)
    assert set(table.ids_for_rows(rows)) == in_range(values, "brightness", 0.2, 0.55)
    assert len(rows) == 36  # both ends included
    assert len(metrics_page.range_rows(table.numeric("brightness"), None, 0.099)) == 10
    assert len(metrics_page.range_rows(table.numeric("mislabel_score"), None, None)) == 40
    visible = table.mask(labels=["cat"])
    rows = metrics_page.range_rows(table.numeric("brightness"), 0.2, 0.55, visible)
    assert set(table.ids_for_rows(rows)) == {p for p in in_range(values, "brightness", 0.2, 0.55)
                                             if table.label_of(table.row_of[p]) == "cat"}


def test_table_relabel_and_restore_write_the_store(metrics_collection) -> None:
    collection, _ = metrics_collection
    table = PointTable(collection)
    rows = np.flatnonzero(table.mask(labels=["cat"]))[:5]
    ids = table.ids_for_rows(rows)
    assert table.relabel(rows, "lynx") == 5
    assert [table.label_of(r) for r in rows] == ["lynx"] * 5
    assert table.label_counts()["lynx"] == 5 and table.label_counts()["cat"] == 35
    stored = {r.id: r.payload for r in collection.retrieve(ids, ["label", "original_label"])}
    assert all(p["label"] == "lynx" and p["original_label"] == "cat" for p in stored.values())
    assert table.restore_labels(rows) == 5
    assert [table.label_of(r) for r in rows] == ["cat"] * 5
    assert {r.payload["label"] for r in collection.retrieve(ids, ["label"])} == {"cat"}


# --- export helpers --------------------------------------------------------------------------------
def test_filter_spec_count_subset_and_export(metrics_collection) -> None:
    collection, _ = metrics_collection
    table = PointTable(collection)
    state = MapState()
    assert export_page.filter_spec(state, table, [], [], [], ["dog"], False, "(any)", False) == FilterSpec(labels=["dog"])
    assert 'data-count="40"' in export_page.count_text(collection, FilterSpec(labels=["dog"]))
    spec = export_page.filter_spec(state, table, [], [], [], [], True, None, False)
    assert spec.ids == [] and 'data-count="0"' in export_page.count_text(collection, spec)
    state.select(np.arange(7), "test")
    spec = export_page.filter_spec(state, table, [], [], [], [], True, None, False)
    assert 'data-count="7"' in export_page.count_text(collection, spec)
    assert "no points have tag" in export_page.count_text(collection, FilterSpec(tags_any=["nope"]))
    save_subset(collection, "seven", spec.ids)
    assert list_subsets(collection)["seven"].count == 7
    assert export_page.subset_choices(collection) == ["(any)", "seven"]
    assert "**seven**: 7 points" in export_page.subsets_markdown(collection)
    spec = export_page.filter_spec(state, table, [], [], [], [], False, "seven", False)
    assert 'data-count="7"' in export_page.count_text(collection, spec)


def test_default_pages_build(metrics_collection) -> None:
    from ui.app import DEFAULT_PAGES, build_app

    collection, _ = metrics_collection
    titles = [title for title, _ in DEFAULT_PAGES]
    assert "Metrics" in titles and "Filter & Export" in titles
    demo = build_app(collection)
    assert demo.embedscape_context.table is not None


# --- the browser --------------------------------------------------------------------------------
def test_browser_histogram_range_selection_and_weak_labels(tmp_path: Path) -> None:
    browser_tests = pytest.importorskip("test_ui_browser")

    if not Path(browser_tests.CHROMIUM).exists():
        pytest.skip(f"needs {browser_tests.CHROMIUM}")
    store, collection, _ = build_ui_collection(tmp_path)
    values = add_metrics(collection)
    try:
        with browser_tests.explorer_page(collection) as page:
            page.get_by_role("tab", name="Metrics").click()
            page.wait_for_selector("#es-metric-stats .es-metric-stats")
            page.wait_for_selector("#es-metric-plot .js-plotly-plot, #es-metric-plot .plotly")
            # The bars are drawn: the page's plotly.js bundle holds the bar trace beside scattergl.
            page.wait_for_function("() => document.querySelectorAll('#es-metric-plot .barlayer .point').length > 0")
            # The dataset's range is filled in when the tab opens; narrow it and select.
            page.wait_for_function("() => document.querySelector('#es-metric-min input').value !== ''")
            for selector, value in (("#es-metric-min input", "0.2"), ("#es-metric-max input", "0.55")):
                page.fill(selector, value)
                page.press(selector, "Tab")
            expected = in_range(values, "brightness", 0.2, 0.55)
            assert len(expected) == 36
            page.click("#es-metric-select")
            browser_tests.wait_selected(page, len(expected))
            assert f"{len(expected)} of 120" in page.inner_text("#es-count")
            page.wait_for_function(
                "n => { const s = document.querySelector('#es-metric-stats .es-metric-stats');"
                " return s && s.dataset.count === n; }", arg=str(len(expected)))
            page.wait_for_function("n => window.embedscapeMap.gd.data.reduce("
                                   "(k, t) => k + (t.selectedpoints || []).length, 0) === n", arg=len(expected))

            # Weak label: a new label on the selection, saved with the originals kept.
            originals = {r.id: r.payload["label"] for r in collection.retrieve(sorted(expected), ["label"])}
            box = page.locator("#es-relabel-label input")
            box.fill("review")
            box.press("Enter")
            page.click("#es-relabel")
            page.wait_for_function("() => document.querySelector('#es-relabel-status').innerText.includes('review')")
            stored = {r.id: r.payload for r in collection.retrieve(sorted(expected), ["label", "original_label"])}
            assert {p["label"] for p in stored.values()} == {"review"}
            assert {pid: p["original_label"] for pid, p in stored.items()} == originals
            assert collection.count() - len(expected) == sum(
                1 for b in collection.columns(["label"]).values["label"] if b != "review")
            # The label view recolours: "review" is in the map's legend.
            page.wait_for_function("() => window.embedscapeMap.gd.data.some(t => t.name.startsWith('review (36)'))")

            page.click("#es-relabel-restore")
            page.wait_for_function("() => document.querySelector('#es-relabel-status').innerText.includes('Restored')")
            stored = {r.id: r.payload for r in collection.retrieve(sorted(expected), ["label", "original_label"])}
            assert {pid: p["label"] for pid, p in stored.items()} == originals
            assert all("original_label" not in p for p in stored.values())
            page.wait_for_function("() => !window.embedscapeMap.gd.data.some(t => t.name.startsWith('review'))")
    finally:
        store.close()
