"""The Metrics tab: one numeric field (image metric or score) at a time, and weak labelling.

* a histogram of the selection (blue) over the whole dataset (grey), both normalised to shares,
  with the selection's count / mean / median beside it; it follows every selection change;
* "Select range": every point whose value lies in [min, max] becomes the map's selection;
* the moderate (1.5-3 x IQR beyond the quartiles) and severe (over 3 x IQR) tails of the whole
  dataset's values are shaded on the histogram (analysis/severity.py), counted beside it, and
  "Select moderate outliers" / "Select severe outliers" select them in one click;
* weak labels: set a label on the selection (`Collection.relabel` keeps `original_label`)
  and give the originals back (`restore_labels`); the label view recolours.

The helpers above `build` are pure functions of the `PointTable` and numpy arrays.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
import plotly.graph_objects as go

from actions.edits import PointEditor
from analysis.severity import MODERATE, MODERATE_IQR, SEVERE, SEVERE_IQR, Fences, iqr_fences, severity
from store.schema import CLUSTER, METRIC_FIELDS, MISLABEL_SCORE, OUTLIER_SCORE, PREDICTION_CONFIDENCE, UNIQUENESS, X, Y
from ui.context import AppContext
from ui.state import MapState
from ui.table import NO_LABEL, PointTable
from ui.panel_html import labelled_line
from ui.text import html_text, markdown_text, plotly_text

ASSETS = Path(__file__).parent / "assets"  # the page's script, style and markup, as files
# The histogram is drawn with the page's own plotly.js (the one the map loads): a gr.Plot
# would load a second copy of Plotly, which breaks the map's hover events.
PLOT_TEMPLATE = (ASSETS / "metric-histogram.html").read_text(encoding="utf-8")
PLOT_JS = (ASSETS / "metric-histogram.js").read_text(encoding="utf-8")
SCORE_FIELDS = [UNIQUENESS, MISLABEL_SCORE, OUTLIER_SCORE, PREDICTION_CONFIDENCE]
NOT_METRICS = {X, Y, CLUSTER}  # positions and identifiers, not measurements
BINS = 30
SAMPLE = 500
MAX_LABEL_LENGTH = 100


# --- pure helpers ---------------------------------------------------------------------
def numeric_fields(table: PointTable, sample: int = SAMPLE) -> list[str]:
    """The numeric payload fields present: METRIC_FIELDS, then score fields, then any other
    number found in the first `sample` payloads (x and y left out)."""
    found: set[str] = set()
    for batch in table.collection.scroll(None, batch=sample):
        for record in batch:
            found.update(k for k, v in record.payload.items()
                         if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in NOT_METRICS)
        break
    known = [f for f in [*METRIC_FIELDS, *SCORE_FIELDS] if f in found]
    return known + sorted(found - set(known))


@dataclass
class Histogram:
    edges: np.ndarray        # (bins + 1,)
    all_share: np.ndarray    # (bins,) share of the dataset's points (with a value) per bin
    sel_share: np.ndarray    # (bins,) share of the selection's points per bin
    all_count: int
    sel_count: int


def histogram_data(values: np.ndarray, rows: np.ndarray | None, bins: int = BINS) -> Histogram:
    """Shares per bin of every finite value and of the values at `rows` (None: no selection),
    over the same bin edges (those of the whole dataset)."""
    finite = values[np.isfinite(values)]
    if len(finite) == 0:
        edges = np.linspace(0.0, 1.0, bins + 1)
    else:
        low, high = float(finite.min()), float(finite.max())
        edges = np.linspace(low, high if high > low else low + 1.0, bins + 1)
    all_counts, _ = np.histogram(finite, edges)
    picked = np.zeros(0) if rows is None else values[np.asarray(rows, dtype=np.int64)]
    picked = picked[np.isfinite(picked)]
    sel_counts, _ = np.histogram(picked, edges)
    return Histogram(edges, all_counts / max(1, len(finite)), sel_counts / max(1, len(picked)),
                     len(finite), len(picked))


def stats(values: np.ndarray, rows: np.ndarray | None) -> dict[str, float | int]:
    """count / mean / median / min / max of the finite values at `rows` (all rows when None)."""
    picked = values if rows is None else values[np.asarray(rows, dtype=np.int64)]
    picked = picked[np.isfinite(picked)]
    if len(picked) == 0:
        return {"count": 0, "mean": float("nan"), "median": float("nan"), "min": float("nan"), "max": float("nan")}
    return {"count": int(len(picked)), "mean": float(picked.mean()), "median": float(np.median(picked)),
            "min": float(picked.min()), "max": float(picked.max())}


def range_rows(values: np.ndarray, low: float | None, high: float | None,
               visible: np.ndarray | None = None) -> np.ndarray:
    """Rows whose value is in [low, high] (inclusive; a None end is open; NaN never matches),
    limited to the `visible` mask when given."""
    keep = np.isfinite(values)
    if low is not None:
        keep &= values >= low
    if high is not None:
        keep &= values <= high
    if visible is not None:
        keep &= visible
    return np.flatnonzero(keep)


TAIL_COLOURS = {"moderate": "#f3c77a", "severe": "#e0605a"}


def tail_spans(edges: np.ndarray, fences: Fences | None) -> list[tuple[str, float, float]]:
    """(level, from, to) of each outlier tail within the histogram's range, for shading."""
    if fences is None:
        return []
    low, high = float(edges[0]), float(edges[-1])
    spans = [("severe", low, fences.low(SEVERE_IQR)),
             ("moderate", fences.low(SEVERE_IQR), fences.low(MODERATE_IQR)),
             ("moderate", fences.high(MODERATE_IQR), fences.high(SEVERE_IQR)),
             ("severe", fences.high(SEVERE_IQR), high)]
    return [(level, max(a, low), min(b, high)) for level, a, b in spans if min(b, high) > max(a, low)]


