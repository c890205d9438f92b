"""The explorer in headless Chromium, driven with real mouse drags (Playwright).

Points sit on known grids (tests/conftest.py `build_ui_collection`), so what a drawn box
or lasso must select is computed from the store's own x/y and compared with what the
grid, the distribution and the count line show.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from store import PointFilter, open_store
from conftest import UI_DIM, UI_LABELS, build_ui_collection
from ui.app import start_server

playwright_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
TIMEOUT = 20_000

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"needs {CHROMIUM}")


def fake_text_encoder(text: str) -> np.ndarray:
    """Stands in for CLIP's text tower: a label's name points along that label's axis."""
    vector = np.zeros(UI_DIM, np.float32)
    vector[UI_LABELS.index(text)] = 1.0
    return vector


# --- fixtures ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    store, collection, root = build_ui_collection(tmp_path_factory.mktemp("ui-browser"))
    yield collection
    store.close()


@pytest.fixture(scope="module")
def server(dataset):
    running = start_server(dataset, text_encoder=fake_text_encoder)
    yield running
    running.stop()


# --- helpers -------------------------------------------------------------------------------
@contextmanager
def explorer_page(collection) -> Iterator[Any]:
    """A server for `collection` and a Chromium page open on it; both closed afterwards."""
    running = start_server(collection)
    try:
        with playwright_api.sync_playwright() as p:
            chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
            try:
                yield open_page(chromium, running.url)
            finally:
                chromium.close()
    finally:
        running.stop()


def open_page(browser, url: str, context=None):
    """A page of `context` (default: a new 1500x1000 one) at `url`, once the map and grid are drawn."""
    page = (context or browser.new_context(viewport={"width": 1500, "height": 1000})).new_page()
    page.set_default_timeout(TIMEOUT)
    page.goto(url)
    page.wait_for_function("() => { const m = document.querySelector('.es-map');"
                           " return m && m.dataset.seq !== '-1'; }")
    page.wait_for_selector("#es-grid .es-card")
    return page


def to_client(page, x: float, y: float) -> tuple[float, float]:
    point = page.evaluate("([x, y]) => window.embedscapeMap.toClient(x, y)", [x, y])
    return point["x"], point["y"]


def drag(page, points: list[tuple[float, float]], lasso: bool = False) -> None:
    """Press at the first data point, move through the rest, release: a real mouse drag."""
    page.click('[data-title="Lasso Select"]' if lasso else '[data-title="Box Select"]')
    pixels = [to_client(page, x, y) for x, y in points]
    page.mouse.move(*pixels[0])
    page.mouse.down()
    for px in pixels[1:]:
        page.mouse.move(*px, steps=6)
    page.mouse.up()


def open_tab(page, name: str) -> None:
    """Click the tab `name`, from Gradio's "More tabs" menu when the row has no room for it."""
    tab = page.get_by_role("tab", name=name, exact=True)
    if not tab.count():
        page.get_by_label("More tabs").click()
        tab = page.locator(".overflow-menu button", has_text=name)
    tab.click()


def map_seq(page) -> str:
    return page.evaluate("() => document.querySelector('.es-map').dataset.seq")


def wait_selected(page, count: int | None) -> None:
    """Wait for the count line to report `count` selected (None: no selection)."""
    want = "" if count is None else str(count)
    page.wait_for_function("n => { const p = document.querySelector('#es-count .es-count');"
                           " return p && p.dataset.selected === n; }", arg=want)


def grid_ids(page) -> list[str]:
    return page.eval_on_selector_all("#es-grid .es-card", "cards => cards.map(c => c.dataset.id)")


def distribution(page) -> dict[str, tuple[int, int]]:
    rows = page.eval_on_selector_all(
        "#es-dist .es-dist-row", "rows => rows.map(r => [r.dataset.label, +r.dataset.selected, +r.dataset.total])")
    return {label: (selected, total) for label, selected, total in rows}


def points(collection) -> dict[str, tuple[float, float, str]]:
    columns = collection.columns(["x", "y", "label"])
    return {pid: (x, y, label) for pid, x, y, label in
            zip(columns.ids, columns.values["x"], columns.values["y"], columns.values["label"])}


