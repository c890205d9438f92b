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

from store import Store, open_store  # noqa: E402


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
