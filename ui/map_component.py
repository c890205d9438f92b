"""The map as a `gr.HTML` component that owns a Plotly scattergl chart, and its JS bridge.

Why not `gr.Plot`: it has no selection event and re-creates its chart on every update,
losing zoom and selection (see docs/notes/plotly-selection-in-gradio.md). Here one div lives for the
whole page; the component's `value` is a JSON *message* (ui/figure.py `map_message`)
that the JS applies with `Plotly.react` on that same div:

    {"seq": n,
     "base":      {"points_url", "n", "layout", "template", "config"}      # once per page
     "colour":    {"values" (u2 per row), "remap", "categories", "legend",
                   "hover_names"}                                         # recolour / filter
     "selection": {"rows": i4 typed array | null}}                        # set from Python

The coordinates themselves are fetched once from POINTS_ROUTE as raw float32 (started as
soon as the component loads, in parallel with Gradio's first message).

Box / lasso selections go to Python as `select` events carrying row numbers (the
trace's `customdata`); double-click (Plotly's deselect) sends `rows: null`. Python-set
selections are shown with Plotly's own `selectedpoints`, so unselected points are dimmed
by the trace's `unselected` style and nothing but row numbers crosses the wire.

`window.embedscapeMap` exposes `{gd, state, toClient(x, y)}` for tests and for other tabs.
"""
from __future__ import annotations

import gzip
import hashlib
from collections.abc import Callable
from pathlib import Path

import gradio as gr
from fastapi import FastAPI, Request
from fastapi.responses import Response

from ui.figure import POINTS_ROUTE, points_bytes
from ui.table import PointTable

# plotly.js 4.1.1 with only the scattergl and bar traces (1.5 MB instead of the full 4.8 MB
# bundle, whose parsing alone took 2 s of the page's start-up): rebuilt by ui/plotly_bundle/.
PLOTLY_JS = Path(__file__).parent / "assets" / "plotly-embedscape.min.js"
PLOTLY_ROUTE = "/es-assets/plotly.min.js"

TEMPLATE = """
<div class="es-map" data-seq="-1" data-selected="">
  <div class="gd"></div>
  <div class="es-hover" hidden><img alt=""><div class="es-hover-label"></div></div>
</div>
"""

CSS = """
.es-map { position: relative; width: 100%; }
.es-map .gd { width: 100%; min-height: 640px; }
.es-hover { position: absolute; z-index: 20; pointer-events: none; background: white;
            border: 1px solid #bbb; border-radius: 6px; padding: 4px; box-shadow: 0 2px 8px rgba(0,0,0,.2); }
.es-hover img { display: block; width: 112px; height: 112px; object-fit: contain; image-rendering: auto; }
.es-hover-label { font-size: 12px; text-align: center; max-width: 112px; overflow: hidden;
                  text-overflow: ellipsis; white-space: nowrap; }
"""