def histogram_figure(name: str, hist: Histogram, fences: Fences | None = None) -> go.Figure:
    centres = (hist.edges[:-1] + hist.edges[1:]) / 2
    width = float(hist.edges[1] - hist.edges[0])
    figure = go.Figure()
    for level, a, b in tail_spans(hist.edges, fences):
        figure.add_shape(type="rect", x0=a, x1=b, y0=0, y1=1, yref="paper", layer="below", line_width=0,
                         fillcolor=TAIL_COLOURS[level], opacity=0.35, name=f"{level} outliers")
    figure.add_bar(x=centres, y=hist.all_share, width=width, name=f"whole dataset ({hist.all_count:,})",
                   marker_color="#c3c3c3", opacity=0.8)
    if hist.sel_count:
        figure.add_bar(x=centres, y=hist.sel_share, width=width, name=f"selection ({hist.sel_count:,})",
                       marker_color="#3b6ea8", opacity=0.6)
    figure.update_layout(barmode="overlay", height=300, margin=dict(l=40, r=10, t=30, b=40),
                         title=dict(text=plotly_text(name), font=dict(size=13)), yaxis_title="share of points",
                         legend=dict(orientation="h", y=1.12, x=1, xanchor="right"),
                         plot_bgcolor="white", paper_bgcolor="white")
    return figure


def tail_counts(values: np.ndarray, fences: Fences | None) -> dict[str, int]:
    level = severity(values, fences)
    return {"moderate": int((level == MODERATE).sum()), "severe": int((level == SEVERE).sum())}


