"""What the map draws over its plot area in the page's own pixels: cluster names and thumbnails.

Both are HTML laid over the Plotly chart (`.es-overlay`, clipped to the plot area, taking no
pointer events, so box, lasso, hover and zoom reach the chart beneath), redrawn from the view's
pixel geometry after every render and at every step of a zoom or pan (`plotly_relayouting`):

  * **cluster names** (`analyze`'s cluster table, sent in the map message's `names` part, largest
    cluster first): each at its cluster's centre, in a fixed 12 px font whatever the zoom.
    Largest first, a name whose box would overlap one already placed (or the legend, or the
    modebar) is left out, so at 100+ clusters the big ones are named and zooming in names the
    rest as room appears.
  * **thumbnails**: when the points drawn in view are at most `thumbnails` (the component's
    setting, `--map-thumbnails`), each is shown as its thumbnail (from the explorer's own
    `/thumb/row/{row}` route: dataset images only) centred on its position, framed in its
    colour, the unselected dimmed when there is a selection; zooming out past the limit puts
    the points back. Only the points mode has them (a density image means far more in view).

HTML rather than Plotly layout images: a layout image is an SVG element that Plotly re-lays on
every relayout, and `Plotly.relayout` with 300 of them redraws the whole chart; moving 300
absolutely placed <img> is a style change each (bench/bench_map_overlays.py measures both).
"""
from __future__ import annotations

import os

THUMBNAILS_ENV = "EMBEDSCAPE_MAP_THUMBNAILS"
DEFAULT_THUMBNAILS = 300  # points in view drawn as thumbnails, at most
THUMB_PX = 64  # a thumbnail's side on the map, CSS pixels (less where points are closer ...)
THUMB_MIN_PX = 28  # (... but not less than this)

TEMPLATE = '<div class="es-overlay"><div class="es-thumbs"></div><div class="es-names"></div></div>'

CSS = """
.es-overlay { position: absolute; left: 0; top: 0; width: 0; height: 0; overflow: hidden;
              pointer-events: none; z-index: 5; }
.es-thumbs img { position: absolute; box-sizing: border-box; object-fit: contain; background: white;
                 border: 2px solid #888; border-radius: 3px; }
.es-thumbs img.es-dim { opacity: 0.25; }
.es-names .es-name { position: absolute; box-sizing: border-box; height: 18px; padding: 0 5px;
                     font: 600 12px/18px sans-serif; color: #1a1a1a; white-space: nowrap; overflow: hidden;
                     text-overflow: ellipsis; background: rgba(255, 255, 255, 0.8); border-radius: 3px;
                     box-shadow: 0 0 0 1px rgba(0, 0, 0, 0.18); }
"""

