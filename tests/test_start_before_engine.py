"""An app start before the embedded engine has opened its shard (store/edge.py, store/start_answers.py):
the page and its map come from the columns cache and the start's saved answers; an edit made
meanwhile is acknowledged and reaches the engine once it has opened; reads that need the engine
wait for it."""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from conftest import build_ui_collection
from store import PointFilter, open_store
from store import edge
from store.start_answers import FILE_NAME as ANSWERS_FILE
from store.write_behind import JOURNAL_DIR
from test_ui_browser import inside_box, open_page
from ui.app import start_server

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _first_start(browser, tmp_path: Path) -> None:
    """A start with no saved answers (the engine opens at its first read), the page served once."""
    store, collection, _ = build_ui_collection(tmp_path)
    store.close()
    store = open_store(path=str(tmp_path / "qdrant"))
    server = start_server(store.open("ui"))
    try:
        open_page(browser, server.url).context.close()
    finally:
        server.stop()
        store.close()
    assert (tmp_path / "qdrant" / "ui" / ANSWERS_FILE).exists()


def test_the_map_is_served_before_the_engine_opens_and_an_edit_meanwhile_reaches_it(
        browser, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _first_start(browser, tmp_path)
    # Hold the engine's load back until the test lets it go; the real load runs then.
    go, loading = threading.Event(), threading.Event()
    load = edge._load_shard

    def held_load(folder: Path):
        loading.set()
        assert go.wait(120)
        return load(folder)

    monkeypatch.setattr(edge, "_load_shard", held_load)
    store = open_store(path=str(tmp_path / "qdrant"))
    collection = store.open("ui")
    server = start_server(collection)
    try:
        page = open_page(browser, server.url)  # the map drawn, the grid filled
        assert not collection.engine_open
        assert page.evaluate("() => document.querySelector('.es-map').dataset.mode") != ""
        # A tag edit while the engine is not open: acknowledged (journaled) at once, as the
        # explorer's tag button makes it (ui/table.py).
        table = server.app.state.embedscape.embedscape_context.live.table
        expected = inside_box(collection, -0.1, 1.1, -0.1, 1.1)
        assert table.edit_tags(table.rows_for_ids(expected), "during", add=True) == len(expected)
        assert not collection.engine_open
        assert list((tmp_path / "qdrant" / "ui" / JOURNAL_DIR).glob("*.json")), "the edit is journaled"
        assert loading.wait(30), "the journaled edit (or the start's end) started the engine's load"
        assert not collection.engine_open
        # A read that needs the engine waits for it rather than failing.
        found: list[set[str]] = []
        reader = threading.Thread(target=lambda: found.append(set(collection.ids(PointFilter(tags_any=["during"])))))
        reader.start()
        reader.join(1.0)
        assert reader.is_alive() and not found
        go.set()
        reader.join(60)
        assert found == [expected], "the read waited for the engine, which has the edit"
        deadline = time.monotonic() + 30
        while list((tmp_path / "qdrant" / "ui" / JOURNAL_DIR).glob("*.json")) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not list((tmp_path / "qdrant" / "ui" / JOURNAL_DIR).glob("*.json")), "applied, then deleted"
        page.context.close()
    finally:
        go.set()
        server.stop()
        store.close()
    # The edit outlives the process, and the next start's saved answers include it.
    store = open_store(path=str(tmp_path / "qdrant"))
    collection = store.open("ui")
    try:
        assert set(collection.ids(PointFilter(tags_any=["during"]))) == expected
    finally:
        store.close()


def test_a_saved_answer_the_engine_contradicts_is_reported_and_dropped(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A tool that writes the shard around store/ (here: the engine directly) after the answers
    were saved: the start uses them, the check once the engine is open finds the difference."""
    store, collection, _ = build_ui_collection(tmp_path, per_label=5)
    assert collection.count() == 15 and collection.facet("label")
    store.close()  # the answers are written at close
    answers = tmp_path / "qdrant" / "ui" / ANSWERS_FILE
    assert answers.exists()
    shard = edge._load_shard(tmp_path / "qdrant" / "ui")
    first = next(iter(shard.scroll(edge.qe.ScrollRequest(limit=1))[0])).id
    shard.update(edge.qe.UpdateOperation.delete_points([first]))
    shard.flush()
    shard.close()
    store = open_store(path=str(tmp_path / "qdrant"))
    collection = store.open("ui")
    try:
        assert collection.count() == 15 and not collection.engine_open, "answered from the saved answers"
        collection.open_engine()
        deadline = time.monotonic() + 30
        while json.loads(answers.read_text())["answers"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert any("did not match the engine" in r.message for r in caplog.records)
        assert json.loads(answers.read_text())["answers"] == {}, "only the keys, to be answered again"
        assert collection.count() == 14
    finally:
        store.close()
