"""The Model performance tab of the object explorer with a detector run, in headless Chromium: COCO
metrics of all images, then of a box selection's images beside them, equal to the evaluation's
own numbers for those images (which equal pycocotools', tests/test_evaluation_detections.py);
the confidence slider moves the counts; a box's string from the run never becomes markup."""
from __future__ import annotations

import numpy as np
import pytest

from detection_fixtures import UI_BOX_CENTRES, build_detection_ui, ui_detection_boxes
from evaluation.evaluate import evaluate_run, write_outcomes
from evaluation.readers import import_detections
from test_ui_browser import CHROMIUM, drag, inside_box, open_page, open_tab, wait_selected
from ui.app import start_server

pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(not __import__("pathlib").Path(CHROMIUM).exists(), reason=f"needs {CHROMIUM}")


def write_run(path, seed: int = 0) -> None:
    """A detector's CSV: most boxes found (jittered), some missed, some called another class,
    background boxes; scores spread so that the slider matters."""
    rng = np.random.default_rng(seed)
    rows = ["path,label,bbox,score"]
    classes = ("cat", "dog", "bird")
    for image, boxes in ui_detection_boxes().items():
        for label, (x, y, w, h) in boxes:
            draw = rng.random()
            if draw < 0.15:
                continue  # missed
            name = label if draw < 0.85 else classes[(classes.index(label) + 1) % 3]
            dx, dy = rng.normal(0, 3, 2)
            rows.append(f'{image},{name},"{x + dx:.2f},{y + dy:.2f},{w},{h}",{rng.uniform(0.3, 1):.3f}')
        rows.append(f'{image},dog,"{rng.uniform(0, 200):.1f},{rng.uniform(0, 150):.1f},30,30",{rng.random():.3f}')
    path.write_text("\n".join(rows) + "\n")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    base = tmp_path_factory.mktemp("ui-detection-run")
    store, images, objects, _ = build_detection_ui(base)
    write_run(base / "detector.csv")
    import_detections(objects, images, base / "detector.csv", "detector")
    write_outcomes(objects, evaluate_run(objects, images, "detector"))
    running = start_server(images, objects=objects)
    yield running, objects
    running.stop()
    store.close()


def shown(page, metric: str, column: int) -> float:
    return float(page.get_attribute(f'#es-det-summary tr[data-metric="{metric}"] td:nth-child({column + 2})',
                                    "data-value"))


def test_performance_tab_shows_the_selection_beside_all_images(served, browser) -> None:
    server, objects = served
    evaluation = evaluate_run(objects, None, "detector")
    page = open_page(browser, server.url + "/objects/")
    open_tab(page, "Model performance")
    page.wait_for_selector('#es-det-summary tr[data-metric="map"]')
    everything = evaluation.report(None, 0.5)
    assert shown(page, "map", 0) == pytest.approx(everything["map"], abs=1e-6)
    assert shown(page, "tp", 0) == everything["tp"] and shown(page, "fp", 0) == everything["fp"]
    assert 0.2 < everything["map"] < 0.95

    cx, cy = UI_BOX_CENTRES["cat"]
    drag(page, [(cx - 0.25, cy - 0.25), (cx + 1.3, cy + 0.8)])
    chosen = inside_box(objects, cx - 0.25, cx + 1.3, cy - 0.25, cy + 0.8)
    wait_selected(page, len(chosen))
    page.wait_for_selector("#es-det-summary th:has-text('selection')")
    images = evaluation.images_of(sorted(chosen))
    selection = evaluation.report(images, 0.5)
    assert 0 < selection["images"] < everything["images"]
    assert shown(page, "map", 0) == pytest.approx(selection["map"], abs=1e-6)
    assert shown(page, "map_50", 0) == pytest.approx(selection["map_50"], abs=1e-6)
    assert shown(page, "map", 1) == pytest.approx(everything["map"], abs=1e-6)
    assert shown(page, "fn", 0) == selection["fn"]
    rows = page.eval_on_selector_all("#es-det-classes tr[data-class]", "rows => rows.map(r => r.dataset.class)")
    assert set(rows) <= {"cat", "dog", "bird"} and rows
    metrics = page.eval_on_selector_all("#es-det-failures-table tr[data-metric]", "rows => rows.map(r => r.dataset.metric)")
    assert "area" in metrics and "relative_area" in metrics
    assert page.locator("#es-det-pr .js-plotly-plot").count() == 1
    assert page.locator("#es-det-confusion .js-plotly-plot").count() == 1

    # The confidence slider: at 0.9 fewer predictions count.
    strict = evaluation.report(images, 0.9)
    slider = page.locator("#es-det-confidence input[type=number]")
    slider.fill("0.9")
    slider.press("Enter")
    page.wait_for_function(
        "n => { const c = document.querySelector('#es-det-summary tr[data-metric=\"tp\"] td:nth-child(2)');"
        " return c && c.dataset.value === String(n); }", arg=strict["tp"])
    assert shown(page, "fp", 0) == strict["fp"] and strict["tp"] < selection["tp"]
