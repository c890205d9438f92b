"""What the map's overlays cost (ui/map/overlays.py): thumbnails in place of the points when few
are in view, cluster names placed without overlap, and selection with thumbnails shown.

    .venv/bin/python bench/bench_map_overlays.py [--points 70000] [--runs 3]

The collection is bench_ui.py's synthetic map (built and cached by it: 10 round clusters, real
PNG files behind every point), served in a subprocess; headless Chromium (Playwright, software
compositing, as bench_ui.py) zooms into a square of one cluster holding about 280 points.

  thumbnails_placed_ms      zoom (Plotly.relayout) -> every thumbnail placed on the map
  thumbnails_loaded_cold_ms zoom -> every thumbnail image loaded, first time: the server makes
                            each thumbnail file and the browser fetches it
  thumbnails_loaded_warm_ms the same after zooming out and in again (files and HTTP cache warm)
  thumbnails_loaded_files_made_ms
                            the same from a new page (empty HTTP cache, thumbnail files made),
                            beside layout_images_added_loaded_ms: the same thumbnails added as
                            Plotly layout images (the alternative to the overlay), same state
  pan_step_*_ms             one pan step in the zoomed square (Plotly.relayout of the ranges and
                            the next frame), three ways: points only (--map-thumbnails 0); the
                            HTML overlay (its redraw of every thumbnail included); the
                            thumbnails as Plotly layout images
  overlay_redraw_ms         the overlay's own redraw with the thumbnails shown
  redraw_chart_*_ms         a full redraw of the chart (as a recolour makes), the same three ways
  names_place_ms            placing N cluster names (largest first, no overlap), N = 130, 1000
  select_box_s              mouseup -> count line, grid and distribution updated, a box over half
                            the zoomed square: with thumbnails shown and with them off
                            (--map-thumbnails 0), same run
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))

import bench_ui  # noqa: E402  (the synthetic collection, the server's helpers, the browser's marks)

RESULTS = BENCH / "results"
TARGET = 280  # points in the zoomed square (under the default limit of 300)

SQUARE_JS = """
([cx, cy, target]) => {
  // The square around (cx, cy) holding about `target` of the points the browser holds.
  const p = window.embedscapeMap.state.pts;
  const count = h => { let n = 0; for (let i = 0; i < p.n; i++)
    if (Math.abs(p.x[i] - cx) <= h && Math.abs(p.y[i] - cy) <= h) n++; return n; };
  let lo = 0.001, hi = 5;
  for (let k = 0; k < 40; k++) { const mid = (lo + hi) / 2; if (count(mid) > target) hi = mid; else lo = mid; }
  return [cx - lo, cx + lo, cy - lo, cy + lo, count(lo)];
}
"""

ZOOM_JS = """
async ([x0, x1, y0, y1, expect]) => {
  // Zoom; -> [ms until every thumbnail is placed, ms until every one is loaded, count].
  const m = window.embedscapeMap, box = document.querySelector('.es-thumbs');
  const frame = () => new Promise(r => requestAnimationFrame(r));
  const t0 = performance.now();
  await Plotly.relayout(m.gd, {'xaxis.range': [x0, x1], 'yaxis.range': [y0, y1]});
  while (box.children.length !== expect) await frame();
  const placed = performance.now() - t0;
  while (![...box.children].every(i => i.complete && i.naturalWidth > 0)) await new Promise(r => setTimeout(r, 5));
  return [placed, performance.now() - t0, box.children.length];
}
"""

PAN_JS = """
async ([x0, x1, y0, y1, steps]) => {
  // Pan right and back in `steps` relayouts; each step's time includes the overlay's redraw
  // (it runs in the next animation frame). -> the steps' ms.
  const m = window.embedscapeMap, frame = () => new Promise(r => requestAnimationFrame(r)), out = [];
  const dx = (x1 - x0) * 0.02;
  for (let k = 0; k < steps; k++) {
    const shift = (k % 2 ? -1 : 1) * dx, t0 = performance.now();
    const r = m.gd.layout.xaxis.range;
    await Plotly.relayout(m.gd, {'xaxis.range': [r[0] + shift, r[1] + shift]});
    await frame();
    out.push(performance.now() - t0);
  }
  return out;
}
"""

REACT_JS = """
async ([repeats, overlay]) => {
  // A full redraw of the chart as a recolour or a selection set from Python makes it
  // (Plotly.react with a new data revision), with the overlay's redraw after it when `overlay`.
  // -> the median ms.
  const m = window.embedscapeMap, out = [];
  for (let k = 0; k < repeats; k++) {
    const t0 = performance.now();
    await Plotly.react(m.gd, m.gd.data, Object.assign({}, m.gd.layout, {datarevision: 'bench-' + k + '-' + t0}));
    if (overlay) m.redrawOverlays();
    out.push(performance.now() - t0);
  }
  out.sort((a, b) => a - b);
  return out[out.length >> 1];
}
"""

LAYOUT_IMAGES_JS = """
async ([base, side]) => {
  // The thumbnails as Plotly layout images instead (the alternative to the HTML overlay):
  // one per point the browser holds in view. -> [ms to add them and load them, count].
  const m = window.embedscapeMap, p = m.state.pts, v = m.gd._fullLayout;
  const [x0, x1] = v.xaxis.range, [y0, y1] = v.yaxis.range, images = [];
  const sx = side / v._size.w * (x1 - x0), sy = side / v._size.h * (y1 - y0);
  for (let i = 0; i < p.n; i++) {
    if (p.x[i] < x0 || p.x[i] > x1 || p.y[i] < y0 || p.y[i] > y1) continue;
    images.push({source: base + '/thumb/row/' + p.rows[i], xref: 'x', yref: 'y', x: p.x[i], y: p.y[i],
                 sizex: sx, sizey: sy, xanchor: 'center', yanchor: 'middle', layer: 'above'});
  }
  const t0 = performance.now();
  await Plotly.relayout(m.gd, {images});
  const svg = [...m.gd.querySelectorAll('.layer-above image, image')];
  await Promise.all(svg.map(el => new Promise(r => { const i = new Image(); i.onload = i.onerror = r;
                                                     i.src = el.getAttribute('href') || el.getAttribute('xlink:href'); })));
  return [performance.now() - t0, images.length];
}
"""

NAMES_JS = """
([n, repeats]) => {
  // Place n names spread over the view, largest first; -> the median ms of `repeats` placings.
  const m = window.embedscapeMap, v = m.gd._fullLayout, [x0, x1] = v.xaxis.range, [y0, y1] = v.yaxis.range;
  let seed = 1; const rand = () => (seed = (seed * 16807) % 2147483647) / 2147483647;
  m.state.names = {show: true, clusters: Array.from({length: n}, (_, i) => ({
    name: 'cluster ' + i + ' · ' + ['shirt', 'sneaker', 'bag', 'coat'][i % 4], size: n - i,
    x: x0 + rand() * (x1 - x0), y: y0 + rand() * (y1 - y0)}))};
  const times = [];
  for (let k = 0; k < repeats; k++) times.push(m.redrawOverlays());
  const placed = document.querySelectorAll('.es-names .es-name').length;
  m.state.names = {show: false, clusters: []}; m.redrawOverlays();
  times.sort((a, b) => a - b);
  return [times[times.length >> 1], placed];
}
"""


def serve(folder: Path, port: int, thumbnails: int) -> None:
    from store import open_store
    from ui.app import serve as serve_app

    serve_app(open_store(path=str(folder / "qdrant")).open("bench"), port=port, map_thumbnails=thumbnails)


def start(folder: Path, port: int, thumbnails: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "EMBEDSCAPE_ARTIFACTS": str(folder / "artifacts")}
    process = subprocess.Popen([sys.executable, __file__, "--serve", str(folder), "--port", str(port),
                                "--thumbnails", str(thumbnails)],
                               stdout=(folder / "overlays-server.log").open("w"), stderr=subprocess.STDOUT, env=env)
    bench_ui.wait_http(f"http://127.0.0.1:{port}/")
    return process


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=30)


def open_page(browser, port: int):
    context = browser.new_context(viewport={"width": 1500, "height": 1000})  # a fresh HTTP cache
    page = context.new_page()
    page.goto(f"http://127.0.0.1:{port}")
    page.wait_for_function("() => { const m = document.querySelector('.es-map');"
                           " return m && m.dataset.mode !== '' && m.dataset.busy === '0'; }", timeout=120_000)
    page.wait_for_selector("#es-grid .es-card", timeout=120_000)
    return page


def settle(page) -> None:
    page.wait_for_function("() => document.querySelector('.es-map').dataset.busy === '0'", timeout=60_000)
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")


def zoom(page, view: list[float]) -> None:
    page.evaluate("([a, b, c, d]) => Plotly.relayout(window.embedscapeMap.gd, {'xaxis.range': [a, b], "
                  "'yaxis.range': [c, d]})", view[:4])
    settle(page)


def near(page, centre: tuple[float, float]) -> None:
    """Zoom to 2 x 2 around `centre`: few enough points there for the browser to hold them
    (a big map starts as a density image, with no points in the browser)."""
    zoom(page, [centre[0] - 1, centre[0] + 1, centre[1] - 1, centre[1] + 1])
    page.wait_for_function("() => document.querySelector('.es-map').dataset.mode === 'points'")


def box_selection(page, view: list[float]) -> float:
    """A box over the left half of the square: mouseup -> the explorer's views updated (s),
    as bench_ui.py times it (the count is the one Plotly selected: pixel rounding at the
    box's edges decides a point or two)."""
    x0, x1, y0, y1 = view[:4]
    box = (x0 + (x1 - x0) * 0.05, x0 + (x1 - x0) * 0.5, y0 + (y1 - y0) * 0.05, y1 - (y1 - y0) * 0.05)
    page.evaluate(bench_ui.WATCH_JS)
    bench_ui.drag(page, [(box[0], box[3]), (box[1], box[2])], lasso=False)
    # The count line may not be drawn yet on a loaded machine: wait for it too.
    page.wait_for_function("() => { const c = document.querySelector('#es-count .es-count');"
                           " const n = c ? c.dataset.selected : '';"
                           " return n !== '' && +n === window.embedscapeMap.selectedRows().length; }", timeout=60_000)
    page.wait_for_timeout(200)
    marks = page.evaluate("() => window.__bench")
    grid_s = (max(marks["count"], marks["grid"], marks["dist"]) - marks["mouseup"]) / 1000
    page.keyboard.press("Escape")
    pixel = page.evaluate("([x, y]) => window.embedscapeMap.toClient(x, y)", [x0 + (x1 - x0) * 0.8, (y0 + y1) / 2])
    page.mouse.dblclick(pixel["x"], pixel["y"])
    page.wait_for_function("() => document.querySelector('#es-count .es-count').dataset.selected === ''")
    return grid_s




def run_thumbnails(browser, folder: Path, port: int, centre: tuple[float, float]) -> dict[str, object]:
    shutil.rmtree(folder / "artifacts" / "thumbnails", ignore_errors=True)  # cold: no thumbnail made yet
    process = start(folder, port, 300)
    out: dict[str, object] = {}
    try:
        page = open_page(browser, port)
        whole = page.evaluate("() => window.embedscapeMap.gd.layout.xaxis.range.concat("
                              "window.embedscapeMap.gd.layout.yaxis.range)")
        near(page, centre)
        view = page.evaluate(SQUARE_JS, [*centre, TARGET])
        out["points_in_view"] = view[4]
        placed, cold, count = page.evaluate(ZOOM_JS, view)
        out.update(thumbnails=count, thumbnails_placed_ms=placed, thumbnails_loaded_cold_ms=cold)
        zoom(page, whole)
        page.wait_for_function("() => document.querySelectorAll('.es-thumbs img').length === 0")
        placed, warm, _ = page.evaluate(ZOOM_JS, view)
        out.update(thumbnails_placed_warm_ms=placed, thumbnails_loaded_warm_ms=warm)
        settle(page)
        out["pan_step_overlay_ms"] = statistics.median(page.evaluate(PAN_JS, [*view[:4], 10])[2:])
        out["redraw_chart_overlay_ms"] = page.evaluate(REACT_JS, [7, True])
        out["overlay_redraw_ms"] = statistics.median(page.evaluate(
            "() => Array.from({length: 20}, () => window.embedscapeMap.redrawOverlays())"))
        out["select_box_thumbnails_s"] = box_selection(page, view)
        for n in (130, 1000):
            ms, placed_names = page.evaluate(NAMES_JS, [n, 9])
            out[f"names_place_{n}_ms"], out[f"names_placed_of_{n}"] = ms, placed_names
        page.context.close()
        # A new page (its HTTP cache empty) on the same server (the thumbnail files made).
        page = open_page(browser, port)
        near(page, centre)
        out["thumbnails_loaded_files_made_ms"] = page.evaluate(ZOOM_JS, view)[1]
        page.context.close()
    finally:
        stop(process)
    return out


def run_without_overlay(browser, folder: Path, port: int, centre: tuple[float, float]) -> dict[str, object]:
    """--map-thumbnails 0: the same box selection with points only, and the thumbnails as Plotly
    layout images instead of the overlay."""
    process = start(folder, port, 0)
    out: dict[str, object] = {}
    try:
        page = open_page(browser, port)
        near(page, centre)
        view = page.evaluate(SQUARE_JS, [*centre, TARGET])
        zoom(page, view)
        out["pan_step_points_ms"] = statistics.median(page.evaluate(PAN_JS, [*view[:4], 10])[2:])
        out["redraw_chart_points_ms"] = page.evaluate(REACT_JS, [7, False])
        zoom(page, view)
        out["select_box_points_s"] = box_selection(page, view)
        zoom(page, view)
        # Files made by the overlay's run, HTTP cache empty: as thumbnails_loaded_files_made_ms.
        out["layout_images_added_loaded_ms"], out["layout_images"] = page.evaluate(LAYOUT_IMAGES_JS, ["", 56])
        out["pan_step_layout_images_ms"] = statistics.median(page.evaluate(PAN_JS, [*view[:4], 10])[2:])
        out["redraw_chart_layout_images_ms"] = page.evaluate(REACT_JS, [7, False])
        page.context.close()
    finally:
        stop(process)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--points", type=int, default=70_000)
    parser.add_argument("--dim", type=int, default=8)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--port", type=int, default=7898)
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--thumbnails", type=int, default=300, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port, args.thumbnails)
        return
    from playwright.sync_api import sync_playwright

    folder = RESULTS / f"ui-{args.points}-d{args.dim}"
    bench_ui.build(folder, args.points, args.dim)
    x0, x1, y0, y1 = bench_ui.cluster_box(folder, 1)
    centre = ((x0 + x1) / 2, (y0 + y1) / 2)
    runs = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=bench_ui.CHROMIUM, headless=True,
                                    args=bench_ui.ARGS + bench_ui.SOFTWARE_COMPOSITING)
        for attempt in range(args.runs):
            load = os.getloadavg()[0]
            result = {"run": attempt + 1, "points": args.points, "load_before": round(load, 1),
                      **run_thumbnails(browser, folder, args.port, centre),
                      **run_without_overlay(browser, folder, args.port, centre)}
            print(json.dumps(result), flush=True)
            runs.append(result)
        browser.close()
    numbers = [k for k, v in runs[0].items() if isinstance(v, (int, float)) and k != "run"]
    summary = {k: round(statistics.median(r[k] for r in runs), 3) for k in numbers}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "map_overlays.json").write_text(json.dumps({"median": summary, "runs": runs}, indent=2))
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
