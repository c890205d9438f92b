"""The map's server side for big maps, without a browser: box and lasso resolved in numpy, the
density image, the view route's binary answers, point ids as 16-byte keys."""
from __future__ import annotations

import io
import json
import struct
import uuid

import numpy as np
import pytest
from PIL import Image

from store.point_ids import PointIds, uuid_keys, uuid_strings
from ui.figure import map_message
from ui.map import density, geometry
from ui.map.routes import near_answer, rows_in_shape, session, view_answer
from ui.state import MapState
from ui.table import PointTable


# --- geometry --------------------------------------------------------------------------
def crossing_test(x: float, y: float, polygon: list[tuple[float, float]]) -> bool:
    """The even-odd rule, one point at a time, in plain Python (the reference)."""
    inside = False
    for (xa, ya), (xb, yb) in zip(polygon, polygon[1:] + polygon[:1]):
        if (ya > y) != (yb > y) and x < xa + (y - ya) * (xb - xa) / (yb - ya):
            inside = not inside
    return inside


def grid_points(step: float = 0.25, size: int = 41) -> tuple[np.ndarray, np.ndarray]:
    """Points on a known grid: (i * step, j * step) for i, j in 0..size-1."""
    i, j = np.meshgrid(np.arange(size), np.arange(size))
    return (i.ravel() * step).astype(np.float32), (j.ravel() * step).astype(np.float32)


def test_a_box_selects_exactly_the_points_inside_it_edges_included() -> None:
    x, y = grid_points()
    rows = geometry.rows_in_box(x, y, 1.0, 2.0, 3.1, 2.4)  # y corners in either order
    picked = {(float(x[r]), float(y[r])) for r in rows}
    assert picked == {(a * 0.25, b * 0.25) for a in range(4, 9) for b in range(10, 13)}
    keep = x < 1.5
    assert set(geometry.rows_in_box(x, y, 1.0, 2.0, 2.4, 3.1, keep)) == {r for r in rows if x[r] < 1.5}


@pytest.mark.parametrize("polygon", [
    [(0.1, 0.1), (5.1, 0.6), (2.6, 4.9)],                                              # a triangle
    [(0.4, 0.4), (9.6, 0.4), (9.6, 9.6), (5.1, 2.1), (0.4, 9.6)],                      # concave
    [(0.6, 0.6), (8.9, 8.9), (8.9, 0.6), (0.6, 8.9)],                                  # a bow tie
    [(0.1, 0.1), (6.1, 0.1), (6.1, 6.1), (0.1, 6.1), (2.1, 2.1), (4.1, 2.1), (4.1, 4.1), (2.1, 4.1)],
])
def test_a_lasso_selects_the_points_inside_its_polygon_by_the_even_odd_rule(polygon) -> None:
    x, y = grid_points()
    expected = {r for r in range(len(x)) if crossing_test(float(x[r]), float(y[r]), polygon)}
    xs, ys = zip(*polygon)
    rows = geometry.rows_in_polygon(x, y, xs, ys)
    assert set(rows.tolist()) == expected and len(rows) == len(expected)
    assert expected, "the polygon holds some grid points"


def test_the_cell_shortcut_for_big_lassos_gives_the_exact_answer(monkeypatch) -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=60_000).astype(np.float32)
    y = rng.normal(size=60_000).astype(np.float32)
    angles = np.sort(rng.uniform(0, 2 * np.pi, 60))
    radii = rng.uniform(0.4, 2.5, 60)
    xs, ys = radii * np.cos(angles), radii * np.sin(angles)
    monkeypatch.setattr(geometry, "GRID", 64)  # coarse cells: many points near the outline
    fast = geometry.rows_in_polygon(x, y, xs, ys)
    monkeypatch.setattr(geometry, "EXACT_BELOW", 10**9)
    exact = geometry.rows_in_polygon(x, y, xs, ys)
    polygon = list(zip(xs.tolist(), ys.tolist()))
    sample = rng.choice(len(x), 3000, replace=False)
    reference = {int(r) for r in sample if crossing_test(float(x[r]), float(y[r]), polygon)}
    assert np.array_equal(fast, exact) and len(fast) > 10_000
    assert reference == set(sample.tolist()) & set(fast.tolist())


def test_a_degenerate_lasso_selects_nothing() -> None:
    x, y = grid_points()
    assert len(geometry.rows_in_polygon(x, y, [1.0, 2.0], [1.0, 2.0])) == 0
    assert len(geometry.rows_in_polygon(x, y, [1.0, 2.0, np.nan], [1.0, 2.0, 3.0])) == 0


