"""A killed `app.py index` resumes: the next run embeds only what the killed one had not written."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import app
from conftest import ROOT, write_image
from indexer.pipeline import REPORT_FILE
from store import open_store, point_id

IMAGES = 240
BATCH = 8
KILL_AFTER = 5 * BATCH  # images through the progress bar: at least 4 batches written


def progress(stderr: Path) -> int:
    """The last count tqdm printed (`indexing c:  12%|...| 48/400 ...`)."""
    counts = re.findall(rf"(\d+)/{IMAGES} ", stderr.read_text(errors="replace"))
    return int(counts[-1]) if counts else 0


@pytest.mark.skipif(os.name != "posix", reason="SIGKILL")
def test_resume_after_sigkill(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root, qdrant = tmp_path / "images", tmp_path / "qdrant"
    names = [f"{label}/{i:03d}.png" for label in ("a", "b") for i in range(IMAGES // 2)]
    for i, name in enumerate(names):
        write_image(root / name, seed=i, size=(8, 8))

    stderr = tmp_path / "stderr.txt"
    command = [sys.executable, str(ROOT / "app.py"), "--qdrant-path", str(qdrant), "index", str(root),
               "--collection", "c", "--model", "mobilenet-v2", "--batch-size", str(BATCH), "--workers", "1"]
    with stderr.open("w") as err:
        process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err)
        try:
            deadline = time.monotonic() + 120
            while progress(stderr) < KILL_AFTER and process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.01)
            running = process.poll() is None
            process.send_signal(signal.SIGKILL)
        finally:
            process.kill()
            process.wait()
    killed_at = progress(stderr)
    assert running, f"the first run ended before it could be killed (rc {process.returncode}):\n{stderr.read_text()}"
    assert KILL_AFTER <= killed_at < IMAGES, f"killed at {killed_at}/{IMAGES}:\n{stderr.read_text()[-2000:]}"

    # The killed run left a collection the next run can open (no stale lock, no broken shard).
    store = open_store(path=str(qdrant))
    try:
        survived = store.open("c").count()
    finally:
        store.close()
    assert survived >= KILL_AFTER - BATCH

    capsys.readouterr()
    code = app.main(["--qdrant-path", str(qdrant), "index", str(root), "--collection", "c", "--batch-size", str(BATCH)])
    out, err = capsys.readouterr()
    assert code == 0, err
    report = json.loads((qdrant / "c" / REPORT_FILE).read_text())
    assert report["unchanged"] == survived > 0, "the second run must resume, not redo"
    assert report["embedded"] == IMAGES - survived
    assert report["skipped"] == [] and report["removed"] == []

    store = open_store(path=str(qdrant))
    try:
        collection = store.open("c")
        assert collection.count() == IMAGES
        paths = collection.columns(["path", "x", "y"])
    finally:
        store.close()
    assert sorted(paths.values["path"]) == sorted(names), "every image exactly once"
    assert sorted(paths.ids) == sorted(point_id(n) for n in names)
    assert None not in paths.values["x"] and None not in paths.values["y"]
