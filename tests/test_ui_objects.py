"""A detection dataset in the explorer, without a browser: the object explorer at /objects/, box
crops and pictures with boxes served by point id (and nothing outside the dataset), the
selection hand-over between the two explorers, one login for both, and `serve`'s wiring."""
from __future__ import annotations

import io
import json
import struct
import time

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from detection.boxes import boxes_of_image, images_of_objects, objects_of_images
from detection.crops import BOX_COLOUR, HIGHLIGHT_COLOUR, crop_thumbnail, draw_boxes
from detection_fixtures import build_detection_ui, ui_detection_boxes
from indexer.objects import object_point_id
from store import point_id
from store.schema import BBOX, IMAGE_ID
from ui.app import OBJECTS_PREFIX, create_server_app
from ui.figure import map_message
from ui.handoff import HandoffStore, handover
from ui.images import BOXES_MIN_SIDE, BOXES_SIDE, THUMB_SIZE
from ui.map.share_link import UrlParams
from ui.panel_html import count_line
from ui.state import MapState


@pytest.fixture
def detection(tmp_path):
    store, images, objects, root = build_detection_ui(tmp_path)
    yield store, images, objects, root
    store.close()


@pytest.fixture
def client(detection):
    store, images, objects, root = detection
    app = create_server_app(images, objects=objects)
    with TestClient(app) as http:
        yield http, images, objects, root


def picture(response) -> np.ndarray:
    assert response.status_code == 200, response.status_code
    return np.asarray(Image.open(io.BytesIO(response.content)).convert("RGB"))


def test_a_box_thumbnail_is_its_crop_with_the_margin_it_was_embedded_with(client) -> None:
    http, _, objects, root = client
    for path, boxes in list(ui_detection_boxes().items())[:3]:
        for annotation, (_, bbox) in enumerate(boxes, start=1):
            served = picture(http.get(f"/thumb/{object_point_id(path, annotation)}"))
            expected = np.asarray(crop_thumbnail(root / path, bbox, THUMB_SIZE, 0.10).convert("RGB"))
            assert served.shape == expected.shape and max(served.shape[:2]) == THUMB_SIZE
            assert np.array_equal(served, expected), (path, annotation)  # lossless: the very pixels
    # Image points keep their whole-image thumbnails.
    whole = picture(http.get(f"/thumb/{point_id('scenes/00.png')}"))
    assert whole.shape == (120, 160, 3)


def test_the_boxes_picture_draws_every_box_of_the_image_and_highlights_the_chosen_one(client) -> None:
    http, _, objects, root = client
    path = "scenes/00.png"
    chosen = object_point_id(path, 2)
    served = picture(http.get(f"/boxes/{chosen}"))
    boxes = boxes_of_image(objects, point_id(path))
    assert [b.label for b in boxes] == [label for label, _ in ui_detection_boxes()[path]]
    expected = np.asarray(draw_boxes(root / path, boxes, chosen, max_side=BOXES_SIDE, min_side=BOXES_MIN_SIDE))
    assert served.shape == expected.shape and np.abs(served.astype(int) - expected).mean() < 2
    # Drawn where the boxes are: the chosen box's outline in the highlight colour, the others'
    # in the box colour; none of it in the plain image.
    plain = np.asarray(Image.open(root / path).convert("RGB"))
    assert served.shape == plain.shape  # 320 x 240: neither shrunk nor enlarged

    def outline_share(pixels: np.ndarray, bbox, colour) -> float:
        x, y, w, h = (int(v) for v in bbox)
        left_edge = pixels[y + 2:y + h - 2, x]  # below the class name's label
        return float(np.mean(np.all(np.abs(left_edge.astype(int) - colour) < 30, axis=1)))

    for box in boxes:
        colour = HIGHLIGHT_COLOUR if box.point_id == chosen else BOX_COLOUR
        assert outline_share(served, box.bbox, colour) > 0.9, box
        assert outline_share(plain, box.bbox, colour) == 0.0
    assert sum(np.all(served == HIGHLIGHT_COLOUR, axis=2).ravel()) > 50
    # An image point's picture has all its boxes, none highlighted.
    whole = picture(http.get(f"/boxes/{point_id(path)}"))
    expected = np.asarray(draw_boxes(root / path, boxes, None, max_side=BOXES_SIDE, min_side=BOXES_MIN_SIDE))
    assert np.abs(whole.astype(int) - expected).mean() < 2


