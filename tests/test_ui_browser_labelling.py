"""The Label next tab and the probe's predictions on Model performance, in headless Chromium:
choose a batch, see it selected on the map, label it, choose round 2, read the rounds."""
from __future__ import annotations

import csv
from pathlib import Path

import pytest

from conftest import UI_LABELS, build_ui_collection
from indexer.labels_import import import_labels
from store import PointFilter
from test_ui_browser import ARGS, CHROMIUM, open_page, open_tab, to_client, wait_selected
from ui.app import start_server
from ui.figure import UNTAGGED_COLOUR, colouring
from ui.state import MapState
from ui.table import NO_LABEL, PointTable

playwright_api = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"needs {CHROMIUM}")
LABELLED_PER_CLASS = 5  # of 40 per class


def partly_labelled(base: Path):
    """The UI collection with only the first LABELLED_PER_CLASS points of each class labelled."""
    store, collection, root = build_ui_collection(base)
    columns = collection.columns(["path"])
    unlabelled = [pid for pid, path in zip(columns.ids, columns.values["path"])
                  if int(Path(path).stem) >= LABELLED_PER_CLASS]
    collection.set_payload(unlabelled, {"label": "", "labels": []})
    collection.flush()
    return store, collection


def test_unlabelled_points_are_grey_and_last_on_the_label_view(tmp_path: Path) -> None:
    store, collection = partly_labelled(tmp_path)
    try:
        table = PointTable(collection)
        coloured = colouring(table, MapState(colour_by="label"))
        assert coloured.categories[-1].colour == UNTAGGED_COLOUR
        assert coloured.categories[-1].name == f"{NO_LABEL} ({3 * (40 - LABELLED_PER_CLASS)})"
        assert [c.count for c in coloured.categories[:3]] == [LABELLED_PER_CLASS] * 3
    finally:
        store.close()


def test_label_next_round_trip_and_probe_performance(tmp_path: Path) -> None:
    """Round 1 in the app; the labels come back while the app is stopped (an embedded store is
    open in one process at a time, as `python app.py labels` would need); round 2 after a restart."""
    store, collection = partly_labelled(tmp_path)
    try:
        with playwright_api.sync_playwright() as p:
            chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
            try:
                running = start_server(collection)
                try:
                    _first_round(open_page(chromium, running.url), collection)
                finally:
                    running.stop()
                _label_the_batch(collection, tmp_path)
                running = start_server(collection)
                try:
                    page = open_page(chromium, running.url)
                    _second_round(page)
                    _probe_performance(page)
                finally:
                    running.stop()
            finally:
                chromium.close()
    finally:
        store.close()


def _first_round(page, collection) -> None:
    open_tab(page, "Label next")
    page.wait_for_selector("#es-ln-counts", state="visible")
    assert "15 labelled · 105 unlabelled" in page.inner_text("#es-ln-counts")
    page.fill("#es-ln-budget input", "12")
    page.click("#es-ln-choose")
    page.wait_for_selector("#es-ln-status .es-ln-done")
    wait_selected(page, 12)
    assert "round 1: chose 12 of 105 unlabelled points" in page.inner_text("#es-ln-status")
    batch = collection.columns(["label"], PointFilter(tags_any=["batch-1"]))
    assert len(batch) == 12 and all(label == "" for label in batch.values["label"])
    assert page.locator("#es-ln-rounds-table tr[data-round='1']").count() == 1
    assert page.locator("#es-ln-files a").count() >= 4  # CSV, Label Studio, COCO, YOLO list


def _label_the_batch(collection, tmp_path: Path) -> None:
    """What the annotators send back, as the batch's CSV filled in (the true class is the folder)."""
    batch = collection.columns(["path"], PointFilter(tags_any=["batch-1"]))
    answers = tmp_path / "answers.csv"
    with answers.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label"])
        writer.writerows([path, path.split("/")[0]] for path in batch.values["path"])
    assert import_labels(collection, answers).written == 12


def _second_round(page) -> None:
    open_tab(page, "Label next")
    page.wait_for_selector("#es-ln-counts", state="visible")
    assert "27 labelled · 93 unlabelled" in page.inner_text("#es-ln-counts")
    page.click("#es-ln-refresh")
    page.wait_for_selector("#es-ln-rounds-table tr[data-round='1']")
    page.fill("#es-ln-budget input", "5")
    page.click("#es-ln-choose")
    page.wait_for_selector("#es-ln-status .es-ln-done[data-round='2']")
    wait_selected(page, 5)
    row = page.locator("#es-ln-rounds-table tr[data-round='2'] td").all_inner_texts()
    assert row[1] == "batch-2" and row[5] == "27" and row[6].endswith("%")
    first = page.locator("#es-ln-rounds-table tr[data-round='1'] td").all_inner_texts()
    assert first[4] == "12" and first[5] == "15"  # its whole batch labelled by now; 15 when chosen


def _probe_performance(page) -> None:
    page.mouse.dblclick(*to_client(page, 5.0, 3.0))  # clear the selection: the whole dataset's report
    wait_selected(page, None)
    open_tab(page, "Model performance")
    page.click("#es-perf-probe")
    page.wait_for_selector("#es-perf-summary .es-perf-acc")
    assert "linear probe" in page.inner_text("#es-perf-summary .es-perf-source")
    accuracy = float(page.get_attribute("#es-perf-summary .es-perf-acc", "data-accuracy"))
    assert 0.9 <= accuracy <= 1.0  # three separated classes, 27 labelled points
    classes = page.eval_on_selector_all("#es-perf-table tr[data-class]", "rows => rows.map(r => r.dataset.class)")
    assert sorted(classes) == sorted(UI_LABELS)
    assert "on 27 points" in page.inner_text("#es-perf-summary .es-perf-acc")
