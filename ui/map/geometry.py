"""Which map points lie in a drawn box or lasso, decided on the server over the x/y columns.

The browser sends only the shape (box corners, lasso vertices, in data coordinates) when it
does not hold the points itself (the density view, ui/map/density.py), and these functions answer
with row numbers, exactly in data space:

  * a box holds the points with x0 <= x <= x1 and y0 <= y <= y1;
  * a lasso holds the points inside its polygon by the even-odd rule (a point is inside when a
    ray from it crosses the outline an odd number of times), which is also Plotly's rule.

A lasso over millions of points is decided cell by cell: the polygon is filled on a grid over
its bounding box, every point in a cell that no edge comes near takes its cell's answer, and
only the points in cells along the outline go through the exact crossing test.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

GRID = 1024  # cells a side of the lasso's fill grid
EXACT_BELOW = 50_000  # candidates at most this many go straight to the exact test
SAFETY_CELLS = 2  # cells around every edge that count as "near the outline"


def box_mask(x: np.ndarray, y: np.ndarray, x0: float, x1: float, y0: float, y1: float) -> np.ndarray:
    """Points inside the box (edges included); corners in any order."""
    x0, x1 = sorted((float(x0), float(x1)))
    y0, y1 = sorted((float(y0), float(y1)))
    mask = x >= x0
    mask &= x <= x1
    mask &= y >= y0
    mask &= y <= y1
    return mask


def rows_in_box(x: np.ndarray, y: np.ndarray, x0: float, x1: float, y0: float, y1: float,
                keep: np.ndarray | None = None) -> np.ndarray:
    """Rows inside the box, ascending; `keep` (a row mask) leaves out the others."""
    mask = box_mask(x, y, x0, x1, y0, y1)
    if keep is not None:
        mask &= keep
    return np.flatnonzero(mask)


def rows_in_polygon(x: np.ndarray, y: np.ndarray, xs: Sequence[float], ys: Sequence[float],
                    keep: np.ndarray | None = None) -> np.ndarray:
    """Rows inside the polygon with vertices (xs[i], ys[i]) (closed implicitly), ascending."""
    px, py = np.asarray(xs, dtype=np.float64), np.asarray(ys, dtype=np.float64)
    if len(px) < 3 or len(px) != len(py) or not (np.isfinite(px).all() and np.isfinite(py).all()):
        return np.empty(0, dtype=np.int64)
    candidates = rows_in_box(x, y, px.min(), px.max(), py.min(), py.max(), keep)
    cx, cy = x[candidates].astype(np.float64), y[candidates].astype(np.float64)
    if len(candidates) <= EXACT_BELOW:
        return candidates[inside_polygon(cx, cy, px, py)]
    return candidates[_inside_by_cells(cx, cy, px, py)]


def inside_polygon(x: np.ndarray, y: np.ndarray, px: np.ndarray, py: np.ndarray) -> np.ndarray:
    """The exact even-odd test: one pass over the points per edge."""
    inside = np.zeros(len(x), dtype=bool)
    for xa, ya, xb, yb in zip(px, py, np.roll(px, -1), np.roll(py, -1)):
        if ya == yb:
            continue  # a horizontal edge is never crossed by a horizontal ray
        spans = (ya > y) != (yb > y)
        if not spans.any():
            continue
        at = np.flatnonzero(spans)
        crossing_x = xa + (y[at] - ya) * (xb - xa) / (yb - ya)
        inside[at] ^= x[at] < crossing_x
    return inside


def _inside_by_cells(x: np.ndarray, y: np.ndarray, px: np.ndarray, py: np.ndarray) -> np.ndarray:
    """The exact answer, with the exact test only for points near the outline."""
    bx0, by0 = px.min(), py.min()
    sx = GRID / max(px.max() - bx0, 1e-300)
    sy = GRID / max(py.max() - by0, 1e-300)
    # Cell coordinates: cell (i, j) covers [i, i+1) x [j, j+1).
    vx, vy = (px - bx0) * sx, (py - by0) * sy
    filled = Image.new("1", (GRID, GRID), 0)
    # PIL fills the pixels whose centre (i + 0.5, j + 0.5) is inside, give or take a pixel at
    # the outline; cells within SAFETY_CELLS of an edge never use this answer.
    ImageDraw.Draw(filled).polygon(list(zip((vx - 0.5).tolist(), (vy - 0.5).tolist())), fill=1, outline=None)
    near = _cells_near_edges(vx, vy)
    ci = np.clip((x - bx0) * sx, 0, GRID - 1).astype(np.int64)
    cj = np.clip((y - by0) * sy, 0, GRID - 1).astype(np.int64)
    cell = cj * GRID + ci
    inside = np.asarray(filled, dtype=bool).ravel()[cell]
    exact = np.flatnonzero(near.ravel()[cell])
    inside[exact] = inside_polygon(x[exact], y[exact], px, py)
    return inside


def _cells_near_edges(vx: np.ndarray, vy: np.ndarray) -> np.ndarray:
    """Cells an edge passes through, grown by SAFETY_CELLS on every side."""
    near = np.zeros((GRID, GRID), dtype=bool)
    for xa, ya, xb, yb in zip(vx, vy, np.roll(vx, -1), np.roll(vy, -1)):
        steps = int(np.ceil(2 * max(abs(xb - xa), abs(yb - ya)))) + 1  # samples <= 0.5 cell apart
        t = np.linspace(0.0, 1.0, steps + 1)
        i = np.clip(xa + t * (xb - xa), 0, GRID - 1).astype(np.int64)
        j = np.clip(ya + t * (yb - ya), 0, GRID - 1).astype(np.int64)
        near[j, i] = True
    grown = near.copy()
    for shift in range(1, SAFETY_CELLS + 1):
        grown[shift:, :] |= near[:-shift, :]
        grown[:-shift, :] |= near[shift:, :]
    rows = grown.copy()
    for shift in range(1, SAFETY_CELLS + 1):
        grown[:, shift:] |= rows[:, :-shift]
        grown[:, :-shift] |= rows[:, shift:]
    return grown


def nearest_row(x: np.ndarray, y: np.ndarray, at_x: float, at_y: float, radius_x: float, radius_y: float,
                keep: np.ndarray | None = None) -> int | None:
    """The row nearest to (at_x, at_y) within the ellipse of the given radii (a few pixels in
    data units, so the distance is measured as the eye sees it), or None."""
    rows = rows_in_box(x, y, at_x - radius_x, at_x + radius_x, at_y - radius_y, at_y + radius_y, keep)
    if not len(rows):
        return None
    d = ((x[rows] - at_x) / radius_x) ** 2 + ((y[rows] - at_y) / radius_y) ** 2
    best = int(np.argmin(d))
    return int(rows[best]) if d[best] <= 1.0 else None
