"""The Model performance tab of an object explorer with a detector run: COCO metrics of the images
of the selection beside the whole dataset.

On every selection change (and confidence or run change): COCO mAP@[.5:.95], AP50, AP75, AP by
size and AR@100, TP / FP / missed with precision, recall and F1 at the confidence slider, AP per
class, where the model fails (recall and FP rate in bins of each box metric), the
precision-recall curves and the confusion matrix with a background row and column.
A selection of boxes is evaluated on the images those boxes are in (COCOeval's
`params.imgIds`). The run is matched once per run and table version (evaluation/evaluate.py);
a selection only picks images, which takes milliseconds.
"""
from __future__ import annotations

from ui.text import html_text as escape, plotly_text
from typing import Any

import gradio as gr
import numpy as np
import plotly.graph_objects as go

from analysis.detection_failures import MetricFailures
from analysis.detection_metrics import CocoMetrics
from evaluation.evaluate import RunEvaluation, evaluate_run
from evaluation.failures import box_metric_columns, failures
from evaluation.runs import active_run, list_runs
from ui.context import AppContext
from ui.state import MapState

DEFAULT_CONFIDENCE = 0.5
MAX_CURVES = 10
ROWS = (("mAP@[.5:.95]", "map"), ("AP50", "map_50"), ("AP75", "map_75"), ("AP small", "map_small"),
        ("AP medium", "map_medium"), ("AP large", "map_large"), ("AR@100", "mar_100"))
COUNTS = (("TP", "tp"), ("FP", "fp"), ("missed", "fn"))
RATES = (("precision", "precision"), ("recall", "recall"), ("F1", "f1"))


def has_run(ctx: AppContext) -> bool:
    return active_run(ctx.collection) is not None


def _number(value: float) -> str:
    return "–" if value < 0 else f"{value:.3f}"


def summary_html(selection: dict[str, Any] | None, dataset: dict[str, Any]) -> str:
    """Metric rows, selection beside dataset (only the dataset without a selection)."""
    scopes = [("selection", selection)] if selection is not None else []
    scopes.append(("all images", dataset))
    head = "".join(f"<th>{name} ({s['images']:,} images)</th>" for name, s in scopes)
    rows = [f'<tr data-metric="{key}"><td>{name}</td>'
            + "".join(f'<td data-value="{s[key]:.6f}">{_number(s[key])}</td>' for _, s in scopes) + "</tr>"
            for name, key in ROWS]
    rows += [f'<tr data-metric="{key}"><td>{name} at score &ge; {dataset["confidence"]:.2f}</td>'
             + "".join(f'<td data-value="{s[key]}">{s[key]:,}</td>' for _, s in scopes) + "</tr>"
             for name, key in COUNTS]
    rows += [f'<tr data-metric="{key}"><td>{name}</td>'
             + "".join(f'<td data-value="{s[key]:.6f}">{s[key]:.3f}</td>' for _, s in scopes) + "</tr>"
             for name, key in RATES]
    return (f'<p class="es-perf-acc">Run <b>{escape(dataset["run"])}</b>, COCO matching; counts at IoU '
            f'{dataset["iou"]:g}</p><table class="es-q-table" id="es-det-summary"><tr><th>metric</th>{head}</tr>'
            + "".join(rows) + "</table>")


def classes_html(current: dict[str, Any], dataset: dict[str, Any]) -> str:
    """AP per class of the current scope, with the dataset's AP beside it."""
    whole = {row["class"]: row for row in dataset["per_class"]}
    rows = [f'<tr data-class="{escape(r["class"])}"><td>{escape(r["class"])}</td><td>{_number(r["ap"])}</td>'
            f'<td>{_number(whole[r["class"]]["ap"])}</td><td>{_number(r["ap_50"])}</td><td>{r["labelled"]:,}</td>'
            f'<td>{r["tp"]:,}</td><td>{r["fp"]:,}</td><td>{r["fn"]:,}</td></tr>'
            for r in sorted(current["per_class"], key=lambda r: -r["labelled"]) if r["labelled"] or r["fp"]]
    return ('<table class="es-q-table" id="es-det-classes"><tr><th>class</th><th>AP</th><th>AP (all)</th>'
            '<th>AP50</th><th>boxes</th><th>TP</th><th>FP</th><th>missed</th></tr>' + "".join(rows) + "</table>")


def _share(value: float) -> str:
    return "–" if value != value else f"{100 * value:.0f}%"


def failures_html(table: list[MetricFailures]) -> str:
    """Where the model fails: per metric (most separating first), recall and FP rate per bin."""
    if not table:
        return ""
    rows = []
    for metric in table:
        cells = "".join(f'<td title="{b.boxes:,} boxes, {b.predictions:,} predictions">{escape(b.label)}<br>'
                        f'recall {_share(b.recall)} · FP {_share(b.fp_rate)}</td>' for b in metric.bins)
        rows.append(f'<tr data-metric="{escape(metric.name)}"><td><b>{escape(metric.name)}</b><br>'
                    f'{metric.separation:.3f}</td>{cells}</tr>')
    return ("<p>Where the model fails: recall of the labelled boxes and false-positive rate of the predictions "
            "per bin; metrics that best tell found from missed boxes first.</p>"
            '<table class="es-q-table" id="es-det-failures-table">' + "".join(rows) + "</table>")


