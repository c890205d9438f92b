"""The map's Plotly figure: layout, trace style, colours, and the messages sent to the browser.

A message carries the legend and the layout, never per-point data: the browser asks the view
route (ui/map/routes.py) for the points of its view (binary: rows, x, y, a value code per point)
or for a density image when the view holds too many, and builds one scattergl trace per
colour category itself. A selection made in Python sends its row numbers when they are few.
See ui/map/component.py for the JS.
"""
from __future__ import annotations

import base64
import json
from functools import lru_cache
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
import plotly.graph_objects as go

from store.schema import DETECTION_OUTCOME, DETECTION_REASON
from ui.map.palette import DATA_COLOUR, OTHER_COLOUR, PALETTE, UNTAGGED_COLOUR  # noqa: F401  (re-exported)
from ui.map.routes import NEAR_ROUTE, VIEW_ROUTE, register
from ui.model_maps import MODEL_CLUSTERS, coordinates, model_cluster_codes
from ui.state import MapState
from ui.table import NO_LABEL, PointTable

HIDDEN = 65535  # category code of points the filters hide
FIELD_PREFIX = "field:"  # colour_by value of a numeric payload field, e.g. "field:brightness"
CLUSTER_COLOURING = "cluster"  # colour_by value: the clusters `analyze` found
OUTCOME_NAMES = {("tp", ""): "found", ("missed", ""): "missed", ("crowd", ""): "crowd region",
                 ("missed", "badly_placed"): "missed: badly placed", ("missed", "wrong_class"): "missed: wrong class",
                 ("missed", "unseen"): "missed: unseen", ("", ""): "no outcome",
                 # a detector's false positives, drawn as points of their own (source: prediction)
                 ("fp", "background"): "false positive: background", ("fp", "duplicate"): "false positive: duplicate",
                 ("fp", "wrong_class"): "false positive: wrong class",
                 ("fp", "badly_placed"): "false positive: badly placed"}
# Viridis in 8 steps: ordered, colour-blind safe, readable on white.
SEQUENTIAL = ["#440154", "#46327e", "#365c8d", "#277f8e", "#1fa187", "#4ac16d", "#a0da39", "#fde725"]
YES_NO = ["#d62728", "#2ca02c"]
COMPARE = [("A only", "#1f77b4"), ("B only", "#ff7f0e"), ("A and B", "#9467bd"), ("neither", UNTAGGED_COLOUR)]
SELECTION_ROWS_SENT = 200_000  # a bigger selection is shown from the view route's answer
DRAWN = ("box", "lasso")  # selection sources the user drew on the map: its outline stays
BOUNDS_MARGIN = 0.04  # share of the data's extent left around it in the first view
NAME_CHARS = 40  # a cluster name on the map is cut to this many characters
MODEBAR_STRIP_PX = 34  # Plotly's modebar is 26 px tall, 2 px from the top


@dataclass
class Category:
    name: str
    colour: str
    count: int


@dataclass
class Colouring:
    """Per-row category codes (uint16, HIDDEN = not drawn) and the categories' legend entries.

    `hover_names[hover_codes[row]]` is the text the hover card shows under the thumbnail.
    """

    codes: np.ndarray
    categories: list[Category]
    legend: bool
    hover_names: list[str] | None = None
    hover_codes: np.ndarray | None = None
    # What is sent: each row's value code (HIDDEN if filtered out) and value -> category.
    values: np.ndarray | None = None
    remap: list[int] | None = None


