"""Explorer UI benchmark: page load, selection latency, tagging, memory, from 70k to 10M points.

    .venv/bin/python bench/bench_ui.py [--points 70000 1000000 10000000] [--dim 8] [--repeat 3]
                                       [--gpu-compositing]

Synthetic collection (built once, cached under bench/results/ui-<N>-d<dim>/, then optimized
as `app.py index` leaves a real one, then opened once so its columns cache exists, as after any
earlier start of the app): random 8-d vectors (the UI never reads vectors except for search,
and small vectors build ten million points in reasonable time and disk), 10 labels, x/y in 10
well-separated round clusters (label 0 holds exactly 10,000 points so one box selects 10,000),
10 distinct 32x32 PNGs, and a unique path per point that resolves to its label's PNG through
16 directory symlinks (`point_path`), so hover and grid thumbnails are real files.
Above EMBEDSCAPE_MAP_POINTS points in view (default 200,000) the map is a density image and
selections are decided on the server (ui/map/routes.py); select_*_map_drawn_s is then mouseup ->
the image with the selection drawn.

The server runs in a subprocess (its RSS is the app's alone) with handler timings logged;
headless Chromium (Playwright) drives it with real mouse drags. Times:
  server_up_s        process start -> HTTP 200 (with the first page, ui/first_page.py: its answer,
                     before Gradio is imported; without: the explorer's, after building it)
  first_map_s        server_up_s + navigation start -> a map drawn: the first page's picture of it,
                     or without the first page the explorer's map (the browser's own start left out)
  explorer_map_s     server_up_s + navigation start -> the explorer's map drawn (with the first
                     page: after the page reloaded into the explorer by itself)
  page_ready_s       navigation start -> the explorer's map drawn and its grid filled
Each size runs with the first page and then without it (`--first-page on|off|both`), as
`app.py serve` started before it (the baseline in the same script).
  rss_page_ready_mb  server RSS when the page is ready (the engine may not be open yet)
  engine_open_s      the embedded engine's shard load, from the server's log (it starts once the
                     first page is served: store/edge.py); the selections wait for it
  select_*_s         mouseup -> count line, grid and distribution updated (browser clock)
  *_handler_ms       server-side handler time (from the server's log)
  tag_10k_s          click "Add" -> status line shows the result, for the 10,000 selected points
                     (browser clock, median of 3 tags; tag_10k_python_clock_s adds
                     Playwright's click and polling)
  tag_10k_grid_s     click "Add" -> the grid's cards show the tag (the selection's followers
                     run in the tag's own event: ui/context.py)
  tag_in_qdrant_after_ack_ms
                     status shown -> the edit is in the engine: the reply comes once the edit is
                     journaled, the engine write follows (store/write_behind.py; from the log)
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import re
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "bench" / "results"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
# Default: no GPU, so software compositing: every frame that changes the WebGL map is drawn
# by SwiftShader and read back to the CPU on the page's main thread (GLES2::ReadPixels inside
# the compositor commit), which holds up everything else the page does. --gpu-compositing
# composites on (SwiftShader's) GL instead, as a browser with a GPU does.
SOFTWARE_COMPOSITING = ["--disable-gpu"]
GPU_COMPOSITING = ["--use-angle=swiftshader", "--enable-unsafe-swiftshader"]
LABELS = [f"class{i}" for i in range(10)]
BIG_CLUSTER = 10_000
SPREAD = 20.0  # cluster centres on a circle this big: 12 units apart, clusters 6 wide


# --- synthetic collection ------------------------------------------------------------------
HEX_DIRS = "0123456789abcdef"


def point_path(i: int, label: str) -> str:
    """A unique relative path per point that resolves to its label's PNG: every hex digit of
    `i` is a directory, and each such directory is a symlink to the root itself ("7/f/..." ->
    "."), so ten million distinct paths need 16 symlinks, not ten million files."""
    return "/".join(f"{i:07x}") + f"/{label}.png"


def cluster_sizes(n: int) -> list[int]:
    return [BIG_CLUSTER] + [(n - BIG_CLUSTER) // 9 + (1 if i < (n - BIG_CLUSTER) % 9 else 0) for i in range(9)]


def build(folder: Path, n: int, dim: int) -> None:
    from PIL import Image

    from store import open_store, point_id

    if not (folder / "done").exists():
        rng = np.random.default_rng(0)
        root = folder / "images"
        root.mkdir(parents=True, exist_ok=True)
        for i, label in enumerate(LABELS):
            colour = tuple(int(c) for c in rng.integers(40, 220, 3))
            Image.new("RGB", (32, 32), colour).save(root / f"{label}.png")
        for digit in HEX_DIRS:
            if not (root / digit).is_symlink():
                (root / digit).symlink_to(".")
        codes = np.repeat(np.arange(10), cluster_sizes(n))
        angle = codes * (2 * np.pi / 10)
        radius = 3.0 * np.sqrt(rng.uniform(size=n))
        theta = rng.uniform(0, 2 * np.pi, n)
        x = SPREAD * np.cos(angle) + radius * np.cos(theta)
        y = SPREAD * np.sin(angle) + radius * np.sin(theta)
        store = open_store(path=str(folder / "qdrant"))
        if store.exists("bench"):
            store.drop("bench")
        collection = store.create("bench", dim, {"source_root": str(root), "model": "synthetic"})
        for field in ("label", "tags"):
            collection.create_index(field, "keyword")
        batch = 20_000
        for start in range(0, n, batch):
            print(f"building {n:,}-point collection: {start:,}", end="\r", file=sys.stderr, flush=True)
            ids, payloads = [], []
            for i in range(start, min(n, start + batch)):
                label = LABELS[codes[i]]
                relative = point_path(i, label)
                ids.append(point_id(relative))
                payloads.append({"path": relative, "label": label, "labels": [label], "tags": [], "split": "train",
                                 "x": float(x[i]), "y": float(y[i]), "width": 32, "height": 32,
                                 "sha1": f"{i:040d}"})
            vectors = rng.normal(size=(len(ids), dim)).astype(np.float32)
            collection.upsert(ids, vectors, payloads)
        collection.flush()
        store.close()
        (folder / "done").write_text("ok")
    _optimize_once(folder)
    _columns_once(folder)


def _optimize_once(folder: Path) -> None:
    """As `app.py index` leaves a collection (one optimized segment, vectors memory-mapped),
    so tag writes are timed on the layout users have."""
    from store import open_store

    marker = folder / "optimized"
    if marker.exists():
        return
    store = open_store(path=str(folder / "qdrant"))
    store.open("bench").optimize()
    store.close()
    marker.write_text("ok")


def _columns_once(folder: Path) -> None:
    """Open the collection's columns once before the timed start, as any earlier start of the
    app would have: the first open of a collection scans every payload to write the columns
    cache beside the shard (timed here and reported as columns_cache_build_s)."""
    from store import open_store
    from ui.table import FIELDS

    if (folder / "qdrant" / "bench" / "columns-cache.npys").exists():
        return  # (opening a 10M shard alone takes a minute)
    store = open_store(path=str(folder / "qdrant"))
    started = time.perf_counter()
    store.open("bench").columns(FIELDS)
    elapsed = time.perf_counter() - started
    store.close()
    if elapsed > 5:
        (folder / "columns-cache-build.txt").write_text(f"{elapsed:.1f}\n")


# --- the server subprocess -----------------------------------------------------------------
def serve(folder: Path, port: int) -> None:
    from store import open_store

    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logging.getLogger("ui").setLevel(logging.DEBUG)
    logging.getLogger("store.write_behind").setLevel(logging.INFO)  # when tag edits reach the engine
    logging.getLogger("store.edge").setLevel(logging.INFO)  # when the engine has opened
    collection = open_store(path=str(folder / "qdrant")).open("bench")
    if os.environ.get("BENCH_FIRST_PAGE", "1") == "1":
        # As `app.py serve`: the address answers with the first page before Gradio is imported.
        from ui.first_page import FirstPage

        first_page = FirstPage.start("127.0.0.1", port, collection)
        from ui.app import serve as serve_app

        serve_app(collection, port=port, first_page=first_page)
    else:  # (also runs on code from before the first page, for a baseline)
        from ui.app import serve as serve_app

        serve_app(collection, port=port)


def wait_http(url: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not come up")


def rss_mb(pid: int) -> tuple[float, float]:
    status = Path(f"/proc/{pid}/status").read_text()
    value = {k: int(re.search(rf"{k}:\s+(\d+)", status).group(1)) / 1024 for k in ("VmRSS", "VmHWM")}
    return value["VmRSS"], value["VmHWM"]


def wait_engine(log: Path, timeout: float = 600) -> float | None:
    """Seconds the engine took to load the shard once the server's log says it has (None: code
    that opens it before serving, without that line)."""
    if not (ROOT / "store" / "start_answers.py").exists():
        return None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = re.search(r"engine of collection '\S+' open in ([\d.]+) s", log.read_text())
        if found:
            return float(found.group(1))
        time.sleep(0.2)
    raise RuntimeError("the engine did not open")


def handler_times(log: Path, name: str) -> list[float]:
    return [float(m) for m in re.findall(rf"handler {name} took ([\d.]+) ms", log.read_text())]


def journal_times(log: Path) -> list[tuple[float, float]]:
    """(engine write ms, acknowledged -> in the engine ms) of each tag edit (store/write_behind.py)."""
    found = re.findall(r"applied journaled write \S+ \(\d+ points\) in (\d+) ms, (\d+) ms after", log.read_text())
    return [(float(apply), float(after)) for apply, after in found]


# --- browser measurements ------------------------------------------------------------------
WATCH_JS = """
() => {
  window.__bench = {mouseup: 0, count: 0, grid: 0, dist: 0, status: 0, click: 0, expect: null, map: 0};
  new MutationObserver(() => { window.__bench.map = performance.now(); })
    .observe(document.querySelector('.es-map'), {attributes: true, attributeFilter: ['data-views']});
  document.addEventListener('mouseup', () => { window.__bench.mouseup = performance.now(); }, true);
  document.addEventListener('click', () => { window.__bench.click = performance.now(); }, true);
  for (const [key, sel] of [['count', '#es-count'], ['grid', '#es-grid'], ['dist', '#es-dist']]) {
    new MutationObserver(() => { window.__bench[key] = performance.now(); })
      .observe(document.querySelector(sel), {subtree: true, childList: true, characterData: true, attributes: true});
  }
  // The tag status counts when it first shows the expected message, not at later mutations
  // (Gradio's own class changes on the component after the event).
  const status = document.querySelector('#es-tag-status');
  new MutationObserver(() => {
    const b = window.__bench;
    if (b.expect && !b.status && status.innerText.includes(b.expect)) b.status = performance.now();
  }).observe(status, {subtree: true, childList: true, characterData: true});
  // The grid counts once its cards show the new tag (it may update after the status line).
  const grid = document.querySelector('#es-grid');
  new MutationObserver(() => {
    const b = window.__bench;
    if (b.expectTag && !b.gridTag && [...grid.querySelectorAll('.es-tag')].some(
        t => t.textContent === b.expectTag)) b.gridTag = performance.now();
  }).observe(grid, {subtree: true, childList: true, characterData: true});
}
"""


def cluster_box(folder: Path, code: int) -> tuple[float, float, float, float]:
    angle = code * (2 * np.pi / 10)
    cx, cy = SPREAD * np.cos(angle), SPREAD * np.sin(angle)
    return cx - 3.4, cx + 3.4, cy - 3.4, cy + 3.4


def drag(page, points: list[tuple[float, float]], lasso: bool) -> None:
    page.click('[data-title="Lasso Select"]' if lasso else '[data-title="Box Select"]')
    pixels = [page.evaluate("([x, y]) => window.embedscapeMap.toClient(x, y)", list(p)) for p in points]
    page.mouse.move(pixels[0]["x"], pixels[0]["y"])
    page.mouse.down()
    for p in pixels[1:]:
        page.mouse.move(p["x"], p["y"], steps=4)
    page.mouse.up()


def timed_selection(page, points: list[tuple[float, float]], expected: int,
                    lasso: bool = False) -> tuple[float, float | None]:
    """(mouseup -> count line, grid and distribution updated; mouseup -> the map drew the
    selection, for the density view, where the server decides the points and the image
    is drawn again with the rest dimmed: None over points, where Plotly draws it at once)."""
    # The redraw of the previous step (a clear redraws the density image) must be done first,
    # or its new image would be taken for this selection's.
    page.wait_for_function("() => document.querySelector('.es-map').dataset.busy === '0'", timeout=60_000)
    seq = page.evaluate("() => document.querySelector('.es-map').dataset.seq")
    density = map_mode(page) == "density"
    drag(page, points, lasso)
    page.wait_for_function("n => document.querySelector('#es-count .es-count').dataset.selected === n",
                           arg=str(expected), timeout=60_000)
    if density:
        page.wait_for_function("() => window.__bench.map > window.__bench.mouseup", timeout=60_000)
    page.wait_for_timeout(200)
    marks = page.evaluate("() => window.__bench")
    if not density:
        assert page.evaluate("() => document.querySelector('.es-map').dataset.seq") == seq, "figure was re-sent"
    views_s = (marks["map"] - marks["mouseup"]) / 1000 if density else None
    return (max(marks["count"], marks["grid"], marks["dist"]) - marks["mouseup"]) / 1000, views_s


def map_mode(page) -> str:
    return page.evaluate("() => document.querySelector('.es-map').dataset.mode")


TAGS = ("bench", "bench-2", "bench-3")  # three tagging runs of the same 10,000 points


def timed_tagging(page, tag: str) -> tuple[float, float, float]:
    """Add `tag` to the selection: (Python clock, browser clock click -> status changed,
    browser clock click -> the grid shows the tag)."""
    box = page.locator("#es-tag input")
    box.fill(tag)
    box.press("Enter")
    page.wait_for_timeout(300)
    expected = f"'{tag}' to 10,000 of"
    page.evaluate("([e, t]) => { Object.assign(window.__bench, {status: 0, expect: e, gridTag: 0, expectTag: t}); }",
                  [expected, tag])
    started = time.perf_counter()
    page.click("#es-tag-add")
    page.wait_for_function("() => window.__bench.status > 0", timeout=30_000)
    python_s = time.perf_counter() - started
    page.wait_for_function("() => window.__bench.gridTag > 0", timeout=30_000)
    marks = page.evaluate("() => window.__bench")
    return python_s, (marks["status"] - marks["click"]) / 1000, (marks["gridTag"] - marks["click"]) / 1000


def clear(page) -> None:
    """Double-click: no selection; over the density image, wait for the image redrawn without it."""
    density = map_mode(page) == "density"
    views = page.evaluate("() => +document.querySelector('.es-map').dataset.views")
    page.keyboard.press("Escape")
    pixel = page.evaluate("() => window.embedscapeMap.toClient(0, 0)")
    page.mouse.dblclick(pixel["x"], pixel["y"])
    page.wait_for_function("() => document.querySelector('#es-count .es-count').dataset.selected === ''")
    if density:
        page.wait_for_function("n => +document.querySelector('.es-map').dataset.views > n", arg=views,
                               timeout=60_000)


EXPLORER_MAP_DRAWN = ("() => { const m = document.querySelector('.es-map');"
                      " return !!m && m.dataset.mode !== '' && m.dataset.seq !== '-1'; }")


def run(n: int, dim: int, port: int, gpu_compositing: bool = False,
        map_share: float | None = None, first_page: bool = True) -> dict[str, object]:
    from playwright.sync_api import sync_playwright

    from ui.page_layout import STORAGE_KEY  # the map's share of the width, remembered (imports Gradio:
    # not at the top, where the server subprocess would pay for it before its first answer)

    folder = RESULTS / f"ui-{n}-d{dim}"
    started = time.perf_counter()
    build(folder, n, dim)
    build_s = time.perf_counter() - started
    log = folder / "server.log"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "EMBEDSCAPE_ARTIFACTS": str(folder / "artifacts"),
           "BENCH_FIRST_PAGE": "1" if first_page else "0"}
    browser_args = ARGS + (GPU_COMPOSITING if gpu_compositing else SOFTWARE_COMPOSITING)
    # The browser runs before the server starts, as a user's does: its own start (a second of
    # CPU on this machine) then does not compete with the server's start.
    playwright = sync_playwright().start()
    browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=browser_args)
    page = browser.new_page(viewport={"width": 1500, "height": 1000})
    if map_share is not None:  # the map's share of the width, as a user's drag leaves it
        page.add_init_script(f"localStorage.setItem({STORAGE_KEY!r}, '{map_share:.1f}')")
    page.goto("about:blank")
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, __file__, "--serve", str(folder), "--port", str(port)],
                               stdout=log.open("w"), stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    result: dict[str, object] = {"points": n, "dim": dim, "build_s": round(build_s, 1),
                                 "compositing": "gpu (SwiftShader)" if gpu_compositing else "software",
                                 "map_share": map_share, "first_page": first_page}
    try:
        wait_http(url + "/")
        result["server_up_s"] = round(time.perf_counter() - started, 2)
        started = time.perf_counter()
        page.goto(url)
        # A map drawn: the first page's picture, or the explorer's map (points or the density image).
        page.wait_for_function(f"() => document.querySelector('.es-first-map')?.dataset.drawn === '1'"
                               f" || ({EXPLORER_MAP_DRAWN})()", timeout=120_000)
        result["first_map_s"] = round(result["server_up_s"] + time.perf_counter() - started, 2)
        # The explorer's map, after the first page reloaded into it by itself; then its grid.
        page.wait_for_function(EXPLORER_MAP_DRAWN, timeout=120_000)
        result["explorer_map_s"] = round(result["server_up_s"] + time.perf_counter() - started, 2)
        page.wait_for_selector("#es-grid .es-card", timeout=120_000)
        result["page_ready_s"] = round(time.perf_counter() - started, 2)
        result["rss_page_ready_mb"] = round(rss_mb(process.pid)[0])
        result["engine_open_s"] = wait_engine(log)
        result["map_mode"] = map_mode(page)
        page.evaluate(WATCH_JS)
        sizes = cluster_sizes(n)
        box, lasso, box_map, lasso_map = [], [], [], []
        for code in (1, 2, 3):
            x0, x1, y0, y1 = cluster_box(folder, code)
            grid_s, map_s = timed_selection(page, [(x0, y1), (x1, y0)], sizes[code])
            box.append(grid_s)
            box_map.append(map_s)
            clear(page)
            ring = [(x0 + (x1 - x0) / 2 + 3.45 * np.cos(t), y0 + (y1 - y0) / 2 + 3.45 * np.sin(t))
                    for t in np.linspace(0, 2 * np.pi, 24)]
            grid_s, map_s = timed_selection(page, ring, sizes[code], lasso=True)
            lasso.append(grid_s)
            lasso_map.append(map_s)
            clear(page)
        result["select_box_s"] = round(statistics.median(box), 3)
        result["select_lasso_s"] = round(statistics.median(lasso), 3)
        result["select_runs_s"] = [round(t, 3) for t in box + lasso]
        if box_map[0] is not None:
            result["select_box_map_drawn_s"] = round(statistics.median(box_map), 3)
            result["select_lasso_map_drawn_s"] = round(statistics.median(lasso_map), 3)
        x0, x1, y0, y1 = cluster_box(folder, 0)
        result["select_box_10k_s"] = round(timed_selection(page, [(x0, y1), (x1, y0)], sizes[0])[0], 3)
        tag_times, python_times, grid_times = [], [], []
        for tag in TAGS:
            python_s, browser_s, grid_s = timed_tagging(page, tag)
            python_times.append(python_s)
            tag_times.append(browser_s)
            grid_times.append(grid_s)
        # Browser clock, click -> status line changed (as for selections); Playwright's
        # click (actionability checks) and polling add to the Python-side time.
        result["tag_10k_s"] = round(statistics.median(tag_times), 3)
        result["tag_10k_runs_s"] = [round(t, 3) for t in tag_times]
        result["tag_10k_python_clock_s"] = round(statistics.median(python_times), 3)
        result["tag_10k_grid_s"] = round(statistics.median(grid_times), 3)
        result["tag_10k_grid_runs_s"] = [round(t, 3) for t in grid_times]
        browser.close()
        time.sleep(0.5)
        result["rss_mb"], result["peak_rss_mb"] = (round(v) for v in rss_mb(process.pid))
        applied = journal_times(log)
        if applied:
            result["tag_engine_write_ms_median"] = statistics.median(a for a, _ in applied)
            result["tag_in_qdrant_after_ack_ms_median"] = statistics.median(b for _, b in applied)
            result["tag_in_qdrant_after_ack_ms_max"] = max(b for _, b in applied)
        for name in ("map_select", "follow", "tag_add", "view"):
            times = handler_times(log, name)
            if times:
                result[f"{name}_handler_ms_median"] = round(statistics.median(times), 1)
                result[f"{name}_handler_ms_max"] = round(max(times), 1)
    finally:
        process.terminate()
        process.wait(timeout=30)
        playwright.stop()
        _untag(folder)
    return result


def _untag(folder: Path) -> None:
    """Leave the cached collection as built (the tag runs add TAGS to 10,000 points)."""
    from store import PointFilter, open_store

    store = open_store(path=str(folder / "qdrant"))
    collection = store.open("bench")
    for tag in TAGS:
        collection.remove_tag(collection.ids(PointFilter(tags_any=[tag])), tag)
    store.close()


FIRST_PAGE_RUNS = {"on": (True,), "off": (False,), "both": (True, False)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--points", type=int, nargs="+", default=[70_000, 1_000_000, 10_000_000])
    parser.add_argument("--repeat", type=int, default=1, help="runs of every size, in turn")
    parser.add_argument("--dim", type=int, default=8)
    parser.add_argument("--map-share", type=float, help="the map's share of the page width in percent "
                        "(ui/page_layout.py; default: the layout's own)")
    parser.add_argument("--port", type=int, default=7899)
    parser.add_argument("--gpu-compositing", action="store_true",
                        help="composite with GL (SwiftShader) instead of software; see SOFTWARE_COMPOSITING")
    parser.add_argument("--first-page", choices=["on", "off", "both"], default="both",
                        help="serve the first page before the explorer (app.py serve does), or not, or each in turn")
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port)
        return
    RESULTS.mkdir(parents=True, exist_ok=True)
    results = []
    for attempt in range(args.repeat):
        for n, first_page in ((n, f) for n in args.points for f in FIRST_PAGE_RUNS[args.first_page]):
            result = run(n, args.dim, args.port, args.gpu_compositing, args.map_share, first_page)
            result["run"], result["load_before"] = attempt + 1, os.getloadavg()[0]
            print(json.dumps(result), flush=True)
            results.append(result)
            (RESULTS / "ui.json").write_text(json.dumps(results, indent=2))
    (RESULTS / "ui.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