def view_points(http, prefix: str, table) -> tuple[int, np.ndarray | None]:
    """(status, rows) of the whole map from the view route under `prefix`, asked by a session
    of the explorer whose table is `table`."""
    state = MapState()
    map_message(table, state)  # names the session to the view routes and colours it
    query = {"t": state.token, "x0": -1e6, "x1": 1e6, "y0": -1e6, "y1": 1e6, "w": 400, "h": 400}
    answer = http.get(f"{prefix}/es-map/view", params=query)
    if answer.status_code != 200:
        return answer.status_code, None
    (length,) = struct.unpack("<I", answer.content[:4])
    head = json.loads(answer.content[4:4 + length])
    assert head["mode"] == "points" and head["complete"]
    return 200, np.frombuffer(answer.content, "<i4", head["count"], 4 + length)


def test_each_explorer_has_its_own_rows_and_view_route(client) -> None:
    http, images, objects, _ = client
    demos = http.app.state.explorers
    assert set(demos) == {"", OBJECTS_PREFIX}
    table = demos[OBJECTS_PREFIX].embedscape_context.table
    image_table = demos[""].embedscape_context.table
    assert len(table) == objects.count() and set(table.ids) == set(objects.ids())
    status, rows = view_points(http, OBJECTS_PREFIX, table)
    assert status == 200 and sorted(rows.tolist()) == list(range(len(table)))
    status, rows = view_points(http, "", image_table)
    assert status == 200 and len(rows) == images.count()
    assert view_points(http, "", table)[0] == 409  # a box session asking the images' route
    for row in (0, len(table) - 1):
        assert http.get(f"{OBJECTS_PREFIX}/thumb/row/{row}").content == http.get(f"/thumb/{table.ids[row]}").content
    assert http.get(f"{OBJECTS_PREFIX}/thumb/row/{len(table)}").status_code == 404
    # /objects without its slash goes to the explorer, query kept.
    redirect = http.get(OBJECTS_PREFIX + "?selection=abc", follow_redirects=False)
    assert redirect.status_code == 307 and redirect.headers["location"] == "/objects/?selection=abc"
    page = http.get(OBJECTS_PREFIX + "/")
    assert page.status_code == 200 and "det-objects" in http.get(OBJECTS_PREFIX + "/config").text


@pytest.fixture
def escaping_boxes(detection):
    """Box points whose image path leaves the dataset (by "..", absolute, via a symlink), whose
    file is gone, or that have no usable box."""
    store, images, objects, root = detection
    secret = root.parent / "secret.png"
    Image.new("RGB", (64, 64), "black").save(secret)
    (root / "scenes" / "link.png").symlink_to(secret)
    bad = {"escape": ("../secret.png", [1.0, 1.0, 20.0, 20.0]), "absolute": (str(secret), [1.0, 1.0, 20.0, 20.0]),
           "symlink": ("scenes/link.png", [1.0, 1.0, 20.0, 20.0]), "missing": ("scenes/gone.png", [1.0, 1.0, 5.0, 5.0]),
           "no box": ("scenes/00.png", None), "empty box": ("scenes/00.png", [1.0, 1.0, 0.0, 5.0])}
    ids = {kind: object_point_id(path, 900 + i) for i, (kind, (path, _)) in enumerate(bad.items())}
    payloads = [{"path": path, "label": "cat", "tags": [], "x": 30.0, "y": 30.0, IMAGE_ID: point_id(path),
                 **({BBOX: bbox} if bbox is not None else {})} for path, bbox in bad.values()]
    objects.upsert(list(ids.values()), np.ones((len(ids), objects.dimension), np.float32), payloads)
    return ids


