"""The explorer page's frame: the map beside the panels, split by a handle the user drags.

    [ map column (MAP_COLUMN) | handle (SPLIT_HANDLE) | panels (PANELS_COLUMN) ]

The map column takes DEFAULT_SHARE of the row at first; dragging the handle (or the arrow
keys on it, or a double-click back to the default) changes that share, which the browser
remembers (localStorage, one value for every explorer of the site). The map's height fills
the window below its top, so the whole map is on screen without scrolling, and the Plotly
chart follows every change of its box (a ResizeObserver), whatever changed it. Under
STACK_BELOW_PX of window width the two columns stack instead.

`split_handle()` is the handle, placed inside the `gr.Row` between the two columns; its
script finds the columns by their elem_ids. CSS goes into the page's CSS (ui/app.py).
"""
from __future__ import annotations

import gradio as gr

MAP_COLUMN = "es-map-col"
PANELS_COLUMN = "es-panels"
SPLIT_HANDLE = "es-split"
DEFAULT_SHARE = 64.0  # percent of the row the map column takes at first
MIN_SHARE, MAX_SHARE = 30.0, 85.0
PANELS_MIN_PX = 340  # the grid keeps 2+ columns of cards
MAP_MIN_HEIGHT_PX = 420
STACK_BELOW_PX = 900
STORAGE_KEY = "embedscape.split"

CSS = f"""
#{MAP_COLUMN} {{ flex: 0 1 calc(var(--es-split, {DEFAULT_SHARE}%) - 12px) !important; min-width: 0 !important; }}
#{PANELS_COLUMN} {{ flex: 1 1 0 !important; min-width: {PANELS_MIN_PX}px !important; }}
#{SPLIT_HANDLE} {{ flex: 0 0 8px !important; min-width: 8px !important; align-self: stretch; cursor: col-resize;
  margin: 0 -6px; border-radius: 4px; background: linear-gradient(to right, transparent 3px,
  var(--border-color-primary, #ddd) 3px, var(--border-color-primary, #ddd) 5px, transparent 5px);
  touch-action: none; }}
#{SPLIT_HANDLE}:hover, #{SPLIT_HANDLE}:focus-visible, #{SPLIT_HANDLE}.es-dragging {{
  background: var(--color-accent-soft, #fde7d4); outline: none; }}
#embedscape-map .gd {{ height: var(--es-map-height, 640px) !important; min-height: {MAP_MIN_HEIGHT_PX}px !important; }}
#es-share .html-container {{ padding: 2px 0 !important; }}  /* the header row keeps the title's height */
@media (max-width: {STACK_BELOW_PX}px) {{
  #{MAP_COLUMN}, #{PANELS_COLUMN} {{ flex: 1 1 100% !important; min-width: 0 !important; }}
  #{SPLIT_HANDLE} {{ display: none !important; }}
}}
"""

JS = r"""
const KEY = '__KEY__', DEFAULT = __DEFAULT__, MIN = __MIN__, MAX = __MAX__, MIN_H = __MIN_H__;
const bar = document.getElementById('__HANDLE__');
const mapCol = document.getElementById('__MAP__');
if (bar && mapCol && !bar.dataset.ready) {
  bar.dataset.ready = '1';
  const row = mapCol.parentElement;
  bar.tabIndex = 0;
  bar.setAttribute('role', 'separator');
  bar.setAttribute('aria-orientation', 'vertical');
  bar.setAttribute('aria-label', 'Drag to resize the map (arrow keys: 2% steps, double-click: default)');
  bar.title = bar.getAttribute('aria-label');
  const stored = parseFloat(localStorage.getItem(KEY));
  let share = Number.isFinite(stored) ? stored : DEFAULT;

  function setShare(value, save) {
    share = Math.min(MAX, Math.max(MIN, value));
    row.style.setProperty('--es-split', share + '%');
    bar.setAttribute('aria-valuenow', String(Math.round(share)));
    bar.dataset.share = share.toFixed(1);
    if (save) { try { localStorage.setItem(KEY, share.toFixed(1)); } catch (e) {} }
  }
  setShare(share, false);

  bar.addEventListener('pointerdown', (e) => {
    e.preventDefault();
    bar.setPointerCapture(e.pointerId);
    bar.classList.add('es-dragging');
    const move = (ev) => {
      const box = row.getBoundingClientRect();
      setShare(100 * (ev.clientX - box.left) / box.width, false);
    };
    const up = () => {
      bar.classList.remove('es-dragging');
      bar.removeEventListener('pointermove', move);
      bar.removeEventListener('pointerup', up);
      bar.removeEventListener('pointercancel', up);
      setShare(share, true);
    };
    bar.addEventListener('pointermove', move);
    bar.addEventListener('pointerup', up);
    bar.addEventListener('pointercancel', up);
  });
  bar.addEventListener('keydown', (e) => {
    const step = {ArrowLeft: -2, ArrowRight: 2}[e.key];
    if (step) { e.preventDefault(); setShare(share + step, true); }
    else if (e.key === 'Home') { e.preventDefault(); setShare(DEFAULT, true); }
  });
  bar.addEventListener('dblclick', () => setShare(DEFAULT, true));

  // The map fills the window below its own top; Plotly redraws whenever its box changes.
  const fitHeight = () => {
    const gd = document.querySelector('#embedscape-map .gd');
    if (!gd) return;
    const top = gd.getBoundingClientRect().top + window.scrollY;
    const height = Math.max(MIN_H, Math.floor(window.innerHeight - top - 12));
    document.documentElement.style.setProperty('--es-map-height', height + 'px');
  };
  let pending = false;
  const redraw = () => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      const gd = document.querySelector('#embedscape-map .gd');
      if (gd && gd._fullLayout && typeof Plotly !== 'undefined') Plotly.Plots.resize(gd);
    });
  };
  (function watch() {
    const gd = document.querySelector('#embedscape-map .gd');
    if (!gd) { setTimeout(watch, 50); return; }
    fitHeight();
    new ResizeObserver(redraw).observe(gd);
    // The controls above the map wrap differently at other widths: its top moves.
    new ResizeObserver(fitHeight).observe(mapCol);
    window.addEventListener('resize', fitHeight);
  })();
}
"""


def split_handle() -> gr.HTML:
    """The drag handle between the map column and the panels (call inside their gr.Row)."""
    script = (JS.replace("__KEY__", STORAGE_KEY).replace("__DEFAULT__", str(DEFAULT_SHARE))
              .replace("__MIN__", str(MIN_SHARE)).replace("__MAX__", str(MAX_SHARE))
              .replace("__MIN_H__", str(MAP_MIN_HEIGHT_PX)).replace("__HANDLE__", SPLIT_HANDLE)
              .replace("__MAP__", MAP_COLUMN))
    return gr.HTML("", elem_id=SPLIT_HANDLE, js_on_load=script, min_width=8, container=False, padding=False)
