"""The page's JavaScript, CSS and HTML live as files (ui/assets/, ui/map/assets/), not in Python
strings: each file is read by the module it belongs to, goes into the Docker image, reaches the
page inline through Gradio, and is served by no route of its own."""
from __future__ import annotations

import ast
import fnmatch
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from ui.app import create_server_app
from ui.map import component, overlays, share_link

ROOT = Path(__file__).resolve().parent.parent
UI = ROOT / "ui"
ASSET_DIRS = (UI / "assets", UI / "map" / "assets")
TEXT_SUFFIXES = {".js", ".css", ".html"}
# Reworked by another change at the time the rest moved out (issue 24): they keep theirs for now.
CSS_RULE = re.compile(r"[#.][\w-]+[^{};]*\{[^{}]*:[^{}]*;")
JS_CODE = re.compile(r"\b(const|let|function)\s+\w+|=>|addEventListener\(")


def asset_files() -> list[Path]:
    """The page's own script, style and markup (not plotly.js: a library with its own route,
    ui/map/component.py PLOTLY_ROUTE, tested in tests/test_ui_images.py)."""
    return sorted(p for d in ASSET_DIRS for p in d.iterdir()
                  if p.suffix in TEXT_SUFFIXES and not p.name.endswith(".min.js"))


def ui_modules() -> list[Path]:
    return sorted(p for p in UI.rglob("*.py") if "plotly_bundle" not in p.parts)


def docstrings(tree: ast.AST) -> set[int]:
    """ids of the docstring constants of a module, its classes and functions."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def test_every_asset_file_is_read_by_its_module() -> None:
    sources = {p: p.read_text(encoding="utf-8") for p in ui_modules()}
    assets = asset_files()
    assert {p.name for p in assets} >= {"map.js", "map.css", "map.html", "overlays.js", "share-link.js",
                                        "page-layout.js", "panels.css", "edit-watch.js"}
    for asset in assets:
        readers = [p for p, text in sources.items() if f'"{asset.name}"' in text]
        assert readers, f"{asset} is read by no module"
        # A module reads the assets beside it: ui/x.py reads ui/assets, ui/map/x.py ui/map/assets.
        assert all(p.parent == asset.parent.parent for p in readers), (asset, readers)


def test_no_ui_module_keeps_script_or_style_in_a_string() -> None:
    offenders = []
    for path in ui_modules():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skip = docstrings(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
                if CSS_RULE.search(node.value) or JS_CODE.search(node.value):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []


def test_the_check_above_finds_script_and_style() -> None:
    """The patterns of the check above match what used to be in the modules (else it passes
    vacuously)."""
    assert CSS_RULE.search((UI / "map" / "assets" / "map.css").read_text())
    assert CSS_RULE.search((UI / "assets" / "page-layout.css").read_text())
    for name in ("map.js", "overlays.js", "share-link.js"):
        assert JS_CODE.search((UI / "map" / "assets" / name).read_text()), name
    assert not CSS_RULE.search("Page 1 of 3 · images 1-40 of 100") and not JS_CODE.search("a -> b: {x}")


def test_the_assets_go_into_the_docker_image() -> None:
    patterns = [p.strip() for p in (ROOT / ".dockerignore").read_text().splitlines()
                if p.strip() and not p.startswith("#")]
    for asset in asset_files():
        relative = asset.relative_to(ROOT).as_posix()
        parts = [("/".join(relative.split("/")[:i])) for i in range(1, relative.count("/") + 2)]
        assert not any(fnmatch.fnmatch(part, p) or fnmatch.fnmatch(part, p.removeprefix("**/"))
                       for part in parts for p in patterns), relative


def test_the_map_component_carries_its_files_filled_in() -> None:
    html = component.map_component("/objects", 17)
    script = html.js_on_load
    assert "const BASE = '/objects';" in script and "const THUMBS = 17," in script
    assert re.findall(r"__[A-Z_]+__", script) == [] and script.count("function drawOverlays(") == 1
    # The overlays' script stands on whole lines of the map's (a placeholder in a comment would
    # put it inside that comment: a syntax error in the page).
    assert "\n" + overlays.overlay_js(17).strip("\n") + "\n" in script
    assert 'class="es-overlay"' in html.html_template and "__OVERLAY__" not in html.html_template
    assert ".es-hover" in html.css_template and ".es-overlay" in html.css_template
    assert share_link.share_link_control().js_on_load == (UI / "map" / "assets" / "share-link.js").read_text()
    assert re.findall(r"__[A-Z_]+__", html.html_template + html.css_template) == []


@pytest.fixture
def http(ui_collection):
    _, collection, _ = ui_collection
    with TestClient(create_server_app(collection)) as client:
        yield client


def test_the_page_gets_the_assets_inline_and_no_route_serves_the_files(http) -> None:
    config = http.get("/config")
    assert config.status_code == 200
    # The map's script reaches the page in Gradio's config, as the component's js_on_load.
    assert "window.embedscapeMap" in config.text and "es-share-button" in config.text
    for asset in asset_files():
        relative = asset.relative_to(ROOT).as_posix()
        for url in (f"/{relative}", f"/gradio_api/file={asset}", f"/gradio_api/file={relative}",
                    f"/file={relative}", f"/es-assets/{asset.name}"):
            assert http.get(url).status_code in (403, 404, 405), url
