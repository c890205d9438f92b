"""A view as URL parameters (ui/map/share_link_query.py) and the links built from a session's state
(ui/map/share_link.py `share_view`): round trips, the size limit that sends a selection through a
saved subset, and parameters that cannot be read."""
from __future__ import annotations

import uuid
from urllib.parse import parse_qsl, urlsplit

import numpy as np
import pytest
from starlette.datastructures import QueryParams

from conftest import build_ui_collection
from store import point_id
from subsets.saved import delete_subset, list_subsets, subset_ids
from ui.map.share_link import SHARED_PREFIX, SUBSET_SOURCE, share_view
from ui.map.share_link_query import (
    MAX_QUERY_CHARS, LinkSpec, decode_ids, decode_query, encode_ids, encode_query, parse_view,
)
from ui.state import MapState
from ui.table import PointTable

PAGE = "http://example.org/objects/"


def ids(n: int) -> list[str]:
    return [point_id(f"images/{i:05d}.png") for i in range(n)]


def decoded(query: str) -> tuple[LinkSpec, list[str]]:
    return decode_query(QueryParams(query))


def test_a_full_view_survives_the_round_trip() -> None:
    spec = LinkSpec(colour="tag", labels=["cat", "dog & co", "ünïcode/label"], tags=["snowy day", "a,b"],
                    view=(-1.25, 10.5, 0.0003, 7.0), ids=ids(12))
    query = encode_query(spec)
    back, problems = decoded(query)
    assert problems == []
    assert back == spec
    assert "view=-1.25,10.5,0.0003,7" in query  # readable: the commas of the ranges stay as they are


def test_field_colouring_wins_and_subset_replaces_ids() -> None:
    spec = LinkSpec(colour="label", colour_field="brightness", ids=ids(3), subset="hard cats")
    back, problems = decoded(encode_query(spec))
    assert problems == []
    assert (back.colour_field, back.colour, back.subset, back.ids) == ("brightness", None, "hard cats", None)


def test_ids_take_22_characters_each_and_come_back_exactly() -> None:
    points = ids(90)
    text = encode_ids(points)
    assert len(text) == int(np.ceil(16 * 90 * 4 / 3))  # unpadded base64url of 16 bytes a point
    assert set(text) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert decode_ids(text) == points
    assert encode_ids(["not-a-uuid"]) is None
    assert decode_ids(encode_ids([str(uuid.UUID(int=0))])) == ["00000000-0000-0000-0000-000000000000"]


@pytest.mark.parametrize("query, problem", [
    ("colour=rainbow", "colour='rainbow' is not one of"),
    ("view=1,2,3", "needs four numbers"),
    ("view=5,1,0,1", "x0 < x1"),
    ("view=0,1,0,nan", "finite"),
    ("view=a,b,c,d", "could not convert"),
    ("ids=%%%", "ids: not base64url"),
    ("ids=AAAA+AAA", "ids: not base64url"),
    ("ids=AAAA", "ids: 3 bytes is not a whole number of 16-byte ids"),
    ("label=" + "x" * 300, "is not a label name"),
    ("tag=bad%0Aline", "is not a tag name"),
])
def test_a_bad_parameter_is_reported_and_the_others_still_apply(query: str, problem: str) -> None:
    key = query.split("=")[0]
    others = {"label": "label=cat", "view": "view=0,1,0,1", "colour": "colour=data"}
    spec, problems = decoded("&".join([query, *(v for k, v in others.items() if k != key)]))
    assert len(problems) == 1 and problem in problems[0], problems
    if key != "label":
        assert spec.labels == ["cat"]
    if key != "view":
        assert spec.view == (0.0, 1.0, 0.0, 1.0)
    else:
        assert spec.view is None
    if key != "colour":
        assert spec.colour == "data"


def test_parse_view_and_empty_parameters() -> None:
    assert parse_view("1e-3,2,-3,4.5") == (0.001, 2.0, -3.0, 4.5)
    spec, problems = decoded("colour=&view=&ids=&subset=&unknown=1")
    assert problems == [] and spec == LinkSpec()
    spec, _ = decoded("label=cat&label=cat&label=dog")
    assert spec.labels == ["cat", "dog"]


# --- links built from a session ----------------------------------------------------------
@pytest.fixture
def table(tmp_path) -> PointTable:
    store, collection, _ = build_ui_collection(tmp_path, per_label=100)
    yield PointTable(collection)
    store.close()


def link_query(url: str) -> dict[str, list[str]]:
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == PAGE
    out: dict[str, list[str]] = {}
    for key, value in parse_qsl(parts.query):
        out.setdefault(key, []).append(value)
    return out


def test_a_small_selection_goes_by_ids(table: PointTable) -> None:
    state = MapState(colour_by="label")
    state.set_view(table, colour_by="field:brightness", labels=["cat", "dog"], tags=[])
    rows = np.flatnonzero(table.label_codes == table.label_names.index("dog"))[:30]
    state.select(rows, "lasso")
    link = share_view(table.collection, table, state, PAGE, [0.5, 9.0, -1.0, 2.0])
    query = link_query(link.url)
    assert link.note == ""
    assert query["field"] == ["brightness"] and query["label"] == ["cat", "dog"]
    assert query["view"] == ["0.5,9,-1,2"]
    assert decode_ids(query["ids"][0]) == table.ids_for_rows(rows)
    assert len(urlsplit(link.url).query) <= MAX_QUERY_CHARS
    assert list_subsets(table.collection) == {}  # nothing saved


def test_a_selection_too_big_for_a_link_is_saved_as_a_subset_once(table: PointTable) -> None:
    state = MapState(colour_by="label")
    rows = np.arange(300)  # 100 ids take 2,134 characters: over the limit
    state.select(rows, "box")
    first = share_view(table.collection, table, state, PAGE, None)
    query = link_query(first.url)
    assert "ids" not in query and "view" not in query
    name = query["subset"][0]
    assert name.startswith(SHARED_PREFIX)
    assert "300 selected points are saved as subset" in first.note and name in first.note
    assert set(subset_ids(table.collection, name)) == set(table.ids_for_rows(rows))
    assert state.selection.source == SUBSET_SOURCE + name

    # The same selection again: the same subset, nothing new saved.
    again = share_view(table.collection, table, state, PAGE, None)
    assert link_query(again.url)["subset"] == [name]
    assert list(list_subsets(table.collection)) == [name]

    # A changed selection (trimmed by a filter, same source) is saved anew.
    state.set_view(table, labels=[table.label_of(0), table.label_of(299)])
    assert len(state.selected_rows()) == 200
    third = share_view(table.collection, table, state, PAGE, None)
    other = link_query(third.url)["subset"][0]
    assert other != name and set(subset_ids(table.collection, other)) == set(table.ids_for_rows(state.selected_rows()))
    delete_subset(table.collection, name)
    delete_subset(table.collection, other)


def test_an_unlinkable_colouring_is_said_and_left_out(table: PointTable) -> None:
    state = MapState(colour_by="label")
    state.colour_by = "compare"
    link = share_view(table.collection, table, state, PAGE, [float("nan"), 1, 0, 1])
    query = link_query(link.url)
    assert "colour" not in query and "view" not in query
    assert "not part of links" in link.note
