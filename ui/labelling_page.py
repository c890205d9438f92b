"""The Label next tab: choose the next batch to label from the map, and follow the rounds.

"Choose next batch" runs `select-next` (labelling/select.py) with the panel's budget, strategy,
balance and tag, over the unlabelled points the map shows (its label and tag filters; or only those in the
current selection), tags the
batch, selects it on the map (over the label view, where unlabelled points are grey) and offers
the annotators' files (labelling/batch_files.py). The Rounds view lists each round (tag,
strategy, size, how much of its batch is labelled by now, labelled count and the probe's
cross-validated accuracy when it was chosen) and the state now, with the learning curve.
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
import plotly.graph_objects as go

from analysis.selection import DEFAULT_STRATEGY, STRATEGIES
from export import ExportError
from filters import FilterSpec, SelectionError
from labelling import SelectRequest, rounds_report, select_next
from labelling.batch_files import write_batch_files
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


def build(ctx: AppContext) -> None:
    counts = gr.Markdown(label_counts_text(ctx.collection), elem_id="es-ln-counts")
    with gr.Row(equal_height=True):
        budget = gr.Number(value=200, minimum=1, precision=0, label="Budget", elem_id="es-ln-budget", scale=1)
        strategy = gr.Dropdown(list(STRATEGIES), value=DEFAULT_STRATEGY, label="Strategy",
                               elem_id="es-ln-strategy", scale=2)
        balance = gr.Radio(BALANCE_CHOICES, value="", label="Balance", elem_id="es-ln-balance", scale=2)
    with gr.Row(equal_height=True):
        within = gr.Checkbox(False, label="Only from the current selection", elem_id="es-ln-within", scale=2)
        tag = gr.Textbox(label="Tag (default batch-<round>)", max_lines=1, elem_id="es-ln-tag", scale=2)
        choose = gr.Button("Choose next batch", variant="primary", elem_id="es-ln-choose", scale=1)
    status = gr.HTML(elem_id="es-ln-status")
    files = gr.File(label="For annotators: CSV, Label Studio tasks, COCO, YOLO image list", file_count="multiple",
                    interactive=False, elem_id="es-ln-files")
    gr.Markdown("#### Rounds")
    refresh = gr.Button("↻ Rounds", size="sm", elem_id="es-ln-refresh")
    rounds = gr.HTML(elem_id="es-ln-rounds")
    plot = gr.Plot(show_label=False, elem_id="es-ln-curve")

    def run(state: MapState, budget_value: float | None, name: str, balance_value: str, only_selected: bool,
            tag_value: str) -> tuple[Any, ...]:
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
                                spec=spec, balance=balance_value or None)
        try:
            result = select_next(ctx.collection, request,
                                 writer=table)
            out = Path(tempfile.mkdtemp(prefix="embedscape-batch-"))
            written = write_batch_files(ctx.collection, result.ids, result.tag, out)
        except (SelectionError, InvalidTag, ExportError) as error:
            return state, f'<p class="es-ln-error">{escape(str(error))}</p>', None, gr.skip(), gr.skip(), \
                gr.skip()
        state.select(table.rows_for_ids(result.ids), f"label next: {result.tag}")
        report = rounds_report(ctx.collection)
        message = f'<p class="es-ln-done" data-round="{result.round}">{escape(result.summary())}</p>'
        return (state, message, [str(p) for p in written], label_counts_text(ctx.collection), rounds_html(report),
                curve_figure(report))

    def show_rounds(state: MapState) -> tuple[str, Any, str]:
        report = rounds_report(ctx.collection)
        return rounds_html(report), curve_figure(report), label_counts_text(ctx.collection)

    ctx.map_event(choose.click, run, [budget, strategy, balance, within, tag],
                  [status, files, counts, rounds, plot], name="label_next")
    ctx.event(refresh.click, show_rounds, [], [rounds, plot, counts])
