"""The likely-missing-label queue on the Objects explorer's Model performance tab, in headless
Chromium, over a real index run (real scenes, real mobilenet-v2): keys S (skip), A (accept: the
prediction becomes a labelled box in Qdrant, exported like any other) and U (undo: it is gone)."""
from __future__ import annotations

import json

import pytest

from evaluation.evaluate import evaluate_run
from evaluation.missing_labels import save_missing_labels, score_missing_labels
from evaluation.prediction_points import prediction_point, write_prediction_points
from evaluation.readers import import_detections
from indexer.pipeline import IndexOptions
from scoring.indexing import index_and_analyze
from store import open_store
from test_evaluation_missing_labels import missing_label_dataset
from test_ui_browser import CHROMIUM, open_page, open_tab
from ui.app import start_server

pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(not __import__("pathlib").Path(CHROMIUM).exists(), reason=f"needs {CHROMIUM}")


@pytest.fixture(scope="module")
def served(tmp_path_factory, mobilenet):
    base = tmp_path_factory.mktemp("ui-missing-labels")
    root, labels, predictions, kinds = missing_label_dataset(base, n_images=8)
    (base / "run.json").write_text(json.dumps(predictions))
    store = open_store(path=str(base / "qdrant"))
    index_and_analyze(root, store, IndexOptions("m", "mobilenet-v2", labels_file=labels, batch_size=8, progress=False,
                                            analyze=False), mobilenet)
    objects, images = store.open("m-objects"), store.open("m")
    import_detections(objects, images, base / "run.json", "det")
    evaluation = evaluate_run(objects, images)
    ranking = score_missing_labels(objects, images, evaluation, mobilenet)
    save_missing_labels(objects, "det", ranking)
    write_prediction_points(objects, images, evaluation, mobilenet, ranking)   # the false positives on the map
    running = start_server(images, objects=objects)
    yield running, objects, predictions
    running.stop()
    store.close()


def added_boxes(objects) -> list[dict]:
    return [r.payload for batch in objects.scroll(None) for r in batch if r.payload.get("source") == "added"]


def card_key(page) -> str:
    return page.get_attribute("#es-ml-card .es-ml-card", "data-key")


def test_skip_accept_and_undo_by_keyboard(served, browser) -> None:
    server, objects, predictions = served
    page = open_page(browser, server.url + "/objects/")
    open_tab(page, "Model performance")
    page.wait_for_selector("#es-ml-card .es-ml-card")
    first = card_key(page)
    page.locator("body").click(position={"x": 5, "y": 5})  # focus off any text box
    page.keyboard.press("s")
    page.wait_for_function("k => { const c = document.querySelector('#es-ml-card .es-ml-card');"
                           " return c && c.dataset.key !== k; }", arg=first)
    second = card_key(page)
    drawn = prediction_point("det", int(second))
    assert objects.retrieve([drawn], ["source"])[0].payload["source"] == "prediction"
    page.keyboard.press("a")
    page.wait_for_function("() => (document.querySelector('#es-ml-status') || {}).innerText?.includes('Added')")
    added = added_boxes(objects)
    assert len(added) == 1
    assert added[0]["bbox"] == [float(v) for v in predictions[int(second)]["bbox"]]
    assert added[0]["review"]["missing_label"]["prediction"] == int(second)
    assert card_key(page) not in (second,)
    assert objects.retrieve([drawn], ["source"]) == []   # a labelled box now, no false positive on the map
    page.keyboard.press("u")
    page.wait_for_function("() => (document.querySelector('#es-ml-status') || {}).innerText?.includes('Undone')")
    assert added_boxes(objects) == []
    back = objects.retrieve([drawn], ["source", "missing_label_score"])[0].payload   # the false positive again
    assert back["source"] == "prediction" and back["missing_label_score"] > 0
    assert card_key(page) == second  # its place in the ranking is back, first of what is not skipped
