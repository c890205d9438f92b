"""Load benchmark: many sessions at once against one explorer server, then every acknowledged
tag checked in Qdrant.

    .venv/bin/python bench/bench_load.py [--points 10000 | --store PATH --collection NAME]
                                         [--sessions 20] [--browsers 4] [--duration 120]
                                         [--after 300] [--quick] [--page-cost N]

The server (`ui.app.serve`, as `app.py serve` runs it) is a subprocess on either bench_ui.py's
synthetic collection of `--points` points (built once under bench/results/) or an existing
embedded store (`--store`, e.g. a copy of the demo's: tags are added there and removed at the
end). Against it, for `--duration` seconds:

  * `--sessions` simulated users speak Gradio's HTTP protocol as the page does (recorded from
    the page with Playwright): a session opens the heartbeat stream, sends the Explorer tab's
    select and the load event, fetches the map's view (ui/map/routes.py) and the grid's
    thumbnails, then in a random mix: box / lasso selections through the map's `select` event
    (row numbers over points, the shape over a density image, as ui/map/component.py sends
    them), grid pages, hover thumbnails (/thumb/row/N, over a density image after
    /es-map/near), tag add / remove on the selection. Each user closes its session after
    20-40 s (the heartbeat stream ends, as when a tab closes) and opens a new one;
  * `--browsers` headless Chromium pages (bench_ui.py's real mouse drags) select, tag, page
    the grid and hover through the real page, reopening their page as often.

Every tag name belongs to one session, so the acknowledged count of a tag is exact: the sum of
the "Added 'T' to N of M" counts minus the "Removed 'T' from N" counts. After the server stops,
the store is opened and every tag's count compared (`lost_edits` must be empty; `errors`
must be 0: failed requests, failed events, timeouts, selections or tags the page never
showed). Server RSS (/proc) is sampled every second: before (idle after start-up and one
page), during, and for `--after` seconds after the last session closed.

`--page-cost N` measures instead what one page open costs the server: N pages opened and
closed one after another, each step (HTML and config, tab event, load event, map view, grid
thumbnails, close) timed on the client's clock and the server's CPU clock.

Writes bench/results/load-<name>.json (`--page-cost`: load-<name>-<points>-page-cost.json) and
prints it.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import re
import secrets
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))
import bench_ui  # noqa: E402  (the synthetic collection, server start, RSS, mouse drags)

RESULTS = ROOT / "bench" / "results"
TAG_PREFIX = "load-"
SESSION_S = (20.0, 40.0)  # a session's length before its user closes it and opens a new one
THINK_S = (0.3, 1.5)  # a user's pause between actions
ACTIONS = {"select": 30, "grid_page": 25, "hover": 25, "tag_add": 12, "tag_remove": 8}
FIRST_ACTIONS = ("select", "tag_add")  # what a user opening the page does first; then the mix
CALL_TIMEOUT_S = 120.0
ADDED = re.compile(r"Added '(.+?)' to ([\d,]+) of ([\d,]+) selected")
REMOVED = re.compile(r"Removed '(.+?)' from ([\d,]+) of ([\d,]+) selected")
THUMB = re.compile(r'src="(/thumb/[^"]+)"')
SELECTED = re.compile(r'class="es-count" data-selected="(\d*)"')


# --- what the run records --------------------------------------------------------------------
@dataclass
class Recorder:
    """Latencies per action, errors, and the tag counts the server acknowledged (thread-safe)."""

    times: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: list[str] = field(default_factory=list)
    acknowledged: Counter = field(default_factory=Counter)
    sessions_opened: int = 0
    sessions_closed: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def time(self, action: str, seconds: float) -> None:
        with self.lock:
            self.times[action].append(seconds)

    def error(self, action: str, message: str) -> None:
        with self.lock:
            self.errors.append(f"{action}: {message}"[:300])

    def acknowledge(self, status: str) -> bool:
        """Count the tag edit a status line acknowledges; False if it acknowledges none."""
        added, removed = ADDED.search(status), REMOVED.search(status)
        if not (added or removed):
            return False
        match = added or removed
        changed = int(match.group(2).replace(",", ""))
        tag = re.sub(r"\\(.)", r"\1", match.group(1))  # the Markdown's escapes (ui/text.py markdown_text)
        with self.lock:
            self.acknowledged[tag] += changed if added else -changed
        return True

    def session(self, opened: bool) -> None:
        with self.lock:
            if opened:
                self.sessions_opened += 1
            else:
                self.sessions_closed += 1

    def summary(self) -> dict[str, Any]:
        latencies = {action: {"n": len(t), "p50_ms": round(1000 * float(np.percentile(t, 50)), 1),
                              "p95_ms": round(1000 * float(np.percentile(t, 95)), 1),
                              "max_ms": round(1000 * max(t), 1)}
                     for action, t in sorted(self.times.items()) if t}
        return {"latency": latencies, "errors": len(self.errors), "error_samples": self.errors[:20],
                "sessions_opened": self.sessions_opened, "sessions_closed": self.sessions_closed}


class RssSampler(threading.Thread):
    """The server's RSS every second, each sample labelled with the phase it was taken in."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.phase, self.samples = pid, "before", []
        self.started_at = time.monotonic()
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(1.0):
            try:
                rss, _ = bench_ui.rss_mb(self.pid)
            except (OSError, AttributeError):
                return
            self.samples.append((round(time.monotonic() - self.started_at, 1), self.phase, round(rss, 1)))

    def summary(self) -> dict[str, Any]:
        by_phase: dict[str, list[float]] = defaultdict(list)
        for _, phase, rss in self.samples:
            by_phase[phase].append(rss)
        after = by_phase.get("after", [])
        out: dict[str, Any] = {f"{phase}_median_mb": round(statistics.median(v), 1) for phase, v in by_phase.items()}
        out["during_max_mb"] = max(by_phase.get("during", [0]))
        if after:
            out["after_first_mb"], out["after_last_mb"] = after[0], after[-1]
            out["after_last_60s_median_mb"] = round(statistics.median(after[-60:]), 1)
        return out


