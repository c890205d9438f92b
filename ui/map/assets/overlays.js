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
