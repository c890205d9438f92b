"""The README's screenshots, taken from the demo's real images: `make screenshots`.

Builds (or reuses) the Fashion-MNIST demo collection and a small detection dataset made of
Fashion-MNIST items placed on larger canvases (a COCO file with their boxes), both in their
own store under data/screenshots/, serves them, and drives headless Chromium through the views
the README shows, writing docs/screenshot-*.png. The test suite never writes into docs/ (it
checks that a run leaves the checkout unchanged): this script is the one place that does.

    python scripts/screenshots.py [--out docs] [--only NAME ...]
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # the browser tests' page helpers (drag, to_client, ...)

import app  # noqa: E402
from indexer.demo import CLASS_NAMES, load_split, materialise  # noqa: E402
from store import open_store  # noqa: E402
from test_ui_browser import ARGS, CHROMIUM, drag, open_page, open_tab, to_client  # noqa: E402
from test_ui_browser_map_overlays import wait_names, zoom_to  # noqa: E402
from ui.app import start_server  # noqa: E402

DATA = ROOT / "data" / "screenshots"
COLLECTION, SCENES = "fashion-mnist", "fashion-scenes"
SCENE_COUNT, SCENE_SIDE = 240, 160


# --- the data -----------------------------------------------------------------------------
def build_collections(store_path: Path) -> None:
    """The demo collection (the 10,000 test images) and the scenes' image + object collections;
    an existing one is re-indexed, which embeds nothing when no file changed."""
    demo = materialise(app.DEMO_DIR)
    scenes = write_scenes(DATA / "scenes")
    flags = ["--qdrant-path", str(store_path)]
    for args in (["index", str(demo), "--collection", COLLECTION],
                 ["index", str(scenes), "--collection", SCENES, "--labels", str(scenes / "instances.json")]):
        if app.main(flags + args + ["--model", "mobilenet-v2"]) != 0:
            raise SystemExit(f"indexing failed: {' '.join(args)}")


def write_scenes(folder: Path, seed: int = 0) -> Path:
    """SCENE_COUNT grey canvases, each with two to five Fashion-MNIST items (from the train split,
    so none is also a demo image) at random places and scales, and their COCO instances file."""
    images, labels = load_split("train", folder / ".download")
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    coco = {"images": [], "annotations": [],
            "categories": [{"id": i + 1, "name": name} for i, name in enumerate(CLASS_NAMES)]}
    for image_id in range(1, SCENE_COUNT + 1):
        canvas = np.full((SCENE_SIDE, SCENE_SIDE), rng.integers(20, 60), np.uint8)
        for _ in range(rng.integers(2, 6)):
            index = int(rng.integers(len(images)))
            side = int(rng.integers(36, 72))
            item = np.asarray(Image.fromarray(images[index]).resize((side, side), Image.BILINEAR))
            x, y = (int(v) for v in rng.integers(0, SCENE_SIDE - side, 2))
            region = canvas[y:y + side, x:x + side]
            np.maximum(region, item, out=region)  # items are light on black: overlaps stay visible
            coco["annotations"].append({"id": len(coco["annotations"]) + 1, "image_id": image_id,
                                        "category_id": int(labels[index]) + 1, "bbox": [x, y, side, side],
                                        "area": side * side, "iscrowd": 0})
        name = f"scene-{image_id:04d}.png"
        Image.fromarray(canvas).save(folder / name)
        coco["images"].append({"id": image_id, "file_name": name, "width": SCENE_SIDE, "height": SCENE_SIDE})
    (folder / "instances.json").write_text(json.dumps(coco))
    return folder


# --- where to look --------------------------------------------------------------------------
def columns(collection) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    values = collection.columns(["x", "y", "label"]).values
    return np.asarray(values["x"], float), np.asarray(values["y"], float), np.asarray(values["label"])


def label_box(collection, label: str, share: float = 0.25) -> tuple[float, float, float, float]:
    """A box around the middle `share` of a label's points (x0, x1, y0, y1)."""
    x, y, labels = columns(collection)
    low, high = 50 - 50 * share, 50 + 50 * share
    xs, ys = x[labels == label], y[labels == label]
    return (*np.percentile(xs, [low, high]), *np.percentile(ys, [low, high]))


def odd_one_window(collection, among: str, odd: str, points: int = 120) -> tuple[float, float, float, float]:
    """A square window holding about `points` points, mostly `among`, with one `odd` point
    inside: the demo zoomed into its bags, with a coat among them."""
    x, y, labels = columns(collection)
    best, best_share = None, -1.0
    for i in np.flatnonzero(labels == odd):
        distance = np.maximum(abs(x - x[i]), abs(y - y[i]))
        nearest = np.argsort(distance)[:points]
        share = float(np.mean(labels[nearest] == among))
        if share > best_share:
            centre = (float(np.median(x[nearest])), float(np.median(y[nearest])))
            best, best_share = (*centre, float(distance[nearest[-1]]) * 0.8), share
    cx, cy, half = best
    return cx - half, cx + half, cy - half, cy + half


# --- the shots ------------------------------------------------------------------------------
def empty_spot(collection) -> tuple[float, float]:
    """The place on the map farthest from any point (the hover card goes when the pointer is there)."""
    x, y, _ = columns(collection)
    gx, gy = np.meshgrid(np.linspace(x.min(), x.max(), 40), np.linspace(y.min(), y.max(), 40))
    candidates = np.column_stack([gx.ravel(), gy.ravel()])
    nearest = [np.min((x - cx) ** 2 + (y - cy) ** 2) for cx, cy in candidates]
    return tuple(candidates[int(np.argmax(nearest))])