# --- the page's protocol ---------------------------------------------------------------------
@dataclass
class Page:
    """The Gradio app's events as the page calls them: fn index, trigger and default inputs."""

    config: dict[str, Any]
    by_elem: dict[str, int] = field(default_factory=dict)
    values: dict[int, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for component in self.config["components"]:
            props = component.get("props", {})
            if props.get("elem_id"):
                self.by_elem[props["elem_id"]] = component["id"]
            stateful = component.get("type") == "state"
            self.values[component["id"]] = None if stateful else props.get("value")

    def event(self, elem_id: str | None, trigger: str) -> dict[str, Any]:
        """The dependency `trigger` of the component `elem_id` fires (elem_id None: the page's load)."""
        target = None if elem_id is None else self.by_elem[elem_id]
        for dependency in self.config["dependencies"]:
            for component, name in dependency["targets"]:
                if name == trigger and (target is None or component == target):
                    return dependency
        raise KeyError(f"no {trigger} event on {elem_id}")

    def tab_event(self, title: str) -> tuple[dict[str, Any], int]:
        for component in self.config["components"]:
            if component.get("type") == "tabitem" and component.get("props", {}).get("label") == title:
                tab_id = component["id"]
                for dependency in self.config["dependencies"]:
                    if [tab_id, "select"] in dependency["targets"]:
                        return dependency, tab_id
        raise KeyError(f"no select event on the tab {title}")

    def data(self, dependency: dict[str, Any], overrides: dict[str, Any] | None = None) -> list[Any]:
        overrides = overrides or {}
        return [overrides.get(i, self.values.get(i)) for i in dependency["inputs"]]


class EventFailed(Exception):
    pass


async def call(client: httpx.AsyncClient, page: Page, session: str, dependency: dict[str, Any],
               trigger: int | None, overrides: dict[str, Any] | None = None,
               event_data: Any = None) -> list[Any]:
    """One event as the page sends it: POST queue/join, then the session's SSE stream until
    the event completes. Returns its output values."""
    body = {"data": page.data(dependency, overrides), "event_data": event_data, "fn_index": dependency["id"],
            "trigger_id": trigger, "session_hash": session}
    response = await client.post("/gradio_api/queue/join", json=body)
    response.raise_for_status()
    event_id = response.json()["event_id"]
    while True:  # a stream may end ("close_stream") before our event's result: open it again
        async with client.stream("GET", "/gradio_api/queue/data", params={"session_hash": session}) as stream:
            stream.raise_for_status()
            async for line in stream.aiter_lines():
                if not line.startswith("data:"):
                    continue
                message = json.loads(line[5:])
                if message.get("msg") == "process_completed" and message.get("event_id") == event_id:
                    if not message.get("success"):
                        raise EventFailed(str(message.get("output"))[:200])
                    return message["output"]["data"]
                if message.get("msg") == "close_stream":
                    break


def describe(error: BaseException) -> str:
    """An error with the request it cut (httpx's errors name none in their message) and its cause."""
    text = f"{type(error).__name__}: {error}"
    request = getattr(error, "_request", None)  # httpx.RequestError.request raises when unset
    if request is not None:
        text += f" [{request.method} {request.url.path}]"
    if error.__cause__ is not None:
        text += f" (cause: {type(error.__cause__).__name__}: {error.__cause__})"
    return text


def _strings(values: list[Any]) -> list[str]:
    return [v for v in values if isinstance(v, str)]


def map_message(values: list[Any]) -> dict[str, Any]:
    for text in _strings(values):
        if text.startswith("{") and '"seq"' in text:
            return json.loads(text)
    return {}


def selected_count(values: list[Any]) -> int | None:
    for text in _strings(values):
        found = SELECTED.search(text)
        if found:
            return int(found.group(1)) if found.group(1) else 0
    return None


def thumbnails(values: list[Any]) -> list[str]:
    return [url for text in _strings(values) for url in THUMB.findall(text)]


# --- one simulated user ------------------------------------------------------------------------
@dataclass
class Geometry:
    """What a session needs to draw shapes: the map's bounds and, over points (where the page
    sends row numbers), every point's x / y in the server's row order."""

    bounds: list[float]
    n: int
    x: np.ndarray
    y: np.ndarray

    def shape(self, rng: random.Random, lasso: bool) -> tuple[list[float], list[tuple[float, float]]]:
        """A box ([x0, x1, y0, y1]) 3-15% of the map on a side around a random point (users
        draw around points, and most of a 2D embedding's map is empty), and its outline (a
        lasso: the ellipse inside the box)."""
        x0, x1, y0, y1 = self.bounds
        w, h = (x1 - x0) * rng.uniform(0.03, 0.15), (y1 - y0) * rng.uniform(0.03, 0.15)
        row = rng.randrange(self.n)
        bx = float(np.clip(self.x[row] - w / 2, x0, x1 - w))
        by = float(np.clip(self.y[row] - h / 2, y0, y1 - h))
        box = [bx, bx + w, by, by + h]
        if not lasso:
            return box, [(bx, by + h), (bx + w, by)]
        t = np.linspace(0, 2 * np.pi, 16, endpoint=False)
        return box, [(bx + w / 2 * (1 + np.cos(a)), by + h / 2 * (1 + np.sin(a))) for a in t]

    def rows(self, outline: list[tuple[float, float]], lasso: bool) -> list[int]:
        # What Plotly decides in the browser, done with the server's own even-odd test
        # (ui/map/geometry.py) rather than another library.
        from ui.map.geometry import inside_polygon

        if not lasso:
            (ax, ay), (bx, by) = outline
            inside = (self.x >= ax) & (self.x <= bx) & (self.y >= by) & (self.y <= ay)
        else:
            px, py = (np.array(v, np.float64) for v in zip(*outline))
            inside = inside_polygon(self.x, self.y, px, py)
        return np.flatnonzero(inside).tolist()


@dataclass
class HttpUser:
    """A user of the page, simulated over HTTP: sessions one after another until `deadline`."""

    client: httpx.AsyncClient
    page: Page
    rec: Recorder
    geometry: Geometry
    density: bool
    name: str
    deadline: float
    rng: random.Random
    session_s: tuple[float, float] = SESSION_S
    session: str = ""
    token: str = ""
    selected: int = 0
    tags: list[str] = field(default_factory=list)
    steps: Any = None  # called with each page-open step's name as it ends (`--page-cost`)

    async def run(self) -> None:
        while time.monotonic() < self.deadline:
            await self.one_session(min(self.deadline, time.monotonic() + self.rng.uniform(*self.session_s)))

    async def one_session(self, until: float) -> None:
        self.session, self.selected = secrets.token_hex(6), 0
        heartbeat = asyncio.create_task(self.heartbeat())
        self.rec.session(True)
        try:
            await self.timed("page_load", self.open_page())
            plan = list(FIRST_ACTIONS)
            while time.monotonic() < until:
                await asyncio.sleep(self.rng.uniform(*THINK_S))
                action = plan.pop(0) if plan else self.rng.choices(list(ACTIONS), weights=list(ACTIONS.values()))[0]
                await self.timed(action, getattr(self, action)())
        finally:
            heartbeat.cancel()  # the tab closes: Gradio sees the heartbeat stream end
            await asyncio.gather(heartbeat, return_exceptions=True)
            self.rec.session(False)

    async def timed(self, action: str, work: Any) -> None:
        started = time.perf_counter()
        try:
            recorded = await asyncio.wait_for(work, CALL_TIMEOUT_S)
        except Exception as error:  # every failure counts; the user goes on, as a person would
            self.rec.error(action, f"{describe(error)} after {time.perf_counter() - started:.1f} s")
            return
        if recorded is not False:  # False: nothing to time (a tag with no selection)
            self.rec.time(action, time.perf_counter() - started)

    async def heartbeat(self) -> None:
        async with self.client.stream("GET", f"/gradio_api/heartbeat/{self.session}", timeout=None) as stream:
            async for _ in stream.aiter_lines():
                pass

    async def event(self, elem_id: str | None, trigger: str, overrides: dict[str, Any] | None = None,
                    event_data: Any = None) -> list[Any]:
        dependency = self.page.event(elem_id, trigger)
        target = None if elem_id is None else self.page.by_elem[elem_id]
        return await call(self.client, self.page, self.session, dependency, target, overrides, event_data)

    async def open_page(self) -> None:
        """The page's first requests: its HTML and config, the Explorer tab, the load event,
        the map's view and the grid's thumbnails."""
        for path in ("/", "/config"):
            (await self.client.get(path)).raise_for_status()
        self.step("html_config")
        tab, tab_id = self.page.tab_event("Explorer")
        await call(self.client, self.page, self.session, tab, tab_id, event_data={"value": "Explorer", "index": 0})
        self.step("tab_event")
        values = await self.event(None, "load")
        self.step("load_event")
        self.token = map_message(values).get("base", {}).get("token", "")
        if not self.token:
            raise EventFailed("the load event sent no map token")
        await self.view()
        self.step("map_view")
        await self.get_all(thumbnails(values))
        self.step("grid_thumbnails")

    def step(self, name: str) -> None:
        """A step of the page open is done (`--page-cost` times each; the load runs do not)."""
        if self.steps is not None:
            self.steps(name)

    async def view(self) -> None:
        x0, x1, y0, y1 = self.geometry.bounds
        params = {"t": self.token, "x0": x0, "x1": x1, "y0": y0, "y1": y1, "w": 742, "h": 598}
        (await self.client.get("/es-map/view", params=params)).raise_for_status()

    async def get_all(self, urls: list[str]) -> None:
        """GET the URLs six at a time, as a browser does per host."""
        for start in range(0, len(urls), 6):
            answers = await asyncio.gather(*(self.client.get(u) for u in urls[start:start + 6]))
            for answer in answers:
                answer.raise_for_status()

    async def select(self) -> None:
        """A box or lasso on the map: its rows over points, its shape over a density image."""
        lasso = self.rng.random() < 0.4
        box, outline = self.geometry.shape(self.rng, lasso)
        if self.density:
            value: dict[str, Any] = {"kind": "lasso" if lasso else "box", "hidden": []}
            if lasso:
                value["lasso"] = {"x": [p[0] for p in outline], "y": [p[1] for p in outline]}
            else:
                value["box"] = box
        else:
            value = {"rows": self.geometry.rows(outline, lasso), "kind": "lasso" if lasso else "box"}
        values = await self.event("embedscape-map", "select", event_data={"value": value})
        count = selected_count(values)
        if count is None:
            raise EventFailed("the selection's count line did not come back")
        if not self.density and count != len(set(value["rows"])):
            raise EventFailed(f"selected {count}, sent {len(value['rows'])} rows")
        self.selected = count
        await self.follow_up(values, density_view=self.density)

    async def follow_up(self, values: list[Any], density_view: bool) -> None:
        """What the page fetches after an event: the map's view again (a density image with the
        selection drawn) and the grid's thumbnails."""
        if density_view:
            started = time.perf_counter()
            await self.view()
            self.rec.time("map_view", time.perf_counter() - started)
        started = time.perf_counter()
        await self.get_all(thumbnails(values))
        self.rec.time("grid_thumbnails", time.perf_counter() - started)

    async def grid_page(self) -> None:
        values = await self.event("es-next", "click")
        await self.follow_up(values, density_view=False)

    async def hover(self) -> None:
        """Three hovers: over points the row's thumbnail; over a density image the nearest
        point's row first (NEAR_ROUTE), then its thumbnail if one was near."""
        x0, x1, y0, y1 = self.geometry.bounds
        for _ in range(3):
            row: int | None = self.rng.randrange(self.geometry.n)
            if self.density:
                params = {"t": self.token, "x": self.rng.uniform(x0, x1), "y": self.rng.uniform(y0, y1),
                          "rx": (x1 - x0) / 50, "ry": (y1 - y0) / 50}
                near = await self.client.get("/es-map/near", params=params)
                near.raise_for_status()
                row = near.json().get("row")
            if row is not None:
                (await self.client.get(f"/thumb/row/{row}")).raise_for_status()

    async def tag_add(self) -> bool:
        if not self.selected:
            return False
        tag = f"{TAG_PREFIX}{self.name}-{self.rng.randrange(3)}"
        return await self.tag(tag, "es-tag-add")

    async def tag_remove(self) -> bool:
        if not self.selected or not self.tags:
            return False
        return await self.tag(self.rng.choice(self.tags), "es-tag-remove")

    async def tag(self, tag: str, button: str) -> bool:
        values = await self.event(button, "click", overrides={self.page.by_elem["es-tag"]: tag})
        status = " ".join(_strings(values))
        if not self.rec.acknowledge(status):
            raise EventFailed(f"no acknowledgement of {tag!r}: {status[:120]!r}")
        if tag not in self.tags:
            self.tags.append(tag)
        return True


# --- one real browser ------------------------------------------------------------------------
WATCH_JS = """
() => {
  const w = window.__load = {mouseup: 0, count: 0, grid: 0};
  document.addEventListener('mouseup', () => { w.mouseup = performance.now(); }, true);
  for (const [key, sel] of [['count', '#es-count'], ['grid', '#es-grid']]) {
    new MutationObserver(() => { w[key] = performance.now(); }).observe(document.querySelector(sel),
      {subtree: true, childList: true, characterData: true, attributes: true});
  }
}
"""
SELECTED_JS = "() => (document.querySelector('#es-count .es-count') || {dataset: {}}).dataset.selected || ''"


@dataclass
class BrowserUser:
    """A user in headless Chromium, through the real page, until `deadline`."""

    url: str
    rec: Recorder
    geometry: Geometry
    name: str
    deadline: float
    rng: random.Random
    session_s: tuple[float, float] = SESSION_S
    added: int = 0
    tags: list[str] = field(default_factory=list)

    def run(self) -> None:
        from playwright.sync_api import sync_playwright

        args = bench_ui.ARGS + bench_ui.SOFTWARE_COMPOSITING
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=bench_ui.CHROMIUM, headless=True, args=args)
            try:
                while time.monotonic() < self.deadline:
                    context = browser.new_context(viewport={"width": 1280, "height": 800})
                    self.rec.session(True)
                    try:
                        self.one_session(context.new_page(), time.monotonic() + self.rng.uniform(*self.session_s))
                    except Exception as error:  # counted; the next session starts afresh
                        self.rec.error("browser", f"{type(error).__name__}: {str(error)[:200]}")
                    finally:
                        context.close()  # the tab closes
                        self.rec.session(False)
            finally:
                browser.close()

    def one_session(self, page: Any, until: float) -> None:
        started = time.perf_counter()
        page.goto(self.url)
        page.wait_for_function("() => { const m = document.querySelector('.es-map');"
                               " return m && m.dataset.mode !== '' && m.dataset.seq !== '-1'; }", timeout=120_000)
        page.wait_for_selector("#es-grid .es-card", timeout=120_000)
        self.rec.time("browser_page_load", time.perf_counter() - started)
        page.evaluate(WATCH_JS)
        plan = list(FIRST_ACTIONS)
        while time.monotonic() < min(until, self.deadline):
            page.wait_for_timeout(1000 * self.rng.uniform(*THINK_S))
            action = plan.pop(0) if plan else self.rng.choices(list(ACTIONS), weights=list(ACTIONS.values()))[0]
            started = time.perf_counter()
            if getattr(self, action)(page) is not False:
                self.rec.time(f"browser_{action}", time.perf_counter() - started)

    def select(self, page: Any) -> None:
        """A real box or lasso drag; done when the count line changed (browser clock from mouseup)."""
        lasso = self.rng.random() < 0.4
        _, outline = self.geometry.shape(self.rng, lasso)
        before = page.evaluate(SELECTED_JS)
        bench_ui.drag(page, outline + outline[:1] if lasso else outline, lasso)
        try:  # the count line changed after the mouseup, to another count (not a late earlier update)
            page.wait_for_function(f"b => window.__load.count > window.__load.mouseup && ({SELECTED_JS})() !== b",
                                   arg=before, timeout=30_000)
        except Exception:
            if page.evaluate(SELECTED_JS) != before:
                raise
            return False  # the same count as before: the line had nothing to change
        marks = page.evaluate("() => window.__load")
        self.rec.time("browser_select_after_mouseup", (marks["count"] - marks["mouseup"]) / 1000)

    def grid_page(self, page: Any) -> bool | None:
        selected = page.evaluate(SELECTED_JS)
        if selected and int(selected) <= 100:
            return False  # a small selection has one page: "Next" changes nothing
        clicked = page.evaluate("() => performance.now()")
        page.click("#es-next")
        page.wait_for_function("t => window.__load.grid > t", arg=clicked, timeout=60_000)
        return None

    def hover(self, page: Any) -> bool:
        view = page.evaluate("() => window.embedscapeMap.view()")
        for _ in range(3):
            pixel = page.evaluate("([x, y]) => window.embedscapeMap.toClient(x, y)",
                                  [self.rng.uniform(view["x0"], view["x1"]), self.rng.uniform(view["y0"], view["y1"])])
            page.mouse.move(pixel["x"], pixel["y"], steps=3)
            page.wait_for_timeout(300)
        return False  # not timed: the card's image is a plain GET

    def tag_add(self, page: Any) -> bool | None:
        if page.evaluate(SELECTED_JS) in ("", "0"):
            return False
        self.added += 1
        tag = f"{TAG_PREFIX}{self.name}-{self.added}"  # a new name every time: its status line is new
        self.tags.append(tag)
        return self.tag(page, tag, "#es-tag-add", f"Added '{tag}' to")

    def tag_remove(self, page: Any) -> bool | None:
        if page.evaluate(SELECTED_JS) in ("", "0") or not self.tags:
            return False
        tag = self.tags.pop(self.rng.randrange(len(self.tags)))  # each name removed once at most
        return self.tag(page, tag, "#es-tag-remove", f"Removed '{tag}' from")

    def tag(self, page: Any, tag: str, button: str, expect: str) -> None:
        box = page.locator("#es-tag input")
        box.fill(tag)
        box.press("Enter")
        page.click(button)
        page.wait_for_function("t => document.querySelector('#es-tag-status').innerText.includes(t)",
                               arg=expect, timeout=60_000)
        if not self.rec.acknowledge(page.inner_text("#es-tag-status")):
            raise EventFailed(f"no acknowledgement of {tag!r}")


