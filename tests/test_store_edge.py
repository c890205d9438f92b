"""The embedded backend's own promises, which tag edits rely on: one process at a time has a
collection open, an edit outlives a killed process even before its deferred flush, and a
journaled (acknowledged) tag edit reaches the engine before anything reads it."""
from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from store import PointFilter, open_store, point_id
from store import StoreError, edge, write_behind

ROOT = Path(__file__).resolve().parents[1]
IDS = [point_id(f"img/{i}.png") for i in range(20)]


def _make(path: Path) -> None:
    store = open_store(path=str(path))
    collection = store.create("things", 4, {"model": "test"})
    collection.create_index("tags", "keyword")
    payloads = [{"path": f"img/{i}.png", "tags": ["odd"] if i % 2 else []} for i in range(len(IDS))]
    collection.upsert(IDS, np.ones((len(IDS), 4), np.float32), payloads)
    store.close()


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)


class CountingShard:
    """The engine's shard, counting flushes."""

    def __init__(self, shard: Any) -> None:
        self.shard, self.flushes = shard, 0

    def flush(self) -> None:
        self.flushes += 1
        self.shard.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.shard, name)


def test_a_second_process_cannot_open_an_open_collection(tmp_path: Path) -> None:
    _make(tmp_path / "qdrant")
    store = open_store(path=str(tmp_path / "qdrant"))
    collection = store.open("things")
    assert collection.exclusive
    opener = f"from store import open_store; open_store(path={str(tmp_path / 'qdrant')!r}).open('things')"
    refused = _python(opener)
    assert refused.returncode != 0 and "Is another embedscape process using it?" in refused.stderr
    # ... and how several processes share one collection: a Qdrant server.
    assert "Qdrant server" in refused.stderr and "QDRANT_URL" in refused.stderr and "push" in refused.stderr
    store.close()
    assert _python(opener).returncode == 0, "a closed collection opens again"


def test_tag_edits_survive_a_process_killed_before_their_flush(tmp_path: Path) -> None:
    """The first edit is in the engine (its write-ahead log) but not flushed; the second is only
    journaled (acknowledged, store/write_behind.py); both outlive the kill."""
    _make(tmp_path / "qdrant")
    edit_then_die = f"""
import os, signal
from store import open_store
collection = open_store(path={str(tmp_path / 'qdrant')!r}).open("things")
ids = {IDS!r}
collection.add_tag(ids[:10], "kept", [["odd"] if i % 2 else [] for i in range(10)])
collection.remove_tag(ids[:4], "odd")  # reads the tags back: the first edit reaches the engine
held = {{str(r.id): (r.payload or {{}}).get("tags") for r in collection._shard.retrieve(ids, None, False)}}
assert held[ids[0]] == ["kept"] and held[ids[1]] == ["odd", "kept"], held
os.kill(os.getpid(), signal.SIGKILL)  # before the journaled edit's timer and the deferred flush
"""
    died = _python(edit_then_die)
    assert died.returncode == -signal.SIGKILL, died.stderr
    assert [p.suffix for p in _journal(tmp_path)] == [".json"], "the second edit was only journaled"
    store = open_store(path=str(tmp_path / "qdrant"))
    try:
        collection = store.open("things")
        tags = {r.id: r.payload["tags"] for r in collection.retrieve(IDS, ["tags"])}
        assert tags == {pid: ([] if i % 2 == 0 or i < 4 else ["odd"]) + (["kept"] if i < 10 else [])
                        for i, pid in enumerate(IDS)}
        assert collection.count(PointFilter(tags_any=["kept"])) == 10  # the index too
        assert _journal(tmp_path) == [], "applied edits leave the journal"
    finally:
        store.close()


def _journal(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "qdrant" / "things" / write_behind.JOURNAL_DIR).glob("*"))


def _engine_tags(collection: Any) -> dict[str, list[str]]:
    """Tags as the engine holds them now, past the lock that would apply pending edits first."""
    return {str(r.id): (r.payload or {}).get("tags") for r in collection._shard.retrieve(IDS, None, False)}


