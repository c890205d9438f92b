"""Shared fixtures: both store backends, generated image folders, a tiny CLIP model."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from checkout_state import changes, checkout_state  # noqa: E402
from store import Store, open_store  # noqa: E402

CHECKOUT_BEFORE = checkout_state()  # the checkout as this run found it


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A run that changed the checkout fails, even when every test passed (tests that come
    after tests/test_zz_checkout_unchanged.py are covered here)."""
    after = checkout_state()
    changed = changes(CHECKOUT_BEFORE, after) if CHECKOUT_BEFORE is not None and after is not None else []
    if changed:
        print(f"\nThis test run changed the checkout: {', '.join(changed)}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(params=["edge", "client-local"])
def store(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    """The contract suite runs against both backends: the embedded engine, and
    qdrant-client's local mode standing in for a Qdrant server."""
    monkeypatch.delenv("QDRANT_URL", raising=False)
    monkeypatch.setenv("EMBEDSCAPE_ARTIFACTS", str(tmp_path / "artifacts"))
    if request.param == "edge":
        backend = open_store(path=str(tmp_path / "qdrant"))
    else:
        backend = open_store(local_client_path=str(tmp_path / "qdrant-local"))
    yield backend
    backend.close()


# --- explorer UI fixtures (tests/test_ui_*.py) ---------------------------------------------
UI_LABELS = ("cat", "dog", "bird")
UI_CENTRES = {"cat": (0.0, 0.0), "dog": (10.0, 0.0), "bird": (5.0, 8.0)}
UI_COLOURS = {"cat": (215, 60, 60), "dog": (60, 160, 60), "bird": (60, 70, 215)}
UI_DIM = 16


def build_ui_collection(base: Path, per_label: int = 40, name: str = "ui",
                        server: bool = False) -> tuple[Store, object, Path]:
    """A small image collection with a known map: three labels, each an 8-wide grid of points
    0.25 apart around UI_CENTRES (so drawn shapes can stay clear of every point), PNGs on disk,
    vectors pointing along their label's axis (so "nearest" is "same label"). In the embedded
    store, or with `server` in qdrant-client's local mode (the server backend's stand-in)."""
    import numpy as np
    from PIL import Image, ImageDraw

    from store import point_id

    rng = np.random.default_rng(0)
    root = base / "images"
    store = open_store(local_client_path=str(base / "qdrant-local")) if server else open_store(path=str(base / "qdrant"))
    collection = store.create(name, UI_DIM, {"source_root": str(root), "model": "test"})
    for field in ("label", "tags"):
        collection.create_index(field, "keyword")
    ids, vectors, payloads = [], [], []
    for index, label in enumerate(UI_LABELS):
        (root / label).mkdir(parents=True, exist_ok=True)
        for i in range(per_label):
            relative = f"{label}/{i:03d}.png"
            image = Image.new("RGB", (48, 48), UI_COLOURS[label])
            ImageDraw.Draw(image).text((6, 18), f"{label[0]}{i}", fill=(255, 255, 255))
            image.save(root / relative)
            cx, cy = UI_CENTRES[label]
            vector = rng.normal(size=UI_DIM) * 0.3
            vector[index] += 3.0
            ids.append(point_id(relative))
            vectors.append(vector)
            payloads.append({"path": relative, "label": label, "labels": [label], "tags": [], "split": "train",
                             "x": cx + (i % 8) * 0.25, "y": cy + (i // 8) * 0.25, "width": 48, "height": 48,
                             "sha1": f"{index:02d}{i:038d}"})
    collection.upsert(ids, np.asarray(vectors, dtype=np.float32), payloads)
    collection.flush()
    return store, collection, root


@pytest.fixture
def ui_collection(tmp_path: Path):
    """A fresh small UI collection (store, collection, image root) for one test."""
    store, collection, root = build_ui_collection(tmp_path)
    yield store, collection, root
    store.close()


@pytest.fixture(scope="module")
def browser():
    """Headless Debian chromium for the browser tests, one per test module (tests/test_ui_browser.py
    holds its path and flags)."""
    from playwright import sync_api as playwright_api
    from test_ui_browser import ARGS, CHROMIUM

    with playwright_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield chromium
        chromium.close()


# --- indexer fixtures (tests/test_indexer_*.py) ----------------------------------------------
def write_image(path: Path, seed: int = 0, size: tuple[int, int] = (16, 16), mode: str = "RGB",
                fmt: str | None = None, **save: object) -> Path:
    """A small noise image (distinct per seed) saved at `path` (format from the suffix)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    image = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8), "RGB")
    if mode != "RGB":
        image = image.convert(mode)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, fmt, **save)
    return path


def png_bytes(width: int, height: int, bit_depth: int = 1, colour_type: int = 0, rows: bytes | None = None) -> bytes:
    """A PNG file built by hand. With `rows=None` the image is all zeros (filter byte 0 per row),
    so even a 20000x20000 1-bit image is a valid file of a few KB."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    if rows is None:
        compressor = zlib.compressobj(9)
        row = b"\0" * (1 + (width * bit_depth + 7) // 8)
        rows = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


def build_tiny_clip(folder: Path) -> Path:
    """A random-weight CLIP of a few hundred KB that sentence-transformers loads like a real one
    (docs/notes/offline-assets.md)."""
    import json

    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

    def bytes_to_unicode() -> dict[int, str]:
        printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
        codes = printable[:]
        extra = 0
        for byte in range(256):
            if byte not in printable:
                printable.append(byte)
                codes.append(256 + extra)
                extra += 1
        return dict(zip(printable, map(chr, codes)))

    folder.mkdir(parents=True, exist_ok=True)
    characters = list(bytes_to_unicode().values())
    vocab = {c: i for i, c in enumerate(characters)}
    vocab.update({c + "</w>": len(characters) + i for i, c in enumerate(characters)})
    vocab.update({"<|startoftext|>": len(vocab), "<|endoftext|>": len(vocab) + 1})
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    tower = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2)
    config = CLIPConfig(
        text_config={**tower, "vocab_size": len(vocab), "bos_token_id": vocab["<|startoftext|>"],
                     "eos_token_id": vocab["<|endoftext|>"], "pad_token_id": vocab["<|endoftext|>"]},
        vision_config={**tower, "image_size": 32, "patch_size": 8}, projection_dim=16)
    CLIPModel(config).save_pretrained(folder)
    tokenizer = CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"))
    processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    CLIPProcessor(processor, tokenizer).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def mobilenet():
    """The real ImageNet MobileNetV2 embedder (onnxruntime on the CPU), loaded once."""
    from indexer.models import load_embedder

    return load_embedder("mobilenet-v2", "cpu")


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_clip(tmp_path_factory.mktemp("tiny-clip") / "model")


INDEXED_LABELS = ("apple", "pear", "plum")


@pytest.fixture(scope="session")
def indexed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path | str | int]:
    """An ImageFolder of 3 x 4 tiny PNGs indexed once through the CLI with mobilenet-v2.
    The store is closed afterwards: open it per test and close it again (the shard is locked)."""
    import app

    base = tmp_path_factory.mktemp("indexed")
    images = base / "images"
    for index, label in enumerate(INDEXED_LABELS):
        for i in range(4):
            write_image(images / label / f"{i}.png", seed=100 * index + i)
    code = app.main(["--qdrant-path", str(base / "qdrant"), "index", str(images), "--collection", "c",
                     "--model", "mobilenet-v2"])
    assert code == 0
    return {"base": base, "images": images, "qdrant": base / "qdrant", "collection": "c", "count": 12}
