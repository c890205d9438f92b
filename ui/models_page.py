"""The Models tab: a collection's embedding models side by side (named vectors, added with
`index --add-vector`).

    side map   the map of another model beside the main one (whose model the "Map of model"
               switch above the map chooses): the points selected on the main map are
               highlighted on it, so a cluster of one model can be seen split or scattered
               on the other; coloured by label, or by either model's clusters (from the
               last `compare-models`); a box or lasso on it selects the same points on the
               main map (and so the grid, counts and every tab): the map component's JS
               binds charts of class `es-linked-map` (ui/map/component.py)
    most different
               one click selects the N points whose neighbourhoods the two models of the
               last comparison share least (lowest `model_overlap`)
    table      the last `compare-models` table: per model its linear-probe accuracy, cluster
               purity / ARI, label errors and confused pairs, the flags' agreement, the verdict

The side map is a plain Plotly figure made on the server from the rows (the same rows on both
maps); every text from the store reaches the page escaped.
"""
from __future__ import annotations

from typing import Any

import gradio as gr
import numpy as np
import plotly.graph_objects as go

from scoring.model_compare import DEFAULT_NAME, saved_comparison
from ui.context import AppContext
from ui.model_maps import coordinates, map_choices, model_cluster_codes, most_different_rows
from ui.state import MapState
from ui.table import PointTable
from ui.text import html_text, plotly_text

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd", "#e6550d", "#31a354",
           "#756bb1", "#636363")
UNSELECTED = "rgba(160,160,160,0.18)"
MOST_DIFFERENT = 50  # the points "Select the most different neighbourhoods" selects at first
COLOURINGS = [("Label", "label"), ("Main map's model's clusters", "main"), ("This model's clusters", "side")]


def side_figure(table: PointTable, state: MapState, vector: str, colour: str) -> go.Figure:
    """The map of `vector`, the session's selection highlighted (all points coloured when
    nothing is selected)."""
    x, y = coordinates(table, vector)
    rows = np.flatnonzero(np.isfinite(x) & table.alive)
    selected = state.selected_rows()
    highlight = np.zeros(len(table), dtype=bool)
    highlight[rows if selected is None else selected] = True
    codes, names = _categories(table, state, vector, colour)
    figure = go.Figure()
    faded = rows[~highlight[rows]]
    # hoverinfo "none", not "skip": the faded points stay selectable by a box or lasso.
    figure.add_trace(go.Scattergl(x=x[faded], y=y[faded], mode="markers", name="not selected",
                                  marker={"size": 4, "color": UNSELECTED}, customdata=faded.tolist(), hoverinfo="none"))
    shown = rows[highlight[rows]]
    for code, name in enumerate(names):
        members = shown[codes[shown] == code]
        if len(members):
            figure.add_trace(go.Scattergl(x=x[members], y=y[members], mode="markers", name=name,
                                          marker={"size": 6, "color": PALETTE[code % len(PALETTE)]},
                                          customdata=members.tolist(), hoverinfo="name"))
    title = (f"{len(shown)} selected points on the map of {_label(table, vector)}" if selected is not None
             else f"the map of {_label(table, vector)}")
    figure.update_layout(title={"text": plotly_text(title), "font": {"size": 13}}, height=520,
                         margin={"l": 10, "r": 10, "t": 40, "b": 10}, legend={"itemsizing": "constant"},
                         xaxis={"visible": False}, yaxis={"visible": False}, plot_bgcolor="white",
                         dragmode="select", uirevision=vector)  # a drag selects, as on the main map
    return figure


def _categories(table: PointTable, state: MapState, vector: str, colour: str) -> tuple[np.ndarray, list[str]]:
    """Each row's colour code and the names of the codes (labels, or clusters)."""
    if colour in ("main", "side"):
        found = model_cluster_codes(table, state.map_vector if colour == "main" else vector)
        if found is not None:
            return found
    return np.asarray(table.label_codes, dtype=np.int64), [plotly_text(name) for name in table.label_names]


def _label(table: PointTable, vector: str) -> str:
    return next((name for name, value in map_choices(table) if value == vector), vector or DEFAULT_NAME)


def comparison_html(table: dict[str, Any] | None) -> str:
    """The last compare-models table, escaped; how to make one when there is none."""
    if table is None:
        return ('<p id="es-model-table">No comparison yet: <code>python app.py compare-models --collection '
                'NAME</code> scores both models against the labels.</p>')
    first, second = table["per_model"]
    rows = [("model", *table["models"])]
    for key, title in (("probe_accuracy", "linear-probe accuracy"), ("knn_accuracy", "kNN vote accuracy"),
                       ("cluster_purity", "cluster purity"), ("cluster_ari", "cluster ARI")):
        rows.append((title, *(_number(m[key], key != "cluster_ari") for m in (first, second))))
    rows.append(("likely label errors", str(first["label_errors"]), str(second["label_errors"])))
    rows.append(("confused pairs", *(", ".join(f"{p['class_a']}/{p['class_b']}" for p in m["confused_pairs"][:3])
                                     for m in (first, second))))
    cells = "".join(f"<tr><th>{html_text(a)}</th><td>{html_text(b)}</td><td>{html_text(c)}</td></tr>" for a, b, c in rows)
    agreement = table["label_error_agreement"]
    return (f'<table id="es-model-table"><tr><th></th><th>{html_text(first["name"])}</th>'
            f'<th>{html_text(second["name"])}</th></tr>{cells}</table>'
            f'<p>Neighbour overlap (k={table["k"]}): mean {table["mean_overlap"]:.2f} — colour, filter or sort by '
            f'<code>model_overlap</code>. Label errors flagged by both: {agreement["both"]}.</p>'
            f'<p id="es-model-verdict"><b>{html_text(table["verdict"])}</b></p>')


def _number(value: Any, percent: bool) -> str:
    if value is None:
        return "-"
    return f"{value:.1%}" if percent else f"{value:.3f}"


def build(ctx: AppContext) -> None:
    choices = map_choices(ctx.table)
    if len(choices) < 2:
        gr.Markdown("This collection has one embedding model. Add a second to compare them: "
                    "`python app.py index PATH --collection NAME --model M2 --add-vector`.")
        return
    with gr.Row():
        side = gr.Dropdown(choices, value=choices[1][1], label="Beside the map: the map of", elem_id="es-side-vector")
        colour = gr.Radio(COLOURINGS, value="label", label="Colour by", elem_id="es-side-colour")
    plot = gr.Plot(elem_id="es-side-map", elem_classes=["es-linked-map"], show_label=False)
    with gr.Row():
        count = gr.Number(value=MOST_DIFFERENT, minimum=1, precision=0, label="Points", elem_id="es-different-count")
        pick = gr.Button("Select the most different neighbourhoods", elem_id="es-select-different")
    gr.HTML(comparison_html(saved_comparison(ctx.collection)) if ctx.collection is not None else "")

    def follow(state: MapState, vector: str, how: str) -> go.Figure:
        return side_figure(ctx.table, state, vector or "", how or "label")

    def most_different(state: MapState, n: float | None) -> MapState:
        rows = most_different_rows(ctx.table, int(n or MOST_DIFFERENT))
        if rows is None:
            gr.Warning("No comparison yet: run python app.py compare-models --collection NAME")
            return state
        return state.select(rows, "most different neighbourhoods")

    ctx.on_selection_change(follow, [side, colour], [plot])
    for control in (side, colour):
        ctx.event(control.input, follow, [side, colour], [plot])
    ctx.map_event(pick.click, most_different, [count], name="most_different")
