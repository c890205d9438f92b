"""What the map draws over its points, in headless Chromium: cluster names and thumbnails.

Names: a collection of 130 small islands on the map, clustered by `analyze` itself
(HDBSCAN on the map), so the names are real cluster names at real cluster centres; at 100+
clusters no two names may overlap, at any zoom, over points and over the density image.
Thumbnails: the UI collection's known grid (tests/conftest.py) zoomed in until few points are
in view; every thumbnail must sit on its own point and be served by the explorer's row route.
"""
from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from analysis.clusters import ClusterConfig
from scoring.analyze import analyze_collection
from scoring.clusters import cluster_table
from store import open_store, point_id
from ui.app import start_server

from test_ui_browser import CHROMIUM, drag, grid_ids, inside_box, open_page, points, to_client, wait_selected, zoom

pytest.importorskip("playwright.sync_api")  # the browser fixture (tests/conftest.py) drives it
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"needs {CHROMIUM}")

ISLANDS = (13, 10)  # columns x rows of islands, 1.0 apart
BIG = (6, 5)  # the island with the most points: the largest cluster


# --- fixtures ------------------------------------------------------------------------------------
def build_islands(base: Path):
    """(store, collection): 130 islands of 6-12 points (BIG has 30), each its own label, in
    the embedded store; `analyze` finds one cluster per island (HDBSCAN on the map)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    root = base / "images"
    store = open_store(path=str(base / "qdrant"))
    collection = store.create("islands", 16, {"source_root": str(root), "model": "test"})
    collection.index_fields(["label", "tags"])
    ids, vectors, payloads = [], [], []
    for column, row in itertools.product(range(ISLANDS[0]), range(ISLANDS[1])):
        island = f"island-{column:02d}-{row:02d}"
        (root / island).mkdir(parents=True)
        size = 30 if (column, row) == BIG else 6 + (column * 3 + row) % 7
        direction = rng.normal(size=16)
        for i in range(size):
            relative = f"{island}/{i:02d}.png"
            Image.new("RGB", (16, 16), tuple(int(c) for c in rng.integers(0, 255, 3))).save(root / relative)
            ids.append(point_id(relative))
            vectors.append(direction + rng.normal(size=16) * 0.05)
            payloads.append({"path": relative, "label": island, "tags": [], "x": column + (i % 6) * 0.02,
                             "y": row + (i // 6) * 0.02, "sha1": f"{len(ids):040d}"})
    collection.upsert(ids, np.asarray(vectors, np.float32), payloads)
    collection.flush()
    analyze_collection(collection, add_metrics=False, clusters=ClusterConfig(method="hdbscan-map"))
    return store, collection


@pytest.fixture(scope="module")
def islands(tmp_path_factory):
    store, collection = build_islands(tmp_path_factory.mktemp("islands"))
    yield collection
    store.close()


# --- helpers -------------------------------------------------------------------------------------
def settle(page) -> None:
    """Until the map has nothing waiting to be drawn and the overlays have had their frame."""
    page.wait_for_function("() => document.querySelector('.es-map').dataset.busy === '0'")
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")


def zoom_to(page, x0: float, x1: float, y0: float, y1: float) -> None:
    zoom(page, x0, x1, y0, y1)
    settle(page)


def overlays(page) -> dict:
    return page.evaluate("() => window.embedscapeMap.overlays()")


def overlapping(names: list[dict]) -> list[tuple[str, str]]:
    """Pairs of names whose drawn boxes overlap (by more than rounding)."""
    return [(a["name"], b["name"]) for a, b in itertools.combinations(names, 2)
            if min(a["box"][2], b["box"][2]) - max(a["box"][0], b["box"][0]) > 0.5
            and min(a["box"][3], b["box"][3]) - max(a["box"][1], b["box"][1]) > 0.5]


def wait_names(page, at_least: int = 1) -> list[dict]:
    page.wait_for_function("n => window.embedscapeMap.overlays().names.length >= n", arg=at_least)
    return overlays(page)["names"]


def name_font_size(page) -> str:
    return page.evaluate("() => getComputedStyle(document.querySelector('.es-names .es-name')).fontSize")


def colour_by(page, mode: str) -> None:
    page.locator("#es-colour").get_by_label(mode, exact=True).check()


# --- cluster names -------------------------------------------------------------------------------
def test_cluster_names_are_placed_largest_first_and_never_overlap_at_any_zoom(browser, islands) -> None:
    records = cluster_table(islands)
    assert len(records) >= 100, "analyze finds the islands"
    by_name = {r["name"]: r for r in records}
    running = start_server(islands)
    try:
        page = open_page(browser, running.url)
        assert overlays(page)["names"] == [], "label colouring: no names unless asked"
        colour_by(page, "Cluster")
        page.wait_for_function("() => document.querySelector('#es-names input').checked")
        whole = wait_names(page, 10)
        assert overlapping(whole) == []
        assert len(whole) < len(records), "not every name fits the whole map: some are left out"
        assert records[0]["name"] == whole[0]["name"], "the largest cluster is named first"
        sizes = [n["size"] for n in whole]
        assert sizes == sorted(sizes, reverse=True) and all(n["name"] in by_name for n in whole)
        for name in whole:  # on its cluster's centre (clamped at the plot's edges)
            cx, cy = to_client(page, by_name[name["name"]]["x"], by_name[name["name"]]["y"])
            x0, y0, x1, y1 = name["box"]
            assert x0 - 1 <= cx <= x1 + 1 or x0 < 10, name
            assert abs((y0 + y1) / 2 - cy) < 10 or y0 < 10, name
        size = name_font_size(page)
        page.mouse.move(5, 5)

        # Zoomed in on a quarter of the map: names left out before get room; still no overlap,
        # same size of text.
        zoom_to(page, -0.5, 6.0, -0.5, 4.5)
        zoomed = wait_names(page)
        assert overlapping(zoomed) == []
        assert {n["name"] for n in zoomed} - {n["name"] for n in whole}, "zooming in names more clusters"
        assert name_font_size(page) == size == "12px"

        # Names are a toggle of their own: off, and on again with another colouring.
        page.locator("#es-names input").uncheck()
        page.wait_for_function("() => window.embedscapeMap.overlays().names.length === 0")
        colour_by(page, "Label")
        page.locator("#es-names input").check()
        assert overlapping(wait_names(page)) == []
        page.context.close()
    finally:
        running.stop()


def test_cluster_names_over_the_density_image(browser, islands) -> None:
    running = start_server(islands, map_points=100)
    try:
        page = open_page(browser, running.url)
        page.wait_for_function("() => document.querySelector('.es-map').dataset.mode === 'density'")
        colour_by(page, "Cluster")
        names = wait_names(page, 10)
        assert overlapping(names) == [] and names[0]["name"] == cluster_table(islands)[0]["name"]
        page.context.close()
    finally:
        running.stop()


# --- thumbnails ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    from conftest import build_ui_collection

    store, collection, _ = build_ui_collection(tmp_path_factory.mktemp("ui-thumbnails"))
    yield collection
    store.close()


def wait_thumbnails(page, count: int) -> list[dict]:
    page.wait_for_function("n => { const t = window.embedscapeMap.overlays().thumbnails;"
                           " return t.length === n && t.every(x => x.loaded); }", arg=count)
    return overlays(page)["thumbnails"]


def test_points_become_thumbnails_when_few_are_in_view_and_selection_still_works(browser, dataset) -> None:
    running = start_server(dataset, map_thumbnails=50)
    table = running.app.state.embedscape.embedscape_context.table
    try:
        page = open_page(browser, running.url)
        assert overlays(page)["thumbnails"] == [], "120 points in view: more than 50"

        # Zoomed in on the cat grid (40 points): each point is its thumbnail, on its position.
        zoom_to(page, -0.5, 2.5, -0.5, 1.5)
        cats = inside_box(dataset, -0.5, 2.5, -0.5, 1.5)
        thumbnails = wait_thumbnails(page, len(cats))
        assert {table.ids[t["row"]] for t in thumbnails} == cats
        where = points(dataset)
        for thumbnail in thumbnails:
            x, y, _ = where[table.ids[thumbnail["row"]]]
            cx, cy = to_client(page, x, y)
            x0, y0, x1, y1 = thumbnail["box"]
            assert abs((x0 + x1) / 2 - cx) < 1.5 and abs((y0 + y1) / 2 - cy) < 1.5
        sources = page.eval_on_selector_all(".es-thumbs img", "imgs => imgs.map(i => new URL(i.src).pathname)")
        assert all(s.startswith("/thumb/row/") for s in sources), "the explorer's own thumbnail route"
        assert not any(t["dim"] for t in thumbnails)
        page.mouse.move(5, 5)

        # A box drawn over the thumbnails selects the points beneath; the rest are dimmed.
        expected = inside_box(dataset, -0.1, 1.1, -0.1, 1.1)
        drag(page, [(-0.1, 1.1), (1.1, -0.1)])
        wait_selected(page, len(expected))
        assert set(grid_ids(page)) == expected
        page.wait_for_function("n => window.embedscapeMap.overlays().thumbnails.filter(t => !t.dim).length === n",
                               arg=len(expected))
        assert {table.ids[t["row"]] for t in overlays(page)["thumbnails"] if not t["dim"]} == expected

        # Zoomed out: points again.
        zoom_to(page, -2.0, 13.0, -2.0, 11.0)
        page.wait_for_function("() => window.embedscapeMap.overlays().thumbnails.length === 0")
        page.context.close()
    finally:
        running.stop()


def test_object_explorer_has_names_and_crop_thumbnails(browser, tmp_path) -> None:
    from detection_fixtures import build_detection_ui

    store, images, objects, _ = build_detection_ui(tmp_path)
    try:
        analyze_collection(objects, add_metrics=False, clusters=ClusterConfig(method="hdbscan-map"))
        records = cluster_table(objects)
        running = start_server(images, objects=objects, map_thumbnails=20)
        try:
            page = open_page(browser, running.url + "/objects/")
            colour_by(page, "Cluster")
            names = wait_names(page, min(len(records), 1))
            assert overlapping(names) == [] and {n["name"] for n in names} <= {r["name"] for r in records}
            table = running.app.state.explorers["/objects"].embedscape_context.table
            zoom_to(page, -0.3, 2.8, -0.3, 1.3)  # the first cat boxes (a 6-wide grid 0.5 apart)
            shown = {pid for pid, (x, y, _) in points(objects).items() if -0.3 < x < 2.8 and -0.3 < y < 1.3}
            thumbnails = wait_thumbnails(page, len(shown))
            assert {table.ids[t["row"]] for t in thumbnails} == shown
            sources = page.eval_on_selector_all(".es-thumbs img", "imgs => imgs.map(i => new URL(i.src).pathname)")
            assert all(s.startswith("/objects/thumb/row/") for s in sources), "the boxes' crops"
            page.context.close()
        finally:
            running.stop()
    finally:
        store.close()
