"""Server side of the explorer without a browser: table, state, colours, messages, views."""
from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from store import PointFilter, StoreError, point_id
from ui.figure import HIDDEN, PALETTE, colouring, map_message
from ui.state import MapState
from ui.table import PointTable
from ui.panel_html import PAGE_SIZE, distribution_html, grid_html


def _fake_table(labels: list[str]) -> PointTable:
    return PointTable.in_memory([f"id{i}" for i in range(len(labels))], labels,
                                [f"{v}/{i}.png" for i, v in enumerate(labels)])


def test_table_loads_columns_and_edits_tags_in_store_and_memory(ui_collection) -> None:
    _, collection, _ = ui_collection
    table = PointTable(collection)
    assert len(table) == 120 and table.label_counts() == {"bird": 40, "cat": 40, "dog": 40}
    rows = table.rows_for_ids([point_id("cat/000.png"), point_id("cat/001.png"), "unknown"])
    assert table.paths[rows[0]] == "cat/000.png" and len(rows) == 2
    assert table.x[rows[1]] == 0.25
    assert table.edit_tags(rows, "blurry", add=True) == 2
    assert collection.count(PointFilter(tags_any=["blurry"])) == 2
    assert table.tag_counts() == {"blurry": 2} and set(table.rows_with_tags(["blurry"])) == set(rows)
    assert table.edit_tags(rows[:1], "blurry", add=False) == 1
    assert collection.tag_counts() == {"blurry": 1} == table.tag_counts()


def test_other_payload_fields_are_read_in_one_scan_and_aligned_to_rows(ui_collection, monkeypatch) -> None:
    _, collection, _ = ui_collection
    cats = [point_id(f"cat/{i:03d}.png") for i in range(3)]
    collection.set_payloads(cats, [{"prediction": "dog", "brightness": 0.5 + i, "ok": i == 1} for i in range(3)])
    table = PointTable(collection)
    scans = []
    scroll = collection.scroll
    monkeypatch.setattr(collection, "scroll", lambda *a, **k: scans.append(a) or scroll(*a, **k))
    rows = table.rows_for_ids(cats)
    values = table.payload_columns(["prediction", "absent"])
    assert [values["prediction"][r] for r in rows] == ["dog"] * 3
    assert sum(v is not None for v in values["prediction"]) == 3 and values["absent"] == [None] * len(table)
    numbers = table.numeric_columns(["brightness", "ok"])
    assert numbers["brightness"][rows].tolist() == [0.5, 1.5, 2.5]
    assert numbers["ok"][rows].tolist() == [0.0, 1.0, 0.0]  # booleans as 0 / 1
    assert np.isnan(numbers["brightness"]).sum() == len(table) - 3
    assert len(scans) == 1, "every field came from the first scan"