# --- the run ---------------------------------------------------------------------------------
def serve(store_path: Path, name: str, port: int) -> None:
    """The server subprocess: `app.py serve` on one collection, with handler timings logged."""
    from store import open_store
    from ui.app import serve as serve_app

    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logging.getLogger("ui").setLevel(logging.DEBUG)
    serve_app(open_store(path=str(store_path)).open(name), port=port)


def read_geometry(store_path: Path, name: str) -> tuple[Geometry, bool]:
    """The map as the server will read it (same rows), and whether it opens as a density image.
    Tags a previous run left are removed first, so every count starts at zero."""
    from store import open_store
    from ui.figure import bounds
    from ui.map.routes import max_points
    from ui.table import PointTable

    store = open_store(path=str(store_path))
    try:
        collection = store.open(name)
        remove_run_tags(collection)
        table = PointTable(collection)
        geometry = Geometry(bounds(table), len(table), table.x.copy(), table.y.copy())
    finally:
        store.close()
    return geometry, len(table) > max_points(None)


def remove_run_tags(collection: Any) -> None:
    from store import PointFilter
    from ui.table import PointTable

    for tag in [t for t in PointTable(collection).tag_counts() if t.startswith(TAG_PREFIX)]:
        collection.remove_tag(collection.ids(PointFilter(tags_any=[tag])), tag)


