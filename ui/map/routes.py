"""What the browser draws for the part of the map in view, served as binary by two routes.

    GET VIEW_ROUTE?t=TOKEN&x0=&x1=&y0=&y1=&w=&h=[&hidden=1,4]
        the points of the view, or a density image of it when it holds more than `max_points`
    GET NEAR_ROUTE?t=TOKEN&x=&y=&rx=&ry=[&hidden=...]
        the point nearest to (x, y) within rx, ry (data units): the density view's hover

`t` names the browser session's `MapState` (ui/state.py), which says how points are coloured,
which the filters hide and what is selected; it is registered when the session's first map
message is made (`register`). Legend entries the user switched off come as `hidden` (category
numbers). Every answer is `[u32 header length][header JSON][padding to 8 bytes][payload]`:

  header {"mode": "points", "count", "complete", "region": [x0, x1, y0, y1]}
  payload rows (int32), x, y (float32), values (uint16: the colour message's value codes),
          selected (uint8, only with a selection), each array back to back, `count` long.
  `complete`: these are all the points the session shows, whatever the view (no refetch on
  zoom); otherwise they cover `region`, the view grown where that still fits under the limit.

  header {"mode": "density", "count", "region", "width", "height"}
  payload a PNG of `region` (ui/map/density.py), dimming the unselected points when there is a
  selection.

Coordinates and codes travel as little-endian binary arrays, never as JSON lists.
"""
from __future__ import annotations

import json
import logging
import os
import secrets
import struct
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from ui.map import density
from ui.map.geometry import box_mask, nearest_row, rows_in_box, rows_in_polygon
from ui.model_maps import coordinates, placed
from ui.state import MapState
from ui.table import PointTable

VIEW_ROUTE = "/es-map/view"
NEAR_ROUTE = "/es-map/near"
MAX_POINTS_ENV = "EMBEDSCAPE_MAP_POINTS"
# Above this many points in view the map is a density image. Software WebGL (no GPU) drew 200,000
# points with a box selection in 0.5 s and 1,000,000 in 2.2 s (docs/BENCHMARKS.md).
DEFAULT_MAX_POINTS = 200_000
GROW = 0.5  # a points answer covers the view grown by this share on each side, when it fits
MAX_PIXELS = 4096  # per side of a density image

log = logging.getLogger(__name__)
# Views rendered at once. Each render of a million-point view allocates O(points) temporaries;
# 20 sessions rendering together on 2 cores took 10 s each and peaked at 2.4x the idle RSS
# (bench/bench_load.py); one per core finishes each in its own time and bounds the memory.
_RENDERS = threading.BoundedSemaphore(max(1, os.cpu_count() or 1))
_sessions: weakref.WeakValueDictionary[str, MapState] = weakref.WeakValueDictionary()
_sessions_lock = threading.Lock()


def max_points(value: int | None = None) -> int:
    """The points-to-density threshold: `value`, else $EMBEDSCAPE_MAP_POINTS, else the default."""
    if value is not None:
        return int(value)
    text = os.environ.get(MAX_POINTS_ENV, "").strip()
    return int(text) if text.isdigit() else DEFAULT_MAX_POINTS


def register(state: MapState) -> str:
    """Name `state` for the map's routes (once per session); returns its token."""
    with _sessions_lock:
        if not state.token or _sessions.get(state.token) is not state:
            state.token = secrets.token_urlsafe(16)
            _sessions[state.token] = state
    return state.token


def session(token: str) -> MapState | None:
    with _sessions_lock:
        return _sessions.get(token)


# --- what is drawn ------------------------------------------------------------------------
def drawn_codes(state: MapState, hidden: frozenset[int]) -> tuple[np.ndarray, int]:
    """Each row's colour category (>= categories: not drawn) and the number of categories."""
    colours = state.colours
    codes, k = colours.codes, len(colours.categories)
    hidden = frozenset(h for h in hidden if 0 <= h < k)
    if not hidden:
        return codes, k
    lut = np.arange(max(k, int(codes.max(initial=0)) + 1), dtype=np.uint16)
    lut[lut >= k] = k
    lut[list(hidden)] = k
    return lut[np.minimum(codes, len(lut) - 1)], k


