"""Shared views in headless Chromium: set a colouring, a filter and a zoom, lasso a selection,
"Copy link", and open the link in a fresh browser context (no shared storage): the same
colouring, filters, zoom and selection, and the grid shows the selection. A selection too big
for a URL goes through a saved subset; a deleted subset or an unknown label gives a warning
and the rest of the view still applies."""
from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from conftest import build_ui_collection
from store.schema import TAGS
from subsets.saved import delete_subset, list_subsets, subset_ids
from test_ui_browser import (
    CHROMIUM, TIMEOUT, drag, grid_ids, inside_box, inside_polygon, min_edge_distance, open_page, points, to_client,
    wait_selected,
)
from ui.app import start_server
from ui.map.share_link import SHARED_PREFIX
from ui.map.share_link_query import decode_ids

pytest.importorskip("playwright.sync_api")  # the browser fixture (tests/conftest.py) drives it
pytestmark = pytest.mark.skipif(not __import__("pathlib").Path(CHROMIUM).exists(), reason=f"needs {CHROMIUM}")

TAG = "snowy"
RANGE_TOLERANCE = 1e-4  # relative: the link writes 7 significant digits


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    store, collection, _ = build_ui_collection(tmp_path_factory.mktemp("ui-share"))
    # Half the cats and all the dogs tagged, so the tag view has two colours among the shown labels.
    tagged = [pid for pid, (x, y, label) in points(collection).items()
              if label == "dog" or (label == "cat" and y < 0.9)]
    collection.edit_list(TAGS, tagged, lambda old: [*old, TAG])
    yield collection
    store.close()


@pytest.fixture(scope="module")
def server(dataset):
    running = start_server(dataset)
    yield running
    running.stop()


def fresh_page(browser, url: str):
    """A page in a new browser context: nothing kept from another page (as for a colleague)."""
    context = browser.new_context(viewport={"width": 1500, "height": 1000})
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    return open_page(browser, url, context)


def wait_seq_after(page, seq: str) -> None:
    page.wait_for_function("s => document.querySelector('.es-map').dataset.seq !== s", arg=seq)


def seq(page) -> str:
    return page.evaluate("() => document.querySelector('.es-map').dataset.seq")


def ranges(page) -> list[float]:
    return page.evaluate("() => { const fl = window.embedscapeMap.gd._fullLayout;"
                         " return [...fl.xaxis.range, ...fl.yaxis.range]; }")


def legend(page) -> list[str]:
    return sorted(page.evaluate("() => window.embedscapeMap.gd.data.filter(t => t.x.length).map(t => t.name)"))


def filter_labels(page, names: list[str]) -> None:
    box = page.locator("#es-filter-labels input")
    for name in names:
        before = seq(page)
        box.fill(name)
        box.press("Enter")
        wait_seq_after(page, before)


def copy_link(page) -> str:
    """Click "Copy link"; the link, once the page has it and has put it on the clipboard."""
    before = page.get_attribute("#es-share .es-share", "data-links")
    page.click("#es-share .es-share-button")
    page.wait_for_function("b => document.querySelector('#es-share .es-share').dataset.links !== b", arg=before)
    link = page.get_attribute("#es-share .es-share", "data-link")
    assert page.get_attribute("#es-share .es-share", "data-copied") == link
    return link


def chosen_labels(page) -> list[str]:
    return page.eval_on_selector_all("#es-filter-labels .token", "ts => ts.map(t => t.innerText.trim())")


def toast_text(page) -> str:
    page.wait_for_selector(".toast-body", timeout=TIMEOUT)
    return " ".join(page.eval_on_selector_all(".toast-body", "ts => ts.map(t => t.innerText)"))


