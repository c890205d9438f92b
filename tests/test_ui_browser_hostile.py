"""Hostile strings reach the page as text, never as markup (headless Chromium).

A collection whose labels, file names, tags, subset names, a numeric field's name, cluster
names (from its labels), predictions and review records are HTML and Markdown meant to create
elements (`<a href>` to a phishing page, `<img onerror>` that would set `window.pwned`, `</script>`,
`<b>`, a Markdown link), and a link whose every parameter carries the same. Every tab of the
image explorer and of the Objects explorer is opened; after each step no element may have been
made from those strings, and the strings are on the page as text.
"""
from __future__ import annotations

import csv
from pathlib import Path
from urllib.parse import urlencode

import httpx
import numpy as np
import pytest
from PIL import Image

from detection_fixtures import build_detection_ui
from indexer.predictions import import_predictions
from review import KEPT, TAGGED, ReviewBook
from scoring.analyze import analyze_collection
from store import open_store, point_id
from store.schema import LABEL, LABELS, MISLABEL_FLAG, QUALITY_FLAGS, REVIEW, SUBSETS, TAGS
from test_ui_browser import CHROMIUM, drag, hover_card, open_page, open_tab, to_client, wait_selected
from ui.app import start_server

pytest.importorskip("playwright.sync_api")  # the browser fixture (tests/conftest.py) drives it
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"needs {CHROMIUM}")

IMG = '<img src=x onerror="window.pwned=1">'
LINK = '<a href="evil.html">Session expired. Log in again</a>'
SCRIPT = '</script><b class="evil">[bold](evil.html)</b>'
LABELS3 = (IMG, LINK, SCRIPT)
CENTRES = ((0.0, 0.0), (10.0, 0.0), (5.0, 8.0))
FIELD = '<b class="evil">score</b>'  # a numeric payload field another tool wrote
SUBSET = '<a href="evil.html">subset</a>'  # written into the payloads by another tool
PER_LABEL = 24
DIM = 16

# Elements the strings above would make, were they markup: none may exist.
INJECTED_JS = """() => {
  const found = [];
  for (const el of document.querySelectorAll('*')) {
    for (const a of el.attributes) {
      const v = a.value;
      if (a.name.startsWith('on') && v.includes('pwned')) found.push(`${el.tagName} ${a.name}`);
      if (a.localName === 'href' && v.includes('evil')) found.push(`${el.tagName} href=${v}`);
      if (a.name === 'src' && v === 'x') found.push(`${el.tagName} src=x`);
      if (a.name === 'class' && v.split(/\\s+/).includes('evil')) found.push(`${el.tagName} class=evil`);
    }
  }
  if (window.pwned !== undefined) found.push('window.pwned');
  return found;
}"""


def assert_no_markup(page, where: str) -> None:
    page.wait_for_timeout(300)  # an onerror runs once the image fails: give it the chance
    assert page.evaluate(INJECTED_JS) == [], where


def wait_text(page, selector: str, text: str) -> None:
    page.wait_for_function("([s, t]) => { const e = document.querySelector(s); return e && e.innerText.includes(t); }",
                           arg=[selector, text])


def wait_legend(page, text: str) -> None:
    """Wait for a legend entry (Plotly's text, as drawn) starting with `text`."""
    page.wait_for_function("t => [...document.querySelectorAll('.es-map .legend .legendtext')]"
                           ".some(e => e.textContent.startsWith(t))", arg=text)


def pick(page, dropdown: str, option: str) -> None:
    """Choose `option` in the Gradio dropdown `dropdown` (its elem_id selector)."""
    page.click(f"{dropdown} input")
    page.get_by_role("option", name=option, exact=True).click()


def colour_by(page, mode: str) -> None:
    page.locator("#es-colour").get_by_label(mode, exact=True).check()


def hostile_path(i: int) -> str:
    """A file name with markup in it (no '/', which a file name cannot hold)."""
    return f"{i:03d} {IMG} 'quoted' \"double\" <b class=evil>.png"


