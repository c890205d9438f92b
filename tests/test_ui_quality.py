"""The Label quality and Model performance tabs: pure helpers on a small store collection with
planted scores, and one browser run (confused pair -> map selection, accept suggestion)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import build_ui_collection
from store import point_id
from ui import performance_page, quality_page
from ui.table import PointTable

PAIR_IDS = [point_id(f"cat/{i:03d}.png") for i in range(5)] + [point_id("dog/000.png")]


def pid(label: str, i: int) -> str:
    return point_id(f"{label}/{i:03d}.png")


def plant_scores(collection) -> None:
    """Scores as `python app.py analyze` would write them, chosen so every ranking is known."""
    columns = collection.columns(["label", "path"])
    ids, payloads = [], []
    mislabels = {pid("cat", i): (s, "dog") for i, s in enumerate((0.9, 0.8, 0.7, 0.6, 0.55))}
    mislabels[pid("cat", 5)] = (0.3, "dog")            # below the default minimum score
    mislabels[pid("dog", 0)] = (0.95, "cat")           # dismissed below
    outliers = {pid("bird", 0): (5.0, False), pid("bird", 1): (3.0, True)}
    groups = {pid("dog", 10): 0, pid("dog", 11): 0, pid("dog", 12): 0, pid("bird", 20): 1, pid("bird", 21): 1}
    for point, label in zip(columns.ids, columns.values["label"]):
        score, suggested = mislabels.get(point, (0.0, label))
        outlier, flagged = outliers.get(point, (1.0, False))
        flags = (["mislabel"] if score >= 0.5 else []) + (["outlier"] if flagged else [])
        ids.append(point)
        payloads.append({"mislabel_score": score, "suggested_label": suggested, "outlier_score": outlier,
                         "uniqueness": 0.5, "duplicate_group": groups.get(point, -1), "exact_duplicate_group": -1,
                         "quality_flags": flags})
    collection.set_payloads(ids, payloads)
    collection.add_tag([pid("dog", 0)], quality_page.DISMISSED_TAG)
    pairs = [{"class_a": "cat", "class_b": "dog", "a_to_b": 5, "b_to_a": 1, "count": 6, "share": 0.075,
              "ids": PAIR_IDS},
             {"class_a": "bird", "class_b": "cat", "a_to_b": 1, "b_to_a": 0, "count": 1, "share": 0.0125,
              "ids": [pid("bird", 3)]}]
    path = collection.artifact_dir / "confused-pairs.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(pairs))
    collection.flush()


@pytest.fixture
def planted(tmp_path: Path):
    store, collection, _ = build_ui_collection(tmp_path)
    plant_scores(collection)
    yield collection
    store.close()


# --- label quality helpers ------------------------------------------------------------------
def test_rankings_and_tables(planted) -> None:
    table = PointTable(planted)
    data = quality_page.load_quality(table)
    assert data.analysed
    rows = quality_page.mislabel_rows(table, data)
    assert table.ids_for_rows(rows) == [pid("cat", i) for i in range(5)]   # dismissed dog/000 left out
    assert len(quality_page.mislabel_rows(table, data, min_score=0.2)) == 6
    assert len(quality_page.mislabel_rows(table, data, min_score=0.2, limit=3)) == 3
    html = quality_page.mislabel_table(table, data, rows)
    assert f'src="/thumb/{pid("cat", 0)}"' in html and html.count("<tr data-id=") == 5
    assert 'class="es-q-suggested">dog<' in html
    choices = quality_page.row_choices(table, rows, data)
    assert choices[0] == ("cat/000.png · cat → dog (0.90)", pid("cat", 0))

    outliers = table.ids_for_rows(quality_page.outlier_rows(table, data, limit=3))
    assert outliers[:2] == [pid("bird", 1), pid("bird", 0)]                # flagged first, then by score
    groups = quality_page.duplicate_groups(data)
    assert [sorted(table.ids_for_rows(g)) for g in groups] == [
        sorted([pid("dog", 10), pid("dog", 11), pid("dog", 12)]), sorted([pid("bird", 20), pid("bird", 21)])]

    pairs = quality_page.load_pairs(planted)
    assert quality_page.pair_choices(pairs)[0] == ("cat ↔ dog (6: 5 → / ← 1)", "0")
    assert set(table.ids_for_rows(quality_page.pair_rows(table, pairs, "0"))) == set(PAIR_IDS)
    assert quality_page.pair_rows(table, pairs, None) is None and quality_page.pair_rows(table, pairs, "9") is None
    assert "<td>cat</td><td>dog</td>" in quality_page.pairs_table(pairs)


def test_actions_write_to_store_and_table(planted) -> None:
    table = PointTable(planted)
    data = quality_page.load_quality(table)
    rows = quality_page.mislabel_rows(table, data)[:2]
    ids = table.ids_for_rows(rows)
    assert quality_page.accept_suggestions(table, data, rows) == 2
    assert [table.label_of(r) for r in rows] == ["dog", "dog"]
    stored = {r.id: r.payload for r in planted.retrieve(ids, ["label", "original_label"])}
    assert all(p["label"] == "dog" and p["original_label"] == "cat" for p in stored.values())
    assert table.restore_labels(rows) == 2
    assert {r.payload["label"] for r in planted.retrieve(ids, ["label"])} == {"cat"}

    chosen = quality_page.chosen_rows(table, [ids[1]], quality_page.mislabel_rows(table, data))
    assert table.edit_tags(chosen, quality_page.DISMISSED_TAG, True) == 1
    assert ids[1] not in table.ids_for_rows(quality_page.mislabel_rows(table, data))

    assert quality_page.keep_one(table, quality_page.duplicate_groups(data)) == (2, 3)
    tagged = {r.id for r in planted.retrieve(planted.ids(), ["tags"]) if "duplicate" in (r.payload.get("tags") or [])}
    assert len(tagged) == 3 and len(tagged & {pid("dog", 10), pid("dog", 11), pid("dog", 12)}) == 2
    assert 'data-size="3"' in quality_page.duplicates_html(table, quality_page.duplicate_groups(data))


def test_unanalysed_collection_says_how_to_analyse(ui_collection) -> None:
    from ui.app import DEFAULT_PAGES, build_app

    _, collection, _ = ui_collection
    titles = [title for title, _ in DEFAULT_PAGES]
    assert "Label quality" in titles and "Model performance" in titles
    assert not quality_page.load_quality(PointTable(collection)).analysed
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
def test_browser_confused_pair_selects_points_and_accept_writes_label(tmp_path: Path) -> None:
    browser_tests = pytest.importorskip("test_ui_browser")

    if not Path(browser_tests.CHROMIUM).exists():
        pytest.skip(f"needs {browser_tests.CHROMIUM}")
    store, collection, _ = build_ui_collection(tmp_path)
    plant_scores(collection)
    try:
        with browser_tests.explorer_page(collection) as page:
            page.get_by_role("tab", name="Label quality").click()
            page.wait_for_selector("#es-q-mislabel-table")

            # Choosing a confused pair selects exactly its points on the map.
            page.get_by_label("cat ↔ dog (6: 5 → / ← 1)").check()
            browser_tests.wait_selected(page, len(PAIR_IDS))
            assert f"{len(PAIR_IDS)} of 120" in page.text_content("#es-count")
            page.wait_for_function("n => window.embedscapeMap.selectedRows().length === n", arg=len(PAIR_IDS))
            rows = page.evaluate("() => window.embedscapeMap.selectedRows()")
            table = PointTable(collection)
            assert set(table.ids_for_rows(sorted(rows))) == set(PAIR_IDS)

            # Accept the suggestion for one chosen row: the store gets the label, keeps the original.
            target = pid("cat", 0)
            page.get_by_label("cat/000.png · cat → dog (0.90)").check()
            page.click("#es-q-mis-accept")
            page.wait_for_function("() => document.querySelector('#es-q-mis-status').innerText.includes('Relabelled 1')")
            stored = collection.retrieve([target], ["label", "original_label"])[0].payload
            assert stored["label"] == "dog" and stored["original_label"] == "cat"
            assert collection.retrieve([pid("cat", 1)], ["label"])[0].payload["label"] == "cat"
            page.wait_for_function("id => { const r = document.querySelector(`#es-q-mislabel-table tr[data-id='${id}']`);"
                                   " return r && r.innerText.includes('relabelled (was cat)'); }", arg=target)
            page.wait_for_function("() => [...document.querySelectorAll('#es-q-mislabel-table img')]"
                                   ".every(i => i.complete && i.naturalWidth && i.getBoundingClientRect().width > 0)")
            page.screenshot(path=str(Path(browser_tests.DOCS) / "screenshot-label-quality.png"), full_page=True)
    finally:
        store.close()