def _wait_for_flushes(shard: CountingShard, count: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while shard.flushes < count and time.monotonic() < deadline:
        time.sleep(0.02)


def _counted(tmp_path: Path) -> tuple[Any, Any, CountingShard]:
    """A fresh collection whose shard counts its flushes: (store, collection, shard)."""
    _make(tmp_path / "qdrant")
    store = open_store(path=str(tmp_path / "qdrant"))
    collection = store.open("things")
    shard = collection._shard = CountingShard(collection._shard)
    return store, collection, shard


def test_edits_are_flushed_once_they_pause_and_at_close(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(edge, "FLUSH_IDLE_S", 1.0)
    store, collection, shard = _counted(tmp_path)
    started = time.monotonic()
    for i in range(5):  # a burst of edits 0.3 s apart: each one pushes the flush back
        collection.add_tag(IDS[i:i + 3], f"t{i}")
        time.sleep(0.3)
    assert shard.flushes == 0, "no flush while the edits keep coming"
    _wait_for_flushes(shard, 1)
    assert time.monotonic() - started >= 4 * 0.3 + 1.0, "the flush came only after the pause"
    time.sleep(1.2)
    assert shard.flushes == 1, "one flush for the whole burst"
    collection.add_tag(IDS[:1], "c")
    store.close()
    assert shard.flushes == 2, "close flushes at once"
    time.sleep(1.2)
    assert shard.flushes == 2, "and the cancelled timer does not flush a closed shard"


def test_steady_edits_are_still_flushed_after_the_longest_delay(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(edge, "FLUSH_IDLE_S", 0.5)
    monkeypatch.setattr(edge, "FLUSH_MAX_DELAY_S", 1.0)
    store, collection, shard = _counted(tmp_path)
    started = time.monotonic()
    while time.monotonic() - started < 2.0:  # never a 0.5 s pause
        collection.add_tag(IDS[:2], "busy")
        collection.remove_tag(IDS[:2], "busy")
        time.sleep(0.1)
    assert shard.flushes >= 1, "flushed within FLUSH_MAX_DELAY_S although the edits never paused"
    store.close()


def test_optimize_leaves_one_mapped_segment_that_reopens_searches_and_takes_edits(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    ids = [point_id(f"img/{i}.png") for i in range(300)]
    vectors = rng.normal(size=(300, 8)).astype(np.float32)
    store = open_store(path=str(tmp_path))
    collection = store.create("things", 8, {"model": "test"})
    for start in range(0, 300, 50):  # several writes, as the indexer's batches
        collection.upsert(ids[start:start + 50], vectors[start:start + 50],
                          [{"path": f"img/{i}.png", "tags": []} for i in range(start, start + 50)])
    collection.flush()
    collection.optimize()
    store.close()
    segments = list((tmp_path / "things" / edge.SHARD_DIR / "segments").iterdir())
    assert len(segments) == 1
    store = open_store(path=str(tmp_path))
    reopened = store.open("things")
    assert reopened.count() == 300
    assert [hit.id for hit in reopened.search(vectors[7], limit=1)] == [ids[7]]
    reopened.add_tag(ids[:10], "kept")
    store.close()
    store = open_store(path=str(tmp_path))
    assert store.open("things").count(PointFilter(tags_any=["kept"])) == 10
    store.close()


# --- tag edits acknowledged once journaled (store/write_behind.py) ---------------------------
def test_journaled_edits_reach_the_engine_before_any_read_and_on_their_own(tmp_path: Path) -> None:
    _make(tmp_path / "qdrant")
    store = open_store(path=str(tmp_path / "qdrant"))
    try:
        collection = store.open("things")
        collection.add_tag(IDS[:3], "new", [[], ["odd"], []])
        assert "new" not in str(_engine_tags(collection)) and len(_journal(tmp_path)) == 1
        assert collection.count(PointFilter(tags_any=["new"])) == 3, "a read applies it first"
        assert _journal(tmp_path) == []
        collection.remove_tag(IDS[:1], "new", [["new"]])
        time.sleep(write_behind.APPLY_DELAY_S + 0.5)
        assert _engine_tags(collection)[IDS[0]] == [], "applied by the timer, with no read"
        assert _journal(tmp_path) == []
    finally:
        store.close()


def test_a_journal_left_half_written_is_ignored_and_an_unreadable_one_is_named(tmp_path: Path) -> None:
    _make(tmp_path / "qdrant")
    journal = tmp_path / "qdrant" / "things" / write_behind.JOURNAL_DIR
    journal.mkdir()
    (journal / "0000000000.tmp").write_text('[[{"tags": ["never"]}, ["')  # killed mid-write
    store = open_store(path=str(tmp_path / "qdrant"))
    collection = store.open("things")
    assert collection.count(PointFilter(tags_any=["never"])) == 0
    store.close()
    assert _journal(tmp_path) == []
    (journal / "0000000003.json").write_text("not json")
    store = open_store(path=str(tmp_path / "qdrant"))
    with pytest.raises(StoreError, match="0000000003.json cannot be read.*Move it out of the way"):
        store.open("things")
    (journal / "0000000003.json").rename(tmp_path / "set-aside.json")
    assert store.open("things").count() == len(IDS), "once moved away, the collection opens"
    store.close()