def build_hostile(base: Path):
    """(store, collection): three hostile labels on known grids, hostile file names on disk,
    tags, a subset and a numeric field, analysed (clusters named by the hostile labels, likely
    mislabels suggesting them), predictions that are hostile labels, a review record with a
    hostile tag."""
    rng = np.random.default_rng(0)
    root = base / "images"
    root.mkdir(parents=True)
    store = open_store(path=str(base / "qdrant"))
    collection = store.create("hostile", DIM, {"source_root": str(root), "model": "test"})
    collection.index_fields([LABEL, TAGS])
    ids, vectors, payloads = [], [], []
    for index, label in enumerate(LABELS3):
        for i in range(PER_LABEL):
            n = index * PER_LABEL + i
            path = hostile_path(n)
            Image.new("RGB", (32, 32), (60 * index + 40, 90, 200 - 50 * index)).save(root / path)
            vector = rng.normal(size=DIM) * 0.3
            vector[index] += 3.0
            given = LABELS3[(index + 1) % 3] if i < 2 else label  # two likely mislabels per class
            ids.append(point_id(path))
            vectors.append(vector)
            payloads.append({"path": path, LABEL: given, LABELS: [given], TAGS: [IMG, LINK] if i % 3 == 0 else [],
                             SUBSETS: [SUBSET] if i < 5 else [], FIELD: float(i), "split": "train",
                             "x": CENTRES[index][0] + (i % 6) * 0.25, "y": CENTRES[index][1] + (i // 6) * 0.25,
                             "width": 32, "height": 32, "sha1": f"{n:040d}"})
    collection.upsert(ids, np.asarray(vectors, dtype=np.float32), payloads)
    collection.flush()
    analyze_collection(collection, add_metrics=False)
    file = base / "predictions.csv"
    with file.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["path", "prediction"])
        writer.writerows([p["path"], LABELS3[k % 3]] for k, p in enumerate(payloads))
    import_predictions(collection, file)
    flagged = [r.id for batch in collection.scroll([QUALITY_FLAGS]) for r in batch
               if MISLABEL_FLAG in (r.payload.get(QUALITY_FLAGS) or [])]
    assert flagged, "the analysis flags the swapped labels"
    collection.add_tag(flagged[:1], SCRIPT)
    book = ReviewBook(collection)
    book.decide(MISLABEL_FLAG, flagged[:1], TAGGED, tag=SCRIPT)
    book.decide(MISLABEL_FLAG, flagged[1:2], KEPT)
    review = collection.retrieve(flagged[1:2], [REVIEW])[0].payload[REVIEW]  # another tool's decision:
    decided = {**review[MISLABEL_FLAG], "decision": LINK}
    collection.set_payload(flagged[1:2], {REVIEW: {**review, MISLABEL_FLAG: decided}})
    collection.update_metadata(model=f"model {LINK}")  # after the analysis: no model of that name is loaded
    collection.flush()
    return store, collection


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    store, collection = build_hostile(tmp_path_factory.mktemp("hostile"))
    yield collection
    store.close()


def test_hostile_link_parameters_are_warned_about_as_text(browser, hostile) -> None:
    running = start_server(hostile)
    try:
        query = urlencode([("colour", LINK), ("field", IMG), ("label", LINK + "x"), ("label", SCRIPT + "x"),
                           ("tag", IMG + "x"), ("subset", SUBSET + "x"), ("ids", LINK), ("view", IMG),
                           ("selection", SCRIPT)])
        page = open_page(browser, f"{running.url}/?{query}")
        wait_text(page, "body", "Part of this link could not be applied")
        wait_text(page, "body", "That selection link has expired")
        text = " ".join(page.locator('[data-testid="toast-body"]').all_inner_texts())
        for shown in (LINK, LINK + "x", SCRIPT + "x", IMG + "x", SUBSET + "x"):
            assert shown in text, shown
        assert_no_markup(page, "the link's warning")

        # Names the collection has: applied, and shown as text (legend, count line, filters).
        # (The subset, written by another tool, has a name embedscape refuses: said, as text.)
        query = urlencode([("field", FIELD), ("label", LINK), ("label", IMG), ("tag", IMG), ("subset", SUBSET)])
        page = open_page(browser, f"{running.url}/?{query}")
        wait_text(page, "body", f"invalid subset name '{SUBSET}'")
        wait_legend(page, FIELD)
        legend = " ".join(page.locator(".es-map .legend .legendtext").all_text_contents())
        assert FIELD in legend
        assert_no_markup(page, "a link naming hostile label, tag, field and subset")
    finally:
        running.stop()


