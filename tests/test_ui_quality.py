"""The Label quality tab (review queue) and the Model performance tab: helpers on a small
collection analysed for real (three planted label flips), and browser runs of the queue:
keyboard accept, keep, undo, progress, decisions surviving a server restart."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import build_ui_collection
from review import ACCEPTED, KEPT, PENDING, QueueFilter, ReviewBook
from scoring.analyze import analyze_collection
from store import open_store, point_id
from ui import performance_page, quality_page
from ui.table import PointTable

# Each point moved to another class's label: the analysis must flag exactly these three.
FLIPS = {"cat/000.png": "dog", "dog/005.png": "bird", "bird/000.png": "cat"}


def pid(label: str, i: int) -> str:
    return point_id(f"{label}/{i:03d}.png")


def flip_and_analyse(collection) -> None:
    for path, label in FLIPS.items():
        collection.set_payload([point_id(path)], {"label": label})
    analyze_collection(collection, add_metrics=False)


@pytest.fixture
def analysed(tmp_path: Path):
    store, collection, _ = build_ui_collection(tmp_path)
    flip_and_analyse(collection)
    yield collection
    store.close()


@pytest.fixture
def planted(tmp_path: Path):
    """The plain UI collection (labels as built), for the Model performance tab."""
    store, collection, _ = build_ui_collection(tmp_path)
    yield collection
    store.close()


def filters(**changes) -> quality_page.Filters:
    values = dict(issue="mislabel", pair="", label="", low=None, high=None, show=PENDING, widen=False)
    values.update(changes)
    return quality_page.Filters(**values)


# --- label quality helpers ------------------------------------------------------------------
def test_the_analysis_flags_the_flips_and_the_card_shows_the_evidence(analysed) -> None:
    table = PointTable(analysed)
    book = ReviewBook(analysed)
    items = book.queue("mislabel", QueueFilter())
    assert {item.key for item in items} == {point_id(p) for p in FLIPS}
    flipped = next(item for item in items if item.key == pid("dog", 5))
    assert (flipped.label, flipped.suggested) == ("bird", "dog") and flipped.score > 0.5
    session = quality_page.ReviewSession(current=flipped.key)
    view = quality_page.render(table, book, quality_page.NeighbourIndex(_context(analysed, table)), session, filters())
    assert f'data-key="{flipped.key}"' in view.card and 'src="/thumb/' in view.card
    assert '<span class="es-rq-given">bird</span>' in view.card and '<span class="es-rq-suggested">dog</span>' in view.card
    assert view.card.count("<figure") == quality_page.NEIGHBOURS  # the neighbours that voted
    assert view.card.count('data-label="dog"') == quality_page.NEIGHBOURS
    assert 'data-reviewed="0" data-total="3"' in view.progress and "0 of 3 reviewed" in view.progress
    assert "<kbd>A</kbd> accept suggestion" in view.keys


def test_reviewer_accept_keep_undo_and_skip(analysed) -> None:
    table = PointTable(analysed)
    book = ReviewBook(analysed)
    reviewer = quality_page.Reviewer(table, book)
    session = quality_page.ReviewSession()
    first, second, third = [item.key for item in book.queue("mislabel", QueueFilter())]
    item = book.item("mislabel", first)
    message = quality_page.run_command(reviewer, session, filters(), {"action": "accept", "key": first}, "")
    assert message.startswith("Relabelled") and session.current == second
    stored = analysed.retrieve([first], ["label", "original_label", "review"])[0].payload
    assert stored["label"] == item.suggested == table.label_of(table.row_of[first])
    assert stored["review"]["mislabel"]["decision"] == ACCEPTED and stored["original_label"] == item.label
    quality_page.run_command(reviewer, session, filters(), {"action": "skip", "key": second}, "")
    assert session.current == third
    quality_page.run_command(reviewer, session, filters(), {"action": "keep", "key": third}, "")
    assert book.progress("mislabel", QueueFilter()) == (2, 3)
    assert book.item("mislabel", third).status == KEPT
    # U undoes the last decision (keep), then the one before (accept: the label comes back).
    quality_page.run_command(reviewer, session, filters(), {"action": "undo", "key": ""}, "")
    assert book.item("mislabel", third).status == PENDING and session.current == third
    quality_page.run_command(reviewer, session, filters(), {"action": "undo", "key": ""}, "")
    restored = analysed.retrieve([first], ["label", "original_label", "review"])[0].payload
    assert restored == {"label": item.label} and table.label_of(table.row_of[first]) == item.label
    assert book.progress("mislabel", QueueFilter()) == (0, 3)
    # A tag decision tags the point; its undo removes the tag.
    quality_page.run_command(reviewer, session, filters(), {"action": "tag", "key": second}, "check me")
    assert "check me" in table.tags_of([table.row_of[second]])[0]
    reviewer.undo("mislabel", [second])
    assert "check me" not in table.tags_of([table.row_of[second]])[0]
    assert quality_page.run_command(reviewer, session, filters(), {"action": "tag", "key": second}, "a\tb")\
        .startswith("invalid tag")


def test_duplicate_group_keep_one_tag_the_rest(analysed) -> None:
    group = [pid("cat", 10), pid("cat", 11), pid("cat", 12)]
    analysed.set_payload(group, {"duplicate_group": 0, "quality_flags": ["duplicate"]})
    table = PointTable(analysed)
    book = ReviewBook(analysed)
    reviewer = quality_page.Reviewer(table, book)
    [item] = book.queue("duplicate", QueueFilter())
    session = quality_page.ReviewSession()
    dup = filters(issue="duplicate")
    quality_page.run_command(reviewer, session, dup, {"action": "choose", "key": item.key, "id": group[1]}, "")
    card = quality_page.render(table, book, quality_page.NeighbourIndex(_context(analysed, table)), session, dup).card
    assert f'data-keep="{group[1]}"' in card
    quality_page.run_command(reviewer, session, dup, {"action": "keep", "key": item.key}, "")
    tags = dict(zip(group, table.tags_of(table.rows_for_ids(group))))
    assert tags[group[1]] == [] and tags[group[0]] == ["duplicate"] and tags[group[2]] == ["duplicate"]
    assert book.progress("duplicate", QueueFilter()) == (1, 1)
    reviewer.undo("duplicate", list(item.ids))
    assert all(t == [] for t in table.tags_of(table.rows_for_ids(group)))


def test_filters_of_reads_the_controls() -> None:
    current = quality_page.filters_of("mislabel", "cat|dog", "", " 0.5 ", "x", "all", True)
    flt = current.queue_filter()
    assert flt.pair == ("cat", "dog") and flt.score_range == (0.5, None) and flt.statuses is None
    assert flt.min_score == 0.5 and quality_page.filters_of("outlier", None, None, "", "", None, False)\
        .queue_filter().statuses == (PENDING,)


def _context(collection, table):
    """Just what NeighbourIndex reads from the AppContext."""
    from types import SimpleNamespace

    return SimpleNamespace(collection=collection, table=table)


def test_unanalysed_collection_says_how_to_analyse(ui_collection) -> None:
    from ui.app import DEFAULT_PAGES, build_app

    _, collection, _ = ui_collection
    titles = [title for title, _ in DEFAULT_PAGES]
    assert "Label quality" in titles and "Model performance" in titles
    demo = build_app(collection)
    config = json.dumps(demo.config, default=str)
    assert "python app.py analyze --collection ui" in config
    assert "python app.py predictions --collection ui FILE" in config


# --- model performance helpers -------------------------------------------------------------
def test_performance_report_selection_and_dataset(planted) -> None:
    columns = planted.columns(["label"])
    # Every cat predicted "cat" except cat/000..009 predicted "dog"; dogs and birds right.
    ids = list(columns.ids)
    wrong = {pid("cat", i) for i in range(10)}
    planted.set_payloads(ids, [{"prediction": "dog" if i in wrong else label}
                               for i, label in zip(ids, columns.values["label"])])
    table = PointTable(planted)
    predictions = performance_page.load_predictions(table)
    everything = performance_page.report_for(table, predictions, None)
    assert everything.accuracy == pytest.approx(110 / 120)
    cat = everything.classes.index("cat")
    assert everything.recall[cat] == pytest.approx(30 / 40) and everything.confusion[cat].sum() == 40
    cats = np.flatnonzero(table.mask(labels=["cat"]))
    selection = performance_page.report_for(table, predictions, cats)
    assert selection.accuracy == pytest.approx(0.75)
    html = performance_page.report_html(selection, everything, True)
    assert 'data-accuracy="0.750000"' in html and "F1 (dataset)" in html
    assert performance_page.confusion_figure(selection, "t") is not None
    # A relabel in another tab counts at once: cat/000 is now a dog, so the model was right.
    table.relabel(table.rows_for_ids([pid("cat", 0)]), "dog")
    assert performance_page.report_for(table, predictions, None).accuracy == pytest.approx(111 / 120)


def test_no_predictions(ui_collection) -> None:
    _, collection, _ = ui_collection
    assert performance_page.load_predictions(PointTable(collection)) is None
    assert "No point has a prediction" in performance_page.report_html(None, None, False)


# --- the browser --------------------------------------------------------------------------------
def _open_queue(browser_tests, chromium, url: str):
    page = browser_tests.open_page(chromium, url)
    browser_tests.open_tab(page, "Label quality")
    page.wait_for_selector(".es-rq-card[data-key]:not([data-key=''])")
    return page


def _progress(page) -> tuple[int, int]:
    values = page.eval_on_selector(".es-rq-progress", "p => [+p.dataset.reviewed, +p.dataset.total]")
    return values[0], values[1]


def _wait_progress(page, reviewed: int) -> None:
    page.wait_for_function("n => { const p = document.querySelector('.es-rq-progress');"
                           " return p && +p.dataset.reviewed === n; }", arg=reviewed)


def _card_key(page) -> str:
    return page.eval_on_selector(".es-rq-card", "c => c.dataset.key")


def test_browser_review_queue_keyboard_undo_and_restart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    browser_tests = pytest.importorskip("test_ui_browser")
    if not Path(browser_tests.CHROMIUM).exists():
        pytest.skip(f"needs {browser_tests.CHROMIUM}")
    from ui.app import start_server

    monkeypatch.setenv("EMBEDSCAPE_ARTIFACTS", str(tmp_path / "artifacts"))
    store, collection, _ = build_ui_collection(tmp_path)
    flip_and_analyse(collection)
    running = start_server(collection)
    with browser_tests.playwright_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=browser_tests.CHROMIUM, headless=True, args=browser_tests.ARGS)
        try:
            page = _open_queue(browser_tests, chromium, running.url)
            assert _progress(page) == (0, 3)
            assert "Keys:" in page.text_content("#es-rq-keys")
            first = _card_key(page)
            before = collection.retrieve([first], ["label", "suggested_label"])[0].payload

            # A: accept. The store gets the suggested label and keeps the original; the map recolours.
            page.keyboard.press("a")
            _wait_progress(page, 1)
            stored = collection.retrieve([first], ["label", "original_label", "review"])[0].payload
            assert stored["label"] == before["suggested_label"] and stored["original_label"] == before["label"]
            assert stored["review"]["mislabel"]["decision"] == "accepted"
            assert "1 of 3 reviewed" in page.text_content(".es-rq-progress")
            second = _card_key(page)
            assert second != first

            # Typing in a text box is not a shortcut: "k" in the tag box decides nothing.
            page.click("#es-rq-tag textarea, #es-rq-tag input")
            page.keyboard.type("k")
            page.wait_for_timeout(500)
            assert _progress(page) == (1, 3) and _card_key(page) == second
            page.click(".es-rq-progress")  # leave the text box

            # K: keep the label; the button works as the key does.
            page.keyboard.press("k")
            _wait_progress(page, 2)
            assert collection.retrieve([second], ["review"])[0].payload["review"]["mislabel"]["decision"] == "kept"
            third = _card_key(page)
            page.click(f".es-rq-card button[data-action='keep'][data-key='{third}']")
            _wait_progress(page, 3)
            assert "Nothing left to review" in page.text_content("#es-rq-card")

            # U: undo the last decision; the card is back.
            page.keyboard.press("u")
            _wait_progress(page, 2)
            assert _card_key(page) == third and "review" not in collection.retrieve([third], ["review"])[0].payload
            page.fill("#es-rq-tag textarea, #es-rq-tag input", "mislabeled")
            page.wait_for_function("() => [...document.querySelectorAll('.es-rq-card img, .es-rq-strip img')]"
                                   ".every(i => i.complete && i.naturalWidth > 0)")
            page.evaluate("() => window.scrollTo(0, 0)")
        finally:
            running.stop()
            store.close()

        # Restart: a new server on the reopened store shows the same decisions.
        store = open_store(path=str(tmp_path / "qdrant"))
        try:
            running = start_server(store.open("ui"))
            page = _open_queue(browser_tests, chromium, running.url)
            assert _progress(page) == (2, 3) and _card_key(page) == third
            quality_filter_show(page, "Reviewed")
            page.wait_for_function("k => { const c = document.querySelector('.es-rq-card');"
                                   " return c && c.dataset.status !== 'pending'; }", arg=third)
            assert _card_key(page) in (first, second)
            running.stop()
        finally:
            store.close()
            chromium.close()


def quality_filter_show(page, choice: str) -> None:
    """Pick `choice` in the queue's Show dropdown."""
    page.click("#es-rq-show input")
    page.get_by_role("option", name=choice, exact=True).click()


