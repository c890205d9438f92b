// The "Copy link" control (ui/map/share_link.py): asks for the link, copies it, applies a link's zoom.
const root = element.querySelector('.es-share');
const button = root.querySelector('button'), box = root.querySelector('input'), note = root.querySelector('.es-share-note');

// The map's current axis ranges, or null when it shows the whole map.
function mapView() {
  const m = window.embedscapeMap, fl = m && m.gd && m.gd._fullLayout;
  if (!fl || !fl.xaxis || !fl.yaxis) return null;
  if (fl.xaxis.autorange === true && fl.yaxis.autorange === true) return null;
  const xr = fl.xaxis.range.map(Number), yr = fl.yaxis.range.map(Number), b = m.state && m.state.bounds;
  const view = [Math.min(...xr), Math.max(...xr), Math.min(...yr), Math.max(...yr)];
  if (b && view.every((v, i) => Math.abs(v - b[i]) <= 1e-6 * Math.max(1, Math.abs(b[i])))) return null;
  return view;
}

button.addEventListener('click', () => {
  note.textContent = 'Making the link…';
  trigger('click', {view: mapView(), page: location.origin + location.pathname});
});

watch('value', () => {
  const msg = props.value ? JSON.parse(props.value) : null;
  if (!msg || !msg.url) return;
  box.value = msg.url;
  root.dataset.link = msg.url;
  box.select();
  const said = msg.note ? msg.note + ' ' : '';
  const copy = navigator.clipboard ? navigator.clipboard.writeText(msg.url) : Promise.reject(new Error('no clipboard'));
  copy.then(() => { note.textContent = said + 'Copied to the clipboard.'; root.dataset.copied = msg.url; })
      .catch(() => { note.textContent = said + 'Copy it from the box (Ctrl+C).'; root.dataset.copied = ''; })
      .finally(() => { root.dataset.links = String(Number(root.dataset.links) + 1); });
});

// A link's zoom: applied as a user's zoom (kept by Plotly's uirevision) once the map has drawn.
(function restoreView() {
  const text = new URLSearchParams(location.search).get('view');
  if (!text) return;
  const v = text.split(',').map(Number);
  if (v.length !== 4 || !v.every(Number.isFinite) || !(v[0] < v[1] && v[2] < v[3])) return;
  (function wait() {
    const m = window.embedscapeMap, drawn = document.querySelector('.es-map');
    if (typeof Plotly === 'undefined' || !m || !drawn || drawn.dataset.seq === '-1' || !m.gd._fullLayout) {
      setTimeout(wait, 50);
      return;
    }
    const update = {'xaxis.range': [v[0], v[1]], 'yaxis.range': [v[2], v[3]],
                    'xaxis.autorange': false, 'yaxis.autorange': false};
    const relayout = Plotly._guiRelayout || Plotly.relayout;
    Promise.resolve(relayout(m.gd, update)).then(() => { root.dataset.viewRestored = text; });
  })();
})();