def stats_html(name: str, values: np.ndarray, rows: np.ndarray | None) -> str:
    s, everything = stats(values, rows), stats(values, None)
    fences = iqr_fences(values)
    tails = tail_counts(values, fences)

    def fmt(v: float) -> str:
        return "–" if not np.isfinite(v) else f"{v:,.4g}"

    scope = "selection" if rows is not None else "all points"
    return (f'<div class="es-metric-stats" data-field="{html_text(name)}" data-count="{s["count"]}">'
            f'<b>{html_text(name)}</b> · {scope}: <b>{s["count"]:,}</b> points, mean {fmt(s["mean"])}, '
            f'median {fmt(s["median"])} · dataset: mean {fmt(everything["mean"])}, '
            f'median {fmt(everything["median"])}, range {fmt(everything["min"])} … {fmt(everything["max"])}'
            f'<br><span class="es-metric-tails" data-moderate="{tails["moderate"]}" data-severe="{tails["severe"]}">'
            f'outliers (1.5 / 3 × IQR): <b>{tails["moderate"]:,}</b> moderate, <b>{tails["severe"]:,}</b> severe'
            f'</span></div>')


def clean_label(name: str | None) -> str:
    text = "".join(c for c in (name or "") if c.isprintable()).strip()
    return text[:MAX_LABEL_LENGTH]


def label_choices(table: PointTable) -> list[str]:
    return [name for name in table.label_names if name != NO_LABEL]


# --- the tab --------------------------------------------------------------------------
def build(ctx: AppContext) -> None:
    """The tab: a histogram of one numeric field with range selection, then weak labelling."""
    fields = numeric_fields(ctx.table)
    if not fields:
        gr.Markdown("No numeric fields (image metrics or scores) in this collection's payloads.")
    _histogram_panel(ctx, fields)
    gr.Markdown("**Weak labelling**: set a label on the selected points (the original is kept and can be restored)")
    counts = gr.HTML(elem_id="es-metrics-labelled")
    _weak_label_panel(ctx)
    ctx.on_selection_change(lambda state: labelled_line(ctx.table, state.shown_rows(ctx.table), state.visible),
                            outputs=[counts])


def _histogram_panel(ctx: AppContext, fields: list[str]) -> None:
    """One field's histogram (selection over dataset) with statistics; "Select range"."""
    first = fields[0] if fields else None
    # The range inputs are filled when the tab first shows (the field is read then, not at
    # start-up: at ten million points one field is a scan of a minute).
    with gr.Row(equal_height=True):
        metric = gr.Dropdown(fields, value=first, label="Metric", elem_id="es-metric", scale=2)
        low = gr.Number(None, label="min", elem_id="es-metric-min", scale=1)
        high = gr.Number(None, label="max", elem_id="es-metric-max", scale=1)
        pick = gr.Button("Select range", elem_id="es-metric-select", scale=1, variant="primary")
    with gr.Row(equal_height=True):
        moderate = gr.Button("Select moderate outliers", elem_id="es-metric-moderate", size="sm")
        severe = gr.Button("Select severe outliers", elem_id="es-metric-severe", size="sm")
    plot = gr.HTML("", html_template=PLOT_TEMPLATE, js_on_load=PLOT_JS, elem_id="es-metric-plot",
                   padding=False)
    summary = gr.HTML(elem_id="es-metric-stats")
    range_status = gr.Markdown(elem_id="es-metric-status")

    def values_of(name: str | None) -> np.ndarray | None:
        return ctx.table.numeric(name) if name in fields else None

    def views(state: MapState, name: str | None) -> tuple[Any, str]:
        values = values_of(name)
        if values is None:
            return "", ""
        rows = state.selected_rows()
        figure = histogram_figure(name, histogram_data(values, rows), iqr_fences(values))
        return figure.to_json(), stats_html(name, values, rows)

    def follow(state: MapState, name: str | None, a: float | None, b: float | None) -> tuple[Any, ...]:
        shown = views(state, name)
        if a is not None or b is not None or values_of(name) is None:
            return (*shown, gr.skip(), gr.skip())
        ends = stats(values_of(name), None)
        return (*shown, _finite(ends["min"]), _finite(ends["max"]))

    ctx.on_selection_change(follow, [metric, low, high], [plot, summary, low, high])

    def change_metric(state: MapState, name: str | None) -> tuple[Any, ...]:
        values = values_of(name)
        if values is None:
            return "", "", None, None
        s = stats(values, None)
        return (*views(state, name), _finite(s["min"]), _finite(s["max"]))

    ctx.event(metric.change, change_metric, [metric], [plot, summary, low, high])

    def select_range(state: MapState, name: str | None, a: float | None, b: float | None) -> tuple[MapState, str]:
        values = values_of(name)
        if values is None:
            return state, "Pick a metric first."
        if a is not None and b is not None and a > b:
            return state, markdown_text(f"Empty range: min {a} > max {b}.")
        rows = range_rows(values, a, b, state.visible)
        lo, hi = "-∞" if a is None else f"{a:g}", "∞" if b is None else f"{b:g}"
        state.select(rows, f"{name} in [{lo}, {hi}]")
        return state, markdown_text(f"Selected {len(rows):,} points with {name} in [{lo}, {hi}].")

    ctx.map_event(pick.click, select_range, [metric, low, high], [range_status], name="metric_range")
    for button, level in ((moderate, "moderate"), (severe, "severe")):
        ctx.map_event(button.click, _tail_selector(values_of, level), [metric], [range_status],
                      name=f"metric_{level}_outliers")


