"""The Clusters tab and colour by cluster: helpers on records and a real analysed collection,
and the browser (choose a cluster -> exactly its points selected on the map)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import build_ui_collection
from scoring.analyze import analyze_collection
from scoring.clusters import CLUSTERS_FILE, cluster_table
from store import PointFilter, point_id
from store.schema import CLUSTER
from ui import clusters_page
from ui.clusters import load_clusters
from ui.figure import PALETTE, colouring, map_message, spread_colours
from ui.state import MapState
from ui.table import PointTable

DROPPED = {"dog": 5, "bird": 10}  # so the three clusters differ in size: 40 cats, 35 dogs, 30 birds


def analysed(base: Path):
    store, collection, root = build_ui_collection(base)
    collection.delete([point_id(f"{label}/{i:03d}.png") for label, n in DROPPED.items() for i in range(n)])
    collection.flush()
    analyze_collection(collection, add_metrics=False)
    return store, collection


@pytest.fixture
def clustered(tmp_path: Path):
    store, collection = analysed(tmp_path)
    yield collection
    store.close()


def record(cid: int, size: int, purity: float | None, mislabels: float, outliers: float = 0.0,
           labels: list | None = None) -> dict:
    return {"id": cid, "name": f"c{cid}", "size": size, "purity": purity, "impure": purity is not None and purity < 0.7,
            "labels": labels or [], "flag_shares": {"mislabel": mislabels, "outlier": outliers}, "content": []}


# --- helpers -----------------------------------------------------------------------------------
def test_sorting_and_labels() -> None:
    records = [record(0, 100, 0.95, 0.01), record(1, 60, 0.5, 0.20, 0.3, [["shirt", 30], ["t-shirt", 25]]),
               record(2, 30, None, 0.05, 0.5)]
    order = {by: [r["id"] for r in clusters_page.sorted_records(records, by)] for by in clusters_page.SORTS}
    assert order == {"size": [0, 1, 2], "impurity": [1, 0, 2], "mislabel share": [1, 2, 0],
                     "outlier share": [2, 1, 0]}
    assert clusters_page.choice_label(records[1]) == (
        "c1 · 60 points · purity 50 % · mislabels 20.0 % · classes get confused here: shirt / t-shirt")
    assert clusters_page.choice_label(records[2]) == "c2 · 30 points · mislabels 5.0 %"
    html = clusters_page.clusters_table(records)
    assert html.count("<tr data-cluster=") == 3 and "shirt 50 %, t-shirt 42 %" in html
    summary = clusters_page.confusion_summary(records)
    assert "1 impure clusters" in summary and "<b>shirt / t-shirt</b>" in summary
    assert "well separated" in clusters_page.confusion_summary([records[0]])
    assert "No labels" in clusters_page.confusion_summary([records[2]])


def test_view_of_an_analysed_collection(clustered) -> None:
    table = PointTable(clustered)
    view = load_clusters(table)
    assert view is not None and load_clusters(table) is view            # read once per table
    assert [r["dominant_label"] for r in view.records] == ["cat", "dog", "bird"]
    assert [r["size"] for r in view.records] == [40, 35, 30]
    for r in view.records:
        rows = view.rows_of(r["id"])
        assert len(rows) == r["size"]
        assert set(table.ids_for_rows(rows)) == set(clustered.ids(PointFilter(values={CLUSTER: [r["id"]]})))

    state = MapState(colour_by="cluster")
    c = colouring(table, state)
    assert [k.name for k in c.categories] == ["cat (40)", "dog (35)", "bird (30)"]
    assert c.hover_names[:3] == view.names


def test_no_clusters_says_how_to_get_them(ui_collection) -> None:
    from ui.app import build_app

    _, collection, _ = ui_collection
    assert load_clusters(PointTable(collection)) is None
    config = json.dumps(build_app(collection).config, default=str)
    assert "No clusters for this collection yet" in config
    assert '"Cluster"' not in json.dumps([c for c in build_app(collection).config["components"]
                                          if c.get("props", {}).get("elem_id") == "es-colour"])


def test_many_clusters_reuse_the_palette_apart(ui_collection) -> None:
    _, collection, _ = ui_collection
    table = PointTable(collection)
    # 30 clusters of 4 points each, planted as analyze writes them.
    codes = np.arange(len(table)) // 4
    collection.set_payloads(table.ids_for_rows(np.arange(len(table))), [{CLUSTER: int(c)} for c in codes])
    rows = [np.flatnonzero(codes == c) for c in range(codes.max() + 1)]
    records = [{"id": c, "name": f"cluster {c}", "size": 4, "x": float(table.x[r].mean()),
                "y": float(table.y[r].mean())} for c, r in enumerate(rows)]
    (collection.artifact_dir / CLUSTERS_FILE).write_text(json.dumps(records))
    table = PointTable(collection)
    c = colouring(table, MapState(colour_by="cluster"))
    assert not c.legend and len(c.categories) == len(PALETTE) + 1
    assert c.hover_names[7] == "cluster 7" and c.hover_codes[rows[7][0]] == 7
    assert len({c.remap[i] for i in range(len(PALETTE))}) == len(PALETTE)   # the first 20 all differ


def test_the_map_message_carries_the_names_largest_first_and_follows_filters(clustered) -> None:
    table = PointTable(clustered)
    view = load_clusters(table)
    state = MapState(colour_by="label")
    message = json.loads(map_message(table, state))
    names = message["names"]
    assert names["show"] is False, "names are off until asked for (or colouring by cluster)"
    assert [n["name"] for n in names["clusters"]] == view.names     # analyze numbers clusters by size
    assert [n["size"] for n in names["clusters"]] == [40, 35, 30]
    for name, record in zip(names["clusters"], view.records):
        assert (name["x"], name["y"]) == (record["x"], record["y"])
    state.set_names(True)
    assert json.loads(map_message(table, state))["names"]["show"] is True
    # A filter that hides every point of a cluster leaves its name out.
    dogs = view.records[[r["dominant_label"] for r in view.records].index("dog")]["name"]
    state.set_view(table, labels=["cat", "bird"])
    shown = [n["name"] for n in json.loads(map_message(table, state))["names"]["clusters"]]
    assert dogs not in shown and len(shown) == 2
    assert "names" not in json.loads(map_message(table, state.select(np.arange(3), "test"))), \
        "a selection alone does not resend the names"


def test_spread_colours_keep_neighbours_apart() -> None:
    grid = np.array([(x, y) for x in range(10) for y in range(10)], float)   # 100 clusters
    colours = spread_colours(grid, 20)
    distance = np.linalg.norm(grid[:, None] - grid[None], axis=2)
    same = (colours[:, None] == colours[None]) & ~np.eye(len(grid), dtype=bool)
    assert distance[same].min() >= 2.0      # no two adjacent (or diagonal) clusters share a colour


# --- the browser --------------------------------------------------------------------------------
def test_browser_choosing_a_cluster_selects_its_points(tmp_path: Path) -> None:
    browser_tests = pytest.importorskip("test_ui_browser")

    if not Path(browser_tests.CHROMIUM).exists():
        pytest.skip(f"needs {browser_tests.CHROMIUM}")
    store, collection = analysed(tmp_path)
    total = collection.count()
    records = cluster_table(collection)
    try:
        with browser_tests.explorer_page(collection) as page:
            browser_tests.open_tab(page, "Clusters")
            page.wait_for_selector("#es-cl-table")
            table = PointTable(collection)
            for chosen in (records[2], records[0]):
                label = clusters_page.choice_label(chosen)
                page.get_by_label(label).check()
                browser_tests.wait_selected(page, chosen["size"])
                assert f"{chosen['size']} of {total}" in page.text_content("#es-count")
                page.wait_for_function("n => window.embedscapeMap.selectedRows().length === n", arg=chosen["size"])
                rows = page.evaluate("() => window.embedscapeMap.selectedRows()")
                members = set(collection.ids(PointFilter(values={CLUSTER: [chosen["id"]]})))
                assert set(table.ids_for_rows(sorted(rows))) == members

            # A click on a table row chooses that cluster too.
            page.click(f"#es-cl-table tr[data-cluster='{records[1]['id']}'] td")
            browser_tests.wait_selected(page, records[1]["size"])

            # Sorting reorders the list; colour by cluster gives one legend entry per cluster.
            page.get_by_label("outlier share").check()
            browser_tests.open_tab(page, "Explorer")
            page.locator("#es-colour").get_by_label("Cluster").check()
            page.wait_for_function("n => window.embedscapeMap.state.categories.length === n", arg=len(records))
            names = page.evaluate("() => window.embedscapeMap.state.categories.map(c => c.name)")
            assert names == [f"{r['name']} ({r['size']})" for r in records]
            browser_tests.open_tab(page, "Clusters")
    finally:
        store.close()


def test_a_link_coloured_by_cluster_shows_the_names(clustered) -> None:
    from types import SimpleNamespace

    from ui.map.share_link import UrlParams

    context = SimpleNamespace(table=PointTable(clustered), collection=clustered)
    state = UrlParams().apply(context, MapState(), {"colour": "cluster"})
    assert state.colour_by == "cluster" and state.show_names
    assert not UrlParams().apply(context, MapState(), {"colour": "tag"}).show_names
