"""bench/bench_load.py against a real server: HTTP sessions speaking the page's protocol and a real
browser at once, every acknowledged tag found in Qdrant afterwards, nothing failed."""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

from conftest import ROOT, build_ui_collection
from store import PointFilter, open_store
from ui.app import free_port


def load_bench():
    spec = importlib.util.spec_from_file_location("bench_load", ROOT / "bench" / "bench_load.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_load"] = module  # its dataclasses look their module up while being made
    spec.loader.exec_module(module)
    return module


def test_a_small_load_loses_no_tag_and_fails_nothing(tmp_path: Path) -> None:
    store, _, _ = build_ui_collection(tmp_path, per_label=200)
    store.close()
    out = tmp_path / "load.json"
    result = load_bench().main(["--store", str(tmp_path / "qdrant"), "--collection", "ui", "--sessions", "4",
                                "--browsers", "1", "--duration", "25", "--after", "2", "--session-s", "10", "15",
                                "--port", str(free_port()), "--out", str(out)])
    assert result["errors"] == 0, result["error_samples"]
    # Tags were acknowledged, by the HTTP sessions and the browser, and each is in Qdrant with
    # exactly the acknowledged count.
    assert result["tags_acknowledged"] > 0
    assert result["lost_edits"] == {}
    assert result["tag_points_in_qdrant"] == result["tag_points_acknowledged"] > 0
    for action in ("page_load", "select", "tag_add", "browser_page_load", "browser_select",
                   "browser_tag_add"):
        assert result["latency"][action]["n"] > 0, action
    assert result["sessions_opened"] == result["sessions_closed"] > 5  # users reopened their pages
    phases = {phase for _, phase, _ in result["rss_samples"]}
    assert phases == {"before", "during", "after"}
    assert json.loads(out.read_text())["errors"] == 0
    # The run's tags are gone again: the collection is as it was.
    store = open_store(path=str(tmp_path / "qdrant"))
    try:
        collection = store.open("ui")
        assert collection.count(PointFilter(tags_any=list(result["tag_counts"]))) == 0
    finally:
        store.close()
