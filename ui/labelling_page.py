"""The Label next tab: choose the next batch to label from the map, and follow the rounds.

"Choose next batch" runs `select-next` (labelling/select.py) with the panel's budget, strategy,
balance and tag, over the unlabelled points the map shows (its label and tag filters; or only those in the
current selection), tags the
batch, selects it on the map (over the label view, where unlabelled points are grey) and offers
the annotators' files (labelling/batch_files.py). The Rounds view lists each round (tag,
strategy, size, how much of its batch is labelled by now, labelled count and the probe's
cross-validated accuracy when it was chosen) and the state now, with the learning curve.
On a detection dataset's image explorer with a detector run, "Detector run" and its confidence
threshold feed `uncertain-boxes`, and the batch's files carry the run's boxes as pre-annotations.
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
import plotly.graph_objects as go

from analysis.selection import DEFAULT_STRATEGY, DEFAULT_THRESHOLD, STRATEGIES, USES_RUN
from export import ExportError
from filters import FilterSpec, SelectionError
from labelling import SelectRequest, rounds_report, select_next
from labelling.batch_files import write_batch_files
from labelling.detector import DetectorSource
from labelling.rounds import RoundsReport
from store import Collection
from store.schema import InvalidTag
from ui.context import AppContext
from ui.state import MapState
from ui.text import html_text as escape

BALANCE_CHOICES = [("none", ""), ("predicted class", "class"), ("cluster", "cluster")]


def label_counts_text(collection: Collection) -> str:
    """'1,234 labelled · 5,678 unlabelled', counted in the store (labels that came back since
    the table was read count at once)."""
    labelled = sum(count for label, count in collection.label_counts().items() if label)
    return f"**{labelled:,} labelled · {collection.count() - labelled:,} unlabelled**"


def downloadable(paths: list[Path]) -> list[str]:
    """The files to offer: a folder (a YOLO labels folder of pre-annotations) as its zip beside it."""
    return [str(p) if p.is_file() else shutil.make_archive(str(p), "zip", p) for p in paths]


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f} %"


def rounds_html(report: RoundsReport) -> str:
    head = ("<tr><th>round</th><th>tag</th><th>strategy</th><th>size</th><th>labelled of batch</th>"
            "<th>labelled then</th><th>probe accuracy then</th></tr>")
    rows = [f'<tr data-round="{int(r["round"])}"><td>{int(r["round"])}</td><td>{escape(str(r["tag"]))}</td>'
            f'<td>{escape(str(r["strategy"]))}</td><td>{int(r["size"]):,}</td><td>{int(r["batch_labelled"]):,}</td>'
            f'<td>{int(r["labelled"]):,}</td><td>{_percent(r.get("probe_accuracy"))}</td></tr>'
            for r in report.rounds]
    now = report.now
    rows.append(f'<tr data-round="now"><td>now</td><td></td><td></td><td></td><td></td>'
                f'<td>{int(now["labelled"]):,}</td><td>{_percent(now["probe_accuracy"])}</td></tr>')
    note = "" if report.rounds else "<p>No rounds yet: choose a batch above.</p>"
    return note + '<table class="es-q-table" id="es-ln-rounds-table">' + head + "".join(rows) + "</table>"


def curve_figure(report: RoundsReport) -> go.Figure | None:
    """Probe accuracy against labelled count: each round when chosen, then now."""
    points = [(r["labelled"], r.get("probe_accuracy")) for r in report.rounds]
    points.append((report.now["labelled"], report.now["probe_accuracy"]))
    points = [(n, a) for n, a in points if a is not None]
    if not points:
        return None
    fig = go.Figure(go.Scatter(x=[n for n, _ in points], y=[100 * a for _, a in points], mode="lines+markers",
                               hovertemplate="%{x:,} labelled<br>probe accuracy %{y:.1f} %<extra></extra>"))
    fig.update_layout(title="Learning curve (probe, cross-validated)", xaxis_title="labelled points",
                      yaxis_title="accuracy (%)", height=300, margin=dict(l=10, r=10, t=40, b=10))
    return fig


def _detector_runs(ctx: AppContext) -> tuple[list[str], str | None]:
    """The runs of the image explorer's object collection, and the current one."""
    from evaluation.runs import active_run, list_runs

    if ctx.objects is None:
        return [], None
    return sorted(list_runs(ctx.objects)), active_run(ctx.objects)