def test_crops_and_box_pictures_of_files_outside_the_dataset_are_refused(detection, escaping_boxes) -> None:
    store, images, objects, root = detection
    with TestClient(create_server_app(images, objects=objects)) as http:
        for kind, point in escaping_boxes.items():
            routes = ("thumb",) if kind in ("no box", "empty box") else ("thumb", "image", "boxes")
            for route in routes:
                response = http.get(f"/{route}/{point}")
                assert response.status_code == 404, (kind, route, response.status_code)
        for url in ("/boxes/not-a-uuid", "/boxes/..%2F..%2Fetc%2Fpasswd", "/boxes/00000000-0000-0000-0000-000000000000",
                    f"{OBJECTS_PREFIX}/thumb/row/-1", f"{OBJECTS_PREFIX}/thumb/row/99999",
                    f"{OBJECTS_PREFIX}/gradio_api/file=/etc/passwd", f"{OBJECTS_PREFIX}/../etc/passwd"):
            response = http.get(url)
            assert response.status_code in (400, 403, 404, 405, 422), (url, response.status_code)
            assert b"root:" not in response.content


def test_a_lone_image_collection_has_no_boxes_route(ui_collection) -> None:
    _, collection, _ = ui_collection
    with TestClient(create_server_app(collection)) as http:
        point = collection.ids()[0]
        assert http.get(f"/thumb/{point}").status_code == 200
        assert http.get(f"/boxes/{point}").status_code == 404
        assert http.get(f"{OBJECTS_PREFIX}/es-map/view").status_code == 404
        assert set(http.app.state.explorers) == {""}


# --- the hand-over -------------------------------------------------------------------------
def test_handoff_store_keeps_selections_under_short_tokens() -> None:
    store = HandoffStore()
    token = store.put(["a", "b", "c"], "images of 3 objects")
    assert len(token) == 12 and token.replace("-", "").replace("_", "").isalnum()
    handed = store.get(token)
    assert handed.ids == ["a", "b", "c"] and handed.source == "images of 3 objects"
    assert store.get(token).ids == ["a", "b", "c"]  # a reload selects it again
    assert store.get(store.put([], "nothing")).ids == []
    for bad in ("", "nope", token + "x", "../../etc", "a" * 500, token.upper() if token.upper() != token else "Z"):
        assert store.get(bad) is None, bad


def test_handoff_store_forgets_the_oldest_and_the_expired() -> None:
    store = HandoffStore(max_handoffs=3, max_ids=10)
    tokens = [store.put([str(i)], "") for i in range(5)]
    assert [store.get(t) is not None for t in tokens] == [False, False, True, True, True]
    big = store.put([str(i) for i in range(9)], "")  # 9 + the newest one's 1 = 10 ids kept
    assert store.get(big) is not None and store.get(tokens[4]) is not None and store.get(tokens[3]) is None
    short = HandoffStore(lifetime_s=0.05)
    token = short.put(["a"], "")
    time.sleep(0.1)
    assert short.get(token) is None


def test_handover_selects_the_images_of_boxes_and_the_boxes_of_images(client) -> None:
    http, images, objects, _ = client
    demos = http.app.state.explorers
    image_ctx, object_ctx = demos[""].embedscape_context, demos[OBJECTS_PREFIX].embedscape_context
    link = _link(http.app, OBJECTS_PREFIX)
    chosen = [object_point_id("scenes/03.png", 1), object_point_id("scenes/07.png", 2),
              object_point_id("scenes/07.png", 1)]
    url, count = handover(link, chosen)
    assert url.startswith("/?selection=") and count == 2
    state = MapState()
    UrlParams(link.store).apply(image_ctx, state, {"selection": url.split("=", 1)[1]})
    assert state.selected_ids(image_ctx.table) == images_of_objects(objects, chosen)
    assert set(state.selected_ids(image_ctx.table)) == {point_id("scenes/03.png"), point_id("scenes/07.png")}
    assert "images of 3 objects" in count_line(image_ctx.table, state)

    back = _link(http.app, "")
    url, count = handover(back, state.selected_ids(image_ctx.table))
    assert url.startswith("/objects/?selection=")
    boxes = MapState()
    UrlParams(back.store).apply(object_ctx, boxes, {"selection": url.split("=", 1)[1]})
    expected = objects_of_images(objects, state.selected_ids(image_ctx.table))
    assert set(boxes.selected_ids(object_ctx.table)) == set(expected) and count == len(expected)
    layout = ui_detection_boxes()
    assert len(expected) == len(layout["scenes/03.png"]) + len(layout["scenes/07.png"])
    line = count_line(object_ctx.table, boxes, "objects")
    assert f"{len(expected)} of {objects.count()}</b> objects selected (objects of 2 images)" in line
    # An unknown or expired token leaves the view alone.
    untouched = MapState()
    UrlParams(back.store).apply(object_ctx, untouched, {"selection": "expired00000"})
    assert not untouched.selection.active


