// The drag handle between the map and the panels (ui/page_layout.py); __NAME__ are filled in by Python.
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
