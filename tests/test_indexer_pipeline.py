"""Odd and broken files through the whole indexer: real embedded Qdrant store, real mobilenet-v2.

Every file is either indexed (with the right payload) or skipped with its reason, in the
IndexReport, in the JSON report beside the collection and on the command line; one bad file
never stops the run, and the exit status is non-zero only when nothing could be indexed.
"""
from __future__ import annotations

import io
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import app
from conftest import png_bytes, write_image
from imaging.images import ImageSkipped, decode_image
from indexer.pipeline import REPORT_FILE, IndexOptions
from scoring.indexing import index_and_analyze
from indexer.sources import SourceError
from store import open_store, point_id

AS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0

# relative path -> (width, height) expected in the payload (after EXIF rotation)
GOOD = {
    "good/rgb.png": (16, 16),
    "good/grey.png": (16, 16),
    "good/grey16.png": (16, 12),
    "good/palette.png": (16, 16),
    "good/palette-transparent.png": (16, 16),
    "good/rgba.png": (16, 16),
    "good/la.png": (16, 16),
    "good/bilevel.bmp": (16, 16),
    "good/cmyk.jpg": (16, 16),
    "good/rotated.jpg": (10, 20),   # stored 20x10 with EXIF orientation 6 (rotate 90)
    "good/one-pixel.png": (1, 1),
    "good/ünï 猫.webp": (16, 16),
    "good/anim.gif": (16, 16),
    "good/photo.tif": (16, 16),
    "bad/folder.jpg/inside.png": (16, 16),   # a folder named like an image is a folder
}
# relative path -> a word the skip reason must contain
BAD = {
    "bad/random-bytes.png": "not an image",
    "bad/text.jpg": "not an image",
    "bad/empty.jpg": "empty file",
    "bad/truncated.png": "truncated",
    "bad/truncated.jpg": "truncated",
    "bad/corrupt-data.png": "corrupt",
    "bad/bomb-100mpx.png": "too large",     # between 1x and 2x Pillow's limit: Pillow only warns
    "bad/bomb-400mpx.png": "too large",     # over 2x: Pillow refuses
    "bad/broken-link.png": "cannot read",
    "bad/loop.png": "cannot read",
}
if not AS_ROOT:
    BAD["bad/locked.png"] = "permission denied"
if sys.platform.startswith("linux"):  # Linux file names are bytes; this one is not UTF-8
    BAD["bad/name-\ufffd.png"] = "not valid utf-8"
# failures of reading the file (or its name), not of decoding it
READ_ERRORS = {"bad/broken-link.png", "bad/loop.png", "bad/locked.png", "bad/name-\ufffd.png"}


