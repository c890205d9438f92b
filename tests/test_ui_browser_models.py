"""Two embedding models in the explorer (headless Chromium): the map switch keeps the selection
and shows it scattered on the other model's map, a box drawn on that map selects by its
coordinates, and the Models tab's side map highlights the selection and shows the comparison."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import UI_LABELS, build_ui_collection
from indexer.named_vectors import save_map
from scoring.model_compare import compare_models
from test_ui_browser import (
    CHROMIUM, drag, map_seq, open_page, open_tab, playwright_api, points, wait_selected,
)
from ui.app import start_server

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"needs {CHROMIUM}")


def second_map(collection) -> dict[str, tuple[float, float]]:
    """Cats and dogs interleaved on one wide grid, birds apart: on this map the cat cluster of
    the default map is scattered among the dogs."""
    out = {}
    for pid, (x, y, label) in points(collection).items():
        i, j = round(x / 0.25) % 8 if label != "dog" else round((x - 10) / 0.25), round(y / 0.25) if label != "bird" \
            else round((y - 8) / 0.25)
        if label == "bird":
            out[pid] = (50 + (round((x - 5) / 0.25)) * 0.25, 50 + j * 0.25)
        else:
            shift = 0.0 if label == "cat" else 1.25
            out[pid] = (20 + i * 2.5 + shift, j * 2.5 + shift)
    return out


@pytest.fixture(scope="module")
def two_models(tmp_path_factory):
    store, collection, _ = build_ui_collection(tmp_path_factory.mktemp("ui-models"))
    ids, vectors = collection.vectors()
    rng = np.random.default_rng(5)
    labels = {pid: label for pid, (_, _, label) in points(collection).items()}
    second = rng.normal(size=(len(ids), 6)) * 0.3
    for row, pid in enumerate(ids):  # the second model sees cats and dogs alike
        second[row, 0 if labels[pid] in ("cat", "dog") else 1] += 3.0
    collection.add_vector("second", 6)
    collection.set_vectors("second", list(ids), second.astype(np.float32))
    coords = second_map(collection)
    save_map(collection.artifact_dir / "map-second.npz", np.array(list(coords)), np.array(list(coords.values())))
    metadata = collection.read_metadata()
    metadata["vectors"]["second"].update(model="second-model", projection={"map_file": "map-second.npz"})
    collection.write_metadata(metadata)
    compare_models(collection, "default", "second")
    yield collection, coords
    store.close()


def side_map(page) -> dict:
    """The Models tab's side map: its title and, per trace, the rows it draws."""
    return page.evaluate("""() => { const gd = document.querySelector('#es-side-map .js-plotly-plot');
        return gd && gd.data ? {title: gd.layout.title.text,
                                traces: gd.data.map(t => ({name: t.name, rows: Array.from(t.customdata)}))} : null; }""")


def test_switch_maps_keeps_the_selection_and_the_side_map_highlights_it(browser, two_models) -> None:
    collection, coords = two_models
    running = start_server(collection)
    try:
        page = open_page(browser, running.url)
        switch = page.locator("#es-map-vector")
        assert switch.is_visible()
        assert "second · second-model" in switch.inner_text()
        cats = {pid for pid, (_, _, label) in points(collection).items() if label == "cat"}
        drag(page, [(-0.1, 1.1), (0.9, 0.5), (1.9, -0.1)])  # the whole cat grid of the default map
        wait_selected(page, len(cats))

        open_tab(page, "Models")
        page.wait_for_function("() => { const gd = document.querySelector('#es-side-map .js-plotly-plot');"
                               " return gd && gd.layout && /40 selected/.test(gd.layout.title.text); }")
        side = side_map(page)
        drawn = {t["name"]: t["rows"] for t in side["traces"]}
        assert len(drawn["not selected"]) == 80 and len(drawn["cat"]) == 40 and "dog" not in drawn
        assert page.locator("#es-model-verdict").inner_text().startswith("default separates these labels better")

        seq = map_seq(page)
        page.get_by_label("second · second-model").check()
        page.wait_for_function("s => document.querySelector('.es-map').dataset.seq !== s", arg=seq)
        page.wait_for_function("() => window.embedscapeMap.gd.layout.xaxis.range[1] > 40")
        wait_selected(page, len(cats))  # the same points, now on the second model's map
        shown = page.evaluate("""() => window.embedscapeMap.gd.data.flatMap(t =>
            (t.selectedpoints || []).map(i => [t.x[i], t.y[i]]))""")
        assert sorted(map(tuple, shown)) == sorted(coords[pid] for pid in cats)  # scattered among the dogs

        expected = {pid for pid, (x, y) in coords.items() if 19 < x < 29 and -1 < y < 3}
        assert {pid for pid in expected if pid in cats} and expected - cats  # cats and dogs both
        drag(page, [(19, 3), (24, 1), (29, -1)])
        wait_selected(page, len(expected))
        ids = page.eval_on_selector_all("#es-grid .es-card", "cards => cards.map(c => c.dataset.id)")
        assert set(ids) == expected

        # Beside it, the default model's map: there the same points are the cat and dog grids'
        # corners; coloured by the second model's clusters, they are all one of its clusters.
        page.locator("#es-side-vector input").click()
        page.get_by_role("option", name="default · test").click()
        page.wait_for_function("n => { const gd = document.querySelector('#es-side-map .js-plotly-plot');"
                               " return gd && /default · test/.test(gd.layout.title.text)"
                               " && new RegExp(n + ' selected').test(gd.layout.title.text); }", arg=str(len(expected)))
        rows = {r for t in side_map(page)["traces"] if t["name"] != "not selected" for r in t["rows"]}
        assert len(rows) == len(expected)
        page.get_by_label("Main map's model's clusters").check()
        page.wait_for_function("() => { const gd = document.querySelector('#es-side-map .js-plotly-plot');"
                               " return gd && gd.data.some(t => /^second cluster/.test(t.name)); }")
        names = {t["name"] for t in side_map(page)["traces"]} - {"not selected"}
        assert names and all(name.startswith("second cluster") for name in names)

        # The main map (default) coloured by the second model's clusters: cats and dogs merged.
        seq = map_seq(page)
        page.get_by_label("default · test").check()
        page.wait_for_function("s => document.querySelector('.es-map').dataset.seq !== s", arg=seq)
        seq = map_seq(page)
        page.locator("#es-colour").get_by_label("Clusters of second").check()
        page.wait_for_function("s => document.querySelector('.es-map').dataset.seq !== s", arg=seq)
        legend = page.evaluate("() => window.embedscapeMap.gd.data.map(t => [t.name, Array.from(t.customdata)])")
        by_name = {name.split(" (")[0]: set(rows) for name, rows in legend}
        assert all(name.startswith("second cluster") or name == "no cluster" for name in by_name)
        cat_rows = {r for t in side["traces"] if t["name"] == "cat" for r in t["rows"]}
        holding_cats = [(len(rows), len(rows & cat_rows)) for rows in by_name.values() if rows & cat_rows]
        assert sum(cats for _, cats in holding_cats) == len(cat_rows) == 40
        assert all(cats < size for size, cats in holding_cats)  # every cluster of the cats mixes in dogs
        page.context.close()
    finally:
        running.stop()