def inside_box(collection, x0: float, x1: float, y0: float, y1: float) -> set[str]:
    return {pid for pid, (x, y, _) in points(collection).items() if x0 < x < x1 and y0 < y < y1}


def inside_polygon(collection, polygon: list[tuple[float, float]]) -> set[str]:
    inside = set()
    for pid, (x, y, _) in points(collection).items():
        hit = False
        for (xa, ya), (xb, yb) in zip(polygon, polygon[1:] + polygon[:1]):
            if (ya > y) != (yb > y) and x < xa + (y - ya) * (xb - xa) / (yb - ya):
                hit = not hit
        if hit:
            inside.add(pid)
    return inside


def min_edge_distance(collection, polygon: list[tuple[float, float]]) -> float:
    """How close any point comes to the polygon's outline (keeps the test off pixel rounding)."""
    best = np.inf
    for x, y, _ in points(collection).values():
        for (xa, ya), (xb, yb) in zip(polygon, polygon[1:] + polygon[:1]):
            a, b, p = np.array([xa, ya]), np.array([xb, yb]), np.array([x, y])
            t = np.clip(np.dot(p - a, b - a) / np.dot(b - a, b - a), 0, 1)
            best = min(best, float(np.linalg.norm(p - (a + t * (b - a)))))
    return best


def expected_distribution(collection, ids: set[str]) -> dict[str, tuple[int, int]]:
    labels = points(collection)
    selected = Counter(labels[i][2] for i in ids)
    totals = Counter(v[2] for v in labels.values())
    return {label: (selected.get(label, 0), total) for label, total in totals.items()}


WATCH_HOVER_JS = """
() => {
  const card = document.querySelector('.es-hover'), img = card.querySelector('img');
  window.__hoverCard = null;
  const seen = () => {
    if (!card.hidden && img.complete && img.naturalWidth > 0 && !window.__hoverCard)
      window.__hoverCard = {row: card.dataset.row, src: img.src, width: img.naturalWidth,
                            label: card.querySelector('.es-hover-label').textContent};
  };
  new MutationObserver(seen).observe(card, {attributes: true, subtree: true});
  img.addEventListener('load', seen);
}
"""


def hover_card(page, px: float, py: float, nudge: float) -> dict:
    """Move onto (px, py) from `nudge` pixels away until the hover card shows; the card as shown.

    It is recorded as soon as it is visible with its image loaded: Plotly may unhover again
    right after (a loaded machine also drops hovers), so polling its current state could miss
    a card that was shown."""
    page.evaluate(WATCH_HOVER_JS)
    for attempt in range(5):
        page.mouse.move(px + nudge, py + nudge)
        page.mouse.move(px, py)
        try:
            page.wait_for_function("() => window.__hoverCard !== null", timeout=5000)
            break
        except Exception:
            if attempt == 4:
                raise
    return page.evaluate("() => window.__hoverCard")


# --- tests ---------------------------------------------------------------------------------
def test_box_selection_in_data_view_drives_grid_and_distribution(server, browser, dataset) -> None:
    page = open_page(browser, server.url)
    seq = map_seq(page)
    page.get_by_label("Data", exact=True).check()
    page.wait_for_function("s => document.querySelector('.es-map').dataset.seq !== s", arg=seq)
    assert page.evaluate("() => window.embedscapeMap.gd.data.length") == 1  # one colour, no legend
    page.mouse.move(5, 5)
    page.wait_for_timeout(300)

    expected = inside_box(dataset, 10.1, 10.9, 0.1, 0.9)
    assert len(expected) == 9
    seq = map_seq(page)
    drag(page, [(10.1, 0.9), (10.5, 0.5), (10.9, 0.1)])
    wait_selected(page, len(expected))
    assert set(grid_ids(page)) == expected and len(grid_ids(page)) == len(expected)
    assert distribution(page) == expected_distribution(dataset, expected)
    assert "9 of 120" in page.inner_text("#es-count")
    # The selection was drawn by Plotly itself: no figure came back from the server,
    # and unselected points are dimmed in place, not removed.
    assert map_seq(page) == seq
    drawn = page.evaluate("() => window.embedscapeMap.gd.data.map(t => [t.x.length, (t.selectedpoints || []).length])")
    assert drawn == [[120, 9]]
    page.context.close()


