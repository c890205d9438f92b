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