def pr_figure(evaluation: RunEvaluation, metrics: CocoMetrics) -> go.Figure:
    """Precision-recall at IoU 0.5 (COCO's 101 recall points) of the classes with most boxes."""
    recall = np.linspace(0, 1, 101)
    fig = go.Figure()
    for k in np.argsort(-metrics.labelled, kind="stable")[:MAX_CURVES]:
        if metrics.labelled[k]:
            fig.add_trace(go.Scatter(x=recall, y=metrics.pr_curve(int(k), 0.5), mode="lines",
                                     name=plotly_text(evaluation.classes[k])))
    fig.update_layout(title="Precision-recall, IoU 0.5", xaxis_title="recall", yaxis_title="precision",
                      xaxis_range=[0, 1], yaxis_range=[0, 1.02], margin=dict(l=10, r=10, t=40, b=10), height=360)
    return fig


def confusion_figure(report: dict[str, Any], title: str) -> go.Figure:
    labels = report["confusion"]["labels"]
    matrix = np.asarray(report["confusion"]["matrix"])
    used = (matrix.sum(axis=0) + matrix.sum(axis=1)) > 0
    used[-1] = True
    names = [plotly_text(name) for name, keep in zip(labels, used) if keep]
    matrix = matrix[np.ix_(used, used)]
    fig = go.Figure(go.Heatmap(z=matrix, x=names, y=names, colorscale="Blues", text=matrix,
                               texttemplate="%{text}" if len(names) <= 15 else None,
                               hovertemplate="labelled %{y}<br>predicted %{x}<br>%{z} boxes<extra></extra>"))
    fig.update_layout(title=title, xaxis_title="predicted", yaxis_title="labelled", yaxis_autorange="reversed",
                      margin=dict(l=10, r=10, t=40, b=10), height=420)
    return fig


def build(ctx: AppContext) -> None:
    runs = sorted(list_runs(ctx.collection))
    run = gr.Dropdown(runs, value=active_run(ctx.collection), label="Detector run", elem_id="es-det-run",
                      visible=len(runs) > 1)
    confidence = gr.Slider(0.0, 1.0, value=DEFAULT_CONFIDENCE, step=0.01, label="Confidence threshold",
                           elem_id="es-det-confidence")
    summary = gr.HTML(elem_id="es-det-metrics")
    per_class = gr.HTML(elem_id="es-det-per-class")
    where = gr.HTML(elem_id="es-det-failures")
    curves = gr.Plot(elem_id="es-det-pr", show_label=False)
    confusion = gr.Plot(elem_id="es-det-confusion", show_label=False)
    cache: dict[tuple[str, int], RunEvaluation] = {}
    box_metrics: dict[int, dict[str, np.ndarray]] = {}  # the labelled boxes' metrics, per evaluation
    whole: dict[tuple[int, float], tuple[CocoMetrics, dict[str, Any]]] = {}  # all images, per run and confidence

    def evaluation_of(name: str | None) -> RunEvaluation:
        key = (name or active_run(ctx.collection) or "", ctx.table.version)
        if key not in cache:
            cache.clear()  # one run at a time in memory
            whole.clear()
            box_metrics.clear()
            cache[key] = evaluate_run(ctx.collection, None, key[0])
        return cache[key]

    def views(state: MapState, name: str | None, threshold: float) -> tuple[Any, ...]:
        evaluation = evaluation_of(name)
        ids = state.selected_ids(ctx.table) if state.selected_rows() is not None else None
        images = evaluation.images_of(ids)
        key = (id(evaluation), float(threshold))
        if key not in whole:
            everything = evaluation.metrics(None)
            whole[key] = (everything, evaluation.report(None, float(threshold), everything))
        metrics, dataset = whole[key]
        selection = None
        if images is not None:
            metrics = evaluation.metrics(images)
            selection = evaluation.report(images, float(threshold), metrics)
        current = selection or dataset
        title = "Confusion matrix: " + ("selection" if selection else "all images")
        if id(evaluation) not in box_metrics:
            box_metrics[id(evaluation)] = box_metric_columns(ctx.collection, evaluation)
        table = failures(evaluation, box_metrics[id(evaluation)], images, float(threshold))
        return (summary_html(selection, dataset), classes_html(current, dataset), failures_html(table),
                pr_figure(evaluation, metrics), confusion_figure(current, title))

    outputs = [summary, per_class, where, curves, confusion]
    ctx.on_selection_change(views, [run, confidence], outputs)
    for control in (run.change, confidence.change):  # while dragging: the last value only
        ctx.event(control, views, [run, confidence], outputs, trigger_mode="always_last")
    gr.Markdown("Likely missing labels, badly placed and possibly spurious boxes of this run are reviewed in the "
                "**Label quality** tab (Review → the detector's queues).", elem_id="es-det-review-link")