def test_lasso_in_label_view_hover_and_double_click(server, browser, dataset) -> None:
    page = open_page(browser, server.url)
    legend = page.evaluate("() => window.embedscapeMap.gd.data.map(t => t.name)")
    assert sorted(name.split(" ")[0] for name in legend) == sorted(UI_LABELS)
    # A six-sided lasso from the cat cluster up to the bird cluster; edges that cross a
    # cluster run between its grid lines, so pixel rounding cannot flip any point.
    polygon = [(-0.125, -0.125), (0.875, -0.125), (0.875, 1.125), (5.625, 7.875), (5.625, 9.125),
               (4.875, 9.125), (4.875, 7.875), (-0.125, 1.125)]
    assert min_edge_distance(dataset, polygon) > 0.1
    expected = inside_polygon(dataset, polygon)
    assert Counter(points(dataset)[i][2] for i in expected) == {"cat": 20, "bird": 15}
    drag(page, polygon + [polygon[0]], lasso=True)
    wait_selected(page, len(expected))
    assert set(grid_ids(page)) == expected
    assert distribution(page) == expected_distribution(dataset, expected)
    page.mouse.move(5, 5)
    page.wait_for_timeout(300)

    # Hovering a point shows its thumbnail and label (a point away from the lasso: over the
    # selection's outline Plotly offers to move the selection instead of hovering).
    pid, (x, y, label) = max(points(dataset).items(), key=lambda kv: kv[1][:2])
    px, py = to_client(page, x, y)
    card = hover_card(page, px, py, nudge=3)
    assert card["label"] == label and card["src"].endswith(f"/thumb/row/{card['row']}")
    assert card["width"] > 0  # the thumbnail decoded

    # Double-click on empty map space clears the selection; zoom is left alone.
    x_range = page.evaluate("() => window.embedscapeMap.gd.layout.xaxis.range.slice()")
    page.mouse.dblclick(*to_client(page, 5.0, 3.0))
    wait_selected(page, None)
    assert "showing all 120" in page.inner_text("#es-count")
    assert all(selected == total for selected, total in distribution(page).values())
    assert len(grid_ids(page)) == 40
    assert page.evaluate("() => window.embedscapeMap.gd.layout.xaxis.range") == pytest.approx(x_range)

    # Filtering to one label leaves only its points on the map and in the linked views.
    labels = page.locator("#es-filter-labels input")
    labels.fill("dog")
    labels.press("Enter")
    page.wait_for_function("() => document.querySelector('#es-count').innerText.includes('40 points passing')")
    # The map asks for its points again after the filter's message (it may come just after).
    page.wait_for_function("() => window.embedscapeMap.gd.data.length === 1")
    drawn = page.evaluate("() => window.embedscapeMap.gd.data.map(t => t.x.length)")
    assert drawn == [40]
    assert {points(dataset)[i][2] for i in grid_ids(page)} == {"dog"}
    page.context.close()


