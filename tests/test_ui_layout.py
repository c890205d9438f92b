"""The explorer's frame in headless Chromium at common window sizes: the map takes most of the
window, every tab is a visible button (no overflow menu), the legend keeps clear of the
modebar, and the handle between the map and the panels resizes the map (remembered by the
browser). Both explorers of a detection dataset are checked.
"""
from __future__ import annotations

import pytest

from detection_fixtures import build_detection_ui
from test_ui_browser import (
    CHROMIUM, TIMEOUT, drag, grid_ids, inside_box, open_tab, to_client, wait_selected,
)
from conftest import build_ui_collection
from ui.app import DEFAULT_PAGES, OBJECT_PAGES, start_server
from ui.page_layout import DEFAULT_SHARE, MAX_SHARE, MIN_SHARE

pytest.importorskip("playwright.sync_api")  # the browser fixture (tests/conftest.py) drives it
pytestmark = pytest.mark.skipif(not __import__("pathlib").Path(CHROMIUM).exists(), reason=f"needs {CHROMIUM}")

WINDOWS = [(1280, 800), (1920, 1080)]
MAP_WIDTH_SHARE = 0.55  # of the window's width, at the default split
MAP_HEIGHT_SHARE = 0.70  # of the window's height, all of it on screen without scrolling

BOX_JS = """s => { const e = document.querySelector(s); if (!e) return null;
  const b = e.getBoundingClientRect(); return {x: b.x, y: b.y, w: b.width, h: b.height}; }"""


@pytest.fixture(scope="module")
def ui_server(tmp_path_factory):
    store, collection, _ = build_ui_collection(tmp_path_factory.mktemp("ui-layout"))
    running = start_server(collection)
    yield running, collection
    running.stop()
    store.close()


@pytest.fixture(scope="module")
def detection_server(tmp_path_factory):
    store, images, objects, _ = build_detection_ui(tmp_path_factory.mktemp("ui-layout-det"))
    running = start_server(images, objects=objects)
    yield running
    running.stop()
    store.close()


def open_at(browser, url: str, size: tuple[int, int], context=None):
    context = context or browser.new_context(viewport={"width": size[0], "height": size[1]})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT)
    page.goto(url)
    wait_drawn(page)
    return page


def wait_drawn(page) -> None:
    page.wait_for_function("() => { const m = document.querySelector('.es-map');"
                           " return m && m.dataset.seq !== '-1'; }")
    page.wait_for_selector("#es-grid .es-card")
    wait_plot_fits(page)


def wait_plot_fits(page) -> None:
    """Plotly's drawing has the size of its div (it follows every resize of the div)."""
    page.wait_for_function("() => { const gd = window.embedscapeMap.gd, fl = gd._fullLayout;"
                           " const b = gd.getBoundingClientRect();"
                           " return fl && Math.abs(fl.width - b.width) < 2 && Math.abs(fl.height - b.height) < 2; }")


def box(page, selector: str) -> dict[str, float]:
    found = page.evaluate(BOX_JS, selector)
    assert found is not None, selector
    return found


def overlap(a: dict[str, float], b: dict[str, float]) -> bool:
    return a["x"] < b["x"] + b["w"] and b["x"] < a["x"] + a["w"] and a["y"] < b["y"] + b["h"] and b["y"] < a["y"] + a["h"]


def check_frame(page, size: tuple[int, int], titles: list[str]) -> None:
    """The map's share of the window, the legend beside the modebar, every tab a clickable button."""
    width, height = size
    chart = box(page, "#embedscape-map .gd")
    assert chart["w"] >= MAP_WIDTH_SHARE * width, (chart, size)
    assert chart["h"] >= MAP_HEIGHT_SHARE * height and chart["y"] + chart["h"] <= height, (chart, size)

    legend, modebar = box(page, "#embedscape-map .legend"), box(page, "#embedscape-map .modebar")
    assert legend["w"] > 0 and modebar["w"] > 0
    assert not overlap(legend, modebar), (legend, modebar)

    assert page.locator(".overflow-menu").count() == 0 or not page.locator(".overflow-menu").first.is_visible()
    for title in titles:
        tab = page.get_by_role("tab", name=title, exact=True)
        assert tab.is_visible(), title
        b = tab.bounding_box()
        assert b is not None and b["x"] >= 0 and b["x"] + b["width"] <= width and b["y"] + b["height"] <= height, title
        tab.click()
        page.wait_for_function("t => [...document.querySelectorAll('[role=tab]')].some("
                               "b => b.textContent.trim() === t && b.getAttribute('aria-selected') === 'true')",
                               arg=title)
    open_tab(page, "Explorer")


