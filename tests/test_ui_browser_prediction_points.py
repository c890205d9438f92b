"""A detector's false positives on the Objects map, in headless Chromium, on a real index run
(real mobilenet-v2, the embedded Qdrant engine) after `predictions` and `missing-labels`: the
map coloured by detection_outcome lists them as "false positive: background" beside the found
boxes, and a click on one shows its image with the labelled boxes (solid) and the run's
predictions (dashed, cyan); the prediction point itself is not listed as a labelled box."""
from __future__ import annotations

import json

import numpy as np
import pytest

import app
from detection.boxes import boxes_of_image
from indexer.pipeline import IndexOptions
from scoring.indexing import index_and_analyze
from store import open_store
from detection_fixtures import missing_label_dataset
from test_ui_browser import CHROMIUM, open_page
from test_ui_browser_objects import images_loaded, served_picture, wait_map
from ui.app import start_server
from ui.run_overlay import PREDICTION_COLOUR
from ui.map.share_link_query import encode_ids

pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(not __import__("pathlib").Path(CHROMIUM).exists(), reason=f"needs {CHROMIUM}")


@pytest.fixture(scope="module")
def served(tmp_path_factory, mobilenet):
    base = tmp_path_factory.mktemp("ui-prediction-points")
    root, labels, predictions, _ = missing_label_dataset(base, 6)
    (base / "run.json").write_text(json.dumps(predictions))
    store = open_store(path=str(base / "qdrant"))
    try:
        index_and_analyze(root, store, IndexOptions("m", "mobilenet-v2", labels_file=labels, batch_size=8,
                                                progress=False, analyze=False), mobilenet)
    finally:
        store.close()
    flags = ["--qdrant-path", str(base / "qdrant")]
    assert app.main([*flags, "predictions", "--collection", "m-objects", str(base / "run.json"), "--name", "det"]) == 0
    assert app.main([*flags, "missing-labels", "--collection", "m-objects"]) == 0
    store = open_store(path=str(base / "qdrant"))
    images, objects = store.open("m"), store.open("m-objects")
    running = start_server(images, objects=objects)
    yield running, objects
    running.stop()
    store.close()


def test_false_positives_are_points_on_the_objects_map(served, browser) -> None:
    server, objects = served
    payloads = {r.id: r.payload for batch in objects.scroll(None) for r in batch}
    fps = sorted(pid for pid, p in payloads.items() if p.get("source") == "prediction")
    assert len(fps) == 12
    chosen = fps[0]
    page = open_page(browser, f"{server.url}/objects/?field=detection_outcome&ids={encode_ids([chosen])}")
    wait_map(page)
    legend = page.evaluate("() => window.embedscapeMap.gd.data.map(t => t.name)")
    assert any(name.startswith("false positive: background") and "12" in name for name in legend), legend
    assert any(name.startswith("found") for name in legend), legend

    page.click(f'#es-grid .es-card[data-id="{chosen}"]')
    page.wait_for_selector(f'#es-detail .es-detail[data-id="{chosen}"]')
    images_loaded(page, "#es-detail .es-full")
    src = page.get_attribute("#es-detail .es-full", "src")
    assert src == f"/boxes/{chosen}"
    picture = served_picture(server, src)
    scale = picture.shape[1] / 180   # the picture is drawn at least 480 pixels wide
    x, y, w, h = (int(round(v * scale)) for v in payloads[chosen]["bbox"])
    edge = picture[y - 1:y + 2, x + 2:x + w - 2].astype(int)   # the prediction's top edge, dashed in cyan
    cyan = (np.abs(edge - PREDICTION_COLOUR).max(axis=2) < 60).any(axis=0)   # (a JPEG: colours near)
    assert 0.3 < cyan.mean() < 1.0
    listed = page.eval_on_selector_all("#es-detail .es-box", "bs => bs.map(b => b.dataset.id)")
    labelled = [b.point_id for b in boxes_of_image(objects, payloads[chosen]["image_id"])]
    assert listed == labelled and chosen not in listed and len(labelled) == 2
    assert np.isfinite([payloads[chosen]["x"], payloads[chosen]["y"]]).all()