def test_the_nearest_point_within_the_radius() -> None:
    x, y = grid_points()
    row = geometry.nearest_row(x, y, 1.02, 0.49, 0.1, 0.1)
    assert (x[row], y[row]) == (1.0, 0.5)
    assert geometry.nearest_row(x, y, 1.12, 0.62, 0.1, 0.1) is None  # nearest is 0.13 away
    assert geometry.nearest_row(x, y, 1.02, 0.49, 0.1, 0.1, keep=x != 1.0) is None


# --- density image ---------------------------------------------------------------------
RED, BLUE = "#ff0000", "#0000ff"


def test_density_pixels_mix_their_points_colours_and_leave_the_rest_clear() -> None:
    view = density.View(0.0, 10.0, 0.0, 10.0, 10, 10)
    x = np.array([0.5, 0.5, 0.5, 9.5, 5.5], dtype=np.float32)
    y = np.array([9.5, 9.5, 9.5, 0.5, 5.5], dtype=np.float32)
    codes = np.array([0, 0, 1, 1, 65535], dtype=np.uint16)  # the last one is hidden
    colours = density.hex_colours([RED, BLUE])
    image = density.render(x, y, codes, colours, view)
    assert image.shape == (10, 10, 4)
    top_left, bottom_right = image[0, 0], image[9, 9]
    assert tuple(top_left[:3]) == (170, 0, 85)  # two red and one blue point
    assert tuple(bottom_right[:3]) == (0, 0, 255) and top_left[3] > bottom_right[3] > 0
    assert image[4, 5, 3] == 0, "a hidden point draws nothing"
    # A sparse image draws each point 3 pixels wide (here cut by the image's corners).
    assert np.flatnonzero(image[..., 3].ravel()).tolist() == [0, 1, 10, 11, 88, 89, 98, 99]


def test_a_selection_dims_the_points_outside_it() -> None:
    view = density.View(0.0, 4.0, 0.0, 4.0, 4, 4)
    x = np.array([0.5, 3.5], dtype=np.float32)
    y = np.array([3.5, 3.5], dtype=np.float32)
    codes = np.zeros(2, dtype=np.uint16)
    colours = density.hex_colours([RED])
    plain = density.render(x, y, codes, colours, view)
    dimmed = density.render(x, y, codes, colours, view, selected=np.array([True, False]))
    assert dimmed[0, 0, 3] == plain[0, 0, 3] > 0
    assert 0 < dimmed[0, 3, 3] < plain[0, 3, 3] * 0.2
    decoded = np.asarray(Image.open(io.BytesIO(density.png(dimmed))))
    assert np.array_equal(decoded, dimmed)


def test_points_on_the_view_edges_land_in_the_edge_pixels() -> None:
    view = density.View(-1.0, 1.0, -1.0, 1.0, 4, 2)
    x = np.array([-1.0, 0.999, 1.0, -1.001], dtype=np.float32)
    y = np.array([1.0, -0.999, 0.0, 0.0], dtype=np.float32)
    bins = density.bin_index(x, y, np.zeros(4, np.uint16), 1, view)
    assert bins.tolist() == [0, 7, 8, 8]  # top-left, bottom-right, then outside (x = x1, x < x0)


# --- the view route's answers ------------------------------------------------------------
def unpack(answer: bytes) -> tuple[dict, bytes]:
    length = struct.unpack("<I", answer[:4])[0]
    return json.loads(answer[4:4 + length]), answer[4 + length:]


@pytest.fixture
def table() -> PointTable:
    x, y = grid_points(step=1.0, size=20)  # 400 points, two labels split at x = 10
    labels = ["left" if v < 10 else "right" for v in x]
    return PointTable.in_memory([str(uuid.uuid4()) for _ in x], labels, x=x.tolist(), y=y.tolist())


def prepared(table: PointTable) -> MapState:
    state = MapState()
    map_message(table, state)  # registers the session and computes its colours
    assert session(state.token) is state
    return state


def test_a_view_under_the_limit_comes_as_binary_points(table) -> None:
    state = prepared(table)
    view = density.View(0.0, 5.0, 0.0, 5.0, 300, 300)
    head, body = unpack(view_answer(table, state, view, frozenset(), limit=1000))
    assert head["mode"] == "points" and head["complete"] and head["count"] == 400
    n = head["count"]
    rows = np.frombuffer(body, "<i4", n, 0)
    x = np.frombuffer(body, "<f4", n, 4 * n)
    values = np.frombuffer(body, "<u2", n, 12 * n)
    assert np.array_equal(x, table.x[rows]) and len(body) == 14 * n
    assert set(values.tolist()) == {0, 1}

    state.select(np.arange(10), "tag: t")
    head, body = unpack(view_answer(table, state, view, frozenset({1}), limit=1000))
    assert head["count"] == 200 and head["selected"]  # legend entry 1 switched off
    selected = np.frombuffer(body, "<u1", 200, 14 * 200)
    assert selected.sum() == 10