def _link(app, prefix: str):
    """The ExplorerLink the explorer at `prefix` was built with (its hand-over button's)."""
    return app.state.links[prefix]


# --- login and serve -------------------------------------------------------------------------
def test_one_login_opens_both_explorers(detection) -> None:
    store, images, objects, _ = detection
    app = create_server_app(images, objects=objects, auth=[("ann", "secret")])
    box = objects.ids()[0]
    with TestClient(app) as http:
        assert http.get(f"{OBJECTS_PREFIX}/config").status_code == 401
        assert http.get(f"/thumb/{box}").status_code == 401
        assert http.get(f"{OBJECTS_PREFIX}/es-map/view").status_code == 401
        assert http.post("/login", data={"username": "ann", "password": "secret"}).status_code == 200
        assert http.get("/config").status_code == 200
        assert http.get(f"{OBJECTS_PREFIX}/config").status_code == 200
        assert http.get(f"/thumb/{box}").status_code == 200
        assert http.get(f"{OBJECTS_PREFIX}/thumb/row/0").status_code == 200


def test_serve_opens_both_collections_whichever_is_named(detection) -> None:
    import app as cli

    store, images, objects, _ = detection
    for named in (images, objects):
        pair = cli._explorer_collections(store, store.open(named.name))
        assert [c.name for c in pair] == ["det", "det-objects"]
    plain = store.create("plain", 4, {"model": "test"})
    assert cli._explorer_collections(store, plain) == (plain, None)
    store.drop("det")  # an object collection whose images are gone: served alone
    lone = cli._explorer_collections(store, store.open("det-objects"))
    assert lone[0].name == "det-objects" and lone[1] is None


# --- the Duplicate boxes tab ------------------------------------------------------------------
def test_duplicate_box_groups_pair_the_box_drawn_twice(client) -> None:
    from detection_fixtures import UI_TWICE
    from ui.box_quality_page import box_groups, group_choices, group_rows, groups_html

    http, images, objects, _ = client
    table = http.app.state.explorers[OBJECTS_PREFIX].embedscape_context.table
    groups = box_groups(table)
    assert len(groups) == 1
    pair = set(table.ids_for_rows(groups[0]))
    assert pair == {object_point_id(UI_TWICE[0], 1), object_point_id(*UI_TWICE)}
    [(text, group_id)] = group_choices(table, groups)
    from analysis.boxes import pairwise_iou

    boxes = ui_detection_boxes()[UI_TWICE[0]]
    iou = pairwise_iou(np.array([boxes[0][1]]), np.array([boxes[UI_TWICE[1] - 1][1]]))[0]
    assert iou > 0.7 and text == f"scenes/00.png · cat / dog · IoU {iou:.2f}"
    assert set(table.ids_for_rows(group_rows(table, group_id))) == pair
    assert group_rows(table, "-1") is None and group_rows(table, "x") is None and group_rows(table, "99") is None
    html = groups_html(table, groups)
    assert f'src="/boxes/{table.ids[groups[0][0]]}"' in html and 'data-groups="1"' in html
    # The tab is the object explorer's only.
    titles = [block.label for block in http.app.state.explorers[OBJECTS_PREFIX].blocks.values()
              if isinstance(block, __import__("gradio").Tab)]
    assert "Duplicate boxes" in titles
    assert "Duplicate boxes" not in [block.label for block in http.app.state.explorers[""].blocks.values()
                                     if isinstance(block, __import__("gradio").Tab)]


def test_without_the_analysis_the_duplicate_boxes_tab_says_what_to_run(ui_collection) -> None:
    from ui.box_quality_page import box_groups, groups_html
    from ui.table import PointTable

    table = PointTable(ui_collection[1])
    assert box_groups(table) is None and "python app.py analyze" in groups_html(table, None)