@pytest.mark.parametrize("size", WINDOWS, ids=lambda s: f"{s[0]}x{s[1]}")
def test_the_map_takes_most_of_the_window_beside_every_tab(ui_server, browser, size) -> None:
    server, collection = ui_server
    page = open_at(browser, server.url, size)
    check_frame(page, size, ["Explorer", *(title for title, _ in DEFAULT_PAGES)])

    # A box selection on the label view: the grid follows it.
    expected = inside_box(collection, 9.9, 11.1, -0.1, 1.1)
    drag(page, [(9.9, 1.1), (11.1, -0.1)])
    wait_selected(page, len(expected))
    assert set(grid_ids(page)) <= expected
    page.mouse.move(*to_client(page, 5.0, 4.0), steps=3)  # empty map space: the hover card goes
    page.wait_for_selector(".es-hover", state="hidden")
    page.mouse.move(2, 2)
    page.wait_for_timeout(300)
    page.context.close()


@pytest.mark.parametrize("size", WINDOWS, ids=lambda s: f"{s[0]}x{s[1]}")
def test_both_explorers_of_a_detection_dataset_keep_the_frame(detection_server, browser, size) -> None:
    page = open_at(browser, detection_server.url, size)
    check_frame(page, size, ["Explorer", *(title for title, _ in DEFAULT_PAGES)])
    page.goto(detection_server.url + "/objects/")
    wait_drawn(page)
    check_frame(page, size, ["Explorer", *(title for title, _ in [*DEFAULT_PAGES, *OBJECT_PAGES])])
    page.context.close()


def test_dragging_the_handle_resizes_the_map_and_is_remembered(ui_server, browser) -> None:
    server, collection = ui_server
    size = (1500, 1000)
    context = browser.new_context(viewport={"width": size[0], "height": size[1]})
    page = open_at(browser, server.url, size, context)
    handle = page.locator("#es-split")
    assert float(handle.get_attribute("data-share")) == DEFAULT_SHARE
    before = box(page, "#embedscape-map .gd")["w"]
    panels_before = box(page, "#es-panels")["w"]

    grip = handle.bounding_box()
    x, y = grip["x"] + grip["width"] / 2, grip["y"] + 300
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x - 100, y, steps=5)
    page.mouse.move(x - 200, y, steps=5)
    page.mouse.up()
    wait_plot_fits(page)
    after = box(page, "#embedscape-map .gd")["w"]
    assert before - 220 < after < before - 180, (before, after)
    assert box(page, "#es-panels")["w"] > panels_before + 150
    share = float(handle.get_attribute("data-share"))
    assert MIN_SHARE <= share < DEFAULT_SHARE - 10

    # Plotly redrew at the new size: a drawn box still selects exactly the points inside it.
    expected = inside_box(collection, -0.1, 1.1, -0.1, 1.1)
    drag(page, [(-0.1, 1.1), (1.1, -0.1)])
    wait_selected(page, len(expected))
    assert set(grid_ids(page)) == expected

    # A new page of the same browser starts with the map at the width the user left it.
    again = open_at(browser, server.url, size, context)
    assert float(again.locator("#es-split").get_attribute("data-share")) == pytest.approx(share, abs=0.1)
    assert box(again, "#embedscape-map .gd")["w"] == pytest.approx(after, abs=2)

    # Keyboard: arrows move the split by 2%, Home goes back to the default; the share stays in bounds.
    again.locator("#es-split").focus()
    again.keyboard.press("ArrowRight")
    assert float(again.locator("#es-split").get_attribute("data-share")) == pytest.approx(share + 2, abs=0.1)
    again.keyboard.press("Home")
    assert float(again.locator("#es-split").get_attribute("data-share")) == DEFAULT_SHARE
    wait_plot_fits(again)
    assert box(again, "#embedscape-map .gd")["w"] == pytest.approx(before, abs=2)
    for _ in range(20):
        again.keyboard.press("ArrowRight")
    assert float(again.locator("#es-split").get_attribute("data-share")) == MAX_SHARE
    assert box(again, "#es-panels")["w"] >= 340 - 1  # the panels keep their minimum width
    context.close()


@pytest.mark.parametrize("ratio", [1, 1.5, 2])
def test_the_webgl_map_draws_at_the_screens_pixel_ratio(ui_server, browser, ratio) -> None:
    """Plotly's own default draws WebGL at twice the CSS size on every screen, four times the
    pixels of a 1x screen (ui/map/component.py glConfig); the canvas follows the screen instead,
    and selections still land on the right points."""
    server, collection = ui_server
    context = browser.new_context(viewport={"width": 1280, "height": 800}, device_scale_factor=ratio)
    page = open_at(browser, server.url, (1280, 800), context)
    canvas = page.evaluate("() => { const c = document.querySelector('#embedscape-map .gl-canvas-context');"
                           " const b = c.getBoundingClientRect();"
                           " return {w: c.width, h: c.height, cssW: b.width, cssH: b.height}; }")
    assert canvas["cssW"] > 500
    assert canvas["w"] == pytest.approx(canvas["cssW"] * ratio, abs=ratio), canvas
    assert canvas["h"] == pytest.approx(canvas["cssH"] * ratio, abs=ratio), canvas
    expected = inside_box(collection, -0.1, 1.1, -0.1, 1.1)
    drag(page, [(-0.1, 1.1), (1.1, -0.1)])
    wait_selected(page, len(expected))
    assert set(grid_ids(page)) == expected
    context.close()
