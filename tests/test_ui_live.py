"""Other writers' edits reach the open app (ui/live_table.py), on the server backend.

No Qdrant server can run on the test machines (no registry ships its binary and there is no
Docker engine), so the server backend runs on qdrant-client's local mode, and "another tool"
writes with that same qdrant-client object, as a script would with `QdrantClient(url=...)`:
`set_payload`, `upsert`, `delete` on the collection, not through embedscape's store.
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from qdrant_client import models

from conftest import UI_DIM, build_ui_collection
from store import point_id
from ui.live_table import LiveTable
from ui.state import MapState
from ui.table import PointTable


@pytest.fixture
def shared(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A collection on the server backend (store, collection, image root)."""
    monkeypatch.setenv("EMBEDSCAPE_ARTIFACTS", str(tmp_path / "artifacts"))
    store, collection, root = build_ui_collection(tmp_path, server=True)
    yield store, collection, root
    store.close()


class OtherTool:
    """Writes the collection with qdrant-client directly, as another program would."""

    def __init__(self, store: Any, name: str) -> None:
        self.client, self.lock, self.name = store._client, store._lock, name  # local mode: one client

    def tag(self, paths: list[str], tags: list[str]) -> None:
        with self.lock:
            self.client.set_payload(self.name, payload={"tags": tags}, points=[point_id(p) for p in paths], wait=True)

    def relabel(self, path: str, label: str) -> None:
        with self.lock:
            self.client.set_payload(self.name, payload={"label": label}, points=[point_id(path)], wait=True)

    def add(self, path: str, label: str, x: float, y: float) -> None:
        vector = np.ones(UI_DIM, np.float32).tolist()
        with self.lock:
            self.client.upsert(self.name, [models.PointStruct(id=point_id(path), vector=vector, payload={
                "path": path, "label": label, "tags": [], "x": x, "y": y})], wait=True)

    def delete(self, path: str) -> None:
        with self.lock:
            self.client.delete(self.name, models.PointIdsList(points=[point_id(path)]), wait=True)


def test_a_check_finds_other_writers_edits_and_keeps_every_row(shared) -> None:
    store, collection, _ = shared
    live = LiveTable(collection)
    before = live.table
    assert not live.check(), "nothing changed: the same table"
    tool = OtherTool(store, collection.name)
    tool.tag(["cat/001.png", "dog/002.png"], ["from-tool"])
    tool.relabel("bird/003.png", "cat")
    tool.delete("dog/005.png")
    tool.add("new/000.png", "dog", 20.0, 20.0)
    assert live.check() and live.version == before.version + 1
    table = live.table
    assert table.tag_counts() == {"from-tool": 2}
    assert table.label_of(before.row_of[point_id("bird/003.png")]) == "cat"
    # Every old row means the same point; the deleted one is a dead row; the new one comes last.
    assert list(table.ids[:len(before)]) == list(before.ids)
    dead = before.row_of[point_id("dog/005.png")]
    assert not table.alive[dead] and point_id("dog/005.png") not in table.row_of
    assert table.row_of[point_id("new/000.png")] == len(before) and table.size == before.size
    assert (table.x[len(before)], table.y[len(before)]) == (20.0, 20.0)
    assert live.last_change is not None and live.last_change.added == 1 and live.last_change.removed == 1
    assert not live.check(), "and nothing more until the next edit"


def test_a_tag_moved_between_points_is_seen_although_every_count_stays(shared) -> None:
    store, collection, _ = shared
    tool = OtherTool(store, collection.name)
    tool.tag(["cat/001.png"], ["moving"])
    live = LiveTable(collection)
    tool.tag(["cat/001.png"], [])
    tool.tag(["cat/002.png"], ["moving"])
    assert live.check()
    assert live.table.tags[live.table.row_of[point_id("cat/002.png")]] == ("moving",)


def test_a_page_load_sees_every_write_made_before_it_and_a_burst_checks_once(shared) -> None:
    store, collection, _ = shared
    live = LiveTable(collection)
    assert not live.check()  # a check just ran (e.g. the Reload button) ...
    OtherTool(store, collection.name).tag(["cat/003.png"], ["just-before-load"])
    loaded_at = time.monotonic()  # ... and a page loads right after the write
    assert live.check_since(loaded_at), "the load checks although the last check was moments ago"
    assert live.table.tag_counts() == {"just-before-load": 1}
    version = live.version
    OtherTool(store, collection.name).tag(["cat/004.png"], ["later"])
    assert not live.check_since(loaded_at), "a load from the same burst: a check began after it, no second check"
    assert live.version == version


