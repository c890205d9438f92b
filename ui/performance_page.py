"""The Model performance tab: a model's predictions against the labels, selection beside dataset.

Predictions come from `python app.py predictions --collection NAME FILE` (payload field
`prediction`); a detector's run on an object collection gets ui/detection_performance.py
instead; a collection with labels but no imported predictions can use the linear probe's
cross-validated ones (labelling/probe.py: each labelled point predicted by a probe that
never saw it), named as such above the report. The true label is the table's current label, so relabelling in another tab
counts at once. On every selection change: accuracy, per-class precision / recall / F1 /
support (analysis.performance.classification_report) and a confusion-matrix heatmap of the
selection (the whole dataset when nothing is selected).
"""
from __future__ import annotations

from typing import Any

import gradio as gr
import numpy as np
import plotly.graph_objects as go

from analysis.performance import PerformanceReport, classification_report
from labelling.probe import PROBE_NAME, probe_predictions
from store.schema import PREDICTION
from ui import detection_performance
from ui.context import AppContext
from ui.state import MapState
from ui.table import PointTable
from ui.text import html_text, plotly_text

MAX_HEATMAP_CLASSES = 40


def load_predictions(table: PointTable) -> np.ndarray | None:
    """Each row's predicted label ("" where none), or None when no point has one."""
    if not table.has_fields([PREDICTION]):
        return None
    predictions = np.full(len(table), "", dtype=object)
    for row, value in enumerate(table.payload_columns([PREDICTION])[PREDICTION]):
        if value not in (None, ""):
            predictions[row] = str(value)
    return predictions if (predictions != "").any() else None


def report_for(table: PointTable, predictions: np.ndarray, rows: np.ndarray | None) -> PerformanceReport | None:
    """The report over `rows` (None: every row) that have a prediction; None when none has."""
    rows = np.arange(len(table)) if rows is None else np.asarray(rows, dtype=np.int64)
    rows = rows[predictions[rows] != ""]
    if len(rows) == 0:
        return None
    names = np.asarray(table.label_names, dtype=object)
    return classification_report(names[table.label_codes[rows]].astype(str), predictions[rows].astype(str))


def _pct(value: float) -> str:
    return f"{100 * value:.1f} %"


def report_html(selection: PerformanceReport | None, dataset: PerformanceReport | None, selected: bool) -> str:
    if dataset is None:
        return '<p class="es-perf-empty">No point has a prediction.</p>'
    scope = "Selection" if selected else "All points"
    current = selection if selected else dataset
    if current is None:
        head = f'<p class="es-perf-acc" data-accuracy="">{scope}: no selected point has a prediction.</p>'
        return head
    n = int(current.support.sum())
    head = (f'<p class="es-perf-acc" data-accuracy="{current.accuracy:.6f}"><b>{scope}</b>: accuracy '
            f'<b>{_pct(current.accuracy)}</b> on {n:,} points, macro F1 {current.macro_f1:.3f}'
            + (f' · dataset: accuracy {_pct(dataset.accuracy)}, macro F1 {dataset.macro_f1:.3f}' if selected else "")
            + "</p>")
    whole = {r["class"]: r for r in dataset.per_class()}
    rows = []
    for r in current.per_class():
        d = whole.get(r["class"])
        rows.append(f'<tr data-class="{html_text(str(r["class"]))}"><td>{html_text(str(r["class"]))}</td>'
                    f'<td>{r["precision"]:.3f}</td><td>{r["recall"]:.3f}</td><td>{r["f1"]:.3f}</td>'
                    f'<td>{r["support"]:,}</td>'
                    + (f'<td>{d["f1"]:.3f}</td>' if selected and d else ("<td></td>" if selected else "")) + "</tr>")
    extra = "<th>F1 (dataset)</th>" if selected else ""
    return (head + '<table class="es-q-table" id="es-perf-table"><tr><th>class</th><th>precision</th>'
            f'<th>recall</th><th>F1</th><th>support</th>{extra}</tr>' + "".join(rows) + "</table>")


def confusion_figure(report: PerformanceReport | None, title: str) -> go.Figure | None:
    if report is None:
        return None
    keep = np.argsort(-report.support, kind="stable")[:MAX_HEATMAP_CLASSES]
    keep = np.sort(keep)
    classes = [plotly_text(report.classes[i]) for i in keep]  # Plotly draws tags in tick labels
    matrix = report.confusion[np.ix_(keep, keep)]
    fig = go.Figure(go.Heatmap(z=matrix, x=classes, y=classes, colorscale="Blues", text=matrix,
                               texttemplate="%{text}" if len(classes) <= 15 else None,
                               hovertemplate="true %{y}<br>predicted %{x}<br>%{z} points<extra></extra>"))
    fig.update_layout(title=title, xaxis_title="predicted", yaxis_title="true", yaxis_autorange="reversed",
                      margin=dict(l=10, r=10, t=40, b=10), height=420)
    return fig


def build(ctx: AppContext) -> None:
    if detection_performance.has_run(ctx):  # an object explorer with a detector's run: COCO metrics
        detection_performance.build(ctx)
        return
    predictions = load_predictions(ctx.table)
    probe_button = None
    if predictions is None:
        gr.Markdown(f"No model predictions in this collection. Import them with "
                    f"`python app.py predictions --collection {ctx.collection.name} FILE` "
                    f"(CSV or JSON Lines: path or id, prediction) and restart the explorer, or use the "
                    f"{PROBE_NAME}'s predictions: a linear model on the embeddings, each labelled point "
                    f"predicted by one trained without it.", elem_id="es-perf-missing")
        probe_button = gr.Button("Use the linear probe's cross-validated predictions", elem_id="es-perf-probe")
    summary = gr.HTML(elem_id="es-perf-summary")
    plot = gr.Plot(elem_id="es-perf-plot", show_label=False)
    # The source of the predictions shown: an imported model's (read per table version: other
    # writers), or the probe's by point id once asked for.
    source: dict[str, Any] = {"probe": None, "by_version": {ctx.table.version: predictions}}

    def current_predictions(table: PointTable) -> np.ndarray | None:
        if source["probe"] is not None:
            probe = source["probe"]
            return np.array([probe.get(pid, "") for pid in table.ids], dtype=object)
        by_version = source["by_version"]
        if table.version not in by_version:
            by_version.clear()
            by_version[table.version] = load_predictions(table)
        return by_version[table.version]

    def views(state: MapState) -> tuple[str, Any]:
        table = ctx.table
        current = current_predictions(table)
        if current is None:
            return "", None
        rows = state.selected_rows()
        dataset = report_for(table, current, None)
        selected = rows is not None
        selection = report_for(table, current, rows) if selected else None
        shown = selection if selected else dataset
        title = "Confusion matrix: " + ("selection" if selected else "all points")
        named = f'<p class="es-perf-source">Predictions of the {html_text(PROBE_NAME)}.</p>' \
            if source["probe"] is not None else ""
        return named + report_html(selection, dataset, selected), confusion_figure(shown, title)

    def use_probe(state: MapState) -> tuple[str, Any]:
        source["probe"] = probe_predictions(ctx.collection)
        if not source["probe"]:
            source["probe"] = None
            return '<p class="es-perf-empty">The probe needs labelled points of at least two classes.</p>', None
        return views(state)

    ctx.on_selection_change(views, [], [summary, plot])
    if probe_button is not None:
        ctx.event(probe_button.click, use_probe, [], [summary, plot])