def test_concurrent_tag_edits_through_the_table_lose_nothing(ui_collection) -> None:
    _, collection, _ = ui_collection
    table = PointTable(collection)
    spans = [np.arange(i * 10, i * 10 + 60) for i in range(6)]
    threads = [threading.Thread(target=table.edit_tags, args=(rows, f"t{i}", True)) for i, rows in enumerate(spans)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert collection.tag_counts() == {f"t{i}": 60 for i in range(6)} == table.tag_counts()


def test_table_edits_keep_tags_written_before_and_recover_from_a_failed_write(ui_collection, monkeypatch) -> None:
    _, collection, _ = ui_collection
    ids = [point_id("cat/000.png"), point_id("cat/001.png")]
    collection.add_tag(ids[:1], "from-another-tool")  # before the table loads, as another tool would
    table = PointTable(collection)
    rows = table.rows_for_ids(ids)
    assert table.edit_tags(rows, "blurry", add=True) == 2
    tags = {r.id: r.payload["tags"] for r in collection.retrieve(ids, ["tags"])}
    assert tags == {ids[0]: ["from-another-tool", "blurry"], ids[1]: ["blurry"]}

    # The engine fails the write (it is applied after edit_tags returns, store/write_behind.py):
    # the edit stays journaled, reads say so, and it lands once the engine works again.
    shard, failures = collection._shard, []

    class FailingShard:
        def update(self, operation) -> None:
            if not failures:
                failures.append(operation)
                raise RuntimeError("disk full")
            shard.update(operation)

        def __getattr__(self, name: str):
            return getattr(shard, name)

    collection._shard = FailingShard()
    table.edit_tags(rows, "half", add=True)
    assert table.tags_of(rows) == [["from-another-tool", "blurry", "half"], ["blurry", "half"]]
    with pytest.raises(StoreError, match="disk full.*kept in .*retried"):
        collection.retrieve(ids, ["tags"])
    stored = {r.id: r.payload["tags"] for r in collection.retrieve(ids, ["tags"])}
    assert table.tags_of(rows) == [stored[i] for i in ids]
    assert table.tag_counts() == collection.tag_counts()

    # The journal itself cannot be written: nothing was acknowledged, the table says so too.
    def refuse(groups) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(collection._pending, "submit", refuse)
    with pytest.raises(OSError, match="disk full"):
        table.edit_tags(rows, "lost", add=True)
    assert table.tags_of(rows) == [stored[i] for i in ids]
    assert "lost" not in table.tag_counts()


def test_many_classes_get_distinct_colours_for_the_largest_and_one_other() -> None:
    labels = [f"class{i:03d}" for i in range(150) for _ in range(150 - i)]
    table = _fake_table(labels)
    result = colouring(table, MapState(colour_by="label"))
    assert len(result.categories) == len(PALETTE) + 1
    assert result.categories[0].name.startswith("class000 ")
    assert result.categories[-1].name.startswith("other (130 classes")
    assert len({c.colour for c in result.categories}) == len(result.categories)
    # Hover still names the real label of a point in "other".
    row = labels.index("class140")
    assert result.codes[row] == len(PALETTE)
    assert result.hover_names[result.hover_codes[row]] == "class140"


def test_data_view_has_one_colour_and_no_labels() -> None:
    table = _fake_table(["a", "b", "b"])
    result = colouring(table, MapState(colour_by="data"))
    assert len(result.categories) == 1 and not result.legend and result.hover_names is None


def test_filters_hide_points_and_trim_the_selection() -> None:
    table = _fake_table(["a", "b", "b", "c"])
    state = MapState().select([0, 1, 3], "box", from_map=True)
    state.set_view(table, labels=["b", "c"])
    assert list(state.selected_rows()) == [1, 3]
    assert list(colouring(table, state).codes == HIDDEN) == [True, False, False, False]


def test_map_messages_send_only_what_changed() -> None:
    table = _fake_table(["a", "b", "b", "c"])
    state = MapState()
    first = json.loads(map_message(table, state))
    assert {"base", "colour", "selection"} <= set(first)
    assert first["base"]["n"] == 4 and first["base"]["token"] and "values" not in first["colour"]
    assert first["selection"] == {"count": None, "drawn": False, "rows": None}
    state.select([1, 2], "box", from_map=True)
    assert map_message(table, state) is None  # the browser drew it: nothing to send
    state.select([3], "tag: x")
    message = json.loads(map_message(table, state))
    assert set(message) == {"seq", "selection"} and message["selection"]["count"] == 1
    assert message["selection"]["rows"]["dtype"] == "i4" and not message["selection"]["drawn"]
    state.set_view(table, colour_by="data")
    assert set(json.loads(map_message(table, state))) == {"seq", "colour"}


def test_grid_pages_and_distribution_show_exactly_the_rows() -> None:
    table = _fake_table(["a"] * 50 + ["b"] * 30)
    rows = np.arange(10, 70)
    first = grid_html(table, rows, 0)
    assert first.count('class="es-card"') == PAGE_SIZE and 'data-id="id10"' in first
    second = grid_html(table, rows, 1)
    assert second.count('class="es-card"') == 20 and 'data-id="id69"' in second
    assert "/image/" not in first + second  # the grid only ever shows thumbnails
    chart = distribution_html(table, rows, None)
    assert 'data-label="a" data-selected="40" data-total="50"' in chart
    assert 'data-label="b" data-selected="20" data-total="30"' in chart


def test_server_start_pays_first_event_costs_and_freezes_its_objects(ui_collection) -> None:
    """The first page load must not wait for Gradio's matplotlib import, and requests must
    not pay for garbage-collector passes over the table loaded at start-up."""
    import gc
    import importlib.util
    import sys

    from ui.app import create_server_app

    _, collection, _ = ui_collection
    collection.add_tag([point_id("cat/000.png")], "seen")
    gc.unfreeze()
    app = create_server_app(collection)
    table = app.state.embedscape.embedscape_context.table
    assert gc.get_freeze_count() > 0
    tagged = table.tags[table.row_of[point_id("cat/000.png")]]
    assert tagged == ("seen",) and not gc.is_tracked(tagged), "tag tuples of strings are not tracked"
    if importlib.util.find_spec("matplotlib") is not None:
        assert "matplotlib" in sys.modules