def tags_in_qdrant(store_path: Path, name: str, names: list[str]) -> dict[str, int]:
    """Each tag's point count, asked of the engine itself (a filter on the tags payload), for
    `names` and for every other tag of this run found there; then the run's tags are removed."""
    from store import PointFilter, open_store
    from ui.table import PointTable

    store = open_store(path=str(store_path))
    try:
        collection = store.open(name)
        found = [t for t in PointTable(collection).tag_counts() if t.startswith(TAG_PREFIX)]
        counts = {tag: collection.count(PointFilter(tags_any=[tag])) for tag in sorted({*names, *found})}
        remove_run_tags(collection)
    finally:
        store.close()
    return counts


async def http_users(url: str, page: Page, rec: Recorder, geometry: Geometry, density: bool,
                     args: argparse.Namespace, deadline: float) -> None:
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=400)
    async with httpx.AsyncClient(base_url=url, timeout=CALL_TIMEOUT_S, limits=limits) as client:
        people = [HttpUser(client, page, rec, geometry, density, f"h{i}", deadline, random.Random(args.seed + i),
                           tuple(args.session_s)) for i in range(args.sessions)]
        await asyncio.gather(*(person.run() for person in people))


def warm_up(url: str, page: Page, geometry: Geometry, density: bool) -> None:
    """One page opened and closed before the "before" samples, as after anyone's first visit."""
    async def one() -> None:
        async with httpx.AsyncClient(base_url=url, timeout=CALL_TIMEOUT_S) as client:
            user = HttpUser(client, page, Recorder(), geometry, density, "warm", 0.0, random.Random(0))
            await user.one_session(0.0)

    asyncio.run(one())


