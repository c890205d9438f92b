"""The app serves the dataset's images by point id and refuses every other file."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from store import point_id
from ui.app import create_server_app
from ui.images import MEMORY_ENV, THUMB_DIR, ImageServer
from ui.map.component import PLOTLY_JS, PLOTLY_ROUTE


@pytest.fixture
def client(ui_collection):
    store, collection, root = ui_collection
    secret = root.parent / "secret.png"
    Image.new("RGB", (8, 8), "black").save(secret)
    (root / "cat" / "link.png").symlink_to(secret)
    # Points whose payload path escapes the dataset: by "..", absolute, and via a symlink.
    bad = {"../secret.png": "escape", str(secret): "absolute", "cat/link.png": "symlink", "cat/gone.png": "missing"}
    ids = [point_id(path) for path in bad]
    collection.upsert(ids, np.ones((len(ids), collection.dimension), np.float32),
                      [{"path": p, "label": "cat", "tags": [], "x": 30.0, "y": 30.0} for p in bad])
    app = create_server_app(collection)
    with TestClient(app) as test_client:
        yield test_client, collection, root, dict(zip(bad.values(), ids))


def test_thumbnail_and_full_image_by_point_id(client) -> None:
    http, collection, root, _ = client
    point = point_id("dog/003.png")
    full = http.get(f"/image/{point}")
    assert full.status_code == 200 and full.content == (root / "dog/003.png").read_bytes()
    thumb = http.get(f"/thumb/{point}")
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(thumb.content)).size == (48, 48)
    cached = list((Path(collection.artifact_dir) / THUMB_DIR).glob(f"{point}-*"))
    assert len(cached) == 1
    stamp = cached[0].stat().st_mtime_ns
    assert http.get(f"/thumb/{point}").content == thumb.content
    assert cached[0].stat().st_mtime_ns == stamp  # generated once, then served from the cache


def test_big_images_get_small_jpeg_thumbnails(client) -> None:
    http, collection, root, _ = client
    Image.new("RGB", (1200, 800), "orange").save(root / "cat" / "big.png")
    point = point_id("cat/big.png")
    collection.upsert([point], np.ones((1, collection.dimension), np.float32), [{"path": "cat/big.png", "label": "cat"}])
    response = http.get(f"/thumb/{point}")
    assert response.headers["content-type"] == "image/jpeg"
    assert max(Image.open(io.BytesIO(response.content)).size) <= 160


@pytest.mark.parametrize("url", [
    "/image/00000000-0000-0000-0000-000000000000",      # unknown id
    "/thumb/00000000-0000-0000-0000-000000000000",
    "/image/not-a-uuid",
    "/image/..%2F..%2F..%2Fetc%2Fpasswd",
    "/image/../../etc/passwd",
    "/thumb/%2E%2E/%2E%2E/etc/passwd",
    "/image/%2Fetc%2Fpasswd",
    "/thumb/row/99999",
    "/thumb/row/-1",
    "/gradio_api/file=/etc/passwd",
    "/gradio_api/file=../../../../etc/passwd",
    "/file=/etc/passwd",
])
def test_requests_for_other_files_are_refused(client, url: str) -> None:
    http = client[0]
    response = http.get(url)
    assert response.status_code in (400, 403, 404, 405, 422), (url, response.status_code)
    assert b"root:" not in response.content


def test_points_whose_path_leaves_the_dataset_are_refused(client) -> None:
    http, _, _, bad = client
    for kind, point in bad.items():
        for route in ("image", "thumb"):
            assert http.get(f"/{route}/{point}").status_code == 404, (kind, route)


def test_gradio_file_route_serves_none_of_our_files_and_plotly_js_has_its_own_route(client) -> None:
    http, collection, root, _ = client
    script = http.get(PLOTLY_ROUTE)
    assert script.status_code == 200 and script.content == PLOTLY_JS.read_bytes()
    assert http.get(PLOTLY_ROUTE, headers={"If-None-Match": script.headers["etag"]}).status_code == 304
    for path in (PLOTLY_JS, root / "cat/000.png", Path(__file__), PLOTLY_JS.parent / "widgetbundle.js",
                 Path(collection.artifact_dir) / "collection.json"):
        assert http.get(f"/gradio_api/file={path}").status_code in (403, 404), path


def test_thumbnail_row_route_follows_the_map_rows(client) -> None:
    """Row r of the map (rows are the table's ids in sorted order) gets the thumbnail of the
    point in row r, byte for byte the same as asking for that point by id."""
    http = client[0]
    app = http.app
    table = app.state.embedscape.embedscape_context.table
    assert len(table) > 3
    for row in (0, 1, len(table) // 2):
        by_row, by_id = http.get(f"/thumb/row/{row}"), http.get(f"/thumb/{table.ids[row]}")
        assert by_row.status_code == by_id.status_code
        assert by_row.content == by_id.content
    served = [http.get(f"/thumb/row/{row}") for row in range(len(table))]
    assert len({r.content for r in served if r.status_code == 200}) > 1, "rows give their own pictures"


def test_thumbnails_are_answered_from_memory_with_the_files_bytes(client) -> None:
    http, collection, root, _ = client
    point = point_id("dog/004.png")
    first = http.get(f"/thumb/{point}")
    cached = next((Path(collection.artifact_dir) / THUMB_DIR).glob(f"{point}-*"))
    assert first.content == cached.read_bytes()  # the file's bytes, as a FileResponse sent them
    assert first.headers["etag"] == f'"{cached.stem}"'
    cached.unlink()  # the second answer cannot come from the file
    second = http.get(f"/thumb/{point}")
    assert second.status_code == 200 and second.content == first.content
    assert second.headers["content-type"] == "image/png"
    assert not cached.exists()


def test_thumbnail_memory_is_bounded_in_bytes_and_keeps_the_recently_used(
        ui_collection, monkeypatch: pytest.MonkeyPatch) -> None:
    _, collection, root = ui_collection
    server = ImageServer([collection])
    sizes = [len(server.thumbnail_bytes(point_id(f"cat/{i:03d}.png"))[0]) for i in range(3)]
    monkeypatch.setenv(MEMORY_ENV, str(2.5 * max(sizes) / 2**20))  # room for two of them
    server = ImageServer([collection])
    limit = server.memory.limit
    for i in range(12):
        server.thumbnail_bytes(point_id(f"cat/{i:03d}.png"))
        server.thumbnail_bytes(point_id("cat/000.png"))  # used after every other: stays
        assert 0 < server.memory.size <= limit
    assert len(server.memory) == 2
    kept = server.memory.get(next(n for n in server.memory._items if n.startswith(point_id("cat/000.png"))))
    assert kept is not None and kept[0] == server.thumbnail_bytes(point_id("cat/000.png"))[0]
    assert not any(n.startswith(point_id("cat/005.png")) for n in server.memory._items)  # the older ones went
    monkeypatch.setenv(MEMORY_ENV, "0")
    assert len(ImageServer([collection]).memory) == 0 == ImageServer([collection]).memory.limit


def test_a_changed_or_moved_image_is_not_answered_from_memory(client) -> None:
    http, collection, root, _ = client
    point = point_id("cat/006.png")
    before = http.get(f"/thumb/{point}").content
    # Re-indexed with another picture: its content hash changes, and so does the thumbnail.
    Image.new("RGB", (48, 48), "yellow").save(root / "cat" / "006.png")
    collection.set_payload([point], {"sha1": "f" * 40})
    changed = http.get(f"/thumb/{point}").content
    assert changed != before
    assert Image.open(io.BytesIO(changed)).convert("RGB").getpixel((24, 24)) == (255, 255, 0)
    # Its path changes to another file (with that file's hash): that file's thumbnail.
    Image.new("RGB", (48, 48), "blue").save(root / "dog" / "moved.png")
    collection.set_payload([point], {"path": "dog/moved.png", "sha1": "e" * 40})
    moved = http.get(f"/thumb/{point}").content
    assert Image.open(io.BytesIO(moved)).convert("RGB").getpixel((24, 24)) == (0, 0, 255)