def _tail_selector(values_of: Any, level: str) -> Any:
    """The click handler that selects the `level` tail of the chosen metric (visible points)."""
    wanted = SEVERE if level == "severe" else MODERATE

    def select_tail(state: MapState, name: str | None) -> tuple[MapState, str]:
        values = values_of(name)
        if values is None:
            return state, "Pick a metric first."
        keep = severity(values, iqr_fences(values)) == wanted
        if state.visible is not None:
            keep &= state.visible
        rows = np.flatnonzero(keep)
        state.select(rows, f"{level} outliers of {name}")
        return state, f"Selected {len(rows):,} {level} outliers of {name} (beyond the dataset's IQR fences)."

    return select_tail


def _weak_label_panel(ctx: AppContext) -> None:
    """Set a label on the selection (originals kept in `original_label`), or restore them."""
    with gr.Row(equal_height=True):
        label = gr.Dropdown(label_choices(ctx.table), value=None, allow_custom_value=True, label="Label",
                            elem_id="es-relabel-label", scale=2)
        relabel = gr.Button("Set label on selection", elem_id="es-relabel", scale=1, variant="primary")
        restore = gr.Button("Restore original labels", elem_id="es-relabel-restore", scale=1)
    status = gr.Markdown(elem_id="es-relabel-status")

    def set_label(state: MapState, name: str | None) -> tuple[Any, ...]:
        name = clean_label(name)
        rows = state.selected_rows()
        if not name:
            return state, "Type a label or pick one first.", gr.skip()
        if rows is None or len(rows) == 0:
            return state, "Select points on the map first.", gr.skip()
        table = ctx.table
        changed = PointEditor(table).relabel(rows, name)
        state.dirty.add("colour")
        return (state, f"Set label '{markdown_text(name)}' on {changed:,} of {len(rows):,} selected points "
                       "(saved to Qdrant).",
                gr.Dropdown(choices=label_choices(table), value=name))

    def restore_labels(state: MapState) -> tuple[Any, ...]:
        rows = state.selected_rows()
        if rows is None or len(rows) == 0:
            return state, "Select points on the map first.", gr.skip()
        table = ctx.table
        restored = PointEditor(table).restore_labels(rows)
        state.dirty.add("colour")
        return (state, f"Restored the original label of {restored:,} of {len(rows):,} selected points.",
                gr.Dropdown(choices=label_choices(table)))

    ctx.map_event(relabel.click, set_label, [label], [status, label], name="relabel", acknowledge=True)
    ctx.map_event(restore.click, restore_labels, [], [status, label], name="restore_labels", acknowledge=True)


def _finite(value: float | None) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)