def test_hostile_labels_tags_and_paths_are_text_in_every_tab(browser, hostile) -> None:
    running = start_server(hostile)
    try:
        for route in ("image", "thumb"):  # a file with markup in its name: served as the image it is
            served = httpx.get(f"{running.url}/{route}/{point_id(hostile_path(0))}", timeout=20)
            assert served.status_code == 200 and served.headers["content-type"] == "image/png"
            assert served.headers["x-content-type-options"] == "nosniff"
        page = open_page(browser, running.url)
        colour_by(page, "Label")
        wait_legend(page, LINK)
        legend = " ".join(page.locator(".es-map .legend .legendtext").all_text_contents())
        assert all(label in legend for label in LABELS3)
        assert LINK in page.inner_text("#es-dist") and IMG in page.inner_text("#es-grid")
        assert_no_markup(page, "Explorer: legend, grid, distribution")
        page.click("#es-filter-labels input")  # a dropdown's options: the labels
        page.get_by_role("option", name=LINK, exact=True).wait_for()
        assert_no_markup(page, "Explorer: the labels dropdown")
        page.keyboard.press("Escape")
        card = hover_card(page, *to_client(page, CENTRES[1][0] + 0.5, CENTRES[1][1]), nudge=3)
        assert card["label"] == LINK  # the hover card's label, as text
        colour_by(page, "Cluster")  # the clusters' names (their labels) written on the map
        page.wait_for_function("() => document.querySelectorAll('.es-names .es-name').length > 0")
        assert any(label in page.inner_text(".es-names") for label in LABELS3)
        assert_no_markup(page, "Explorer: hover card, cluster names on the map")

        drag(page, [(-0.2, -0.2), (1.5, 1.5)])  # the first label's grid
        wait_selected(page, PER_LABEL)
        page.locator("#es-grid .es-card").first.click()
        wait_text(page, "#es-detail", "'quoted' \"double\" <b class=evil>.png")
        page.locator("#es-tag input").fill(LINK + " new")
        page.click("#es-tag-add")
        wait_text(page, "#es-tag-status", f"Added '{LINK} new' to")
        colour_by(page, "Tag")
        assert_no_markup(page, "Explorer: detail card, tagging, tag legend")

        open_tab(page, "Metrics")
        page.wait_for_selector("#es-metric-stats .es-metric-stats")
        pick(page, "#es-metric", FIELD)
        page.wait_for_function("f => { const t = document.querySelector('#es-metric-plot .gtitle');"
                               " return t && t.textContent === f; }", arg=FIELD)  # the histogram's title
        page.locator("#es-relabel-label input").fill(SCRIPT + " weak")
        page.locator("#es-relabel-label input").press("Enter")
        page.click("#es-relabel")
        wait_text(page, "#es-relabel-status", f"Set label '{SCRIPT} weak'")
        assert_no_markup(page, "Metrics")

        open_tab(page, "Filter & Export")
        wait_text(page, "#es-x-subsets", SUBSET)
        pick(page, "#es-x-tags-any", IMG)
        wait_text(page, "#es-x-count", IMG)  # the count line names the filter
        assert_no_markup(page, "Filter & Export")

        open_tab(page, "Label quality")
        page.wait_for_selector("#es-rq-card .es-rq-labels")
        assert any(label in page.inner_text("#es-rq-card") for label in LABELS3)
        assert_no_markup(page, "Label quality")
        page.click("#es-rq-show input")
        page.get_by_role("option", name="Reviewed", exact=True).click()
        wait_text(page, "#es-rq-progress", LINK)  # the progress line counts that decision by its name
        page.wait_for_function("t => { const c = document.querySelector('#es-rq-card .es-rq-status');"
                               " return c && (c.innerText.includes(t[0]) || c.innerText.includes(t[1])); }",
                               arg=[SCRIPT, LINK])
        assert_no_markup(page, "Label quality: reviewed cards, a tool's decision")

        open_tab(page, "Clusters")
        page.wait_for_selector("#es-cl-list tr[data-cluster]")
        assert any(label in page.inner_text("#es-cl-list") for label in LABELS3)
        assert_no_markup(page, "Clusters")

        open_tab(page, "Model performance")
        page.wait_for_selector("#es-perf-table")
        page.wait_for_selector("#es-perf-plot .xtick")
        assert LINK in page.inner_text("#es-perf-table")
        ticks = page.locator("#es-perf-plot .xtick text").all_text_contents()
        assert set(LABELS3) <= set(ticks), ticks  # the confusion matrix's axes, as text
        assert_no_markup(page, "Model performance")
        page.context.close()
    finally:
        running.stop()


def test_hostile_box_labels_and_tags_are_text_in_the_objects_explorer(browser, tmp_path) -> None:
    store, images, objects, _ = build_detection_ui(tmp_path)
    try:
        boxes = objects.columns([LABEL])
        hostile_of = {}
        for pid, label in zip(boxes.ids, boxes.values[LABEL]):
            hostile_of.setdefault(label, LABELS3[len(hostile_of) % 3])
            objects.set_payload([pid], {LABEL: hostile_of[label], LABELS: [hostile_of[label]], TAGS: [LINK]})
        objects.flush()
        running = start_server(images, objects=objects)
        try:
            page = open_page(browser, running.url + "/objects/")
            colour_by(page, "Label")
            wait_legend(page, LINK)
            assert IMG in page.inner_text("#es-grid") or LINK in page.inner_text("#es-grid")
            page.locator("#es-grid .es-card").first.click()
            page.wait_for_selector("#es-detail .es-detail-boxlist")
            assert_no_markup(page, "Objects explorer")
            open_tab(page, "Duplicate boxes")
            page.wait_for_selector("#es-db-groups .es-db-group")
            assert_no_markup(page, "Duplicate boxes")
            for tab in ("Metrics", "Filter & Export", "Label quality", "Clusters", "Model performance"):
                open_tab(page, tab)
                page.wait_for_timeout(500)
                assert_no_markup(page, f"Objects: {tab}")
            page.context.close()

            query = urlencode([("colour", IMG), ("field", LINK), ("label", LINK), ("label", SCRIPT + "x"),
                               ("tag", IMG), ("subset", SUBSET), ("ids", SCRIPT), ("view", LINK), ("selection", IMG)])
            page = open_page(browser, f"{running.url}/objects/?{query}")
            wait_text(page, "body", "Part of this link could not be applied")
            wait_legend(page, LINK)  # the label the link names is applied
            text = " ".join(page.locator('[data-testid="toast-body"]').all_inner_texts())
            assert SCRIPT + "x" in text and SUBSET in text
            assert_no_markup(page, "Objects explorer: a hostile link")
            page.context.close()
        finally:
            running.stop()
    finally:
        store.close()