JS = r"""
const BASE = '__BASE__';  // the explorer's URL prefix: its rows' routes are its own
const root = element.querySelector('.es-map');
const gd = element.querySelector('.gd');
const card = element.querySelector('.es-hover');
const cardImg = card.querySelector('img');
const cardLabel = card.querySelector('.es-hover-label');
const S = {seq: -1, n: 0, x: null, y: null, layout: null, template: null, config: null,
           codes: null, categories: [], legend: true, hoverNames: null, hoverCodes: null,
           traces: [], rowTrace: null, rowIndex: null, selection: null, fromPython: false,
           selrev: 1, bound: false, queue: Promise.resolve()};

function decode(spec) {
  const bin = atob(spec.bdata);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  const kinds = {f4: Float32Array, i4: Int32Array, u2: Uint16Array};
  return new kinds[spec.dtype](bytes.buffer);
}

// One trace per colour category, built here from the coordinates the page already has.
function buildTraces() {
  const k = S.categories.length, counts = new Int32Array(k);
  for (let i = 0; i < S.n; i++) { const c = S.codes[i]; if (c < k) counts[c]++; }
  const traces = S.categories.map((cat, j) => Object.assign({}, S.template, {
    name: cat.name, showlegend: S.legend, legendrank: j + 1,
    marker: Object.assign({}, S.template.marker, {color: cat.colour}),
    x: new Float32Array(counts[j]), y: new Float32Array(counts[j]), customdata: new Int32Array(counts[j])}));
  const fill = new Int32Array(k);
  S.rowTrace = new Int32Array(S.n).fill(-1);
  S.rowIndex = new Int32Array(S.n);
  for (let i = 0; i < S.n; i++) {
    const c = S.codes[i];
    if (c >= k) continue;
    const t = traces[c], j = fill[c]++;
    t.x[j] = S.x[i]; t.y[j] = S.y[i]; t.customdata[j] = i;
    S.rowTrace[i] = c; S.rowIndex[i] = j;
  }
  // Draw the grey "other" categories underneath the coloured ones.
  S.traces = traces.slice().reverse();
}

function withSelection() {
  let per = null;
  if (S.selection !== null) {
    per = S.categories.map(() => []);
    for (const r of S.selection) { const t = S.rowTrace[r]; if (t >= 0) per[t].push(S.rowIndex[r]); }
  }
  const k = S.categories.length;
  return S.traces.map((t, i) => Object.assign({}, t, {selectedpoints: per ? per[k - 1 - i] : null}));
}

async function render() {
  const layout = Object.assign({}, S.layout, {selectionrevision: S.selrev});
  // A selection set from Python replaces whatever outline the user drew.
  layout.selections = S.fromPython ? [] : ((gd.layout && gd.layout.selections) || []);
  if (gd.layout && gd.layout.dragmode) layout.dragmode = gd.layout.dragmode;
  await Plotly.react(gd, withSelection(), layout, S.config);
  bind();
}

async function apply(msg) {
  if (msg.base) {
    // The coordinates come as raw float32 from their own route, fetched as soon as the
    // component loads, in parallel with Gradio's first message.
    const early = S.points || Promise.reject(new Error('no early fetch'));
    const buf = await early.catch(() => fetchPoints(BASE + msg.base.points_url));
    S.points = null;
    S.x = new Float32Array(buf, 0, msg.base.n); S.y = new Float32Array(buf, 4 * msg.base.n, msg.base.n);
    S.n = msg.base.n;
    S.layout = msg.base.layout; S.template = msg.base.template; S.config = msg.base.config;
  }
  if (msg.colour) {
    const values = decode(msg.colour.values), remap = msg.colour.remap;
    S.codes = new Uint16Array(values.length);
    for (let i = 0; i < values.length; i++) S.codes[i] = values[i] === 65535 ? 65535 : remap[values[i]];
    S.categories = msg.colour.categories; S.legend = msg.colour.legend;
    S.hoverNames = msg.colour.hover_names;
    S.hoverCodes = S.hoverNames ? values : null;
  }
  if (msg.colour || msg.base) buildTraces();
  if (msg.selection) {
    S.selection = msg.selection.rows ? decode(msg.selection.rows) : null;
    S.fromPython = true; S.selrev += 1;
  }
  return render().then(() => {
    performance.mark('es-rendered-' + msg.seq);
    root.dataset.seq = String(msg.seq);
    root.dataset.selected = S.selection === null ? '' : String(S.selection.length);
  });
}

function fetchPoints(url) {
  return fetch(url, {credentials: 'same-origin'}).then(r => {
    if (!r.ok) throw new Error('map points: HTTP ' + r.status);
    return r.arrayBuffer();
  });
}

function showCard(ev) {
  const p = ev.points && ev.points[0];
  if (!p || p.customdata === undefined) return;
  const row = p.customdata;
  cardImg.src = BASE + '/thumb/row/' + row;
  cardLabel.textContent = S.hoverNames && S.hoverCodes ? S.hoverNames[S.hoverCodes[row]] : '';
  cardLabel.hidden = !cardLabel.textContent;
  const box = root.getBoundingClientRect(), e = ev.event || {};
  const px = (e.clientX || 0) - box.left, py = (e.clientY || 0) - box.top;
  card.style.left = (px + 130 > box.width ? px - 136 : px + 14) + 'px';
  card.style.top = Math.max(0, py - 60) + 'px';
  card.dataset.row = String(row);
  card.hidden = false;
}

function bind() {
  if (S.bound) return;
  S.bound = true;
  gd.on('plotly_selected', ev => {
    if (!ev) return;
    performance.mark('es-selected');  // the benchmark splits mouseup -> grid at this point
    const rows = ev.points.map(p => p.customdata).filter(r => r !== undefined);
    S.selection = Int32Array.from(rows); S.fromPython = false;
    root.dataset.selected = String(rows.length);
    trigger('select', {value: {rows: rows, kind: ev.lassoPoints ? 'lasso' : 'box'}});
  });
  gd.on('plotly_deselect', () => {
    S.selection = null; S.fromPython = false;
    root.dataset.selected = '';
    trigger('select', {value: {rows: null, kind: 'clear'}});
  });
  gd.on('plotly_hover', showCard);
  gd.on('plotly_unhover', () => { card.hidden = true; });
}

function toClient(x, y) {
  const fl = gd._fullLayout, box = gd.querySelector('.nsewdrag').getBoundingClientRect();
  return {x: box.left + fl.xaxis.d2p(x), y: box.top + fl.yaxis.d2p(y)};
}

window.embedscapeMap = {gd, state: S, toClient};

function onValue() {
  performance.mark('es-watch');
  const text = props.value;
  if (!text) return;
  const msg = JSON.parse(text);
  if (msg.seq === S.seq) return;
  S.seq = msg.seq;
  performance.mark('es-message-' + msg.seq);  // the benchmark reads these marks
  // Messages are applied in order even when a render is still running.
  S.queue = S.queue.then(() => apply(msg)).catch(err => console.error('embedscape map:', err));
}

performance.mark('es-js-start');
S.points = fetchPoints(BASE + '__POINTS_ROUTE__');
S.points.catch(() => {});  // a failed early fetch is retried when the first message comes
(function start() {
  if (typeof Plotly === 'undefined') { setTimeout(start, 30); return; }
  watch('value', onValue);
  onValue();
})();
""".replace("__POINTS_ROUTE__", POINTS_ROUTE)