def test_browser_review_queue_of_boxes_shows_crop_image_and_box_neighbours(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """On a detection dataset's Objects explorer the queue's card is a box: its crop, its whole
    image with every box drawn (as the detail view shows it), and boxes as the evidence."""
    browser_tests = pytest.importorskip("test_ui_browser")
    if not Path(browser_tests.CHROMIUM).exists():
        pytest.skip(f"needs {browser_tests.CHROMIUM}")
    import httpx

    from detection_fixtures import build_detection_ui
    from indexer.objects import object_point_id
    from ui.app import start_server

    monkeypatch.setenv("EMBEDSCAPE_ARTIFACTS", str(tmp_path / "artifacts"))
    store, images, objects, _ = build_detection_ui(tmp_path / "det")
    flipped = object_point_id("scenes/05.png", 1)
    true_label = objects.retrieve([flipped], ["label"])[0].payload["label"]
    wrong = next(c for c in ("cat", "dog", "bird") if c != true_label)
    objects.set_payload([flipped], {"label": wrong})
    analyze_collection(objects, add_metrics=False)
    box_ids = set(objects.ids())
    running = start_server(images, objects=objects)
    try:
        with browser_tests.playwright_api.sync_playwright() as p:
            chromium = p.chromium.launch(executable_path=browser_tests.CHROMIUM, headless=True,
                                         args=browser_tests.ARGS)
            try:
                page = _open_queue(browser_tests, chromium, running.url + "/objects/")
                assert _card_key(page) == flipped and _progress(page) == (0, 1)
                card = page.locator(".es-rq-card")
                assert card.locator(f"img.es-rq-image[src='/thumb/{flipped}']").count() == 1  # the crop
                assert card.locator(f"img.es-rq-context[src='/boxes/{flipped}']").count() == 1  # its image
                assert page.text_content(".es-rq-given") == wrong
                assert page.text_content(".es-rq-suggested") == true_label
                neighbours = page.eval_on_selector_all(".es-rq-evidence img", "imgs => imgs.map(i => i.dataset.id)")
                assert len(neighbours) == quality_page.NEIGHBOURS and set(neighbours) <= box_ids - {flipped}
                page.wait_for_function("() => [...document.querySelectorAll('.es-rq-card img')]"
                                       ".every(i => i.complete && i.naturalWidth > 0)")
                picture = httpx.get(f"{running.url}/boxes/{flipped}", timeout=20)
                assert picture.status_code == 200 and picture.headers["content-type"].startswith("image/")

                page.keyboard.press("a")
                _wait_progress(page, 1)
                stored = objects.retrieve([flipped], ["label", "original_label", "review"])[0].payload
                assert (stored["label"], stored["original_label"]) == (true_label, wrong)
                assert stored["review"]["mislabel"]["decision"] == ACCEPTED
            finally:
                chromium.close()
    finally:
        running.stop()
        store.close()
