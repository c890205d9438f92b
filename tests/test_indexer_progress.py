"""Progress off a terminal is whole lines, few of them; on a terminal it is tqdm's bar."""
from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tqdm import tqdm

from conftest import ROOT, write_image
from imaging.progress import LINE_STEPS, LineProgress, progress_bar


def test_off_a_terminal_ten_thousand_updates_make_a_dozen_whole_lines() -> None:
    out = io.StringIO()
    with progress_bar(total=10_000, desc="indexing c", unit="img", file=out, line_seconds=3600) as bar:
        assert isinstance(bar, LineProgress)
        for _ in range(10_000):
            bar.update(1)
    text = out.getvalue()
    assert "\r" not in text and text.endswith("\n")
    lines = text.splitlines()
    assert len(lines) == 1 + (LINE_STEPS - 1) + 1, lines  # start, each tenth, the end
    assert lines[0].startswith("indexing c: 0/10000 img (0%)")
    assert [re.match(r"indexing c: (\d+)/10000 img", line).group(1) for line in lines[1:]] == [
        str(1000 * step) for step in range(1, LINE_STEPS)] + ["10000"]
    assert "(100%)" in lines[-1] and "img/s" in lines[-1]


def test_off_a_terminal_slow_work_prints_a_line_every_few_seconds() -> None:
    out = io.StringIO()
    bar = progress_bar(total=1_000, desc="slow", unit="img", file=out, line_seconds=0.05)
    started = time.monotonic()
    for _ in range(12):
        time.sleep(0.02)
        bar.update(1)
    bar.close()
    elapsed = time.monotonic() - started
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue()
    # Start, end, and about one line per 0.05 s in between: never one per update.
    assert 3 <= len(lines) <= 2 + elapsed / 0.05 + 1, lines
    assert lines[-1].startswith("slow: 12/1000 img")


def test_wrapping_an_iterable_and_an_unknown_total() -> None:
    out = io.StringIO()
    assert list(progress_bar(range(50), desc="metrics", file=out)) == list(range(50))
    assert out.getvalue().splitlines()[-1].startswith("metrics: 50/50 it (100%)")
    unknown = io.StringIO()
    assert sum(progress_bar((i for i in range(7)), desc="push", unit="pt", file=unknown)) == 21
    assert unknown.getvalue().splitlines()[-1].startswith("push: 7pt")


def test_disabled_prints_nothing() -> None:
    out = io.StringIO()
    with progress_bar(total=10, file=out, disable=True) as bar:
        bar.update(10)
    assert out.getvalue() == ""


@pytest.mark.skipif(os.name != "posix", reason="pseudo-terminal")
def test_on_a_terminal_it_is_tqdms_bar() -> None:
    import pty

    leader, follower = pty.openpty()
    with os.fdopen(follower, "w") as terminal:
        bar = progress_bar(total=3, desc="indexing c", unit="img", file=terminal, mininterval=0)
        assert isinstance(bar, tqdm)
        for _ in range(3):
            bar.update(1)
        bar.close()
    chunks = []
    while True:  # a pseudo-terminal hands its output over in pieces; EIO once all is read
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    written = b"".join(chunks).decode()
    os.close(leader)
    assert "\r" in written and "3/3" in written


def test_index_into_a_pipe_writes_whole_lines(tmp_path: Path) -> None:
    for i in range(60):
        write_image(tmp_path / "images" / ("a" if i % 2 else "b") / f"{i:02d}.png", seed=i, size=(8, 8))
    done = subprocess.run([sys.executable, str(ROOT / "app.py"), "--qdrant-path", str(tmp_path / "q"), "index",
                           str(tmp_path / "images"), "--collection", "c", "--model", "mobilenet-v2",
                           "--batch-size", "4"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "\r" not in done.stderr
    progress = [line for line in done.stderr.splitlines() if line.startswith("indexing c: ")]
    assert progress[0].startswith("indexing c: 0/60 img") and progress[-1].startswith("indexing c: 60/60 img")
    assert len(progress) <= 2 + LINE_STEPS + 20, progress  # and a line per 5 s at most: a minute at the very worst