def make_odd_folder(root: Path) -> Path:
    good = root / "good"
    write_image(good / "rgb.png", 1)
    write_image(good / "grey.png", 2, mode="L")
    ramp = (np.arange(16 * 12, dtype=np.uint16).reshape(12, 16) * 300 + 1000)
    Image.fromarray(ramp, "I;16").save(good / "grey16.png")
    assert Image.open(good / "grey16.png").mode == "I;16"
    write_image(good / "palette.png", 3, mode="P")
    palette = Image.open(good / "palette.png")
    palette.save(good / "palette-transparent.png", transparency=0)
    write_image(good / "rgba.png", 4, mode="RGBA")
    write_image(good / "la.png", 5, mode="LA")
    write_image(good / "bilevel.bmp", 6, mode="1")
    write_image(good / "cmyk.jpg", 7, mode="CMYK")
    assert Image.open(good / "cmyk.jpg").mode == "CMYK"
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    write_image(good / "rotated.jpg", 8, size=(20, 10), exif=exif.tobytes())
    write_image(good / "one-pixel.png", 9, size=(1, 1))
    write_image(good / "ünï 猫.webp", 10, fmt="WEBP")
    write_image(good / "anim.gif", 11)
    write_image(good / "photo.tif", 12)

    bad = root / "bad"
    write_image(bad / "folder.jpg" / "inside.png", 13)
    rng = np.random.default_rng(0)
    (bad / "random-bytes.png").write_bytes(rng.integers(0, 256, 2000, dtype=np.uint8).tobytes())
    (bad / "text.jpg").write_text("this is not a JPEG, just text with the wrong name\n")
    (bad / "empty.jpg").write_bytes(b"")
    noise = rng.integers(0, 256, (96, 96, 3), dtype=np.uint8)
    for fmt, name in (("PNG", "truncated.png"), ("JPEG", "truncated.jpg")):
        buffer = io.BytesIO()
        Image.fromarray(noise).save(buffer, fmt)
        (bad / name).write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    (bad / "corrupt-data.png").write_bytes(png_bytes(16, 16, 8, 2, rows=b"\x78\x9c" + rng.bytes(300)))
    # Decompression bombs: valid 1-bit PNGs of 100 and 400 Mpixels, a few KB on disk.
    (bad / "bomb-100mpx.png").write_bytes(png_bytes(10_000, 10_000))
    (bad / "bomb-400mpx.png").write_bytes(png_bytes(20_000, 20_000))
    (bad / "broken-link.png").symlink_to(bad / "does-not-exist.png")
    (bad / "loop.png").symlink_to(bad / "loop.png")
    if not AS_ROOT:
        write_image(bad / "locked.png", 14).chmod(0)
    if "bad/name-\ufffd.png" in BAD:
        write_image(Path(os.fsdecode(bytes(bad) + b"/name-\xff.png")), 15)
    return root


@pytest.fixture(scope="module")
def odd_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = make_odd_folder(tmp_path_factory.mktemp("odd") / "images")
    yield root
    if not AS_ROOT:
        (root / "bad" / "locked.png").chmod(0o644)


@pytest.fixture(scope="module")
def odd_index(odd_folder: Path, mobilenet, tmp_path_factory: pytest.TempPathFactory):
    """The odd folder indexed once with index_dataset: (report, store path)."""
    qdrant = tmp_path_factory.mktemp("odd-store") / "qdrant"
    pixel_limit = Image.MAX_IMAGE_PIXELS
    store = open_store(path=str(qdrant))
    try:
        report = index_and_analyze(odd_folder, store, IndexOptions(collection="odd", model="mobilenet-v2", batch_size=4,
                                                               progress=False), embedder=mobilenet)
    finally:
        store.close()
    assert Image.MAX_IMAGE_PIXELS == pixel_limit, "indexing must not change Pillow's global pixel limit"
    return report, qdrant


def test_each_odd_file_decodes_or_says_why(odd_folder: Path) -> None:
    for relative, size in GOOD.items():
        decoded = decode_image(odd_folder / relative)
        assert decoded.image.mode == "RGB", relative
        assert (decoded.width, decoded.height) == decoded.image.size == size, relative
    for relative, word in BAD.items():
        if relative in READ_ERRORS:
            continue  # the pipeline reports them (below)
        with pytest.raises(ImageSkipped) as caught:
            decode_image(odd_folder / relative)
        assert word in caught.value.reason, (relative, caught.value.reason)


def test_conversions_keep_the_picture(odd_folder: Path) -> None:
    # 16-bit greyscale is scaled from its own range, not clipped to white.
    grey16 = np.asarray(decode_image(odd_folder / "good/grey16.png").image)
    assert grey16.min() == 0 and grey16.max() == 255 and len(np.unique(grey16)) > 100
    # Transparent areas become white, not black.
    transparent = Image.new("RGBA", (8, 8), (0, 0, 0, 0))
    buffer = io.BytesIO()
    transparent.save(buffer, "PNG")
    assert np.asarray(decode_image(Path("t.png"), buffer.getvalue()).image).min() == 255
    # CMYK comes out as ordinary RGB of the same picture.
    cmyk = decode_image(odd_folder / "good/cmyk.jpg").image
    reference = Image.open(odd_folder / "good/cmyk.jpg").convert("RGB")
    assert np.abs(np.asarray(cmyk, np.int16) - np.asarray(reference, np.int16)).max() <= 1
    # The rotated photo is upright: its first stored column became its first row, reversed.
    stored = np.asarray(Image.open(odd_folder / "good/rotated.jpg").convert("RGB"), np.int16)
    upright = np.asarray(decode_image(odd_folder / "good/rotated.jpg").image, np.int16)
    assert upright.shape == (20, 10, 3)
    assert np.abs(upright - np.rot90(stored, k=-1)).mean() < 1