def test_detail_view_more_like_this_and_text_search(server, browser, dataset) -> None:
    page = open_page(browser, server.url)
    drag(page, [(4.9, 8.6), (5.6, 8.9)])  # bird points at x 5.0..5.5, y 8.75
    expected = inside_box(dataset, 4.9, 5.6, 8.6, 8.9)
    wait_selected(page, len(expected))
    first = grid_ids(page)[0]
    page.click(f'#es-grid .es-card[data-id="{first}"]')
    page.wait_for_selector(f'#es-detail .es-detail[data-id="{first}"]')
    record = dataset.retrieve([first], ["path", "label"])[0]
    assert page.inner_text("#es-detail .es-path") == record.payload["path"]
    assert page.inner_text("#es-detail .es-detail-label") == "bird"
    page.wait_for_function("() => document.querySelectorAll('#es-detail .es-near .es-card').length === 12")
    page.wait_for_function("() => [...document.querySelectorAll('#es-detail img')].every(i => i.complete && i.naturalWidth)")

    page.click("#es-more")
    wait_selected(page, 100)
    assert "like bird/" in page.inner_text("#es-count")
    assert {points(dataset)[i][2] for i in grid_ids(page)} == {"bird"}  # best first: 40 birds
    # The map dims all but those 100 (the selection's rows came with the map message).
    page.wait_for_function("() => window.embedscapeMap.gd.data.reduce((n, t) => n + (t.selectedpoints || []).length, 0) === 100")

    page.fill("#es-search-text textarea, #es-search-text input", "dog")
    page.click("#es-search-button")
    page.wait_for_function("() => document.querySelector('#es-count').innerText.includes('text: dog')")
    assert {points(dataset)[i][2] for i in grid_ids(page)} == {"dog"}
    page.click("#es-close")
    page.wait_for_selector("#es-detail", state="hidden")
    page.mouse.move(*to_client(page, 5.0, 3.0), steps=3)  # empty map space: the hover card goes
    page.wait_for_selector(".es-hover", state="hidden")
    page.mouse.move(5, 5)
    page.wait_for_function("() => [...document.querySelectorAll('#es-grid img')].every(i => i.complete && i.naturalWidth)")
    page.context.close()


def add_tag(page, tag: str) -> None:
    box = page.locator("#es-tag input")
    box.fill(tag)
    box.press("Enter")


def test_two_sessions_tag_overlapping_selections_and_tags_survive_a_restart(browser, tmp_path) -> None:
    store, collection, _ = build_ui_collection(tmp_path)
    server = start_server(collection)
    try:
        first, second = open_page(browser, server.url), open_page(browser, server.url)
        boxes = {"alpha": (-0.1, 1.1, -0.1, 1.1), "beta": (0.6, 1.9, -0.1, 1.1)}
        expected = {tag: inside_box(collection, *box) for tag, box in boxes.items()}
        assert expected["alpha"] & expected["beta"]
        for page, (tag, (x0, x1, y0, y1)) in zip((first, second), boxes.items()):
            drag(page, [(x0, y1), (x1, y0)])
            wait_selected(page, len(expected[tag]))
            add_tag(page, tag)
        # Both sessions press "Add" at the same time.
        first.click("#es-tag-add", no_wait_after=True)
        second.click("#es-tag-add", no_wait_after=True)
        for page, tag in ((first, "alpha"), (second, "beta")):
            page.wait_for_function("t => document.querySelector('#es-tag-status').innerText.includes(t)", arg=tag)
        for tag, ids in expected.items():
            assert set(collection.ids(PointFilter(tags_any=[tag]))) == ids
        # The grid shows the new tag under each selected image.
        first.wait_for_function("() => [...document.querySelectorAll('#es-grid .es-card')]"
                                ".every(c => c.innerText.includes('alpha'))")
        for page in (first, second):
            page.context.close()
    finally:
        server.stop()
        store.close()

    store = open_store(path=str(tmp_path / "qdrant"))
    server = start_server(store.open("ui"))
    try:
        page = open_page(browser, server.url)
        page.get_by_label(f"alpha ({len(expected['alpha'])})").check()
        wait_selected(page, len(expected["alpha"]))
        assert set(grid_ids(page)) == expected["alpha"]
        tags = page.eval_on_selector_all("#es-grid .es-card .es-tags", "t => t.map(e => e.innerText)")
        assert all("alpha" in t for t in tags)
        overlap = expected["alpha"] & expected["beta"]
        both = page.eval_on_selector_all("#es-grid .es-card", "cs => cs.filter(c => c.innerText.includes('beta'))"
                                         ".map(c => c.dataset.id)")
        assert set(both) == overlap
        page.context.close()
    finally:
        server.stop()
        store.close()