def selected_mask(table: PointTable, state: MapState) -> np.ndarray | None:
    """The selection as a row mask (cached per selection), None without one."""
    selection = state.selection
    if selection.rows is None:
        return None
    cached = state.selection_mask
    if cached is None or cached[0] is not selection or len(cached[1]) != len(table):
        mask = np.zeros(len(table), dtype=bool)
        mask[selection.rows] = True
        state.selection_mask = cached = (selection, mask)
    return cached[1]


def _pack(header: dict[str, Any], arrays: list[np.ndarray] | bytes) -> bytes:
    text = json.dumps(header).encode()
    pad = (-(4 + len(text))) % 8
    body = arrays if isinstance(arrays, bytes) else b"".join(
        np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<")).tobytes() for a in arrays)
    return struct.pack("<I", len(text) + pad) + text + b" " * pad + body


def _drawn(table: PointTable, state: MapState, hidden: frozenset[int]) -> tuple[np.ndarray, int, np.ndarray, np.ndarray]:
    """`drawn_codes` on the session's map (ui/model_maps.py): (codes, k, x, y), rows without a
    place on that map not drawn."""
    codes, k = drawn_codes(state, hidden)
    x, y = coordinates(table, state.map_vector)
    where = placed(table, state.map_vector)
    if where is not None and not where.all():
        codes = np.where(where, codes, k).astype(codes.dtype)
    return codes, k, x, y


def view_answer(table: PointTable, state: MapState, view: density.View, hidden: frozenset[int],
                limit: int) -> bytes:
    """The bytes VIEW_ROUTE answers for `view` (see the module docstring)."""
    codes, k, x, y = _drawn(table, state, hidden)
    shown = codes < k
    total = int(np.count_nonzero(shown))
    state.view = (view.x0, view.x1, view.y0, view.y1)
    if total <= limit:
        return _points(table, state, np.flatnonzero(shown), True, None)
    in_view = box_mask(x, y, view.x0, view.x1, view.y0, view.y1)
    in_view &= shown
    count = int(np.count_nonzero(in_view))
    if count <= limit:
        dx, dy = (view.x1 - view.x0) * GROW, (view.y1 - view.y0) * GROW
        region = (view.x0 - dx, view.x1 + dx, view.y0 - dy, view.y1 + dy)
        grown = box_mask(x, y, *region)
        grown &= shown
        if np.count_nonzero(grown) <= limit:
            return _points(table, state, np.flatnonzero(grown), False, region)
        return _points(table, state, np.flatnonzero(in_view), False, (view.x0, view.x1, view.y0, view.y1))
    colours = density.hex_colours([c.colour for c in state.colours.categories])
    image = density.render(x, y, codes, colours, view, selected_mask(table, state))
    header = {"mode": "density", "count": count, "region": [view.x0, view.x1, view.y0, view.y1],
              "width": view.width, "height": view.height}
    return _pack(header, density.png(image))


def _points(table: PointTable, state: MapState, rows: np.ndarray, complete: bool,
            region: tuple[float, float, float, float] | None) -> bytes:
    values = state.colours.values[rows].astype(np.uint16)
    x, y = coordinates(table, state.map_vector)
    arrays = [rows.astype(np.int32), x[rows], y[rows], values]
    mask = selected_mask(table, state)
    if mask is not None:
        arrays.append(mask[rows].astype(np.uint8))
    header = {"mode": "points", "count": len(rows), "complete": complete, "selected": mask is not None,
              "region": None if region is None else [float(v) for v in region]}
    return _pack(header, arrays)


def near_answer(table: PointTable, state: MapState, x: float, y: float, rx: float, ry: float,
                hidden: frozenset[int]) -> dict[str, Any]:
    codes, k, xs, ys = _drawn(table, state, hidden)
    row = nearest_row(xs, ys, x, y, rx, ry, codes < k)
    if row is None:
        return {"row": None}
    colours = state.colours
    name = ""
    if colours.hover_names is not None and colours.hover_codes is not None:
        name = colours.hover_names[int(colours.hover_codes[row])]
    return {"row": row, "label": name}


def rows_in_shape(table: PointTable, state: MapState, shape: dict[str, Any]) -> np.ndarray | None:
    """Rows inside a shape the browser drew on its density view: `{"box": [x0, x1, y0, y1]}` or
    `{"lasso": {"x": [...], "y": [...]}}`, in data units; points not drawn (filters, legend
    entries in `shape["hidden"]`) are left out. None when the shape is not one of these."""
    hidden = frozenset(int(h) for h in shape.get("hidden") or [] if isinstance(h, int))
    codes, k, x, y = _drawn(table, state, hidden)
    try:
        if "box" in shape:
            x0, x1, y0, y1 = (float(v) for v in shape["box"])
            return rows_in_box(x, y, x0, x1, y0, y1, codes < k)
        if "lasso" in shape:
            xs = [float(v) for v in shape["lasso"]["x"]]
            ys = [float(v) for v in shape["lasso"]["y"]]
            return rows_in_polygon(x, y, xs, ys, codes < k)
    except (TypeError, ValueError, KeyError):
        return None
    return None


# --- routes -------------------------------------------------------------------------------
def _floats(request: Request, *names: str) -> list[float] | None:
    try:
        values = [float(request.query_params[name]) for name in names]
    except (KeyError, ValueError):
        return None
    return values if all(np.isfinite(values)) else None


def _current(state: MapState, table: PointTable) -> bool:
    """Whether the session's colours were made for `table` (not an older version of it)."""
    return (state.colours is not None and state.colours_for == table.version
            and len(state.colours.codes) == len(table))


def _hidden(request: Request) -> frozenset[int]:
    text = request.query_params.get("hidden", "")
    return frozenset(int(part) for part in text.split(",") if part.strip().isdigit())


def add_view_routes(app: FastAPI, current_table: Callable[[], PointTable], limit: int,
                    authorize: Callable[[Request], bool] | None = None, prefix: str = "") -> None:
    """Register VIEW_ROUTE and NEAR_ROUTE under the explorer's URL `prefix` (one server may hold
    several explorers, each with its own rows) on `app`, behind the login when there is one.
    `current_table()`: the explorer's table now (a newer one replaces it when other writers
    change the collection: ui/live_table.py)."""

    @app.get(prefix + VIEW_ROUTE)
    def view_route(request: Request) -> Response:
        if authorize is not None and not authorize(request):
            return Response(status_code=401)
        table = current_table()
        state = session(request.query_params.get("t", ""))
        box = _floats(request, "x0", "x1", "y0", "y1", "w", "h")
        if state is None or state.colours is None:
            return Response("unknown map session: reload the page", status_code=404)
        if not _current(state, table):  # a newer table: the session's next map message follows
            return Response("the map is being updated", status_code=409)
        if box is None or box[0] >= box[1] or box[2] >= box[3]:
            return Response("x0 < x1, y0 < y1, w and h are required", status_code=400)
        width, height = (int(np.clip(v, 1, MAX_PIXELS)) for v in box[4:])
        with _RENDERS:
            started = time.perf_counter()
            answer = view_answer(table, state, density.View(*box[:4], width, height), _hidden(request), limit)
        # The benchmark reads this line (as ui/context.py's handler timings).
        log.debug("handler view took %.2f ms", 1000 * (time.perf_counter() - started))
        return Response(answer, media_type="application/octet-stream", headers={"Cache-Control": "no-store"})

    @app.get(prefix + NEAR_ROUTE)
    def near_route(request: Request) -> Response:
        if authorize is not None and not authorize(request):
            return Response(status_code=401)
        table = current_table()
        state = session(request.query_params.get("t", ""))
        at = _floats(request, "x", "y", "rx", "ry")
        if state is None or not _current(state, table) or at is None or at[2] <= 0 or at[3] <= 0:
            return JSONResponse({"row": None})
        return JSONResponse(near_answer(table, state, *at, _hidden(request)))