def calm(page, collection) -> None:
    """No hover card, no pointer over the page: through empty map space, then off the map."""
    page.mouse.move(*to_client(page, *empty_spot(collection)), steps=3)
    page.wait_for_selector(".es-hover", state="hidden")
    page.mouse.move(2, 2)
    page.wait_for_timeout(400)


def images_loaded(page, selector: str) -> None:
    page.wait_for_function("s => [...document.querySelectorAll(s)].every(i => i.complete && i.naturalWidth > 0)",
                           arg=selector)


def box_select(page, box: tuple[float, float, float, float]) -> None:
    x0, x1, y0, y1 = box
    drag(page, [(x0, y1), (x1, y0)])
    page.wait_for_function("() => document.querySelector('#es-count .es-count').dataset.selected !== ''")
    images_loaded(page, "#es-grid img")


def shot_layouts(browser, url: str, images, out: Path) -> None:
    for width, height in ((1280, 800), (1920, 1080)):
        page = open_page(browser, url, browser.new_context(viewport={"width": width, "height": height}))
        box_select(page, label_box(images, "sneaker", 0.6))
        calm(page, images)
        page.screenshot(path=str(out / f"screenshot-layout-{width}x{height}.png"))
        page.context.close()


def shot_lasso_and_grid(browser, url: str, images, out: Path) -> None:
    page = open_page(browser, url)
    x0, x1, y0, y1 = label_box(images, "trouser", 0.6)
    cx, cy, rx, ry = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2, (y1 - y0) / 2
    angles = np.linspace(0, 2 * np.pi, 9)[:-1]
    drag(page, [(cx + rx * np.cos(a), cy + ry * np.sin(a)) for a in [*angles, 0.0]], lasso=True)
    page.wait_for_function("() => document.querySelector('#es-count .es-count').dataset.selected !== ''")
    images_loaded(page, "#es-grid img")
    calm(page, images)
    page.screenshot(path=str(out / "screenshot-label-view-lasso.png"))
    page.screenshot(path=str(out / "screenshot-grid.png"), full_page=True)
    page.context.close()


def shot_tabs(browser, url: str, images, out: Path) -> None:
    page = open_page(browser, url)
    box_select(page, label_box(images, "coat", 0.5))
    for tab, ready, name in (("Metrics", "#es-metric-plot .barlayer .point", "screenshot-metrics.png"),
                             ("Label quality", ".es-rq-card img", "screenshot-label-quality.png"),
                             ("Clusters", "#es-cl-table tr", "screenshot-clusters.png")):
        open_tab(page, tab)
        page.wait_for_selector(ready)
        page.wait_for_timeout(800)
        calm(page, images)
        page.screenshot(path=str(out / name), full_page=True)
    page.context.close()


def shot_map_overlays(browser, url: str, images, out: Path) -> None:
    page = open_page(browser, url)
    page.locator("#es-colour").get_by_label("Cluster", exact=True).check()
    wait_names(page, 3)
    calm(page, images)
    page.locator(".es-map").screenshot(path=str(out / "screenshot-map-cluster-names.png"))
    page.locator("#es-colour").get_by_label("Label", exact=True).check()
    page.wait_for_timeout(500)
    zoom_to(page, *odd_one_window(images, "bag", "coat"))
    page.wait_for_function("() => { const t = window.embedscapeMap.overlays().thumbnails;"
                           " return t.length > 0 && t.every(x => x.loaded); }")
    page.wait_for_timeout(400)
    page.locator(".es-map").screenshot(path=str(out / "screenshot-map-thumbnails.png"))
    page.context.close()


def shot_density(browser, images, objects, out: Path) -> None:
    running = start_server(images, map_points=2000)
    try:
        page = open_page(browser, running.url)
        page.wait_for_function("() => document.querySelector('.es-map').dataset.mode === 'density'")
        calm(page, images)
        page.screenshot(path=str(out / "screenshot-density-view.png"))
        page.context.close()
    finally:
        running.stop()


def shot_objects(browser, url: str, objects, out: Path) -> None:
    page = open_page(browser, url + "/objects/")
    box_select(page, label_box(objects, "bag", 0.5))
    calm(page, objects)
    page.screenshot(path=str(out / "screenshot-objects-map.png"))
    page.locator("#es-grid .es-card").first.click()
    page.wait_for_selector("#es-detail .es-detail")
    images_loaded(page, "#es-detail img")
    calm(page, objects)
    page.screenshot(path=str(out / "screenshot-objects-image-view.png"))
    page.context.close()


SHOTS: dict[str, Callable] = {
    "layouts": lambda b, url, images, objects, out: shot_layouts(b, url, images, out),
    "lasso": lambda b, url, images, objects, out: shot_lasso_and_grid(b, url, images, out),
    "tabs": lambda b, url, images, objects, out: shot_tabs(b, url, images, out),
    "overlays": lambda b, url, images, objects, out: shot_map_overlays(b, url, images, out),
    "density": lambda b, url, images, objects, out: shot_density(b, images, objects, out),
    "objects": lambda b, url, images, objects, out: shot_objects(b, url, objects, out),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    parser.add_argument("--only", nargs="*", choices=sorted(SHOTS), help="these shots only (default: all)")
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    store_path = DATA / "qdrant"
    build_collections(store_path)
    store = open_store(path=str(store_path))
    images, objects = store.open(COLLECTION), store.open(SCENES + "-objects")
    scene_images = store.open(SCENES)
    running = start_server(images, objects=None)
    scenes = start_server(scene_images, objects=objects)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
            for name in args.only or SHOTS:
                url = scenes.url if name == "objects" else running.url
                print(f"screenshots: {name}", flush=True)
                SHOTS[name](browser, url, images, objects, args.out)
            browser.close()
    finally:
        running.stop()
        scenes.stop()
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