def colouring(table: PointTable, state: MapState) -> Colouring:
    if state.colour_by == "data":
        codes = _hide(np.zeros(len(table), dtype=np.uint16), state)
        return Colouring(codes, [Category("points", DATA_COLOUR, int((codes == 0).sum()))], legend=False,
                         values=codes, remap=[0])
    if state.colour_by == "compare" and state.compare_rows is not None:
        return _compared(len(table), *state.compare_rows, state)
    if state.colour_by.startswith(FIELD_PREFIX):
        name = state.colour_by[len(FIELD_PREFIX):]
        if name == DETECTION_OUTCOME:
            return _categorical(*detection_outcomes(table), state)
        return _binned(table.numeric(name), name, state)
    if state.colour_by == CLUSTER_COLOURING:
        return _clustered(table, state)
    if state.colour_by.startswith(MODEL_CLUSTERS):  # another model's clusters (compare-models)
        found = model_cluster_codes(table, state.colour_by[len(MODEL_CLUSTERS):])
        if found is not None:
            return _categorical(found[0], found[1], state, untagged=len(found[1]) - 1)
    if state.colour_by == "tag":
        names, codes = primary_tags(table)
        return _categorical(codes, names, state, untagged=names.index("untagged") if "untagged" in names else None)
    return _by_label(table, state)


def _by_label(table: PointTable, state: MapState) -> Colouring:
    """Unlabelled points are grey and listed last, like untagged ones: the labelled classes
    stand out, and what is still to label reads as one background."""
    unlabelled = table.label_names.index(NO_LABEL) if NO_LABEL in table.label_names else None
    return _categorical(table.label_codes, table.label_names, state, untagged=unlabelled)


def detection_outcomes(table: PointTable) -> tuple[np.ndarray, list[str]]:
    """Each box's outcome against the last detector run ("found", "missed: badly placed", ...,
    "no outcome"): the map's colouring by `detection_outcome`."""
    columns = table.payload_columns([DETECTION_OUTCOME, DETECTION_REASON])
    shown = [OUTCOME_NAMES.get((o or "", r or ""), f"missed: {r}" if r else (o or "no outcome"))
             for o, r in zip(columns[DETECTION_OUTCOME], columns[DETECTION_REASON])]
    names, codes = np.unique(np.asarray(shown, dtype=object).astype(str), return_inverse=True)
    return codes.astype(np.int32), [str(n) for n in names]


def primary_tags(table: PointTable) -> tuple[list[str], np.ndarray]:
    """Each point's colour tag: its least common tag (the most specific), or "untagged".
    Only the tagged rows are visited (the table keeps no entry for the others)."""
    with table._lock:
        tagged = list(table.tags.items())
    counts = Counter(tag for _, tags in tagged for tag in tags)
    primary = [min(tags, key=lambda t: (counts[t], t)) for _, tags in tagged]
    present = set(primary) | ({"untagged"} if len(tagged) < len(table) else set())
    names = sorted(present, key=lambda t: (t == "untagged", -counts.get(t, 0), t))
    index = {name: i for i, name in enumerate(names)}
    codes = np.full(len(table), index.get("untagged", 0), dtype=np.int32)
    if tagged:
        codes[np.fromiter((row for row, _ in tagged), dtype=np.int64, count=len(tagged))] = [index[p] for p in primary]
    return names, codes


def _categorical(codes: np.ndarray, names: list[str], state: MapState, untagged: int | None = None) -> Colouring:
    """Largest categories get their own colour and legend entry, the rest become "other"."""
    visible = np.ones(len(codes), bool) if state.visible is None else state.visible
    counts = np.bincount(codes[visible], minlength=len(names))
    order = [int(i) for i in np.argsort(-counts, kind="stable") if counts[i] and i != untagged]
    coloured, rest = order[:len(PALETTE)], order[len(PALETTE):]
    remap = np.full(len(names), len(coloured), dtype=np.uint16)
    categories = [Category(f"{names[c]} ({counts[c]:,})", PALETTE[i], int(counts[c])) for i, c in enumerate(coloured)]
    for i, c in enumerate(coloured):
        remap[c] = i
    if rest:
        total = int(sum(counts[c] for c in rest))
        categories.append(Category(f"other ({len(rest)} classes, {total:,})", OTHER_COLOUR, total))
    if untagged is not None and counts[untagged]:
        remap[untagged] = len(categories)
        categories.append(Category(f"{names[untagged]} ({counts[untagged]:,})", UNTAGGED_COLOUR,
                                   int(counts[untagged])))
    values = _hide(codes, state)
    return Colouring(_hide(remap[codes], state), categories, legend=True, hover_names=list(names),
                     hover_codes=codes.astype(np.uint16), values=values, remap=[int(r) for r in remap])


