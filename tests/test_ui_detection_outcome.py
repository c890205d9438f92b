"""The map coloured by a detector run's outcome per box (no browser): the Colour-by-field list
offers `detection_outcome` once a run is imported, and each box's category (found, missed and
why) is the one the evaluation wrote into its payload."""
from __future__ import annotations

from collections import Counter

import pytest

from detection_fixtures import build_detection_ui
from evaluation.evaluate import evaluate_run, write_outcomes
from evaluation.readers import import_detections
from test_ui_browser_detection_run import write_run
from ui.explorer import colour_fields
from ui.figure import FIELD_PREFIX, OUTCOME_NAMES, colouring
from ui.state import MapState
from ui.table import PointTable


@pytest.fixture
def detection(tmp_path):
    store, images, objects, _ = build_detection_ui(tmp_path)
    yield tmp_path, images, objects
    store.close()


def test_colour_by_detection_outcome(detection) -> None:
    base, images, objects = detection
    assert "detection_outcome" not in colour_fields(PointTable(objects))
    write_run(base / "run.csv")
    import_detections(objects, images, base / "run.csv", "run")
    write_outcomes(objects, evaluate_run(objects, images, "run"))
    table = PointTable(objects)
    assert "detection_outcome" in colour_fields(table)
    state = MapState().set_view(table, colour_by=FIELD_PREFIX + "detection_outcome")
    shown = colouring(table, state)
    payloads = {r.id: r.payload for batch in objects.scroll(None) for r in batch}
    expected = Counter(OUTCOME_NAMES[(p["detection_outcome"], p.get("detection_reason") or "")]
                       for p in payloads.values())
    legend = {c.name.rsplit(" (", 1)[0]: c.count for c in shown.categories}
    assert legend == dict(expected) and "found" in legend and any(k.startswith("missed") for k in legend)
    for row, pid in enumerate(table.ids):
        p = payloads[pid]
        assert shown.hover_names[shown.hover_codes[row]] == OUTCOME_NAMES[(p["detection_outcome"],
                                                                           p.get("detection_reason") or "")]


def test_a_boxes_picture_shows_the_runs_predictions_dashed_beside_the_labels(detection) -> None:
    import io

    import numpy as np
    from fastapi.testclient import TestClient
    from PIL import Image

    from indexer.objects import object_point_id
    from ui.app import create_server_app
    from ui.run_overlay import PREDICTION_COLOUR

    base, images, objects = detection
    path = "scenes/01.png"
    (base / "one.csv").write_text('path,label,bbox,score\n'
                                  f'{path},dog,"20,30,100,60",0.8\n{path},cat,"200,150,50,50",0.1\n')
    app = create_server_app(images, objects=objects)
    with TestClient(app) as http:
        before = np.asarray(Image.open(io.BytesIO(http.get(f"/boxes/{object_point_id(path, 1)}").content)).convert("RGB"))
        import_detections(objects, images, base / "one.csv", "one")
        after = np.asarray(Image.open(io.BytesIO(http.get(f"/boxes/{object_point_id(path, 1)}").content)).convert("RGB"))
    assert before.shape == after.shape == (240, 320, 3)  # the picture at its own size: scale 1
    assert tuple(after[30, 22]) == PREDICTION_COLOUR and tuple(before[30, 22]) != PREDICTION_COLOUR  # top edge, a dash
    assert tuple(after[30, 28]) != PREDICTION_COLOUR  # ... and a gap (x 27-29): dashed
    assert (np.all(after[150:200, 200:250] == before[150:200, 200:250]))  # the 0.1 prediction is not drawn