def drive(url: str, page: Page, rec: Recorder, geometry: Geometry, density: bool,
          args: argparse.Namespace) -> None:
    """The sessions and the browsers, all at once, for args.duration seconds."""
    deadline = time.monotonic() + args.duration
    browsers = [threading.Thread(target=BrowserUser(url, rec, geometry, f"b{i}", deadline, random.Random(100 + i),
                                                    tuple(args.session_s)).run,
                                 daemon=True) for i in range(args.browsers)]
    for thread in browsers:
        thread.start()
    asyncio.run(http_users(url, page, rec, geometry, density, args, deadline))
    for thread in browsers:
        thread.join(timeout=CALL_TIMEOUT_S + 60)


def start(store_path: Path, name: str, args: argparse.Namespace) -> tuple[subprocess.Popen, str]:
    """The server subprocess on the collection, and its URL."""
    log = store_path.parent / f"load-{name}-server.log"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "EMBEDSCAPE_ARTIFACTS": str(store_path.parent / "artifacts")}
    process = subprocess.Popen([sys.executable, __file__, "--serve", str(store_path), "--collection", name,
                                "--port", str(args.port)], stdout=log.open("w"), stderr=subprocess.STDOUT, env=env)
    return process, f"http://127.0.0.1:{args.port}"


def server_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) the process has used (/proc/PID/stat fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def page_cost(store_path: Path, name: str, args: argparse.Namespace) -> dict[str, Any]:
    """`--page-cost N`: N pages opened and closed one after another by one user, each step of
    the open timed on the client's clock and on the server's CPU clock ("close": the second
    after the page closed, where its unload runs, and what the server uses idle in a second,
    measured first over 10 s). One user at a time: the server's CPU per page open, which is
    what 20 users reopening pages queue for."""
    geometry, density = read_geometry(store_path, name)
    process, url = start(store_path, name, args)
    wall: dict[str, list[float]] = defaultdict(list)
    cpu: dict[str, list[float]] = defaultdict(list)
    last = [0.0, 0.0]

    def mark(step: str) -> None:
        now, used = time.perf_counter(), server_cpu_s(process.pid)
        wall[step].append(now - last[0])
        cpu[step].append(used - last[1])
        last[:] = [now, used]

    async def visits(page: Page) -> None:
        async with httpx.AsyncClient(base_url=url, timeout=CALL_TIMEOUT_S) as client:
            user = HttpUser(client, page, Recorder(), geometry, density, "cost", 0.0, random.Random(0), steps=mark)
            for _ in range(args.page_cost):
                last[:] = [time.perf_counter(), server_cpu_s(process.pid)]
                await user.one_session(0.0)
                await asyncio.sleep(1.0)
                mark("close")

    try:
        bench_ui.wait_http(url + "/")
        page = Page(httpx.get(url + "/config", timeout=60).json())
        warm_up(url, page, geometry, density)
        time.sleep(2)
        idle_from = server_cpu_s(process.pid)
        time.sleep(10)
        idle_ms = 1000 * (server_cpu_s(process.pid) - idle_from) / 10
        asyncio.run(visits(page))
    finally:
        process.terminate()
        process.wait(timeout=60)
    steps = {step: {"wall_median_ms": round(1000 * statistics.median(wall[step]), 1),
                    "server_cpu_mean_ms": round(1000 * statistics.mean(cpu[step]), 1)} for step in wall}
    return {"collection": name, "points": geometry.n, "pages": args.page_cost,
            "machine": f"{os.cpu_count()} CPUs, {os.uname().machine}",
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "load_average": os.getloadavg()[0],
            "idle_server_cpu_ms_per_s": round(idle_ms, 1), "steps": steps, "server_cpu_per_page_ms": round(sum(v["server_cpu_mean_ms"] for v in steps.values()), 1),
            "wall_per_page_ms": round(sum(v["wall_median_ms"] for step, v in steps.items() if step != "close"), 1)}


def run(store_path: Path, name: str, args: argparse.Namespace) -> dict[str, Any]:
    geometry, density = read_geometry(store_path, name)
    process, url = start(store_path, name, args)
    rec, sampler = Recorder(), RssSampler(process.pid)
    load: dict[str, float] = {"before": os.getloadavg()[0]}
    try:
        bench_ui.wait_http(url + "/")
        sampler.start()
        page = Page(httpx.get(url + "/config", timeout=60).json())
        warm_up(url, page, geometry, density)
        time.sleep(5)
        sampler.phase = "during"
        drive(url, page, rec, geometry, density, args)
        load["during"] = os.getloadavg()[0]
        sampler.phase = "after"
        time.sleep(args.after)
        load["after"] = os.getloadavg()[0]
        sampler.stopped.set()
    finally:
        process.terminate()
        process.wait(timeout=60)
    counts = tags_in_qdrant(store_path, name, list(rec.acknowledged))
    lost = {tag: {"acknowledged": rec.acknowledged.get(tag, 0), "in_qdrant": n}
            for tag, n in counts.items() if n != rec.acknowledged.get(tag, 0)}
    return {"collection": name, "points": geometry.n, "map": "density" if density else "points",
            "sessions": args.sessions, "browsers": args.browsers, "duration_s": args.duration,
            "after_s": args.after, "machine": f"{os.cpu_count()} CPUs, {os.uname().machine}",
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "load_average": load,
            **rec.summary(), "tags_acknowledged": len(rec.acknowledged),
            "tag_points_acknowledged": sum(rec.acknowledged.values()), "tag_points_in_qdrant": sum(counts.values()),
            "lost_edits": lost, "tag_counts": counts, "rss": sampler.summary(), "rss_samples": sampler.samples}


def main(argv: list[str] | None = None) -> dict[str, Any] | None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=10_000, help="bench_ui.py's synthetic collection of N points")
    parser.add_argument("--store", type=Path, help="an embedded store folder instead (tags are removed after)")
    parser.add_argument("--collection", default="bench", help="the collection in --store")
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--browsers", type=int, default=4)
    parser.add_argument("--duration", type=float, default=120.0)
    parser.add_argument("--after", type=float, default=300.0, help="seconds of RSS samples after the sessions close")
    parser.add_argument("--session-s", type=float, nargs=2, default=list(SESSION_S), metavar=("MIN", "MAX"),
                        help="how long a user keeps a page open before closing it and opening a new one")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--port", type=int, default=7897)
    parser.add_argument("--out", type=Path, help="the JSON (default bench/results/load-<name>.json)")
    parser.add_argument("--page-cost", type=int, metavar="N",
                        help="instead of the load: N pages opened one after another, each step's server CPU")
    parser.add_argument("--quick", action="store_true", help="3 sessions, 1 browser, 15 s, 10 s after, 5-10 s pages")
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve, args.collection, args.port)
        return None
    if args.quick:
        args.sessions, args.browsers, args.duration, args.after, args.session_s = 3, 1, 15.0, 10.0, [5.0, 10.0]
    store_path, name = args.store, args.collection
    if store_path is None:
        folder = RESULTS / f"ui-{args.points}-d8"
        bench_ui.build(folder, args.points, 8)
        store_path, name = folder / "qdrant", "bench"
    if args.page_cost:
        result = page_cost(store_path, name, args)
        out = args.out or RESULTS / f"load-{name}-{result['points']}-page-cost.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=1))
        print(json.dumps(result, indent=1))
        return result
    result = run(store_path, name, args)
    out = args.out or RESULTS / f"load-{name}-{result['points']}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(json.dumps({k: v for k, v in result.items() if k != "rss_samples"}, indent=1))
    return result


if __name__ == "__main__":
    main()