def _clustered(table: PointTable, state: MapState) -> Colouring:
    """Colour by cluster. Up to len(PALETTE) clusters each get a colour and a legend entry;
    beyond that (100+ clusters) the palette is reused, each cluster taking the colour whose
    nearest cluster of that colour is farthest away on the map, so neighbours differ; the
    hover card names the cluster and the legend is off. Points in no cluster are light grey."""
    from ui.clusters import NO_CLUSTER_NAME, load_clusters

    view = load_clusters(table)
    if view is None:
        return _by_label(table, state)
    k = len(view)
    names = [*view.names, NO_CLUSTER_NAME]
    codes = np.where(view.codes >= 0, view.codes, k)
    if k <= len(PALETTE):
        return _categorical(codes, names, state, untagged=k)
    remap = np.append(spread_colours(view.centres, len(PALETTE)), len(PALETTE)).astype(np.uint16)
    visible = np.ones(len(codes), bool) if state.visible is None else state.visible
    counts = np.bincount(remap[codes[visible]], minlength=len(PALETTE) + 1)
    categories = [Category(f"colour {i + 1} ({int(c):,})", colour, int(c)) for i, (colour, c) in
                  enumerate(zip([*PALETTE, UNTAGGED_COLOUR], counts))]
    return Colouring(_hide(remap[codes], state), categories, legend=False, hover_names=names,
                     hover_codes=codes.astype(np.uint16), values=_hide(codes, state), remap=[int(r) for r in remap])


def spread_colours(centres: np.ndarray, colours: int) -> np.ndarray:
    """A colour index per cluster (given largest first): each takes the colour whose nearest
    earlier cluster of that colour is farthest from its centre (free colours first)."""
    centres = np.asarray(centres, dtype=np.float64).reshape(-1, 2)
    assigned = np.zeros(len(centres), dtype=np.int64)
    for i in range(len(centres)):
        nearest = np.full(colours, np.inf)
        np.minimum.at(nearest, assigned[:i], np.hypot(*(centres[:i] - centres[i]).T))
        assigned[i] = int(np.argmax(nearest))  # first of the equally far (or unused) colours
    return assigned


def _binned(values: np.ndarray, name: str, state: MapState) -> Colouring:
    """A numeric field as ordered colour bins (quantiles on a sequential scale), with the
    value range of each bin in the legend; a 0/1 field (e.g. prediction_correct) as no/yes."""
    finite = np.isfinite(values)
    present = np.unique(values[finite])
    if len(present) and np.isin(present, [0.0, 1.0]).all():
        names, colours = [f"{name}: no", f"{name}: yes"], list(YES_NO)
        codes = np.where(finite, np.nan_to_num(values), 0).astype(np.int64)
    else:
        edges = np.unique(np.quantile(present, np.linspace(0, 1, len(SEQUENTIAL) + 1))) if len(present) else np.zeros(1)
        edges = edges if len(edges) > 1 else np.array([edges[0], edges[0]])
        bins = len(edges) - 1
        codes = np.clip(np.searchsorted(edges, np.nan_to_num(values), side="right") - 1, 0, bins - 1)
        names = [f"{name} {edges[i]:.3g} – {edges[i + 1]:.3g}" for i in range(bins)]
        colours = [SEQUENTIAL[int(round(i))] for i in np.linspace(0, len(SEQUENTIAL) - 1, bins)]
    codes[~finite] = len(names)
    names.append(f"{name}: no value")
    colours.append(OTHER_COLOUR)
    visible = np.ones(len(codes), bool) if state.visible is None else state.visible
    counts = np.bincount(codes[visible], minlength=len(names))
    categories = [Category(f"{n} ({int(c):,})", colour, int(c)) for n, colour, c in zip(names, colours, counts)]
    shown = _hide(codes, state)
    return Colouring(shown, categories, legend=True, hover_names=names, hover_codes=codes.astype(np.uint16),
                     values=shown, remap=list(range(len(names))))