def test_a_session_catches_up_keeping_its_selection_page_and_filters(shared) -> None:
    store, collection, _ = shared
    live = LiveTable(collection)
    table = live.table
    cats = table.rows_for_ids(point_id(f"cat/{i:03d}.png") for i in range(10))
    state = MapState(table_version=table.version).select(cats, "box", from_map=True)
    state.page, state.dirty = 0, set()
    OtherTool(store, collection.name).delete("cat/004.png")
    assert live.check()
    assert state.catch_up(live.table) and {"base", "colour", "selection"} <= state.dirty
    assert len(state.selected_rows()) == 9 and state.selection.source == "box"
    assert table.row_of[point_id("cat/004.png")] not in set(state.selected_rows())
    assert state.visible is not None and not state.visible[table.row_of[point_id("cat/004.png")]]
    assert len(state.shown_rows(live.table)) == 9
    assert not state.catch_up(live.table), "once caught up, nothing to do"


def test_metadata_written_elsewhere_means_a_new_table(shared) -> None:
    _, collection, _ = shared
    live = LiveTable(collection)
    collection.update_metadata(indexed_at="later")  # a re-index elsewhere rewrites the map
    assert live.check()


def test_the_poller_picks_edits_up_on_its_own_and_embedded_collections_are_not_polled(shared, tmp_path) -> None:
    store, collection, _ = shared
    live = LiveTable(collection)
    live.start(0.2)
    try:
        OtherTool(store, collection.name).tag(["dog/001.png"], ["late"])
        deadline = time.monotonic() + 10
        while live.version == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert live.table.tag_counts() == {"late": 1}
    finally:
        live.stop()
    embedded_store, embedded, _ = build_ui_collection(tmp_path / "embedded")
    try:
        idle = LiveTable(embedded)
        idle.start(0.2)
        assert idle._thread is None, "no other process can write an embedded collection"
    finally:
        embedded_store.close()


def test_a_reread_table_with_nothing_new_keeps_rows_and_labels(shared) -> None:
    _, collection, _ = shared
    first = PointTable(collection)
    again = PointTable(collection, previous=first)
    assert list(again.ids) == list(first.ids) and again.all_alive
    assert [again.label_of(r) for r in range(len(again))] == [first.label_of(r) for r in range(len(first))]
    assert np.array_equal(again.x, first.x) and again.paths == first.paths


# --- in the browser ---------------------------------------------------------------------------
playwright_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]


@contextmanager
def page_on(collection: Any, monkeypatch: pytest.MonkeyPatch):
    """(chromium, running server) with the app checking for other writers every second."""
    from ui.app import start_server

    monkeypatch.setenv("EMBEDSCAPE_REFRESH_S", "1")
    running = start_server(collection)
    try:
        with playwright_api.sync_playwright() as p:
            chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
            try:
                yield chromium, running
            finally:
                chromium.close()
    finally:
        running.stop()


def _count(page) -> dict[str, str]:
    return page.evaluate("() => { const p = document.querySelector('#es-count .es-count');"
                         " return {selected: p.dataset.selected, total: p.dataset.total}; }")


def _wait_selected(page, n: str, timeout: float) -> None:
    page.wait_for_function("n => document.querySelector('#es-count .es-count').dataset.selected === n", arg=n,
                           timeout=timeout)


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"needs {CHROMIUM}")
def test_the_open_page_follows_other_writers_on_its_own_on_reload_and_on_load(shared, monkeypatch) -> None:
    from test_ui_browser import open_page

    store, collection, _ = shared
    tool = OtherTool(store, collection.name)
    with page_on(collection, monkeypatch) as (chromium, running):
        page = open_page(chromium, running.url)
        assert _count(page) == {"selected": "", "total": "120"}
        # On its own (the app checks every second, the page asks every TICK_S): a new tag.
        tool.tag([f"cat/{i:03d}.png" for i in range(5)], ["from-tool"])
        page.locator("#es-tag-list label", has_text="from-tool").wait_for(timeout=30_000)
        page.locator("#es-tag-list label", has_text="from-tool").click()
        _wait_selected(page, "5", 10_000)

        # A selected point deleted and a new point added: the selection loses just that point.
        tool.delete("cat/000.png")
        tool.add("new/000.png", "dog", 12.0, 12.0)
        _wait_selected(page, "4", 30_000)
        assert _count(page) == {"selected": "4", "total": "120"}
        page.wait_for_function("() => window.embedscapeMap.state.n === 121")  # the new point's row
        assert "from Qdrant" in page.inner_text("#es-live-status")
        assert len(page.eval_on_selector_all("#es-grid .es-card", "c => c")) == 4

        # With the app's own checks stopped, "Reload" brings an edit at once ...
        running.app.state.embedscape.embedscape_context.live.stop()
        time.sleep(1.5)
        tool.tag(["dog/001.png"], ["reloaded"])
        started = time.monotonic()
        page.click("#es-reload")
        page.locator("#es-tag-list label", has_text="reloaded").wait_for(timeout=5_000)
        assert time.monotonic() - started < 5

        # ... and so does loading the page.
        tool.tag(["bird/000.png"], ["before-load"])
        fresh = open_page(chromium, running.url)
        fresh.locator("#es-tag-list label", has_text="before-load").wait_for(timeout=10_000)
        assert _count(fresh)["total"] == "120"
