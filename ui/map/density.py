"""The map as a density image, for views holding more points than the browser draws quickly.

Each pixel of the view gets the points that fall in it: its colour is the count-weighted mix of
their category colours, its opacity grows with the log of the count. With a selection, every
point is drawn dimmed first and the selected points at full strength on top, as the point view
dims unselected points.

Made with numpy's `bincount` (three weighted sums and a count per pixel), which needs no
compiler warm-up: datashader's first aggregation of a server's life (numba compiling it) took
5-7 s here, where a request may take a few hundred milliseconds; once compiled it aggregates
about as fast as this (docs/BENCHMARKS.md).
"""
from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

MIN_ALPHA = 0.35  # opacity of a pixel holding one point
DIM = 0.14  # strength of the unselected points when there is a selection (the point view's 0.12)
SPARSE = 0.12  # below this share of occupied pixels, points are drawn 3 px wide


@dataclass(frozen=True)
class View:
    """A rectangle of the map in data units and the pixels it is drawn on."""

    x0: float
    x1: float
    y0: float
    y1: float
    width: int
    height: int


def hex_colours(colours: list[str]) -> np.ndarray:
    """'#rrggbb' strings as a (k, 3) float32 array of 0-255 values."""
    return np.array([[int(c[i:i + 2], 16) for i in (1, 3, 5)] for c in colours], dtype=np.float32).reshape(-1, 3)


def bin_index(x: np.ndarray, y: np.ndarray, codes: np.ndarray, categories: int, view: View) -> np.ndarray:
    """Each point's bin, pixel * categories + category (pixel = row * width + column), as int32;
    points outside the view or of a category not drawn get the last bin, which is dropped.

    Whole-column float32 operations with no gather: at ten million points, picking the points
    in view first (flatnonzero, then indexing) took longer than binning them all."""
    size = view.width * view.height
    column = x - np.float32(view.x0)
    column *= np.float32(view.width / (view.x1 - view.x0))
    np.floor(column, out=column)
    row = np.float32(view.y1) - y  # screen rows grow downwards
    row *= np.float32(view.height / (view.y1 - view.y0))
    np.floor(row, out=row)
    outside = column < 0
    outside |= column >= view.width
    outside |= row < 0
    outside |= row >= view.height
    outside |= codes >= categories
    row *= np.float32(view.width)
    row += column  # the pixel, exact in float32 below 2**24 pixels
    bins = row.astype(np.int32)
    bins *= categories
    bins += codes.astype(np.int32)
    bins[outside] = size * categories
    return bins


def aggregate(bins: np.ndarray, colours: np.ndarray, size: int) -> np.ndarray:
    """Per pixel: count, then the sum of red, green and blue over its points -> (size, 4)."""
    counts = np.bincount(bins, minlength=size * len(colours) + 1)[:-1].reshape(size, len(colours))
    out = np.empty((size, 4), dtype=np.float64)
    out[:, 0] = counts.sum(axis=1)
    out[:, 1:] = counts @ colours.astype(np.float64)
    return out


def _spread(agg: np.ndarray, height: int, width: int) -> np.ndarray:
    """Each pixel's sums over its 3x3 neighbourhood: single points become visible dots."""
    grid = agg.reshape(height, width, 4)
    padded = np.pad(grid, ((1, 1), (1, 1), (0, 0)))
    out = np.zeros_like(grid)
    for dy in range(3):
        for dx in range(3):
            out += padded[dy:dy + height, dx:dx + width]
    return out.reshape(-1, 4)


def _shade(agg: np.ndarray, top: float, strength: float) -> np.ndarray:
    """RGBA (0-1 floats) of each pixel: mean colour, opacity from log(count) over log(top)."""
    count = agg[:, 0]
    rgba = np.zeros((len(agg), 4), dtype=np.float64)
    filled = count > 0
    rgba[filled, :3] = agg[filled, 1:] / count[filled, None] / 255.0
    level = np.log1p(count[filled]) / np.log1p(max(top, 1.0))
    rgba[filled, 3] = strength * (MIN_ALPHA + (1 - MIN_ALPHA) * np.minimum(level, 1.0))
    return rgba


def _over(top: np.ndarray, below: np.ndarray) -> np.ndarray:
    """Porter-Duff "over" of straight-alpha RGBA images."""
    alpha = top[:, 3:] + below[:, 3:] * (1 - top[:, 3:])
    rgb = top[:, :3] * top[:, 3:] + below[:, :3] * below[:, 3:] * (1 - top[:, 3:])
    return np.concatenate([np.divide(rgb, alpha, out=np.zeros_like(rgb), where=alpha > 0), alpha], axis=1)


def render(x: np.ndarray, y: np.ndarray, codes: np.ndarray, colours: np.ndarray, view: View,
           selected: np.ndarray | None = None) -> np.ndarray:
    """The view as an RGBA uint8 image (height, width, 4).

    `codes` is each point's category (an index into `colours`); points whose code is out of
    range (the filters' HIDDEN, a hidden legend entry) are not drawn. `selected` is a row mask:
    None draws every point at full strength, otherwise unselected points are dimmed.
    """
    size = view.width * view.height
    bins = bin_index(x, y, codes, len(colours), view)
    agg = aggregate(bins, colours, size)
    sparse = np.count_nonzero(agg[:, 0]) < SPARSE * size
    if sparse:
        agg = _spread(agg, view.height, view.width)
    top = float(agg[:, 0].max()) if size else 1.0
    if selected is None:
        rgba = _shade(agg, top, 1.0)
    else:
        bins[~selected] = size * len(colours)
        on = aggregate(bins, colours, size)
        if sparse:
            on = _spread(on, view.height, view.width)
        rgba = _over(_shade(on, top, 1.0), _shade(agg, top, DIM))
    return np.round(rgba * 255).astype(np.uint8).reshape(view.height, view.width, 4)


def png(image: np.ndarray) -> bytes:
    """An RGBA image as PNG, compressed for speed (it goes over the local network once)."""
    buffer = io.BytesIO()
    Image.fromarray(image, "RGBA").save(buffer, "PNG", compress_level=1)
    return buffer.getvalue()
