"""The Clusters tab: the clusters `python app.py analyze` found, what each holds, and where
classes get confused.

    confusion   the impure clusters (purity under analysis.clusters.IMPURE_BELOW): the classes
                that share them, i.e. where the embedding does not tell those classes apart
    list        every cluster, sortable by size, impurity, mislabel share or outlier share;
                choosing one (in the list or by clicking its table row) selects its points on
                the map, as its own selection ("N of M selected" = the cluster's size)

Data: ui/clusters.py `load_clusters` (the cluster table and each row's cluster). The helpers
above `build` are plain functions of the records (tested alone).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import gradio as gr

from store.schema import MISLABEL_FLAG, OUTLIER_FLAG
from ui.clusters import ClusterView, load_clusters
from ui.context import AppContext
from ui.state import MapState
from ui.text import html_text

Record = dict[str, Any]
ASSETS = Path(__file__).parent / "assets"  # the page's script, style and markup, as files
CSS = "<style>\n" + (ASSETS / "clusters-page.css").read_text(encoding="utf-8") + "</style>\n"
# A click on a table row chooses that cluster in the list (the list's input event selects it).
ROW_CLICK_JS = (ASSETS / "clusters-row-click.js").read_text(encoding="utf-8")


# --- reading the records ------------------------------------------------------------------
def share(record: Record, flag: str) -> float:
    return float((record.get("flag_shares") or {}).get(flag, 0.0))


def impurity(record: Record) -> float:
    purity = record.get("purity")
    return 0.0 if purity is None else 1.0 - float(purity)


SORTS: dict[str, Callable[[Record], float]] = {
    "size": lambda r: float(r["size"]),
    "impurity": impurity,
    "mislabel share": lambda r: share(r, MISLABEL_FLAG),
    "outlier share": lambda r: share(r, OUTLIER_FLAG),
}


def sorted_records(records: Sequence[Record], by: str) -> list[Record]:
    """Largest value first (ties: by cluster id)."""
    key = SORTS.get(by, SORTS["size"])
    return sorted(records, key=lambda r: (-key(r), int(r["id"])))


def confused_classes(record: Record) -> str:
    """"A / B" for an impure cluster: its two or three largest classes; "" otherwise."""
    if not record.get("impure"):
        return ""
    return " / ".join(str(name) for name, _ in (record.get("labels") or [])[:3])


def choice_label(record: Record) -> str:
    text = f"{record['name']} · {int(record['size']):,} points"
    if record.get("purity") is not None:
        text += f" · purity {100 * float(record['purity']):.0f} %"
    text += f" · mislabels {100 * share(record, MISLABEL_FLAG):.1f} %"
    confused = confused_classes(record)
    return text + (f" · classes get confused here: {confused}" if confused else "")


def cluster_choices(records: Sequence[Record]) -> list[tuple[str, str]]:
    return [(choice_label(r), str(r["id"])) for r in records]


def _shares(pairs: Sequence[Sequence[Any]], total: float = 1.0) -> str:
    """'a 60 %, b 30 %' from (name, count of `total`) pairs."""
    return ", ".join(f"{html_text(str(name))} {100 * float(n) / max(total, 1e-12):.0f} %" for name, n in pairs)


def clusters_table(records: Sequence[Record]) -> str:
    if not records:
        return '<p class="es-cl-empty">No clusters.</p>'
    body = []
    for r in records:
        size, purity = int(r["size"]), r.get("purity")
        confused = confused_classes(r)
        note = f' class="es-cl-impure" title="classes get confused here: {html_text(confused)}"' if confused else ""
        body.append(
            f'<tr data-cluster="{int(r["id"])}"{note}>'
            f'<td>{"⚠ " if confused else ""}{html_text(str(r["name"]))}</td><td class="es-cl-num">{size:,}</td>'
            f'<td>{_shares(r.get("labels") or [], size)}</td>'
            f'<td class="es-cl-num">{"" if purity is None else f"{100 * float(purity):.0f} %"}</td>'
            f'<td class="es-cl-num">{100 * share(r, MISLABEL_FLAG):.1f} %</td>'
            f'<td class="es-cl-num">{100 * share(r, OUTLIER_FLAG):.1f} %</td>'
            f'<td>{_shares(r.get("content") or [])}</td></tr>')
    return ('<div class="es-cl-scroll"><table class="es-cl-table" id="es-cl-table"><tr><th>cluster</th><th>points</th><th>labels</th>'
            '<th>purity</th><th>mislabels</th><th>outliers</th><th>model says</th></tr>'
            + "".join(body) + "</table></div>")


def confusion_summary(records: Sequence[Record]) -> str:
    """The impure clusters, least pure first: where classes get confused."""
    impure = sorted((r for r in records if r.get("impure")), key=lambda r: float(r.get("purity") or 0.0))
    if not impure:
        labelled = any(r.get("purity") is not None for r in records)
        return ('<p id="es-cl-confusion">Every cluster is mostly one class: the classes are well separated.</p>'
                if labelled else '<p id="es-cl-confusion">No labels: clusters are named by the model alone.</p>')
    items = "".join(f'<li data-cluster="{int(r["id"])}"><b>{html_text(confused_classes(r))}</b> in '
                    f'"{html_text(str(r["name"]))}" ({int(r["size"]):,} points, purity '
                    f'{100 * float(r["purity"]):.0f} %)</li>' for r in impure)
    return (f'<div id="es-cl-confusion"><p><b>{len(impure)} impure clusters</b>: classes get confused here '
            f'(the model sees these classes as alike):</p><ul>{items}</ul></div>')


# --- the tab ------------------------------------------------------------------------------
def build(ctx: AppContext) -> None:
    view = load_clusters(ctx.table)
    if view is None:
        gr.Markdown(f"No clusters for this collection yet. Run `python app.py analyze --collection "
                    f"{ctx.collection.name}` and restart the explorer.", elem_id="es-cl-missing")
        return
    gr.HTML(CSS)
    _confusion_panel(view)
    _list_panel(ctx, view)


def _confusion_panel(view: ClusterView) -> None:
    with gr.Accordion("Where classes get confused", open=True):
        gr.HTML(confusion_summary(view.records))


def _list_panel(ctx: AppContext, view: ClusterView) -> None:
    with gr.Accordion(f"Clusters ({len(view):,})", open=True):
        sort = gr.Radio(list(SORTS), value="size", label="Sort by", elem_id="es-cl-sort")
        pick = gr.Radio(cluster_choices(view.records), value=None, elem_id="es-cl-pick",
                        label="Choose a cluster to select its points on the map")
        table_html = gr.HTML(clusters_table(view.records), elem_id="es-cl-list", js_on_load=ROW_CLICK_JS)

    def resort(by: str) -> tuple[Any, str]:
        records = sorted_records(view.records, by)
        return gr.Radio(choices=cluster_choices(records), value=None), clusters_table(records)

    sort.input(resort, [sort], [pick, table_html], show_progress="hidden")

    def choose(state: MapState, choice: str | None) -> MapState:
        try:
            record = view.records[int(choice)]  # type: ignore[arg-type]
        except (TypeError, ValueError, IndexError):
            return state
        current = load_clusters(ctx.table) or view  # a newer table (other writers) has its own rows
        return state.select(current.rows_of(int(record["id"])), f"cluster: {record['name']}")

    ctx.map_event(pick.input, choose, [pick], name="cluster_select")