def _compared(n: int, rows_a: np.ndarray, rows_b: np.ndarray, state: MapState) -> Colouring:
    """Two subsets on the map: A only, B only, both, neither (codes 0..3)."""
    in_a, in_b = np.zeros(n, bool), np.zeros(n, bool)
    in_a[rows_a], in_b[rows_b] = True, True
    codes = np.select([in_a & in_b, in_a, in_b], [2, 0, 1], default=3).astype(np.int64)
    visible = np.ones(n, bool) if state.visible is None else state.visible
    counts = np.bincount(codes[visible], minlength=4)
    categories = [Category(f"{name} ({int(c):,})", colour, int(c)) for (name, colour), c in zip(COMPARE, counts)]
    shown = _hide(codes, state)
    return Colouring(shown, categories, legend=True, hover_names=[name for name, _ in COMPARE],
                     hover_codes=codes.astype(np.uint16), values=shown, remap=[0, 1, 2, 3])


def _hide(codes: np.ndarray, state: MapState) -> np.ndarray:
    codes = codes.astype(np.uint16, copy=True)
    if state.visible is not None:
        codes[~state.visible] = HIDDEN
    return codes


# --- figure pieces ------------------------------------------------------------------
def marker_size(n: int) -> float:
    """Smaller markers for bigger maps, so clusters keep their shape."""
    return 6.0 if n <= 5_000 else 4.0 if n <= 50_000 else 3.0 if n <= 150_000 else 2.5


@lru_cache(maxsize=8)
def _layout(height: int | None) -> str:
    return json.dumps(_build_layout(height))


def layout(height: int | None = None) -> dict[str, Any]:
    """The map's layout (built with plotly's validators once, then cached). Without a
    `height` the chart takes its div's size (the page sizes it: ui/page_layout.py)."""
    return json.loads(_layout(height))


def _build_layout(height: int | None) -> dict[str, Any]:
    return go.Layout(
        dragmode="select", hovermode="closest", clickmode="none",
        # A constant uirevision keeps the user's zoom and drawn selection across re-renders;
        # selectionrevision is bumped (never 0) when Python sets the selection.
        uirevision="map", selectionrevision=1, height=height, autosize=height is None,
        # The modebar gets its own strip above the plot area (MODEBAR_STRIP_PX), and the
        # legend starts at the plot area's top: neither covers the other's buttons.
        margin=dict(l=10, r=10, t=MODEBAR_STRIP_PX, b=10), plot_bgcolor="white", paper_bgcolor="white",
        xaxis=dict(visible=False), yaxis=dict(visible=False),
        legend=dict(itemsizing="constant", itemclick="toggle", itemdoubleclick="toggleothers",
                    bgcolor="rgba(255,255,255,0.8)", font=dict(size=11), y=1, yanchor="top"),
    ).to_plotly_json()


@lru_cache(maxsize=8)
def trace_template(n: int) -> dict[str, Any]:
    """Style shared by every category trace; unselected points are dimmed, not hidden."""
    return go.Scattergl(
        mode="markers", hoverinfo="none",
        marker=dict(size=marker_size(n), opacity=0.85, line=dict(width=0)),
        selected=dict(marker=dict(opacity=1.0)), unselected=dict(marker=dict(opacity=0.12)),
    ).to_plotly_json()


def plot_config() -> dict[str, Any]:
    return {"displaylogo": False, "scrollZoom": True, "responsive": True,
            # plotly.js 4 offers to upload the chart to a cloud service: never.
            "modeBarButtonsToRemove": ["sendChartToCloud", "toImage", "autoScale2d"]}


