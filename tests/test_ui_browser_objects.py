"""A detection dataset in headless Chromium: the Images | Objects switch, a box selection on the
object map ("N of M objects selected", crops in the grid), a card's full image with its boxes
drawn, and "Show their images" / "Show their objects" between the two explorers.

The boxes sit on known grids (tests/detection_fixtures.py `build_detection_ui`), so what a drawn
box selects is computed from the store's own x/y; what the pages show is compared with the
detection module's own answers (crop_thumbnail, draw_boxes, images_of_objects,
objects_of_images).
"""
from __future__ import annotations

import io

import httpx
import numpy as np
import pytest
from PIL import Image

from detection.boxes import boxes_of_image, images_of_objects, objects_of_images
from detection.crops import BOX_COLOUR, HIGHLIGHT_COLOUR, crop_thumbnail, draw_boxes
from detection_fixtures import UI_TWICE, build_detection_ui
from indexer.objects import object_point_id
from store.schema import BBOX, IMAGE_ID, PATH
from test_ui_browser import CHROMIUM, drag, grid_ids, inside_box, open_page, to_client, wait_selected
from ui.app import start_server
from ui.images import BOXES_MIN_SIDE, BOXES_SIDE, THUMB_SIZE

pytest.importorskip("playwright.sync_api")  # the browser fixture (tests/conftest.py) drives it
pytestmark = pytest.mark.skipif(not __import__("pathlib").Path(CHROMIUM).exists(), reason=f"needs {CHROMIUM}")


@pytest.fixture(scope="module")
def detection(tmp_path_factory):
    store, images, objects, root = build_detection_ui(tmp_path_factory.mktemp("ui-objects"))
    yield images, objects, root
    store.close()


@pytest.fixture(scope="module")
def server(detection):
    images, objects, _ = detection
    running = start_server(images, objects=objects)
    yield running
    running.stop()


def wait_map(page) -> None:
    """A newly opened explorer page: its map drawn and its grid filled."""
    page.wait_for_function("() => { const m = document.querySelector('.es-map');"
                           " return m && m.dataset.seq !== '-1'; }")
    page.wait_for_selector("#es-grid .es-card")


def served_picture(server, src: str) -> np.ndarray:
    response = httpx.get(server.url + src, timeout=20)
    assert response.status_code == 200, (src, response.status_code)
    return np.asarray(Image.open(io.BytesIO(response.content)).convert("RGB"))


def images_loaded(page, selector: str) -> None:
    page.wait_for_function(
        "s => { const imgs = [...document.querySelectorAll(s)];"
        " return imgs.length && imgs.every(i => i.complete && i.naturalWidth > 0); }", arg=selector)


def calm(page) -> None:
    """The mouse off the map's points (no hover card) and off the page, for a screenshot."""
    page.mouse.move(*to_client(page, 5.0, 4.0), steps=3)  # empty map space: the hover card goes
    page.wait_for_selector(".es-hover", state="hidden")
    page.mouse.move(5, 5)
    page.wait_for_timeout(300)


