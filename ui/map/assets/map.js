// The map component's script (ui/map/component.py): gr.HTML's js_on_load, given `element`, `props`,
// `trigger` and `watch`. Python fills in the URL prefix and the overlays' script (ui/map/assets/overlays.js).
const BASE = '__BASE__';  // the explorer's URL prefix: its rows' routes are its own
const root = element.querySelector('.es-map');
const gd = element.querySelector('.gd');
const card = element.querySelector('.es-hover');
const cardImg = card.querySelector('img');
const cardLabel = card.querySelector('.es-hover-label');
const S = {seq: -1, token: null, n: 0, bounds: null, layout: null, template: null, config: null,
           viewUrl: null, nearUrl: null, categories: [], remap: [], legend: true, hoverNames: null,
           mode: null, complete: false, region: null, pts: null, image: null, views: 0,
           traces: [], rowPos: null, selection: null, fromPython: false, selrev: 1,
           hidden: [], bound: false, queue: Promise.resolve(), busy: 0, fetches: 0,
           layers: [], viewListeners: [], hoverAt: null, hoverBusy: false};

function decode(spec) {
  const bin = atob(spec.bdata);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  const kinds = {f4: Float32Array, i4: Int32Array, u2: Uint16Array};
  return new kinds[spec.dtype](bytes.buffer);
}

// --- the view: what part of the map is shown, on how many pixels ---------------------------
function currentView() {
  const fl = gd._fullLayout;
  if (!fl || !fl.xaxis || !fl._size) return null;
  const xr = fl.xaxis.range, yr = fl.yaxis.range, dpr = window.devicePixelRatio || 1;
  return {x0: Math.min(xr[0], xr[1]), x1: Math.max(xr[0], xr[1]), y0: Math.min(yr[0], yr[1]),
          y1: Math.max(yr[0], yr[1]), w: Math.round(fl._size.w * dpr), h: Math.round(fl._size.h * dpr)};
}

function covers(region, v) {
  return region && v.x0 >= region[0] && v.x1 <= region[1] && v.y0 >= region[2] && v.y1 <= region[3];
}

function hiddenCategories() {  // legend entries the user switched off (Plotly's own state)
  return (gd.data || []).filter(t => t.visible === 'legendonly').map(t => t.meta);
}

// Ask the view route for the points or the density image of the current view. `force`: the
// colours or the selection changed, so what the browser holds is stale whatever the view.
async function refreshView(force) {
  const v = currentView();
  if (!v || !S.token) return;
  if (!force && S.mode === 'points' && (S.complete || covers(S.region, v))) return;
  const ticket = ++S.fetches;
  const q = new URLSearchParams({t: S.token, x0: v.x0, x1: v.x1, y0: v.y0, y1: v.y1, w: v.w, h: v.h,
                                 hidden: hiddenCategories().join(',')});
  const r = await fetch(S.viewUrl + '?' + q, {credentials: 'same-origin'});
  if (!r.ok) throw new Error('map view: HTTP ' + r.status);
  const buf = await r.arrayBuffer();
  if (ticket !== S.fetches) return;  // a newer view was asked for meanwhile
  const length = new DataView(buf).getUint32(0, true);
  const head = JSON.parse(new TextDecoder().decode(new Uint8Array(buf, 4, length)));
  const body = 4 + length;
  S.mode = head.mode; S.region = head.region;
  if (head.mode === 'points') {
    const n = head.count;
    S.complete = head.complete;
    S.pts = {n, rows: new Int32Array(buf, body, n), x: new Float32Array(buf, body + 4 * n, n),
             y: new Float32Array(buf, body + 8 * n, n), values: new Uint16Array(buf, body + 12 * n, n),
             selected: head.selected ? new Uint8Array(buf, body + 14 * n, n) : null};
    if (S.pts.selected === null) S.selection = null;
    setImage(null);
  } else {
    S.complete = false; S.pts = null;
    setImage({url: URL.createObjectURL(new Blob([new Uint8Array(buf, body)], {type: 'image/png'})),
              region: head.region});
  }
  buildTraces();
  await render();
  S.views += 1;
  root.dataset.mode = S.mode;
  root.dataset.views = String(S.views);
  for (const fn of S.viewListeners) { try { fn(v); } catch (e) { console.error(e); } }
}

