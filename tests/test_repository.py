"""The repository itself: no absolute path of a developer's machine in any tracked text file
(code, comments, docs), as the developers' guide asks; files are named by their path in the
repository instead."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Where this project's machines keep checkouts, scratch files and home folders.
MACHINE_PATH = re.compile(r"(?<![\w.])/(?:work|root|home/\w+|tmp/[\w.-]+/)(?:/|\b)")
BINARY = {".png", ".jpg", ".jpeg", ".gif", ".ico", ".npz", ".npy", ".onnx", ".parquet", ".whl"}


def tracked_text_files() -> list[Path]:
    try:
        listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [ROOT / name for name in listed.splitlines() if Path(name).suffix.lower() not in BINARY]


def machine_paths(text: str) -> list[str]:
    return [m.group(0) for m in MACHINE_PATH.finditer(text)]


def test_the_pattern_finds_machine_paths_and_not_routes() -> None:
    assert machine_paths("flock /work/bench.lock python") == ["/work/"]
    assert machine_paths("see /root/.cache/x and /home/alice/data") == ["/root/", "/home/alice/"]
    assert machine_paths("GET /thumb/row/1, /es-assets/plotly.min.js, bench/results/work/x") == []


def test_no_tracked_file_names_a_path_of_a_developers_machine() -> None:
    found = {}
    for path in tracked_text_files():
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, FileNotFoundError):
            continue
        if path.name == "test_repository.py":
            continue  # its own examples
        hits = machine_paths(text)
        if hits:
            found[str(path.relative_to(ROOT))] = hits[:3]
    assert not found, found
