"""Unlabelled points and splits in the explorer, in headless Chromium: the labelled / unlabelled
counts beside the class distribution and on the Metrics tab (whole dataset, then a selection),
the unlabelled bar; "Compare splits" (train vs val, one click) and "Select leaks" on the Filter &
Export tab, their numbers checked against the store; a split's name never becomes markup."""
from __future__ import annotations

from pathlib import Path

import pytest

from conftest import build_ui_collection
from store import PointFilter
from store.schema import SPLIT_LEAK_GROUP
from test_ui_browser import CHROMIUM, open_page, open_tab, wait_selected
from ui.app import start_server
from ui.table import NO_LABEL

pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"needs {CHROMIUM}")
ODD_SPLIT = "<b>val</b>"  # a split named like markup: shown as text


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The UI collection with the last 30 of each class unlabelled, every 4th point in split
    ODD_SPLIT, and two near-duplicate groups across the splits (as `analyze` writes them)."""
    store, collection, _ = build_ui_collection(tmp_path_factory.mktemp("ui-splits"))
    collection.create_index("split", "keyword")
    collection.create_index(SPLIT_LEAK_GROUP, "integer")
    columns = collection.columns(["path"])
    by_path = dict(zip(columns.values["path"], columns.ids))
    unlabelled = [pid for path, pid in by_path.items() if int(Path(path).stem) >= 10]
    collection.set_payload(unlabelled, {"label": "", "labels": []})
    collection.set_payload([pid for path, pid in by_path.items() if int(Path(path).stem) % 4 == 0], {"split": ODD_SPLIT})
    collection.set_payload([by_path["cat/000.png"], by_path["cat/001.png"]], {SPLIT_LEAK_GROUP: 0})
    collection.set_payload([by_path["dog/012.png"], by_path["dog/013.png"], by_path["bird/020.png"]],
                           {SPLIT_LEAK_GROUP: 1})
    collection.update_metadata(analysis={"split_leak_groups": 2})
    collection.flush()
    running = start_server(collection)
    yield running, collection
    running.stop()
    store.close()


def labelled_counts(page, selector: str) -> tuple[int, int, int, int]:
    data = page.eval_on_selector(selector, "p => p.dataset")
    return (int(data["labelled"]), int(data["unlabelled"]), int(data["totalLabelled"]),
            int(data["totalUnlabelled"]))


def test_unlabelled_counts_splits_and_leaks(served, browser) -> None:
    server, collection = served
    page = open_page(browser, server.url)
    # The whole dataset: 30 labelled, 90 unlabelled; the unlabelled bar last.
    page.wait_for_selector("#es-dist .es-labelled")
    assert labelled_counts(page, "#es-dist .es-labelled") == (30, 90, 30, 90)
    names = page.eval_on_selector_all("#es-dist .es-dist-row", "rows => rows.map(r => r.dataset.label)")
    assert names[-1] == NO_LABEL and page.get_attribute(f'#es-dist .es-dist-row[data-label="{NO_LABEL}"]',
                                                        "data-total") == "90"

    open_tab(page, "Filter & Export")
    page.wait_for_selector("#es-x-leaks .es-leaks[data-groups='2']")
    assert page.get_attribute("#es-x-leaks .es-leaks", "data-points") == "5"
    page.click("#es-x-leaks-select")
    wait_selected(page, 5)

    page.click("#es-x-split-compare")
    page.wait_for_selector("#es-x-split-comparison .es-compare")
    train = collection.count(PointFilter(values={"split": ["train"]}, tags_none=["excluded"]))
    val = collection.count(PointFilter(values={"split": [ODD_SPLIT]}, tags_none=["excluded"]))
    summary = page.inner_text("#es-x-split-comparison .es-compare p")
    assert f"A: train {train:,} points" in summary and f"B: {ODD_SPLIT} {val:,} points" in summary
    assert page.locator("#es-x-split-comparison b b").count() == 0  # the name stayed text
    assert train + val == 120 and val == 30

    # The leak selection's counts: cat 000/001 labelled, dog 012/013 and bird 020 unlabelled.
    open_tab(page, "Explorer")
    page.wait_for_function("() => { const p = document.querySelector('#es-dist .es-labelled');"
                           " return p && p.dataset.labelled === '2'; }")
    assert labelled_counts(page, "#es-dist .es-labelled") == (2, 3, 30, 90)
    open_tab(page, "Metrics")
    page.wait_for_selector("#es-metrics-labelled .es-labelled")
    assert labelled_counts(page, "#es-metrics-labelled .es-labelled") == (2, 3, 30, 90)


@pytest.fixture
def detection_served(tmp_path: Path):
    """The detection UI dataset with the last four images' boxes removed and their labels cleared
    (unlabelled images), and a detector run over every image."""
    from detection_fixtures import build_detection_ui
    from evaluation.readers import import_detections
    from test_ui_browser_detection_run import write_run

    store, images, objects, _ = build_detection_ui(tmp_path)
    columns = images.columns(["path"])
    fresh = [pid for pid, path in zip(columns.ids, columns.values["path"]) if int(Path(path).stem) >= 8]
    objects.delete(objects.ids(PointFilter(values={"image_id": fresh})))
    images.set_payload(fresh, {"label": "", "labels": []})
    write_run(tmp_path / "detector.csv")
    import_detections(objects, images, tmp_path / "detector.csv", "detector")
    running = start_server(images, objects=objects)
    yield running, images, objects, fresh
    running.stop()
    store.close()


def test_label_next_from_a_detector_run(detection_served, browser) -> None:
    from analysis.selection.boxes import box_uncertainty
    from evaluation.runs import load_run
    from test_ui_browser_hostile import pick

    server, images, objects, fresh = detection_served
    run = load_run(objects, "detector")
    wanted = {pid: float(box_uncertainty(run.score[run.image_id == pid]).sum()) for pid in fresh}
    page = open_page(browser, server.url)
    open_tab(page, "Label next")
    page.wait_for_selector("#es-ln-run", state="visible")
    pick(page, "#es-ln-strategy", "uncertain-boxes")
    page.fill("#es-ln-budget input", "2")
    page.click("#es-ln-choose")
    page.wait_for_selector("#es-ln-status .es-ln-done")
    assert "chose 2 of 4 unlabelled points by uncertain-boxes (run detector)" in page.inner_text("#es-ln-status")
    wait_selected(page, 2)
    chosen = set(images.ids(PointFilter(tags_any=["batch-1"])))
    assert len(chosen) == 2 and min(wanted[p] for p in chosen) >= max(wanted[p] for p in set(fresh) - chosen)
    files = page.eval_on_selector_all("#es-ln-files a", "links => links.map(a => decodeURIComponent(a.href))")
    assert any("batch-1-label-studio.json" in f for f in files) and any("batch-1-yolo.zip" in f for f in files), files
