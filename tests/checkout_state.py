"""What a test run may not change: the checkout's tracked files and its unignored new files.

`checkout_state()` is recorded when pytest starts (tests/conftest.py) and compared when it
ends: a run that rewrites a tracked file (a screenshot into docs/, a fixture written beside
the code) or leaves a new file outside .gitignore fails, naming what changed. Screenshots for
the README come from `make screenshots` (scripts/screenshots.py), never from the suite.
"""
from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def checkout_state() -> dict[str, str] | None:
    """Each changed or new path -> a hash of its content (None: not a git checkout).

    `git status` alone would miss a file that was already modified before the run and is
    rewritten by it, so the content of every listed path is hashed too."""
    try:
        listed = subprocess.run(["git", "status", "--porcelain=v1", "-z", "--untracked-files=all"],
                                cwd=ROOT, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    state = {}
    for entry in filter(None, listed.split(b"\0")):
        name = entry[3:].decode("utf-8", "replace")
        path = ROOT / name
        digest = hashlib.sha1(path.read_bytes()).hexdigest() if path.is_file() else "gone"
        state[name] = f"{entry[:2].decode()} {digest}"
    return state


def changes(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """The paths whose state differs, sorted."""
    return sorted(name for name in before.keys() | after.keys() if before.get(name) != after.get(name))