def test_a_hidden_tab_follows_the_selection_only_once_it_is_opened(browser, dataset) -> None:
    import gradio as gr

    calls: list[int | None] = []

    def build(ctx) -> None:
        shown = gr.HTML(elem_id="es-test-follower")

        def follow(state) -> str:
            rows = state.selected_rows()
            calls.append(None if rows is None else len(rows))
            return f'<p data-n="{len(calls)}">{calls[-1]}</p>'

        ctx.on_selection_change(follow, outputs=[shown])

    running = start_server(dataset, pages=[("Follower", build)])
    try:
        page = open_page(browser, running.url)
        assert calls == [], "a hidden tab's follower does not run on page load"
        expected = inside_box(dataset, 10.1, 10.9, 0.1, 0.9)
        drag(page, [(10.1, 0.9), (10.9, 0.1)])
        wait_selected(page, len(expected))
        assert calls == [], "nor on a selection made while it is hidden"
        open_tab(page, "Follower")
        page.wait_for_function("() => document.querySelector('#es-test-follower p')?.dataset.n === '1'")
        assert calls == [len(expected)], "opening it catches up with the selection"
        open_tab(page, "Explorer")
        page.wait_for_timeout(300)
        pixel = to_client(page, 0.5, 0.5)
        page.mouse.dblclick(*pixel)
        wait_selected(page, None)
        open_tab(page, "Follower")
        page.wait_for_function("() => document.querySelector('#es-test-follower p')?.dataset.n === '2'")
        drag(page, [(10.1, 0.9), (10.9, 0.1)])
        page.wait_for_function("() => document.querySelector('#es-test-follower p')?.dataset.n === '3'")
        assert calls == [len(expected), None, len(expected)], "while open it follows every selection"
        page.context.close()
    finally:
        running.stop()


# --- big maps: the density view (the threshold lowered so 120 points are "many") ------------
ALPHA_AT_JS = """
async ([x, y]) => {
  // The alpha of the density image's pixel under data point (x, y).
  const m = window.embedscapeMap, image = m.state.image, [x0, x1, y0, y1] = image.region;
  const bitmap = await createImageBitmap(await (await fetch(image.url)).blob());
  const canvas = new OffscreenCanvas(bitmap.width, bitmap.height), ctx = canvas.getContext('2d');
  ctx.drawImage(bitmap, 0, 0);
  const px = Math.floor((x - x0) / (x1 - x0) * bitmap.width), py = Math.floor((y1 - y) / (y1 - y0) * bitmap.height);
  return ctx.getImageData(px, py, 1, 1).data[3];
}
"""


def map_mode(page) -> str:
    return page.evaluate("() => document.querySelector('.es-map').dataset.mode")


def views_seen(page) -> int:
    return int(page.evaluate("() => document.querySelector('.es-map').dataset.views"))


def wait_views(page, after: int) -> None:
    """Until the map has drawn a view since `after` and has nothing more waiting to be drawn."""
    page.wait_for_function("n => { const m = document.querySelector('.es-map');"
                           " return +m.dataset.views > n && m.dataset.busy === '0'; }", arg=after)


def clear_on_density(page) -> None:
    """Double-click the density image: the selection is cleared and the server's answer redraws
    the image undimmed."""
    seq = int(page.evaluate("() => document.querySelector('.es-map').dataset.seq"))
    before = views_seen(page)
    page.mouse.dblclick(*to_client(page, 5.0, 3.0))
    wait_selected(page, None)
    page.wait_for_function("n => +document.querySelector('.es-map').dataset.seq > n", arg=seq)
    wait_views(page, before)


def zoom(page, x0: float, x1: float, y0: float, y1: float) -> None:
    """Zoom as the mouse wheel does: Plotly changes the axes and tells the map (plotly_relayout)."""
    page.evaluate("([a, b, c, d]) => Plotly.relayout(window.embedscapeMap.gd, "
                  "{'xaxis.range': [a, b], 'yaxis.range': [c, d]})", [x0, x1, y0, y1])