def test_objects_switch_selection_crops_image_view_and_handover(server, browser, detection) -> None:
    images, objects, root = detection
    page = open_page(browser, server.url)
    assert "12 images" in page.inner_text("body")
    assert page.inner_text("#es-switch .es-on") == "Images"

    # The switch opens the object explorer: one point per box, coloured by class.
    page.click("#es-switch-objects")
    page.wait_for_url("**/objects/")
    wait_map(page)
    assert page.inner_text("#es-switch .es-on") == "Objects"
    total = objects.count()
    assert f"showing all {total} objects" in page.inner_text("#es-count")
    legend = page.evaluate("() => window.embedscapeMap.gd.data.map(t => t.name.split(' ')[0])")
    assert sorted(legend) == ["bird", "cat", "dog"]

    # A box around part of the dog boxes' grid (x 10..12.5, y 0..1, 0.5 apart), the box that
    # labels scenes/00.png's cat a second time (a dog) among them.
    expected = inside_box(objects, 9.9, 11.35, -0.1, 0.85)
    twice = object_point_id(*UI_TWICE)
    assert len(expected) == 6 and twice in expected
    drag(page, [(9.9, 0.85), (11.35, -0.1)])
    wait_selected(page, len(expected))
    assert f"6 of {total} objects selected" in page.inner_text("#es-count")
    assert set(grid_ids(page)) == expected

    # The grid shows each box's crop, exactly what detection.crop_thumbnail cuts.
    images_loaded(page, "#es-grid .es-card img")
    cards = page.eval_on_selector_all("#es-grid .es-card", "cs => cs.map(c => [c.dataset.id, "
                                      "c.querySelector('img').getAttribute('src'), c.querySelector('img').naturalWidth])")
    records = {r.id: r.payload for r in objects.retrieve([c[0] for c in cards], [PATH, BBOX])}
    for point, src, width in cards:
        assert src == f"/thumb/{point}"
        crop = np.asarray(crop_thumbnail(root / records[point][PATH], tuple(records[point][BBOX]), THUMB_SIZE, 0.10))
        assert np.array_equal(served_picture(server, src), crop), point
        assert width == crop.shape[1]
    calm(page)

    # A click on a card: the whole image with all its boxes drawn and named, this one highlighted.
    chosen = twice
    page.click(f'#es-grid .es-card[data-id="{chosen}"]')
    page.wait_for_selector(f'#es-detail .es-detail[data-id="{chosen}"]')
    images_loaded(page, "#es-detail .es-full")
    src = page.get_attribute("#es-detail .es-full", "src")
    assert src == f"/boxes/{chosen}"
    image_id = objects.retrieve([chosen], [IMAGE_ID])[0].payload[IMAGE_ID]
    boxes = boxes_of_image(objects, image_id)
    path = root / records[chosen][PATH]
    shown = served_picture(server, src)
    assert np.array_equal(shown, np.asarray(draw_boxes(path, boxes, chosen, BOXES_SIDE, BOXES_MIN_SIDE)))
    plain = np.asarray(Image.open(path).convert("RGB"))
    assert shown.shape == plain.shape and (shown != plain).any(axis=2).mean() > 0.01
    for box in boxes:  # each box's left edge, below its class name, in its colour
        x, y, w, h = (int(v) for v in box.bbox)
        colour = HIGHLIGHT_COLOUR if box.point_id == chosen else BOX_COLOUR
        assert (shown[y + 2:y + h - 2, x] == colour).all(axis=1).mean() > 0.9
    listed = page.eval_on_selector_all("#es-detail .es-box", "bs => bs.map(b => [b.dataset.id, b.textContent,"
                                       " b.classList.contains('es-box-this')])")
    assert listed == [[b.point_id, b.label, b.point_id == chosen] for b in boxes]
    calm(page)

    # "Show their images": the Images explorer selects exactly the images holding these boxes.
    holding = images_of_objects(objects, sorted(expected))
    page.click("#es-handover")
    page.wait_for_url("**/?selection=*")
    wait_map(page)
    wait_selected(page, len(holding))
    assert set(grid_ids(page)) == set(holding)
    assert "images of 6 objects" in page.inner_text("#es-count")
    assert page.inner_text("#es-switch .es-on") == "Images"
    # An image's card opens it with all its boxes, none highlighted.
    page.click(f'#es-grid .es-card[data-id="{holding[0]}"]')
    page.wait_for_selector(f'#es-detail .es-detail[data-id="{holding[0]}"]')
    assert page.get_attribute("#es-detail .es-full", "src") == f"/boxes/{holding[0]}"
    listed = page.eval_on_selector_all("#es-detail .es-box", "bs => bs.map(b => b.textContent)")
    assert listed == [b.label for b in boxes_of_image(objects, holding[0])]
    assert not page.query_selector("#es-detail .es-box-this")

    # ...and back: "Show their objects" selects every box of those images.
    theirs = objects_of_images(objects, holding)
    assert set(theirs) >= expected and len(theirs) > len(expected)
    page.click("#es-handover")
    page.wait_for_url("**/objects/?selection=*")
    wait_map(page)
    wait_selected(page, len(theirs))
    assert set(grid_ids(page)) == set(theirs)
    assert f"{len(theirs)} of {total} objects selected (objects of {len(holding)} images)" in page.inner_text("#es-count")
    page.context.close()


def test_handover_without_a_selection_says_what_to_do(server, browser) -> None:
    page = open_page(browser, server.url + "/objects")  # the redirect adds the slash
    page.click("#es-handover")
    page.wait_for_function("() => document.querySelector('#es-handover-link').innerText.includes('Select some')")
    assert page.url.endswith("/objects/")
    page.context.close()


def test_duplicate_boxes_tab_selects_a_group_on_the_object_map(server, browser, detection) -> None:
    from test_ui_browser import open_tab

    images, objects, _ = detection
    page = open_page(browser, server.url + "/objects/")
    open_tab(page, "Duplicate boxes")
    page.wait_for_selector("#es-db-groups .es-db-group")
    pair = set(page.get_attribute("#es-db-groups .es-db-group", "data-ids").split())
    assert pair == {object_point_id(UI_TWICE[0], 1), object_point_id(*UI_TWICE)}
    images_loaded(page, "#es-db-groups img")
    page.locator("#es-db-choice input").click()
    page.get_by_role("option").first.click()
    page.wait_for_function("() => document.querySelector('.es-map').dataset.selected === '2'")
    page.wait_for_function("() => window.embedscapeMap.selectedRows().length === 2")
    selected = page.evaluate("() => window.embedscapeMap.selectedRows()")
    table = server.app.state.explorers["/objects"].embedscape_context.table
    assert set(table.ids_for_rows(selected)) == pair
    open_tab(page, "Explorer")
    wait_selected(page, 2)
    assert set(grid_ids(page)) == pair
    page.context.close()