def _run_controls(ctx: AppContext) -> tuple[gr.Dropdown, gr.Number]:
    """"Detector run" and its confidence threshold, shown when the dataset has a run."""
    runs, current = _detector_runs(ctx)
    with gr.Row(equal_height=True, visible=bool(runs)):
        run = gr.Dropdown(runs, value=current or (runs[0] if runs else None), label="Detector run (uncertain-boxes)",
                          elem_id="es-ln-run", scale=2)
        threshold = gr.Number(value=DEFAULT_THRESHOLD, minimum=0.01, maximum=0.99, step=0.05,
                              label="Confidence threshold", elem_id="es-ln-threshold", scale=1)
    return run, threshold


def build(ctx: AppContext) -> None:
    counts = gr.Markdown(label_counts_text(ctx.collection), elem_id="es-ln-counts")
    names = [n for n in STRATEGIES if n not in USES_RUN or _detector_runs(ctx)[0]]
    with gr.Row(equal_height=True):
        budget = gr.Number(value=200, minimum=1, precision=0, label="Budget", elem_id="es-ln-budget", scale=1)
        strategy = gr.Dropdown(names, value=DEFAULT_STRATEGY, label="Strategy", elem_id="es-ln-strategy", scale=2)
        balance = gr.Radio(BALANCE_CHOICES, value="", label="Balance", elem_id="es-ln-balance", scale=2)
    detector_run, threshold = _run_controls(ctx)
    with gr.Row(equal_height=True):
        within = gr.Checkbox(False, label="Only from the current selection", elem_id="es-ln-within", scale=2)
        tag = gr.Textbox(label="Tag (default batch-<round>)", max_lines=1, elem_id="es-ln-tag", scale=2)
        choose = gr.Button("Choose next batch", variant="primary", elem_id="es-ln-choose", scale=1)
    status = gr.HTML(elem_id="es-ln-status")
    files = gr.File(label="For annotators: CSV, Label Studio tasks, COCO, YOLO image list (or labels)",
                    file_count="multiple",
                    interactive=False, elem_id="es-ln-files")
    gr.Markdown("#### Rounds")
    refresh = gr.Button("↻ Rounds", size="sm", elem_id="es-ln-refresh")
    rounds = gr.HTML(elem_id="es-ln-rounds")
    plot = gr.Plot(show_label=False, elem_id="es-ln-curve")

    def run(state: MapState, budget_value: float | None, name: str, balance_value: str, only_selected: bool,
            tag_value: str, run_name: str | None, threshold_value: float | None) -> tuple[Any, ...]:
        table = ctx.table
        spec = FilterSpec()
        if only_selected:
            rows = state.selected_rows()
            if rows is None or len(rows) == 0:
                return state, '<p class="es-ln-error">Select points on the map first.</p>', None, gr.skip(), \
                    gr.skip(), gr.skip()
            spec = FilterSpec(ids=table.ids_for_rows(rows))
        elif state.visible is not None:  # the map's label / tag filters narrow the candidates too
            spec = FilterSpec(ids=table.ids_for_rows(np.flatnonzero(state.visible)))
        request = SelectRequest(budget=int(budget_value or 0), strategy=name, tag=tag_value.strip() or None,
                                spec=spec, balance=balance_value or None, run=run_name or None,
                                threshold=float(threshold_value or DEFAULT_THRESHOLD))
        try:
            result = select_next(ctx.collection, request, writer=table, objects=ctx.objects)
            out = Path(tempfile.mkdtemp(prefix="embedscape-batch-"))
            boxes_from = DetectorSource(ctx.objects, result.run, request.threshold) if result.run else None
            written = write_batch_files(ctx.collection, result.ids, result.tag, out, boxes_from)
        except (SelectionError, InvalidTag, ExportError) as error:
            return state, f'<p class="es-ln-error">{escape(str(error))}</p>', None, gr.skip(), gr.skip(), \
                gr.skip()
        state.select(table.rows_for_ids(result.ids), f"label next: {result.tag}")
        report = rounds_report(ctx.collection)
        message = f'<p class="es-ln-done" data-round="{result.round}">{escape(result.summary())}</p>'
        return (state, message, downloadable(written), label_counts_text(ctx.collection), rounds_html(report),
                curve_figure(report))

    def show_rounds(state: MapState) -> tuple[str, Any, str]:
        report = rounds_report(ctx.collection)
        return rounds_html(report), curve_figure(report), label_counts_text(ctx.collection)

    ctx.map_event(choose.click, run, [budget, strategy, balance, within, tag, detector_run, threshold],
                  [status, files, counts, rounds, plot], name="label_next")
    ctx.event(refresh.click, show_rounds, [], [rounds, plot, counts])