function setImage(image) {
  if (S.image && S.image.url) setTimeout(((url) => () => URL.revokeObjectURL(url))(S.image.url), 1000);
  S.image = image;
}

// Plotly draws <b>, <a href> and other tags in a trace's name and decodes entities: a name
// (a label, tag or field from the data) is given to it as text, its markup characters escaped.
function plotlyText(text) {
  return String(text).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

// --- traces: one per colour category, of the points the view route sent ----------------
function buildTraces() {
  const k = S.categories.length, size = S.template.marker.size;
  const traces = S.categories.map((cat, j) => Object.assign({}, S.template, {
    name: plotlyText(cat.name), showlegend: S.legend, legendrank: j + 1, meta: j,
    marker: Object.assign({}, S.template.marker, {color: cat.colour, size}),
    visible: S.hidden.includes(j) ? 'legendonly' : true}));
  S.rowPos = null;
  if (!S.pts) {
    // Density view: no points, but a trace per category keeps the legend (a NaN point draws nothing).
    for (const t of traces) { t.x = [NaN]; t.y = [NaN]; t.customdata = [-1]; t.values = [0]; }
  } else {
    const p = S.pts, counts = new Int32Array(k), code = new Uint16Array(p.n);
    for (let i = 0; i < p.n; i++) { const c = S.remap[p.values[i]]; code[i] = c === undefined ? 65535 : c; if (c < k) counts[c]++; }
    traces.forEach((t, j) => { t.x = new Float32Array(counts[j]); t.y = new Float32Array(counts[j]);
                              t.customdata = new Int32Array(counts[j]); t.values = new Uint16Array(counts[j]);
                              t.selectedIdx = []; });
    const fill = new Int32Array(k);
    p.trace = new Int16Array(p.n).fill(-1); p.index = new Int32Array(p.n);
    for (let i = 0; i < p.n; i++) {
      const c = code[i];
      if (c >= k) continue;
      const t = traces[c], j = fill[c]++;
      t.x[j] = p.x[i]; t.y[j] = p.y[i]; t.customdata[j] = p.rows[i]; t.values[j] = p.values[i];
      p.trace[i] = c; p.index[i] = j;
      if (p.selected && p.selected[i]) t.selectedIdx.push(j);
    }
    S.selection = p.selected ? true : null;
    S.selSource = p.selected ? {kind: 'mask', pts: p} : null;
  }
  // Draw the grey "other" categories underneath the coloured ones.
  S.traces = traces.slice().reverse();
}

// A selection set from Python with its rows, on a browser holding every point: no refetch.
function selectRows(rows) {
  const p = S.pts;
  if (!S.rowPos) { S.rowPos = new Map(); for (let i = 0; i < p.n; i++) S.rowPos.set(p.rows[i], i); }
  for (const t of S.traces) t.selectedIdx = rows ? [] : null;
  if (rows) for (const r of rows) {
    const i = S.rowPos.get(r);
    if (i !== undefined && p.trace[i] >= 0) S.traces[S.traces.length - 1 - p.trace[i]].selectedIdx.push(p.index[i]);
  }
  S.selection = rows ? true : null;
  S.selSource = rows ? {kind: 'rows', rows} : null;
}

function layerParts(v) {
  const images = [], annotations = [];
  for (const layer of S.layers) {
    try {
      if (layer.images) images.push(...(layer.images(v) || []));
      if (layer.annotations) annotations.push(...(layer.annotations(v) || []));
    } catch (e) { console.error('embedscape layer', layer.name, e); }
  }
  return {images, annotations};
}

async function render() {
  const layout = Object.assign({}, S.layout, {selectionrevision: S.selrev});
  const reset = S.resetView;  // another model's map (see apply)
  S.resetView = false;
  // A selection set from Python replaces whatever outline the user drew.
  layout.selections = S.fromPython ? [] : ((gd.layout && gd.layout.selections) || []);
  if (gd.layout && gd.layout.dragmode) layout.dragmode = gd.layout.dragmode;
  // The view stays where the user (or a layer, through Plotly.relayout) put it; the first
  // render starts from the data's bounds, which stay the view "reset axes" goes back to.
  const shown = !reset && gd.layout && gd.layout.xaxis && gd.layout.xaxis.range && gd.layout.yaxis.range;
  layout.xaxis = Object.assign({}, S.layout.xaxis, {autorange: false,
    range: shown ? gd.layout.xaxis.range.slice() : [S.bounds[0], S.bounds[1]]});
  layout.yaxis = Object.assign({}, S.layout.yaxis, {autorange: false,
    range: shown ? gd.layout.yaxis.range.slice() : [S.bounds[2], S.bounds[3]]});
  const parts = layerParts(currentView());
  layout.images = parts.images;
  layout.annotations = parts.annotations;
  if (S.image) {
    const [x0, x1, y0, y1] = S.image.region;
    layout.images = [{source: S.image.url, xref: 'x', yref: 'y', x: x0, y: y1, sizex: x1 - x0, sizey: y1 - y0,
                      sizing: 'stretch', xanchor: 'left', yanchor: 'top', layer: 'below'}, ...layout.images];
  }
  const data = S.traces.map(t => Object.assign({}, t, {
    selectedpoints: S.selection === null || !t.selectedIdx ? null : t.selectedIdx}));
  await Plotly.react(gd, data, layout, S.config);
  bind();
  drawOverlays();
}

// Plotly draws WebGL at twice the CSS size by default (plotGlPixelRatio 2), whatever the
// screen: four times the pixels of a 1x screen to draw, and without a GPU to read back into
// every frame. The screen's own ratio looks the same and costs a quarter of that.
function glConfig(config) {
  const ratio = Math.min(4, Math.max(1, window.devicePixelRatio || 1));  // 1.25 and 1.5 screens too
  return Object.assign({plotGlPixelRatio: ratio}, config);
}

async function apply(msg) {
  const mapChanged = Boolean(msg.base) && S.map !== undefined && S.map !== msg.base.map;
  if (msg.base) {
    S.map = msg.base.map;
    Object.assign(S, {token: msg.base.token, n: msg.base.n, bounds: msg.base.bounds, layout: msg.base.layout,
                      template: msg.base.template, config: glConfig(msg.base.config), viewUrl: BASE + msg.base.view_url,
                      nearUrl: BASE + msg.base.near_url});
  }
  if (msg.colour) {
    S.categories = msg.colour.categories; S.legend = msg.colour.legend;
    S.remap = msg.colour.remap; S.hoverNames = msg.colour.hover_names; S.hidden = [];
  }
  if (msg.names) S.names = msg.names;
  let fetch = Boolean(msg.base || msg.colour);
  if (msg.selection) {
    S.fromPython = !msg.selection.drawn;
    if (S.fromPython) S.selrev += 1;
    const rows = msg.selection.rows ? decode(msg.selection.rows) : null;
    if (!fetch && S.mode === 'points' && S.complete && (rows || msg.selection.count === null)) selectRows(rows);
    else fetch = true;
    root.dataset.selected = msg.selection.count === null ? '' : String(msg.selection.count);
  }
  if (mapChanged) {
    // Another model's map: it starts from its own bounds, and the selection (the same rows)
    // is shown as one set from Python, since the outline drawn on the other map encloses
    // other points here.
    S.resetView = true; S.fromPython = true; S.selrev += 1;
  }
  if (msg.base) {
    S.traces = []; await render();  // lays the plot out, so the view has its size in pixels
  }
  if (fetch) await refreshView(true); else await render();
  performance.mark('es-rendered-' + msg.seq);
  root.dataset.seq = String(msg.seq);
}

// --- hover: Plotly's over points, NEAR_ROUTE's over the density image ------------------
function showCard(row, label, clientX, clientY) {
  cardImg.src = BASE + '/thumb/row/' + row;
  cardLabel.textContent = label || '';
  cardLabel.hidden = !cardLabel.textContent;
  const box = root.getBoundingClientRect();
  const px = clientX - box.left, py = clientY - box.top;
  card.style.left = (px + 130 > box.width ? px - 136 : px + 14) + 'px';
  card.style.top = Math.max(0, py - 60) + 'px';
  card.dataset.row = String(row);
  card.hidden = false;
}

function onPointHover(ev) {
  const p = ev.points && ev.points[0];
  if (!p || p.customdata === undefined || p.customdata < 0) return;
  const t = p.data, value = t.values ? t.values[p.pointNumber] : undefined;
  const e = ev.event || {};
  showCard(p.customdata, S.hoverNames && value !== undefined ? S.hoverNames[value] : '', e.clientX || 0, e.clientY || 0);
}

async function nearHover() {
  if (S.hoverBusy || !S.hoverAt) return;
  const at = S.hoverAt; S.hoverAt = null; S.hoverBusy = true;
  try {
    const fl = gd._fullLayout, box = gd.querySelector('.nsewdrag').getBoundingClientRect();
    const px = at.clientX - box.left, py = at.clientY - box.top;
    if (px < 0 || py < 0 || px > box.width || py > box.height) { card.hidden = true; return; }
    const x = fl.xaxis.p2d(px), y = fl.yaxis.p2d(py);
    const rx = Math.abs(fl.xaxis.p2d(px + 6) - x), ry = Math.abs(fl.yaxis.p2d(py + 6) - y);
    const q = new URLSearchParams({t: S.token, x, y, rx, ry, hidden: hiddenCategories().join(',')});
    const r = await fetch(S.nearUrl + '?' + q, {credentials: 'same-origin'});
    const hit = r.ok ? await r.json() : {row: null};
    if (S.mode !== 'density') return;
    if (hit.row === null) card.hidden = true; else showCard(hit.row, hit.label, at.clientX, at.clientY);
  } finally {
    S.hoverBusy = false;
    if (S.hoverAt) setTimeout(nearHover, 30);
  }
}

// --- events ---------------------------------------------------------------------------
// Work on the map runs one piece at a time, in order. `data-busy` counts the pieces waiting or
// running (a scheduled view counts from when it is scheduled): 0 means the map shows what it
// was last asked to (tests wait for it).
function setBusy(change) { S.busy += change; root.dataset.busy = String(S.busy); }
function enqueue(fn) {
  setBusy(1);
  S.queue = S.queue.then(fn).catch(e => console.error('embedscape map:', e)).finally(() => setBusy(-1));
}

let viewTimer = null;
function scheduleView() {
  if (viewTimer === null) setBusy(1); else clearTimeout(viewTimer);
  viewTimer = setTimeout(() => { viewTimer = null; enqueue(() => refreshView(false)); setBusy(-1); }, 60);
}

function bind() {
  if (S.bound) return;
  S.bound = true;
  gd.on('plotly_selected', ev => {
    if (!ev) return;
    performance.mark('es-selected');  // the benchmark splits mouseup -> grid at this point
    S.fromPython = false;
    if (S.mode === 'density') {
      const value = {kind: ev.lassoPoints ? 'lasso' : 'box', hidden: hiddenCategories()};
      if (ev.lassoPoints) value.lasso = {x: ev.lassoPoints.x, y: ev.lassoPoints.y};
      else if (ev.range) value.box = [ev.range.x[0], ev.range.x[1], ev.range.y[0], ev.range.y[1]];
      else return;
      trigger('select', {value});
      return;
    }
    const rows = ev.points.map(p => p.customdata).filter(r => r !== undefined && r >= 0);
    S.selection = true;
    S.selSource = {kind: 'rows', rows};
    scheduleOverlays();
    root.dataset.selected = String(rows.length);
    trigger('select', {value: {rows: rows, kind: ev.lassoPoints ? 'lasso' : 'box'}});
  });
  gd.on('plotly_deselect', () => {
    S.fromPython = false;
    root.dataset.selected = '';
    if (S.mode === 'points') { S.selection = null; S.selSource = null; for (const t of S.traces) t.selectedIdx = null; }
    scheduleOverlays();
    // Over the density image the server draws the selection, so it must answer with a message.
    trigger('select', {value: {rows: null, kind: 'clear', redraw: S.mode === 'density'}});
  });
  gd.on('plotly_relayout', ev => {
    if (Object.keys(ev || {}).some(k => k.startsWith('xaxis') || k.startsWith('yaxis'))) scheduleView();
  });
  gd.on('plotly_restyle', () => {
    S.hidden = hiddenCategories();
    if (S.mode === 'density') enqueue(() => refreshView(true));
  });
  bindOverlays();
  gd.on('plotly_hover', ev => { if (S.mode === 'points') onPointHover(ev); });
  gd.on('plotly_unhover', () => { if (S.mode === 'points') card.hidden = true; });
  gd.addEventListener('mousemove', e => {
    if (S.mode !== 'density' || e.buttons) return;
    S.hoverAt = {clientX: e.clientX, clientY: e.clientY};
    nearHover();
  });
  gd.addEventListener('mouseleave', () => { if (S.mode === 'density') { S.hoverAt = null; card.hidden = true; } });
}

function toClient(x, y) {
  const fl = gd._fullLayout, box = gd.querySelector('.nsewdrag').getBoundingClientRect();
  return {x: box.left + fl.xaxis.d2p(x), y: box.top + fl.yaxis.d2p(y)};
}

// Linked maps (the Models tab's side map, a plain Plotly chart whose points' customdata are the
// same rows): a box or lasso there selects those rows here. Gradio may re-create that chart
// (a new event registry), so it is bound again whenever its registry changes.
function bindLinkedMaps() {
  for (const other of document.querySelectorAll('.es-linked-map .js-plotly-plot')) {
    if (!other.on || !other._ev || other._esLinkedEv === other._ev) continue;
    other._esLinkedEv = other._ev;
    other.on('plotly_selected', ev => {
      if (!ev || !ev.points) return;
      const rows = [...new Set(ev.points.map(p => p.customdata).filter(r => Number.isInteger(r) && r >= 0))];
      trigger('select', {value: {rows, kind: 'side map', external: true}});
    });
  }
}
setInterval(bindLinkedMaps, 400);

window.embedscapeMap = {
  gd, state: S, toClient, view: currentView,
  // Rows drawn as selected, over points (for tests): what the user sees highlighted.
  selectedRows() { return (gd.data || []).flatMap(t => (t.selectedpoints || []).map(i => t.customdata[i])); },
  addLayer(layer) { S.layers.push(layer); enqueue(render); },
  onView(fn) { S.viewListeners.push(fn); },
  // Draw the overlays now; returns the milliseconds it took (the benchmark).
  redrawOverlays() { drawOverlays(); return S.overlayMs; },
  // The overlays as drawn (for tests and the benchmark): names with their boxes, thumbnail rows.
  overlays() {
    const box = el => { const r = el.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; };
    return {names: [...namesBox.children].map(el => ({name: el.textContent, size: +el.dataset.size, box: box(el)})),
            thumbnails: [...thumbsBox.children].map(el => ({row: +el.dataset.row, box: box(el),
              dim: el.classList.contains('es-dim'), loaded: el.complete && el.naturalWidth > 0})),
            ms: S.overlayMs};
  },
};

function onValue() {
  performance.mark('es-watch');
  const text = props.value;
  if (!text) return;
  const msg = JSON.parse(text);
  if (msg.seq === S.seq) return;
  S.seq = msg.seq;
  performance.mark('es-message-' + msg.seq);  // the benchmark reads these marks
  // Messages are applied in order even when a render is still running.
  enqueue(() => apply(msg));
}

__OVERLAYS__

performance.mark('es-js-start');
(function start() {
  if (typeof Plotly === 'undefined') { setTimeout(start, 30); return; }
  watch('value', onValue);
  onValue();
})();