def head_html() -> str:
    """Loads plotly.js from the installed plotly package (offline), through PLOTLY_ROUTE."""
    return f'<script src="{PLOTLY_ROUTE}"></script>'


def page_head_html() -> str:
    """For the page's <head>: start downloading plotly.js before Gradio has even booted."""
    return f'<link rel="preload" href="{PLOTLY_ROUTE}" as="script">'


def add_points_route(app: FastAPI, current_table: Callable[[], PointTable],
                     authorize: Callable[[Request], bool] | None = None, prefix: str = "") -> None:
    """The map's coordinates as raw float32 (x then y), one fetch per page load (and again when
    the table is replaced by a newer one: ui/live_table.py). `prefix`: the explorer's URL prefix
    (one server may hold several explorers, each with its own rows)."""

    @app.get(prefix + POINTS_ROUTE)
    def points(request: Request) -> Response:
        if authorize is not None and not authorize(request):
            return Response(status_code=401)
        table = current_table()
        return Response(points_bytes(table), media_type="application/octet-stream",
                        headers={"Cache-Control": "no-store", "X-Points": str(len(table))})


def add_plotly_route(app: FastAPI) -> None:
    """Serve plotly.min.js ourselves: gzipped once and cacheable by the browser. Gradio's
    `file=` route would Brotli-compress it again on every page load (0.6 s of CPU),
    and this way Gradio's `file=` route needs to allow no file at all."""
    raw = PLOTLY_JS.read_bytes()
    cache: dict[str, bytes] = {}
    etag = f'"{hashlib.sha1(raw).hexdigest()[:20]}"'
    headers = {"Cache-Control": "public, max-age=604800", "ETag": etag}

    @app.get(PLOTLY_ROUTE)
    def plotly_js(request: Request) -> Response:
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
        if "gzip" not in request.headers.get("accept-encoding", ""):
            return Response(raw, media_type="text/javascript", headers=headers)
        if "gzip" not in cache:
            cache["gzip"] = gzip.compress(raw, compresslevel=6)
        return Response(cache["gzip"], media_type="text/javascript",
                        headers={**headers, "Content-Encoding": "gzip", "Vary": "Accept-Encoding"})


def map_component(prefix: str = "") -> gr.HTML:
    """The map of the explorer served under the URL `prefix` ("" or e.g. "/objects")."""
    return gr.HTML(value="", html_template=TEMPLATE, css_template=CSS, js_on_load=JS.replace("__BASE__", prefix),
                   head=head_html(), elem_id="embedscape-map", padding=False, container=False)