def test_concurrent_decoding_leaves_warning_filters_alone(tmp_path: Path, odd_folder: Path) -> None:
    """Decode workers run in threads; the bomb check must not leave a process-wide warning
    filter behind (warnings.catch_warnings is not thread-safe)."""
    import warnings
    from concurrent.futures import ThreadPoolExecutor

    files = [write_image(tmp_path / f"{i}.png", i, size=(4, 4)) for i in range(60)]
    files.append(odd_folder / "bad/bomb-100mpx.png")
    before = list(warnings.filters)

    def decode(path: Path) -> None:
        try:
            decode_image(path)
        except ImageSkipped:
            pass

    with ThreadPoolExecutor(4) as pool:
        for _ in range(5):
            list(pool.map(decode, files))
    assert warnings.filters == before


def test_pixel_limit_is_pillows(odd_folder: Path) -> None:
    from imaging import images

    assert Image.MAX_IMAGE_PIXELS == 89_478_485  # untouched by importing the indexer
    assert images.MAX_PIXELS == Image.MAX_IMAGE_PIXELS


def test_report_lists_every_skipped_file_with_its_reason(odd_index) -> None:
    report, _ = odd_index
    skipped = {s["path"]: s["reason"] for s in report.skipped}
    assert set(skipped) == set(BAD)
    for relative, word in BAD.items():
        assert word in skipped[relative].lower(), (relative, skipped[relative])
    assert report.found == len(GOOD) + len(BAD)
    assert report.embedded == len(GOOD)
    assert report.total_points == len(GOOD)
    assert report.removed == [] and report.problems == []


def test_good_files_are_indexed_with_their_payload(odd_index) -> None:
    _, qdrant = odd_index
    store = open_store(path=str(qdrant))
    try:
        collection = store.open("odd")
        assert collection.count() == len(GOOD)
        records = {r.payload["path"]: r for r in collection.retrieve([point_id(p) for p in GOOD], None, True)}
    finally:
        store.close()
    assert set(records) == set(GOOD)
    for relative, (width, height) in GOOD.items():
        payload = records[relative].payload
        assert (payload["width"], payload["height"]) == (width, height), relative
        assert payload["label"] == relative.split("/")[0]
        assert payload["tags"] == []
        assert len(payload["sha1"]) == 40
        assert isinstance(payload["x"], float) and isinstance(payload["y"], float)
        assert payload["area"] == width * height
        vector = records[relative].vector
        assert vector.shape == (1280,) and abs(float(np.linalg.norm(vector)) - 1) < 1e-3


def test_unreadable_file_is_skipped(odd_index) -> None:
    if AS_ROOT:
        pytest.skip("running as root: chmod 000 does not stop root from reading a file (the broken link, "
                    "the self-referencing link and the folder named folder.jpg cover unreadable paths)")
    report, _ = odd_index
    reasons = {s["path"]: s["reason"] for s in report.skipped}
    assert reasons["bad/locked.png"] == "cannot read file: Permission denied"


def test_json_report_file(odd_index) -> None:
    report, qdrant = odd_index
    path = qdrant / "odd" / REPORT_FILE
    assert report.report_file == str(path)
    data = json.loads(path.read_text())
    assert data["found"] == len(GOOD) + len(BAD)
    assert data["embedded"] == len(GOOD)
    assert {s["path"]: s["reason"] for s in data["skipped"]} == {s["path"]: s["reason"] for s in report.skipped}
    assert f"{len(BAD)} skipped" in data["summary"]


