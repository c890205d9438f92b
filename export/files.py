"""Putting a dataset's image file into an export folder, as a copy or a symlink."""
from __future__ import annotations

import os
import shutil
from pathlib import Path


def place_file(source: Path, target: Path, link: str) -> None:
    """Copy (`link="copy"`) or symlink `source` to `target`, replacing what is there."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_symlink() or target.exists():
        target.unlink()
    if link == "symlink":
        os.symlink(source.resolve(), target)
    else:
        shutil.copy2(source, target)