def test_a_big_map_is_a_density_image_until_zoomed_in_and_selects_on_the_server(browser, dataset) -> None:
    running = start_server(dataset, map_points=50)
    try:
        page = open_page(browser, running.url)
        page.wait_for_function("() => document.querySelector('.es-map').dataset.mode === 'density'")
        legend = page.evaluate("() => window.embedscapeMap.gd.data.map(t => t.name.split(' ')[0])")
        assert sorted(legend) == sorted(UI_LABELS), "the legend stays without points drawn"
        assert page.evaluate("() => window.embedscapeMap.gd.layout.images.length") == 1
        page.mouse.move(5, 5)

        # A box over the dog cluster: the server finds the points, the image dims the rest.
        expected = inside_box(dataset, 10.1, 10.9, 0.1, 0.9)
        before = views_seen(page)
        drag(page, [(10.1, 0.9), (10.9, 0.1)])
        wait_selected(page, len(expected))
        assert set(grid_ids(page)) == expected
        assert distribution(page) == expected_distribution(dataset, expected)
        wait_views(page, before)
        inside = page.evaluate(ALPHA_AT_JS, [10.5, 0.5])
        outside = page.evaluate(ALPHA_AT_JS, [11.5, 0.5])  # a dog point outside the box
        assert inside > 3 * outside > 0, (inside, outside)

        # A lasso: the points inside the drawn polygon, exactly (as in the point view's test).
        polygon = [(-0.125, -0.125), (0.875, -0.125), (0.875, 1.125), (5.625, 7.875), (5.625, 9.125),
                   (4.875, 9.125), (4.875, 7.875), (-0.125, 1.125)]
        expected = inside_polygon(dataset, polygon)
        drag(page, polygon + [polygon[0]], lasso=True)
        wait_selected(page, len(expected))
        assert set(grid_ids(page)) == expected

        # Hover over the image: the nearest point's thumbnail and label come from the server.
        pid, (x, y, label) = max(points(dataset).items(), key=lambda kv: kv[1][:2])
        card = hover_card(page, *to_client(page, x, y), nudge=2)
        assert card["label"] == label and card["row"] == str(running.app.state.embedscape.embedscape_context.table.row_of[pid])

        # Double-click clears the selection; the image is drawn again without dimming.
        clear_on_density(page)

        # Zoomed in on the cat cluster (40 points, under the limit): the points themselves.
        before = views_seen(page)
        zoom(page, -0.5, 2.5, -0.5, 1.5)
        wait_views(page, before)
        assert map_mode(page) == "points"
        assert page.evaluate("() => window.embedscapeMap.gd.layout.xaxis.range") == pytest.approx([-0.5, 2.5])
        drawn = page.evaluate("() => window.embedscapeMap.gd.data.reduce((n, t) => n + t.x.length, 0)")
        assert 40 <= drawn <= 50, "the view's points (and a margin around it), not all 120"
        expected = inside_box(dataset, -0.1, 1.1, -0.1, 1.1)
        drag(page, [(-0.1, 1.1), (1.1, -0.1)])
        wait_selected(page, len(expected))
        assert set(grid_ids(page)) == expected

        # Out again: the density image, with the selection dimming the rest.
        before = views_seen(page)
        zoom(page, -2.0, 13.0, -2.0, 11.0)
        wait_views(page, before)
        assert map_mode(page) == "density"
        assert page.evaluate(ALPHA_AT_JS, [0.5, 0.5]) > 3 * page.evaluate(ALPHA_AT_JS, [10.5, 0.5]) > 0

        # A legend entry switched off leaves the image and the next box selection.
        clear_on_density(page)
        before = views_seen(page)
        page.locator(".legend .traces", has=page.locator(".legendtext", has_text="dog")).locator(".legendtoggle").click()
        wait_views(page, before)
        assert page.evaluate(ALPHA_AT_JS, [10.5, 0.5]) == 0
        drag(page, [(-0.1, 1.9), (10.9, -0.1)])  # cat and dog points
        expected = {i for i in inside_box(dataset, -0.1, 10.9, -0.1, 1.9) if points(dataset)[i][2] != "dog"}
        wait_selected(page, len(expected))
        assert set(grid_ids(page)) == expected
        page.context.close()
    finally:
        running.stop()