def test_a_copied_link_reopens_colour_filters_zoom_and_selection(server, browser, dataset) -> None:
    page = fresh_page(browser, server.url)
    before = seq(page)
    page.get_by_role("radio", name="Tag").check()
    wait_seq_after(page, before)
    filter_labels(page, ["cat", "dog"])
    assert "80 points passing" in page.inner_text("#es-count")

    # Zoom in with the mouse wheel over the cats (the map's scroll zoom), as a user would.
    whole = ranges(page)
    page.mouse.move(*to_client(page, 0.875, 0.375))
    for _ in range(2):
        page.mouse.wheel(0, -200)
        page.wait_for_timeout(150)
    page.wait_for_function("() => window.embedscapeMap.gd._fullLayout.xaxis.autorange === false")
    zoomed = ranges(page)
    assert zoomed[1] - zoomed[0] < 0.9 * (whole[1] - whole[0])

    # 13 cats in two rows of the grid (the filter left the map 1.1 high), none near an edge.
    polygon = [(-0.125, 0.125), (1.625, 0.125), (1.375, 0.625), (-0.125, 0.625)]
    assert min_edge_distance(dataset, polygon) > 0.05
    assert all(zoomed[0] < x < zoomed[1] and zoomed[2] < y < zoomed[3] for x, y in polygon)
    expected = inside_polygon(dataset, polygon)
    assert len(expected) == 13
    drag(page, polygon + polygon[:1], lasso=True)
    wait_selected(page, len(expected))
    shown_legend = legend(page)
    assert f"{len(expected)} of 80 selected (lasso)" in page.inner_text("#es-count")

    link = copy_link(page)
    assert page.evaluate("() => navigator.clipboard.readText()") == link
    assert page.input_value("#es-share .es-share-url") == link
    query = parse_qs(urlsplit(link).query)
    assert query["colour"] == ["tag"] and query["label"] == ["cat", "dog"]
    assert set(decode_ids(query["ids"][0])) == expected
    assert link.startswith(server.url + "/?")
    page.context.close()

    # A colleague opens it: same colouring, filters, zoom, selection and grid.
    other = fresh_page(browser, link)
    wait_selected(other, len(expected))
    other.wait_for_function("() => document.querySelector('#es-share .es-share').dataset.viewRestored")
    assert other.get_by_role("radio", name="Tag").is_checked()
    assert chosen_labels(other) == ["cat", "dog"]
    assert legend(other) == shown_legend
    assert ranges(other) == pytest.approx(zoomed, rel=RANGE_TOLERANCE, abs=1e-6)
    assert f"{len(expected)} of 80 selected (link)" in other.inner_text("#es-count")
    assert set(grid_ids(other)) == expected
    assert other.evaluate("() => document.querySelector('.es-map').dataset.selected") == str(len(expected))

    # The restored zoom is the user's zoom: a later recolour keeps it.
    before = seq(other)
    other.get_by_role("radio", name="Label").check()
    wait_seq_after(other, before)
    assert ranges(other) == pytest.approx(zoomed, rel=RANGE_TOLERANCE, abs=1e-6)
    other.context.close()


def test_a_big_selection_goes_through_a_subset_and_a_deleted_one_is_reported(server, browser, dataset) -> None:
    page = fresh_page(browser, server.url)
    everything = inside_box(dataset, -1.0, 13.0, -1.0, 11.0)
    assert len(everything) == 120  # 120 ids would take 2,560 characters
    drag(page, [(-0.3, 9.2), (12.2, -0.3)])
    wait_selected(page, 120)
    link = copy_link(page)
    query = parse_qs(urlsplit(link).query)
    assert "ids" not in query
    name = query["subset"][0]
    assert name.startswith(SHARED_PREFIX) and name in list_subsets(dataset)
    assert set(subset_ids(dataset, name)) == everything
    assert f"saved as subset '{name}'" in page.inner_text("#es-share .es-share-note")
    assert len(urlsplit(link).query) < 200

    # Copying the same selection again names the same subset.
    assert copy_link(page) == link
    assert [n for n in list_subsets(dataset) if n.startswith(SHARED_PREFIX)] == [name]
    page.context.close()

    other = fresh_page(browser, link)
    wait_selected(other, 120)
    assert f"subset: {name}" in other.inner_text("#es-count")
    assert len(grid_ids(other)) == 40  # the grid's first page of the 120
    other.context.close()

    # Once the subset is deleted, the link says so and opens the rest of its view.
    delete_subset(dataset, name)
    stale = fresh_page(browser, link + "&colour=data")
    assert f"no subset '{name}'" in toast_text(stale)
    assert stale.get_by_role("radio", name="Data").is_checked()
    assert "showing all 120" in stale.inner_text("#es-count")
    stale.context.close()


def test_unknown_and_bad_parameters_warn_and_the_rest_applies(server, browser, dataset) -> None:
    page = fresh_page(browser, server.url + "/?label=bird&label=unicorn&colour=data&view=5,1,0,1&field=nosuch")
    text = toast_text(page)
    assert "no label 'unicorn'" in text and "view='5,1,0,1'" in text and "no numeric field 'nosuch'" in text
    page.wait_for_function("() => document.querySelector('#es-count').innerText.includes('40 points passing')")
    assert chosen_labels(page) == ["bird"]
    assert page.get_by_role("radio", name="Data").is_checked()
    # No zoom: the first view of the data, as a page without parameters shows it.
    plain = fresh_page(browser, server.url + "/")
    first_view = "() => { const l = window.embedscapeMap.gd._fullLayout; return [...l.xaxis.range, ...l.yaxis.range]; }"
    assert page.evaluate(first_view) == pytest.approx(plain.evaluate(first_view))
    plain.context.close()
    assert {points(dataset)[i][2] for i in grid_ids(page)} == {"bird"}
    page.context.close()
