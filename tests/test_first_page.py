"""The first page (ui/first_page.py): the explorer's address answers at once, before Gradio is
imported, with a picture of the map drawn from the column cache; then the explorer's server
takes its socket, and a page left open reloads into the explorer by itself."""
from __future__ import annotations

import io
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import UI_CENTRES, build_ui_collection
from store import open_store
from test_ui_browser import CHROMIUM
from ui.app import free_port, start_server
from ui.first_page import PREVIEW_ROUTE, PREVIEW_SIZE, STARTING_HEADER, FirstPage
from ui.map.density import hex_colours
from ui.map.palette import PALETTE

ROOT = Path(__file__).resolve().parent.parent


def fetch(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as answer:
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def reopened(tmp_path: Path, server: bool = False):
    """The UI collection, built and opened again as a start opens it (the column cache written
    by the first open's reads)."""
    store, collection, _ = build_ui_collection(tmp_path, server=server)
    collection.columns(["label", "path", "x", "y", "tags"])  # as the app's table read: the cache
    store.close()
    store = open_store(local_client_path=str(tmp_path / "qdrant-local")) if server else \
        open_store(path=str(tmp_path / "qdrant"))
    return store, store.open("ui")


def release(first: FirstPage, server) -> None:
    """Stop the explorer that took the first page's socket, or, without one, close that socket."""
    if server is not None:
        server.stop()
    else:
        first.hand_over().close()


def blob_centres(png: bytes) -> dict[str, tuple[float, float]]:
    """Mean (column, row) of the pixels drawn in each of the first three palette colours."""
    image = np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"))
    assert image.shape[:2] == (PREVIEW_SIZE[1], PREVIEW_SIZE[0])
    centres = {}
    for colour, rgb in zip(PALETTE[:3], hex_colours(PALETTE[:3]).astype(np.uint8)):
        rows, columns = np.nonzero((image[..., :3] == rgb).all(axis=2) & (image[..., 3] > 0))
        assert len(rows) > 0, colour
        centres[colour] = (float(columns.mean()), float(rows.mean()))
    return centres


def test_the_address_answers_with_the_map_then_the_explorer_takes_it(tmp_path: Path) -> None:
    store, collection = reopened(tmp_path)
    first = FirstPage.start("127.0.0.1", free_port(), collection)
    url = f"http://127.0.0.1:{first.port}"
    server = None
    try:
        status, headers, body = fetch(url + "/")
        assert status == 200 and headers.get(STARTING_HEADER) == "1"
        assert "120 points" in body.decode() and 'data-preview="1"' in body.decode()
        status, headers, png = fetch(url + PREVIEW_ROUTE)
        assert status == 200 and headers["Content-Type"] == "image/png"
        # Three labels, three colours, each where its points are: the cats bottom left, the
        # dogs bottom right, the birds above between them (UI_CENTRES); y grows upwards.
        centres = sorted(blob_centres(png).values())
        (cat_x, cat_row), (bird_x, bird_row), (dog_x, dog_row) = centres
        assert cat_x < bird_x < dog_x and bird_row < cat_row and bird_row < dog_row
        span = UI_CENTRES["dog"][0] - UI_CENTRES["cat"][0]
        assert abs((bird_x - cat_x) / (dog_x - cat_x) - (UI_CENTRES["bird"][0] - UI_CENTRES["cat"][0]) / span) < 0.05
        status, headers, _ = fetch(url + "/gradio_api/info")
        assert status == 503 and headers.get("Retry-After") == "1"
        # A page of the other explorer opened meanwhile: the page that reloads, no picture.
        request = urllib.request.Request(url + "/objects/", headers={"Accept": "text/html,*/*"})
        with urllib.request.urlopen(request, timeout=30) as answer:
            text = answer.read().decode()
        assert answer.status == 200 and 'data-preview="0"' in text and "120 points" not in text

        server = start_server(collection, first_page=first)  # the same socket, now the explorer's
        status, headers, body = fetch(url + "/")
        assert status == 200 and STARTING_HEADER not in headers and b"gradio" in body.lower()
        assert fetch(url + PREVIEW_ROUTE)[0] == 404
    finally:
        release(first, server)
        store.close()


def test_with_a_login_the_first_page_shows_no_data(tmp_path: Path) -> None:
    store, collection = reopened(tmp_path)
    first = FirstPage.start("127.0.0.1", free_port(), collection, show_map=False)
    try:
        url = f"http://127.0.0.1:{first.port}"
        status, _, body = fetch(url + "/")
        assert status == 200 and 'data-preview="0"' in body.decode() and "120 points" not in body.decode()
        assert fetch(url + PREVIEW_ROUTE)[0] == 404
    finally:
        first.hand_over().close()
        store.close()


def test_a_store_without_a_column_cache_gives_no_picture(tmp_path: Path) -> None:
    """A Qdrant server (qdrant-client's local mode stands in) keeps no column cache: reading
    every point for the picture would slow the start, so there is none."""
    store, collection = reopened(tmp_path, server=True)
    assert collection.cached_columns(["label", "x", "y"]) is None
    first = FirstPage.start("127.0.0.1", free_port(), collection)
    try:
        url = f"http://127.0.0.1:{first.port}"
        assert 'data-preview="0"' in fetch(url + "/")[2].decode()
        assert fetch(url + PREVIEW_ROUTE)[0] == 404
    finally:
        first.hand_over().close()
        store.close()


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"needs {CHROMIUM}")
def test_an_open_first_page_reloads_into_the_explorer(browser, tmp_path: Path) -> None:
    store, collection = reopened(tmp_path)
    first = FirstPage.start("127.0.0.1", free_port(), collection)
    server = None
    try:
        page = browser.new_context(viewport={"width": 1500, "height": 1000}).new_page()
        page.set_default_timeout(60_000)
        page.goto(f"http://127.0.0.1:{first.port}/?colour=label")
        page.wait_for_function("() => document.querySelector('.es-first-map')?.dataset.drawn === '1'")
        assert page.evaluate("() => document.querySelector('.es-first-map img').naturalWidth") == PREVIEW_SIZE[0]
        server = start_server(collection, first_page=first)
        # No navigation from here: the first page sees the explorer answer and reloads.
        page.wait_for_function("() => { const m = document.querySelector('.es-map');"
                               " return m && m.dataset.seq !== '-1'; }")
        page.wait_for_selector("#es-grid .es-card")
        assert page.url.endswith("/?colour=label") and page.locator(".es-first-map").count() == 0
        page.context.close()
    finally:
        release(first, server)
        store.close()


def test_gradio_is_imported_without_its_stub_writer() -> None:
    """ui/gradio_import.py: importing the app leaves Gradio's .pyi writer out (1.3 s of a start)
    and Gradio's components still work."""
    code = ("import ui.app, gradio as gr, gradio.component_meta as meta; "
            "print(meta.create_or_modify_pyi.__module__); print(type(gr.Textbox(value='x')).__name__)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["ui.gradio_import", "Textbox"]