JS = r"""
// --- overlays (ui/map/overlays.py): cluster names and thumbnails in the plot area's pixels ----
const overlay = root.querySelector('.es-overlay');
const namesBox = overlay.querySelector('.es-names'), thumbsBox = overlay.querySelector('.es-thumbs');
const THUMBS = __THUMBNAILS__, THUMB_PX = __THUMB_PX__, THUMB_MIN_PX = __THUMB_MIN_PX__;
const NAME_FONT = '600 12px sans-serif', NAME_H = 18, NAME_PAD = 10;
const measure = document.createElement('canvas').getContext('2d');
const widths = new Map();
Object.assign(S, {names: {show: false, clusters: []}, selSource: null, thumbRows: new Map(), overlayMs: 0});

// The plot area (pixels, relative to the map) and the data range it shows. During a drag the
// event carries the new ranges before the layout has them.
function plotGeometry(ev) {
  const fl = gd._fullLayout;
  if (!fl || !fl._size || !fl.xaxis || !fl.yaxis) return null;
  let xr = fl.xaxis.range, yr = fl.yaxis.range;
  if (ev && ev['xaxis.range[0]'] !== undefined) xr = [ev['xaxis.range[0]'], ev['xaxis.range[1]']];
  else if (ev && ev['xaxis.range']) xr = ev['xaxis.range'];
  if (ev && ev['yaxis.range[0]'] !== undefined) yr = [ev['yaxis.range[0]'], ev['yaxis.range[1]']];
  else if (ev && ev['yaxis.range']) yr = ev['yaxis.range'];
  const s = fl._size;
  return {l: s.l, t: s.t, w: s.w, h: s.h, x0: Math.min(+xr[0], +xr[1]), x1: Math.max(+xr[0], +xr[1]),
          y0: Math.min(+yr[0], +yr[1]), y1: Math.max(+yr[0], +yr[1])};
}

function drawOverlays(ev) {
  const g = plotGeometry(ev);
  if (!g || !(g.x1 > g.x0) || !(g.y1 > g.y0)) return;
  const started = performance.now();
  Object.assign(overlay.style, {left: g.l + 'px', top: g.t + 'px', width: g.w + 'px', height: g.h + 'px'});
  drawThumbnails(g);
  drawNames(g);
  S.overlayMs = performance.now() - started;
}

// --- names ---
function nameWidth(text) {
  if (!widths.has(text)) { measure.font = NAME_FONT; widths.set(text, Math.ceil(measure.measureText(text).width) + NAME_PAD); }
  return widths.get(text);
}

// Boxes (plot-area pixels) names must keep clear of: the legend and the modebar.
function reservedBoxes(g) {
  const area = root.getBoundingClientRect(), out = [];
  for (const el of gd.querySelectorAll('.legend, .modebar')) {
    const r = el.getBoundingClientRect();
    if (r.width && r.height) out.push([r.left - area.left - g.l, r.top - area.top - g.t, r.right - area.left - g.l,
                                       r.bottom - area.top - g.t]);
  }
  return out;
}

function drawNames(g) {
  const list = S.names.show ? S.names.clusters : [];
  const taken = list.length ? reservedBoxes(g) : [], placed = [];
  for (const c of list) {  // largest first
    const px = (c.x - g.x0) / (g.x1 - g.x0) * g.w, py = (g.y1 - c.y) / (g.y1 - g.y0) * g.h;
    if (!(px >= 0 && py >= 0 && px <= g.w && py <= g.h)) continue;
    const w = Math.min(nameWidth(c.name), g.w);
    const left = Math.min(Math.max(px - w / 2, 0), g.w - w), top = Math.min(Math.max(py - NAME_H / 2, 0), g.h - NAME_H);
    const box = [left, top, left + w, top + NAME_H];
    if (taken.some(b => b[0] < box[2] && box[0] < b[2] && b[1] < box[3] && box[1] < b[3])) continue;
    taken.push(box); placed.push([c, box]);
  }
  while (namesBox.children.length > placed.length) namesBox.lastChild.remove();
  while (namesBox.children.length < placed.length) {
    const el = document.createElement('div'); el.className = 'es-name'; namesBox.appendChild(el);
  }
  placed.forEach(([c, box], i) => {
    const el = namesBox.children[i];
    if (el.textContent !== c.name) { el.textContent = c.name; el.title = c.name; }
    el.dataset.size = String(c.size);
    el.style.cssText = `left:${box[0]}px;top:${box[1]}px;width:${box[2] - box[0]}px`;
  });
  namesBox.dataset.count = String(placed.length);
}

// --- thumbnails ---
// Which of S.pts is selected: the view route's flags, or rows (set from Python or drawn here).
function selectedTest() {
  const src = S.selSource, p = S.pts;
  if (!src || !p) return null;
  if (src.kind === 'mask') return src.pts === p ? (i => p.selected[i] === 1) : null;
  if (!src.set) src.set = new Set(src.rows);
  return i => src.set.has(p.rows[i]);
}

function thumbnailsInView(g) {
  const p = S.pts;
  if (THUMBS <= 0 || S.mode !== 'points' || !p || !p.trace) return [];
  const hidden = new Set(hiddenCategories()), shown = [];
  for (let i = 0; i < p.n; i++) {
    const c = p.trace[i];
    if (c < 0 || hidden.has(c)) continue;
    const x = p.x[i], y = p.y[i];
    if (x < g.x0 || x > g.x1 || y < g.y0 || y > g.y1) continue;
    if (shown.length === THUMBS) return [];  // too many in view: the points stay points
    shown.push(i);
  }
  return shown;
}

// A thumbnail's side: THUMB_PX, or less where points are closer (the median distance to the
// nearest other point in view, so most thumbnails clear their neighbours), at least THUMB_MIN_PX.
function thumbnailSide(xy) {
  if (xy.length < 2) return THUMB_PX;
  const nearest = xy.map(([x, y], i) => {
    let best = Infinity;
    for (let j = 0; j < xy.length; j++) if (j !== i) best = Math.min(best, Math.hypot(xy[j][0] - x, xy[j][1] - y));
    return best;
  }).sort((a, b) => a - b);
  return Math.round(Math.max(THUMB_MIN_PX, Math.min(THUMB_PX, nearest[nearest.length >> 1] - 2)));
}

function drawThumbnails(g) {
  const p = S.pts, shown = thumbnailsInView(g), keep = new Map(), isSelected = shown.length ? selectedTest() : null;
  const xy = shown.map(i => [(p.x[i] - g.x0) / (g.x1 - g.x0) * g.w, (g.y1 - p.y[i]) / (g.y1 - g.y0) * g.h]);
  const side = thumbnailSide(xy);
  shown.forEach((i, k) => {
    const row = p.rows[i];
    let img = S.thumbRows.get(row);
    if (!img) {
      img = document.createElement('img');
      img.alt = ''; img.decoding = 'async'; img.dataset.row = String(row);
      img.src = BASE + '/thumb/row/' + row;
      thumbsBox.appendChild(img);
    }
    keep.set(row, img);
    const [px, py] = xy[k], cat = S.categories[p.trace[i]];
    img.style.cssText = `left:${px - side / 2}px;top:${py - side / 2}px;width:${side}px;height:${side}px;` +
                        `border-color:${cat ? cat.colour : '#888'}`;
    img.classList.toggle('es-dim', isSelected !== null && !isSelected(i));
  });
  for (const [row, img] of S.thumbRows) if (!keep.has(row)) img.remove();
  S.thumbRows = keep;
  thumbsBox.dataset.count = String(keep.size);
  root.dataset.thumbnails = String(keep.size);
}

let overlayFrame = 0;
function scheduleOverlays(ev) {  // at most once a frame while a drag sends events
  cancelAnimationFrame(overlayFrame);
  overlayFrame = requestAnimationFrame(() => drawOverlays(ev));
}

function bindOverlays() {
  gd.on('plotly_relayouting', ev => scheduleOverlays(ev));
  gd.on('plotly_relayout', () => scheduleOverlays());
  gd.on('plotly_restyle', () => scheduleOverlays());
  window.addEventListener('resize', () => scheduleOverlays());
}
"""


def max_thumbnails(value: int | None = None) -> int:
    """How many points in view the map draws as thumbnails at most: `value`, else
    $EMBEDSCAPE_MAP_THUMBNAILS, else DEFAULT_THUMBNAILS (0: never)."""
    if value is not None:
        return max(0, int(value))
    text = os.environ.get(THUMBNAILS_ENV, "").strip()
    return int(text) if text.isdigit() else DEFAULT_THUMBNAILS


def overlay_js(thumbnails: int) -> str:
    """The overlays' part of the map component's JS (it runs inside the map's own script)."""
    return (JS.replace("__THUMBNAILS__", str(int(thumbnails))).replace("__THUMB_PX__", str(THUMB_PX))
            .replace("__THUMB_MIN_PX__", str(THUMB_MIN_PX)))