def typed(array: np.ndarray) -> dict[str, str]:
    """A numpy array as Plotly's typed-array spec (little-endian base64)."""
    kinds = {np.dtype(np.float32): "f4", np.dtype(np.int32): "i4", np.dtype(np.uint16): "u2"}
    array = np.ascontiguousarray(array)
    return {"dtype": kinds[array.dtype], "bdata": base64.b64encode(array.astype(array.dtype.newbyteorder("<")).tobytes()).decode()}


def bounds(table: PointTable, vector: str = "") -> list[float]:
    """[x0, x1, y0, y1] of every point on the map of `vector` (ui/model_maps.py), with a margin:
    the map's first (and reset) view."""
    x, y = coordinates(table, vector)
    alive = table.alive & np.isfinite(x)
    if not alive.any():
        return [-1.0, 1.0, -1.0, 1.0]
    out = []
    for values in (x, y) if alive.all() else (x[alive], y[alive]):
        low, high = float(values.min()), float(values.max())
        pad = max((high - low) * BOUNDS_MARGIN, 1e-6)
        out += [low - pad, high + pad]
    return out


def cluster_names(table: PointTable, state: MapState) -> list[dict[str, Any]]:
    """Where to write each cluster's name on the map (`analyze`'s cluster table: the middle of
    its densest part), largest cluster first, leaving out clusters the filters hide entirely.
    The browser places them largest first and skips a name that would overlap one placed."""
    from ui.clusters import load_clusters

    view = load_clusters(table)
    if view is None:
        return []
    shown = np.ones(len(view), dtype=bool)
    if state.visible is not None:
        codes = view.codes[state.visible]
        shown = np.bincount(codes[codes >= 0], minlength=len(view))[:len(view)] > 0
    names = [{"name": name[:NAME_CHARS], "x": float(r.get("x", 0.0)), "y": float(r.get("y", 0.0)),
              "size": int(r.get("size") or 0)}
             for name, r, keep in zip(view.names, view.records, shown) if keep]
    return sorted(names, key=lambda n: -n["size"])


def map_message(table: PointTable, state: MapState) -> str | None:
    """JSON for the map component with only the parts `state.dirty` names; None if nothing.

    Per-point data never goes in here: the browser asks VIEW_ROUTE (ui/map/routes.py) for the
    points or the density image of its view, after every message that changes them. A
    selection's rows come along (int32, base64) for a browser that holds every point."""
    if not state.dirty:
        return None
    state.seq += 1
    message: dict[str, Any] = {"seq": state.seq}
    if "base" in state.dirty:
        message["base"] = {"token": register(state), "n": len(table), "bounds": bounds(table, state.map_vector),
                           "map": state.map_vector,
                           "view_url": VIEW_ROUTE, "near_url": NEAR_ROUTE, "layout": layout(),
                           "template": trace_template(len(table)), "config": plot_config()}
    if "colour" in state.dirty or "base" in state.dirty:
        c = colouring(table, state)
        state.colours, state.colours_for = c, table.version
        message["colour"] = {"remap": c.remap, "legend": c.legend,
                             "categories": [{"name": k.name, "colour": k.colour} for k in c.categories],
                             "hover_names": c.hover_names}
    if state.dirty & {"names", "colour", "base"}:
        # Filters change with "colour" and may hide whole clusters: their names go too.
        # Cluster names sit where the default map puts the clusters: not on another model's map.
        names = [] if state.map_vector else cluster_names(table, state)
        if names or state.dirty & {"names", "base"}:
            message["names"] = {"show": state.show_names, "clusters": names}
    if "selection" in state.dirty or "base" in state.dirty:
        rows = state.selection.rows
        small = rows is not None and len(rows) <= SELECTION_ROWS_SENT
        message["selection"] = {"count": None if rows is None else len(rows),
                                "drawn": state.selection.source in DRAWN,
                                "rows": typed(rows.astype(np.int32)) if small else None}
    state.dirty.clear()
    return json.dumps(message)
