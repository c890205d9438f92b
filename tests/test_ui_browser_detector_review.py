"""The detector's review queues in the Objects explorer's Label quality tab, in headless Chromium,
over a real index run (real scenes, real mobilenet-v2, the embedded Qdrant engine) with a
detector run: the badly-placed queue's A moves the box onto the prediction; the
likely-missing-label queue worked through by keyboard (A accepts two, U undoes the second),
after which `export --format coco` (the server stopped: the engine allows one opener) holds the
accepted box and not the undone one. The tests run in this order."""
from __future__ import annotations

import json

import pytest

import app
from detection_fixtures import index_detector_run
from test_ui_browser import CHROMIUM, open_page, open_tab
from ui.app import start_server

pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(not __import__("pathlib").Path(CHROMIUM).exists(), reason=f"needs {CHROMIUM}")


@pytest.fixture(scope="module")
def served(tmp_path_factory, mobilenet):
    base = tmp_path_factory.mktemp("ui-detector-review")
    store, predictions, _ = index_detector_run(base, mobilenet, 6, shift_first=True)
    objects = store.open("m-objects")
    running = start_server(store.open("m"), objects=objects)
    held = {"base": base, "store": store}
    yield running, objects, predictions, held
    if held["store"] is not None:   # the last test stops the server itself
        running.stop()
        store.close()


def card(page) -> dict:
    return page.evaluate("() => { const c = document.querySelector('#es-rq-card .es-rq-card');"
                         " return c ? {...c.dataset} : {}; }")


def wait_card(page, issue: str, other_than: str = "") -> str:
    page.wait_for_function("([issue, old]) => { const c = document.querySelector('#es-rq-card .es-rq-card');"
                           " return c && c.dataset.issue === issue && c.dataset.key !== old; }", arg=[issue, other_than])
    return card(page)["key"]


def wait_status(page, text: str) -> None:
    page.wait_for_function("t => (document.querySelector('#es-rq-status') || {}).innerText?.includes(t)", arg=text)


def open_queue(browser, server, choice: str = "") -> object:
    page = open_page(browser, server.url + "/objects/")
    open_tab(page, "Label quality")
    if choice:
        page.locator("#es-rq-issue input").click()
        page.get_by_role("option", name=choice).click()
    return page


def coco_boxes(base, tmp_path) -> set[tuple[str, tuple[float, ...]]]:
    out = tmp_path / "coco.json"
    assert app.main(["--qdrant-path", str(base / "qdrant"), "export", "--collection", "m-objects", "--format", "coco",
                     "--out", str(out)]) == 0
    exported = json.loads(out.read_text())
    files = {image["id"]: image["file_name"] for image in exported["images"]}
    return {(files[a["image_id"]], tuple(a["bbox"])) for a in exported["annotations"]}


def predicted_box(prediction: dict) -> tuple[str, tuple[float, ...]]:
    return f"{prediction['image_id'] - 1:02d}.png", tuple(float(v) for v in prediction["bbox"])


def test_badly_placed_accept_moves_the_box(served, browser) -> None:
    server, objects, predictions, _ = served
    page = open_queue(browser, server, "Badly placed boxes (detector)")
    key = wait_card(page, "badly_placed")
    before = objects.retrieve([key], ["bbox"])[0].payload["bbox"]
    page.locator("body").click(position={"x": 5, "y": 5})
    page.keyboard.press("a")
    wait_status(page, "Moved")
    payload = objects.retrieve([key], ["bbox", "original_bbox", "review"])[0].payload
    assert payload["bbox"] == [float(v) for v in predictions[0]["bbox"]]
    assert payload["original_bbox"] == before and payload["review"]["badly_placed"]["decision"] == "accepted"
    page.context.close()


def test_missing_labels_by_keyboard_then_coco_export(served, browser, tmp_path) -> None:
    server, objects, predictions, held = served
    page = open_queue(browser, server)
    first = wait_card(page, "missing_label")
    assert page.locator("#es-rq-card img.es-rq-context").get_attribute("src").startswith("/boxes/")
    assert page.locator("#es-rq-card .es-rq-evidence figure").count() == 10   # its labelled neighbours
    page.locator("body").click(position={"x": 5, "y": 5})  # focus off any text box
    page.keyboard.press("a")
    wait_status(page, "Added")
    second = wait_card(page, "missing_label", first)
    page.keyboard.press("a")
    third = wait_card(page, "missing_label", second)
    assert third not in (first, second)
    page.keyboard.press("u")
    wait_status(page, "Undone")
    assert wait_card(page, "missing_label", third) == second   # the undone card is back
    added = [r.payload for batch in objects.scroll(None) for r in batch if r.payload.get("source") == "added"]
    assert [a["review"]["missing_label"]["prediction"] for a in added] == [int(first)]
    assert "1 of" in page.locator("#es-rq-progress").inner_text()
    page.context.close()
    server.stop()
    held.pop("store").close()
    held["store"] = None
    boxes = coco_boxes(held["base"], tmp_path)
    assert predicted_box(predictions[int(first)]) in boxes
    assert predicted_box(predictions[int(second)]) not in boxes