def test_a_zoomed_view_gets_its_points_and_a_full_view_an_image(table) -> None:
    state = prepared(table)
    head, body = unpack(view_answer(table, state, density.View(-0.5, 3.5, -0.5, 3.5, 200, 200),
                                    frozenset(), limit=100))
    assert head["mode"] == "points" and not head["complete"]
    x0, x1, y0, y1 = head["region"]
    rows = np.frombuffer(body, "<i4", head["count"], 0)
    inside = (table.x >= x0) & (table.x <= x1) & (table.y >= y0) & (table.y <= y1)
    assert set(rows.tolist()) == set(np.flatnonzero(inside).tolist()) and x1 > 3.5
    head, body = unpack(view_answer(table, state, density.View(-1.0, 20.0, -1.0, 20.0, 210, 210),
                                    frozenset(), limit=100))
    assert head["mode"] == "density" and head["count"] == 400
    image = np.asarray(Image.open(io.BytesIO(body)))
    assert image.shape == (210, 210, 4) and np.count_nonzero(image[..., 3]) >= 400
    assert state.view == (-1.0, 20.0, -1.0, 20.0)


def test_shapes_drawn_on_the_density_view_select_drawn_points_only(table) -> None:
    state = prepared(table)
    box = rows_in_shape(table, state, {"box": [8.5, 11.5, 0.5, 2.5]})
    assert {(int(table.x[r]), int(table.y[r])) for r in box} == {(a, b) for a in (9, 10, 11) for b in (1, 2)}
    right = state.colours.categories.index(next(c for c in state.colours.categories if c.name.startswith("right")))
    hidden = rows_in_shape(table, state, {"box": [8.5, 11.5, 0.5, 2.5], "hidden": [right]})
    assert {int(table.x[r]) for r in hidden} == {9}
    lasso = rows_in_shape(table, state, {"lasso": {"x": [0.5, 4.5, 0.5], "y": [0.5, 0.5, 4.5]}})
    assert {(int(table.x[r]), int(table.y[r])) for r in lasso} == {(1, 1), (1, 2), (2, 1), (1, 3), (2, 2), (3, 1)}
    assert rows_in_shape(table, state, {"lasso": {"x": "oops"}}) is None
    hit = near_answer(table, state, 3.1, 4.05, 0.3, 0.3, frozenset())
    assert (table.x[hit["row"]], table.y[hit["row"]]) == (3.0, 4.0) and hit["label"] == "left"


# --- point ids ----------------------------------------------------------------------------
def test_point_ids_as_keys_round_trip_and_look_up_rows() -> None:
    ids = [str(uuid.uuid4()) for _ in range(1000)] + [str(uuid.UUID(int=0)), str(uuid.UUID(int=2**128 - 1))]
    keys = uuid_keys(np.array(ids))
    assert keys is not None and keys.dtype == np.dtype("S16") and keys.nbytes == 16 * len(ids)
    assert uuid_strings(keys).tolist() == ids
    point_ids = PointIds.from_strings(ids)
    assert point_ids.rows([ids[7], "not-an-id", ids[-1].upper(), ids[-2]]).tolist() == [7, -1, len(ids) - 1, len(ids) - 2]
    kept = point_ids.take(np.arange(len(ids)) % 2 == 0)
    assert kept.strings().tolist() == ids[::2] and kept.row(ids[1]) is None
    other = PointIds.from_strings(["7", "42", "x-1"])  # not UUIDs: kept as strings, same behaviour
    assert not other.is_uuid and other.rows(["42", "7", "8"]).tolist() == [1, 0, -1]


def test_thumbnail_limit_comes_from_the_flag_then_the_environment(monkeypatch) -> None:
    from ui.map.overlays import DEFAULT_THUMBNAILS, THUMBNAILS_ENV, max_thumbnails, overlay_js

    monkeypatch.delenv(THUMBNAILS_ENV, raising=False)
    assert max_thumbnails() == DEFAULT_THUMBNAILS == 300
    monkeypatch.setenv(THUMBNAILS_ENV, "120")
    assert max_thumbnails() == 120 and max_thumbnails(0) == 0 and max_thumbnails(-5) == 0
    assert "const THUMBS = 120," in overlay_js(max_thumbnails()) and "__" not in overlay_js(7)