def test_cli_prints_skipped_files_and_summary(odd_folder: Path, odd_index, capsys: pytest.CaptureFixture) -> None:
    """Run the CLI on the same folder and collection: bad files are reported again, nothing
    good is re-embedded, and the run succeeds."""
    _, qdrant = odd_index
    capsys.readouterr()
    code = app.main(["--qdrant-path", str(qdrant), "index", str(odd_folder), "--collection", "odd"])
    out, err = capsys.readouterr()
    assert code == 0, err
    for relative, word in BAD.items():
        line = next((l for l in err.splitlines() if l.startswith(f"skipped {relative}: ")), None)
        assert line is not None, f"no 'skipped {relative}' line in:\n{err}"
        assert word in line.lower()
    summary = next(l for l in out.splitlines() if l.startswith("odd: "))
    assert (f"{len(GOOD) + len(BAD)} images found, 0 embedded" in summary
            and f"{len(GOOD)} unchanged, {len(BAD)} skipped" in summary
            and f"{len(GOOD)} points in the collection" in summary), summary
    assert f"report: {qdrant / 'odd' / REPORT_FILE}" in out


def test_all_bad_folder_exits_non_zero(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "a.jpg").write_text("not an image")
    (tmp_path / "images" / "b.png").write_bytes(b"")
    code = app.main(["--qdrant-path", str(tmp_path / "q"), "index", str(tmp_path / "images"), "--collection", "c",
                     "--model", "mobilenet-v2"])
    out, err = capsys.readouterr()
    assert code == 1
    assert "skipped a.jpg: not an image" in err and "skipped b.png: empty file" in err
    assert "0 embedded" in out and "2 skipped" in out and "0 points in the collection" in out


def test_wrong_path_exits_2_with_message(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code = app.main(["--qdrant-path", str(tmp_path / "q"), "index", str(tmp_path / "nope"), "--collection", "c",
                     "--model", "mobilenet-v2"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: dataset path") and "does not exist" in err


def test_file_as_path_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    image = write_image(tmp_path / "one.png")
    code = app.main(["--qdrant-path", str(tmp_path / "q"), "index", str(image), "--collection", "c",
                     "--model", "mobilenet-v2"])
    assert code == 2
    assert "is a file; pass the folder" in capsys.readouterr().err


def test_empty_folder_is_a_clear_error(tmp_path: Path, mobilenet) -> None:
    (tmp_path / "images" / "sub").mkdir(parents=True)
    (tmp_path / "images" / "notes.txt").write_text("no images")
    store = open_store(path=str(tmp_path / "q"))
    try:
        with pytest.raises(SourceError, match="no images found under .*check the path"):
            index_and_analyze(tmp_path / "images", store, IndexOptions("c", "mobilenet-v2", progress=False), mobilenet)
        assert store.list_collections() == []  # nothing created for nothing
    finally:
        store.close()


def test_wrong_arguments_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as missing:
        app.main(["index", str(tmp_path)])  # --collection is required
    assert missing.value.code == 2
    assert "--collection" in capsys.readouterr().err
    with pytest.raises(SystemExit) as bad_device:
        app.main(["index", str(tmp_path), "--collection", "c", "--device", "tpu"])
    assert bad_device.value.code == 2
    capsys.readouterr()
    for flag in ("--workers", "--batch-size", "--neighbours", "--limit"):
        with pytest.raises(SystemExit) as zero:
            app.main(["--qdrant-path", str(tmp_path / "q"), "index", str(tmp_path), "--collection", "c", flag, "0"])
        assert zero.value.code == 2
        assert f"argument {flag}: must be at least 1, not 0" in capsys.readouterr().err
    assert not (tmp_path / "q").exists()  # refused before anything was opened
