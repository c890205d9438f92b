"""Colouring the map by a numeric field (metrics, scores, prediction correctness) and sorting
the grid by one, on a small real store collection."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import build_ui_collection
from ui.explorer import colour_fields, ordered
from ui.figure import FIELD_PREFIX, HIDDEN, colouring
from ui.state import MapState
from ui.table import PointTable


@pytest.fixture
def scored(tmp_path: Path):
    store, collection, _ = build_ui_collection(tmp_path, per_label=20)
    columns = collection.columns(["label"])
    ids = [str(i) for i in columns.ids]
    brightness = {pid: k / len(ids) for k, pid in enumerate(sorted(ids))}
    payloads = [{"brightness": brightness[pid], "prediction": "cat",
                 "prediction_correct": label == "cat"} for pid, label in zip(ids, columns.values["label"])]
    collection.set_payloads(ids, payloads)
    missing = sorted(ids)[0]  # one point without a brightness
    collection.delete_payload_keys([missing], ["brightness"])
    collection.flush()
    yield PointTable(collection), brightness, missing
    store.close()


def test_colour_by_metric_uses_ordered_quantile_bins(scored) -> None:
    table, brightness, missing = scored
    state = MapState().set_view(table, colour_by=FIELD_PREFIX + "brightness")
    colours = colouring(table, state)
    values = table.numeric("brightness")
    names = [c.name for c in colours.categories]
    assert names[-1].startswith("brightness: no value (1)")
    assert colours.codes[table.row_of[missing]] == len(names) - 1
    # Brighter points never sit in a lower bin than darker ones.
    finite = np.isfinite(values)
    order = np.argsort(values[finite])
    assert np.all(np.diff(colours.codes[finite][order].astype(int)) >= 0)
    assert sum(c.count for c in colours.categories) == len(table)
    assert len(colours.categories) == 9  # 8 quantile bins + "no value"


def test_colour_by_prediction_correctness_is_yes_no(scored) -> None:
    table, _, _ = scored
    assert "prediction_correct" in colour_fields(table) and "brightness" in colour_fields(table)
    state = MapState().set_view(table, colour_by=FIELD_PREFIX + "prediction_correct")
    colours = colouring(table, state)
    counts = {c.name.split(" (")[0]: c.count for c in colours.categories}
    cats = sum(1 for row in range(len(table)) if table.label_of(row) == "cat")
    assert counts == {"prediction_correct: no": len(table) - cats, "prediction_correct: yes": cats,
                      "prediction_correct: no value": 0}


def test_filtered_points_stay_hidden_when_coloured_by_field(scored) -> None:
    table, _, _ = scored
    state = MapState().set_view(table, colour_by=FIELD_PREFIX + "brightness", labels=["dog"])
    colours = colouring(table, state)
    hidden = colours.codes == HIDDEN
    assert hidden.sum() == sum(1 for row in range(len(table)) if table.label_of(row) != "dog")


def test_grid_sorts_by_metric_both_ways_missing_last(scored) -> None:
    table, brightness, missing = scored
    rows = np.arange(len(table))
    state = MapState()
    assert np.array_equal(ordered(table, state, rows, None)[0], rows)  # no sort: selection order
    state.sort_field = "brightness"
    up, _ = ordered(table, state, rows, None)
    state.sort_descending = True
    down, _ = ordered(table, state, rows, None)
    expected = sorted((pid for pid in brightness if pid != missing), key=brightness.get)
    assert table.ids_for_rows(up[:-1]) == expected and table.ids_for_rows(down[:-1]) == expected[::-1]
    assert table.ids_for_rows(up[-1:]) == [missing] == table.ids_for_rows(down[-1:])
    scores = np.arange(len(rows), dtype=np.float32)
    sorted_rows, sorted_scores = ordered(table, state, rows, scores)
    assert np.array_equal(sorted_scores, scores[np.argsort(np.argsort(rows))][sorted_rows])


def test_two_subsets_compared_side_by_side_and_in_two_colours(tmp_path: Path) -> None:
    from scipy.stats import ks_2samp

    from subsets.compare import compare_saved_subsets
    from subsets.saved import save_subset
    from ui.export_page import comparison_html, highlight_subsets

    store, collection, _ = build_ui_collection(tmp_path, per_label=10)
    try:
        table = PointTable(collection)
        ids = list(table.ids)
        values = {pid: float(i) for i, pid in enumerate(ids)}
        collection.set_payloads(ids, [{"brightness": values[pid]} for pid in ids])
        a, b = ids[:12], ids[8:20]  # 4 in both
        save_subset(collection, "first", a)
        save_subset(collection, "second", b)
        state = highlight_subsets(MapState(), table, collection, "first", "second")
        colours = colouring(table, state)
        counts = {c.name.split(" (")[0]: c.count for c in colours.categories}
        assert counts == {"A only": 8, "B only": 8, "A and B": 4, "neither": len(ids) - 20}
        assert colours.codes[table.row_of[ids[9]]] == 2 and colours.codes[table.row_of[ids[0]]] == 0
        result = compare_saved_subsets(collection, "first", "second")
        expected = ks_2samp([values[p] for p in a], [values[p] for p in b]).pvalue
        assert result.fields["brightness"].p_value == pytest.approx(expected)
        html = comparison_html(result, "first", "second")
        assert "overlap 4" in html and "brightness" in html and f"{expected:.3g}" in html
    finally:
        store.close()