def side_client(page, x: float, y: float) -> tuple[float, float]:
    """Where the side map draws the data point (x, y), in the page's pixels."""
    return tuple(page.evaluate("""([x, y]) => { const gd = document.querySelector('#es-side-map .js-plotly-plot');
        const fl = gd._fullLayout, box = gd.querySelector('.nsewdrag').getBoundingClientRect();
        return [box.left + fl.xaxis.d2p(x), box.top + fl.yaxis.d2p(y)]; }""", [x, y]))


def test_a_box_on_the_side_map_selects_on_the_main_map_and_the_most_different_in_one_click(browser,
                                                                                          two_models) -> None:
    collection, coords = two_models
    running = start_server(collection)
    try:
        page = open_page(browser, running.url)
        open_tab(page, "Models")
        page.wait_for_function("() => { const gd = document.querySelector('#es-side-map .js-plotly-plot');"
                               " return gd && gd.layout && /the map of second/.test(gd.layout.title.text); }")
        page.locator("#es-side-map").scroll_into_view_if_needed()
        page.wait_for_timeout(500)  # the main map's script binds the side map within 0.4 s
        expected = {pid for pid, (x, y) in coords.items() if 19 < x < 29 and -1 < y < 3}
        start, end = side_client(page, 19, 3), side_client(page, 29, -1)
        page.mouse.move(*start)
        page.mouse.down()
        page.mouse.move(*end, steps=8)
        page.mouse.up()
        wait_selected(page, len(expected))  # the main map's count line
        assert set(page.eval_on_selector_all("#es-grid .es-card", "cards => cards.map(c => c.dataset.id)")) \
            == expected
        rows = {r for t in side_map(page)["traces"] if t["name"] != "not selected" for r in t["rows"]}
        page.wait_for_function("n => window.embedscapeMap.selectedRows().length === n", arg=len(expected))
        assert set(page.evaluate("() => window.embedscapeMap.selectedRows()")) == rows  # drawn on the main map

        with np.load(collection.artifact_dir / "model-comparison.npz") as saved:
            order = np.lexsort((saved["ids"], saved["overlap"]))
            different = set(saved["ids"][order[:7]].tolist())
        page.locator("#es-different-count input").fill("7")
        page.locator("#es-select-different").click()
        wait_selected(page, 7)
        assert set(page.eval_on_selector_all("#es-grid .es-card", "cards => cards.map(c => c.dataset.id)")) \
            == different
        page.context.close()
    finally:
        running.stop()


def test_the_review_queue_shows_either_models_scores(browser, two_models) -> None:
    from review import PENDING, QueueFilter, ReviewBook
    from scoring.analyze import analyze_collection

    collection, _ = two_models
    analyze_collection(collection, clusters=None)
    analyze_collection(collection, clusters=None, vector="second")  # beside the default's, not over them
    first = {vector: [item.key for item in ReviewBook(collection, vector).queue("mislabel", QueueFilter(
        statuses=(PENDING,)))] for vector in ("", "second")}
    assert first["second"] and first["second"][0] != (first[""] or [None])[0]  # the two queues differ
    running = start_server(collection)
    try:
        page = open_page(browser, running.url)
        open_tab(page, "Label quality")
        card = page.locator("#es-rq-card .es-rq-card")
        if first[""]:
            page.wait_for_function("k => { const c = document.querySelector('#es-rq-card .es-rq-card');"
                                   " return c && c.dataset.key === k; }", arg=first[""][0])
            assert "vector default" in card.inner_text()
        page.locator("#es-rq-model input").click()
        page.get_by_role("option", name="second-model (vector second)").click()
        page.wait_for_function("k => { const c = document.querySelector('#es-rq-card .es-rq-card');"
                               " return c && c.dataset.key === k; }", arg=first["second"][0])
        assert "Neighbours and scores by second-model (vector second)" in card.inner_text()
        progress = page.locator("#es-rq-progress").inner_text()
        assert f"0 of {len(first['second'])} reviewed" in progress
        page.context.close()
    finally:
        running.stop()
