"""Faults while a user edits: the server process killed (SIGKILL) between edits, then started again.

The explorer runs as a user runs it (`python app.py serve`, its own process, the embedded
store), driven by headless Chromium. Every edit the page acknowledged (a tag, a label set on a
selection) must be in Qdrant after the restart, and an edit sent while the server was down
must be reported as not saved on the page, and be absent from Qdrant.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import ROOT, build_ui_collection
from store import PointFilter, open_store
from test_ui_browser import CHROMIUM, add_tag, drag, inside_box, open_page, open_tab, to_client, wait_selected
from ui.app import free_port

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"needs {CHROMIUM}")


def start_serve(store_path: Path, port: int) -> subprocess.Popen:
    """`python app.py serve` on the collection "ui", once it answers HTTP."""
    env = {**os.environ, "EMBEDSCAPE_DEMO_ON_START": "0"}
    process = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--qdrant-path", str(store_path),
                                "serve", "--collection", "ui", "--port", str(port)],
                               cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the server exited: {process.stdout.read().decode(errors='replace')}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2):
                return process
        except OSError:
            time.sleep(0.3)
    process.kill()
    raise AssertionError("the server did not start in 120 s")


def stop(process: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL if it has not exited within 30 s (a page may hold a connection open)."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


def test_acknowledged_edits_survive_sigkill_and_an_edit_sent_while_down_is_reported(browser, tmp_path) -> None:
    store, collection, _ = build_ui_collection(tmp_path)
    cats = inside_box(collection, -0.1, 1.1, -0.1, 1.1)
    dogs = inside_box(collection, 9.9, 11.1, -0.1, 1.1)
    store.close()
    store_path, port = tmp_path / "qdrant", free_port()
    server = start_serve(store_path, port)
    try:
        page = open_page(browser, f"http://127.0.0.1:{port}/")
        # A label set on a selection (Metrics tab), acknowledged.
        drag(page, [(9.9, 1.1), (11.1, -0.1)])
        wait_selected(page, len(dogs))
        open_tab(page, "Metrics")
        page.fill("#es-relabel-label input, #es-relabel-label textarea", "wolf")
        page.click("#es-relabel")
        page.wait_for_function("() => document.querySelector('#es-relabel-status').innerText.includes('wolf')")
        open_tab(page, "Explorer")
        # The dogs' selection has as many points as the cats' will: clear it first, so the
        # count line below proves the cats' selection arrived before the tag is sent.
        page.mouse.dblclick(*to_client(page, 5.0, 3.0))
        wait_selected(page, None)
        # A tag, acknowledged; the process is killed at once (the write-behind journal's window).
        drag(page, [(-0.1, 1.1), (1.1, -0.1)])
        wait_selected(page, len(cats))
        add_tag(page, "alpha")
        page.click("#es-tag-add")
        page.wait_for_function("() => document.querySelector('#es-tag-status').innerText.includes('alpha')")
        server.send_signal(signal.SIGKILL)
        server.wait(10)

        # An edit sent while the server is down: the page says it is not confirmed ...
        add_tag(page, "beta")
        page.click("#es-tag-add")
        notice = page.locator("#es-edit-watch .es-edit-watch")
        page.wait_for_function("() => document.querySelector('.es-edit-watch')?.dataset.state === 'unconfirmed'",
                               timeout=20_000)
        assert "Not confirmed" in notice.inner_text() and "add tag 'beta'" in notice.inner_text()

        # ... and, once the server is back and the page has reloaded, that it was not saved.
        server = start_serve(store_path, port)
        page.wait_for_function("() => document.querySelector('.es-edit-watch')?.dataset.state === 'lost'",
                               timeout=60_000)
        text = notice.inner_text()
        assert "add tag 'beta'" in text and "It was not saved: 0 points have 'beta'" in text
        # A confirmed edit after the restart clears nothing it should not: no notice.
        drag(page, [(-0.1, 1.1), (1.1, -0.1)])
        wait_selected(page, len(cats))
        add_tag(page, "gamma")
        page.click("#es-tag-add")
        page.wait_for_function("() => document.querySelector('#es-tag-status').innerText.includes('gamma')")
        assert notice.is_hidden()
        page.context.close()
    finally:
        stop(server)

    store = open_store(path=str(store_path))
    try:
        reopened = store.open("ui")
        assert set(reopened.ids(PointFilter(tags_any=["alpha"]))) == cats
        assert set(reopened.ids(PointFilter(labels=["wolf"]))) == dogs
        assert reopened.ids(PointFilter(tags_any=["beta"])) == []
        assert set(reopened.ids(PointFilter(tags_any=["gamma"]))) == cats
    finally:
        store.close()


@pytest.mark.parametrize("command", [["serve", "--collection", "ui"], ["info", "--collection", "ui"],
                                     ["tag", "--collection", "ui", "--add", "x", "--label", "cat"]])
def test_an_unreachable_qdrant_server_is_named_with_the_way_out(command, capsys) -> None:
    """A configured server that is not there (nothing listens on the port): every command says
    which URL it could not reach and what to do, and exits non-zero. No Qdrant server can run on
    these machines (no registry ships its binary), so a closed port stands in for one that went away."""
    import app

    url = f"http://127.0.0.1:{free_port()}"
    assert app.main(["--qdrant-url", url, *command]) != 0
    said = capsys.readouterr().err
    assert f"cannot reach the Qdrant server at {url}" in said and "QDRANT_URL" in said
