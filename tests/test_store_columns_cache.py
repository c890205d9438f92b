"""The embedded store's column cache (store/columns_cache.py): `columns()` answers exactly what a
scan of the engine answers, with the cache and without, and every write through store/ keeps
the cache current or removes it, in this process and in the next one."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from store import Collection, Columns, PointFilter, Store, open_store, point_id
from store.columns_cache import FILE_NAME, SnapshotBuilder
from store.edge import EdgeCollection

ROOT = Path(__file__).resolve().parents[1]
N = 40
IDS = [point_id(f"img/{i}.png") for i in range(N)]
FIELD_SETS = (["label", "tags", "x", "y"], ["path", "label", "tags", "x", "y"], ["x"], ["tags"], [])
# Tags the engine counts as empty ([], null, absent) and values it does not ("", {}, [None]).
# Map coordinates as the indexer writes them: float32 values in float64, which the engine
# stores one unit in the last place off for about 1 in 9 (a cache must hold what it stores).
UGLY = [float(v) for v in np.random.default_rng(1).normal(size=N).astype(np.float32) * 9]
TAG_CASES: list[Any] = [[], None, "absent", ["a"], ["a", "b"], "", {}, [None], "one"]


def _payload(i: int) -> dict[str, Any]:
    payload: dict[str, Any] = {"path": f"img/{i}.png", "label": ["cat", "dog", "čaj ☕"][i % 3],
                               "x": UGLY[i], "y": 1e-3 * i, "split": "train"}
    if i % 7 == 0:
        payload["label"] = None  # a null label
    if i % 11 == 0:
        del payload["x"]  # a point not yet on the map
    tags = TAG_CASES[i % len(TAG_CASES)]
    if tags != "absent":
        payload["tags"] = tags
    return payload


def _fill(store: Store, name: str = "things") -> Collection:
    collection = store.create(name, 4, {"model": "test"})
    for field in ("label", "tags"):
        collection.create_index(field, "keyword")
    vectors = np.random.default_rng(0).normal(size=(N, 4)).astype(np.float32)
    collection.upsert(IDS, vectors, [_payload(i) for i in range(N)])
    return collection


def _typed(columns: Columns) -> tuple[Any, ...]:
    """Everything a caller can see, types included (3 and 3.0 differ, [] and None differ)."""
    values = {name: [(type(v).__name__, v) for v in column] for name, column in columns.values.items()}
    return columns.ids.dtype, columns.ids.tolist(), list(columns.values), values


def _assert_same_as_scan(collection: Collection, fields_sets: Any = FIELD_SETS) -> None:
    for fields in fields_sets:
        scanned = Collection.columns(collection, fields)  # the shared path: scroll, record by record
        assert _typed(collection.columns(fields)) == _typed(scanned), fields


def _reopen(store: Store, root: Path, name: str = "things") -> tuple[Store, EdgeCollection]:
    store.close()
    store = open_store(path=str(root))
    collection = store.open(name)
    assert isinstance(collection, EdgeCollection)
    return store, collection


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("QDRANT_URL", raising=False)
    monkeypatch.setenv("EMBEDSCAPE_ARTIFACTS", str(tmp_path / "artifacts"))
    return tmp_path / "qdrant"


@pytest.fixture
def rebuilds(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the scans that (re)build the cache."""
    calls: list[int] = []
    original = EdgeCollection._rebuild_cache

    def counting(self: EdgeCollection, *args: Any) -> Columns:
        calls.append(1)
        return original(self, *args)

    monkeypatch.setattr(EdgeCollection, "_rebuild_cache", counting)
    return calls


def test_cached_columns_are_exactly_a_scan(store: Store) -> None:
    """Both backends: nulls, absent fields, [] / null / absent tags and odd tag values."""
    collection = _fill(store)
    _assert_same_as_scan(collection)
    _assert_same_as_scan(collection)  # the second time from the cache, on the edge backend


def test_the_next_process_reads_the_file_instead_of_scanning(root: Path, rebuilds: list[int]) -> None:
    store = open_store(path=str(root))
    collection = _fill(store)
    collection.columns(["label"])
    assert len(rebuilds) == 1 and (root / "things" / FILE_NAME).exists()
    store, collection = _reopen(store, root)
    _assert_same_as_scan(collection)
    assert len(rebuilds) == 1
    store.close()


@pytest.mark.parametrize("write", [
    "set_payload", "set_payloads", "map", "delete_keys", "relabel", "restore", "tags", "tags_to_empty",
    "tags_null", "tags_each", "same_point_twice", "upsert_new", "upsert_existing", "delete", "int_x", "other_field",
])
def test_every_write_through_the_store_keeps_columns_exact(root: Path, rebuilds: list[int], write: str) -> None:
    store = open_store(path=str(root))
    collection = _fill(store)
    collection.columns(["label"])  # builds the cache
    _WRITES[write](collection)
    _assert_same_as_scan(collection)  # in this process
    if write not in ("upsert_new", "upsert_existing", "int_x"):  # writes the copy cannot follow
        assert len(rebuilds) == 1, "the cache in memory should have followed the write"
    store, collection = _reopen(store, root)
    before = len(rebuilds)
    _assert_same_as_scan(collection)  # and in the next one
    if write != "int_x":  # an int x cannot be held as a float: that collection always scans
        assert len(rebuilds) == before, "the file written at close should have been used"
    store.close()


def _upsert(collection: Collection, ids: list[str], payloads: list[dict[str, Any]]) -> None:
    collection.upsert(ids, np.ones((len(ids), 4), np.float32), payloads)


_WRITES = {
    "set_payload": lambda c: c.set_payload(IDS[:5], {"label": "bird", "x": UGLY[7]}),
    "set_payloads": lambda c: c.set_payloads(IDS[:3], [{"x": UGLY[3]}, {"y": -2.0, "path": "p"}, {"label": None}]),
    "map": lambda c: c.set_payloads(IDS, [{"x": UGLY[-i], "y": UGLY[i] / 3} for i in range(N)]),
    "delete_keys": lambda c: c.delete_payload_keys(IDS[3:9], ["label", "x", "tags"]),
    "relabel": lambda c: c.relabel(IDS[:6], "fox"),
    "restore": lambda c: (c.relabel(IDS[:6], "fox"), c.restore_labels(IDS[:4])),
    "tags": lambda c: (c.add_tag(IDS[:20], "snow"), c.remove_tag(IDS[10:30], "a")),
    # absent tags -> ["x"] -> []: the point's empty tags are [] now, no longer null
    "tags_to_empty": lambda c: (c.add_tag(IDS[:18], "x"), c.remove_tag(IDS[:18], "x")),
    "tags_null": lambda c: c.set_payload(IDS[:9], {"tags": None}),
    "tags_each": lambda c: c.set_payloads(IDS[:4], [{"tags": []}, {"tags": None}, {"tags": ["z"]}, {}]),
    "same_point_twice": lambda c: c.set_payloads([IDS[1], IDS[1]], [{"x": 1.0}, {"x": 2.0, "label": "second"}]),
    "upsert_new": lambda c: _upsert(c, [point_id("new/1.png"), point_id("new/2.png")],
                                    [{"label": "new", "tags": ["t"]}, {"path": "n", "x": 0.5}]),
    "upsert_existing": lambda c: _upsert(c, IDS[:2], [{"label": "replaced"}, {}]),
    "delete": lambda c: c.delete(IDS[::3]),
    "int_x": lambda c: c.set_payload(IDS[:2], {"x": 3}),
    "other_field": lambda c: c.set_payloads(IDS[:4], [{"score": float(i)} for i in range(4)]),
}


def test_a_write_by_a_killed_process_is_seen(root: Path) -> None:
    """A process that writes through the store and dies before any flush or close: the cache
    file went before its write reached the engine, so the next process scans."""
    store = open_store(path=str(root))
    _fill(store).columns(["label"])
    store.close()
    assert (root / "things" / FILE_NAME).exists()
    code = (f"import os, sys; sys.path.insert(0, {str(ROOT)!r}); from store import open_store; "
            f"c = open_store(path={str(root)!r}).open('things'); c.set_payload({IDS[:4]!r}, {{'label': 'killed'}}); "
            "os._exit(0)")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    assert not (root / "things" / FILE_NAME).exists()
    store = open_store(path=str(root))
    collection = store.open("things")
    _assert_same_as_scan(collection)
    labels = collection.columns(["label"])
    assert [dict(zip(labels.ids, labels.values["label"]))[pid] for pid in IDS[:4]] == ["killed"] * 4
    store.close()


def test_a_write_by_another_process_that_closes_leaves_a_current_file(root: Path, rebuilds: list[int]) -> None:
    store = open_store(path=str(root))
    _fill(store).columns(["label"])
    store.close()
    code = (f"import sys; sys.path.insert(0, {str(ROOT)!r}); from store import open_store; "
            f"s = open_store(path={str(root)!r}); c = s.open('things'); c.relabel({IDS[:4]!r}, 'other'); "
            f"c.delete({IDS[-3:]!r}); s.close()")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    store = open_store(path=str(root))
    collection = store.open("things")
    _assert_same_as_scan(collection)
    assert len(rebuilds) == 1 and len(collection.columns([])) == N - 3  # only the first build
    store.close()


def test_a_file_that_does_not_match_the_engine_is_rebuilt(root: Path, rebuilds: list[int]) -> None:
    store = open_store(path=str(root))
    collection = _fill(store)
    collection.columns(["label"])
    store.close()
    cache = root / "things" / FILE_NAME
    old = cache.read_bytes()
    store = open_store(path=str(root))
    store.open("things").delete(IDS[:2])
    store, collection = _reopen(store, root)
    cache.write_bytes(old)  # as if restored from a backup: two points too many
    _assert_same_as_scan(collection)
    cache.write_bytes(old[: len(old) // 2])  # a torn file
    store, collection = _reopen(store, root)
    _assert_same_as_scan(collection)
    assert len(rebuilds) == 3
    store.close()


def test_a_write_during_a_rebuild_keeps_that_scan_out_of_the_cache(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = open_store(path=str(root))
    collection = _fill(store)
    finish = SnapshotBuilder.finish

    def finish_then_write(builder: Any) -> Any:
        snapshot = finish(builder)
        collection.set_payload(IDS[:1], {"label": "meanwhile"})  # lands after the scan read it
        return snapshot

    monkeypatch.setattr(SnapshotBuilder, "finish", finish_then_write)
    collection.columns(["label"])
    assert not (root / "things" / FILE_NAME).exists()
    monkeypatch.setattr(SnapshotBuilder, "finish", finish)
    labels = collection.columns(["label"])  # scans again, and this scan is kept
    assert labels.values["label"][labels.ids.tolist().index(IDS[0])] == "meanwhile"
    assert (root / "things" / FILE_NAME).exists()
    _assert_same_as_scan(collection)
    store.close()


def test_filtered_reads_and_other_fields_scan(root: Path) -> None:
    store = open_store(path=str(root))
    collection = _fill(store)
    collection.columns(["label"])
    for fields, flt in ((["label", "x"], PointFilter(labels=["cat"])), (["split", "label"], None),
                        (["label", "label"], None)):
        assert _typed(collection.columns(fields, flt)) == _typed(Collection.columns(collection, fields, flt))
    store.close()


def test_a_recreated_collection_does_not_inherit_the_cache(root: Path) -> None:
    store = open_store(path=str(root))
    _fill(store).columns(["label"])
    store.drop("things")
    collection = store.create("things", 4, {})
    assert collection.columns(["label", "tags"]).ids.tolist() == []
    store.close()


def test_indexing_leaves_a_current_cache(root: Path, tmp_path: Path, mobilenet: Any, rebuilds: list[int]) -> None:
    """The indexer's upserts, label writes, deletes and map writes: after it, the next process
    reads the cache (no scan) and gets what a scan gets, also after a re-index."""
    from conftest import write_image
    from indexer.pipeline import IndexOptions
    from scoring.indexing import index_and_analyze

    images = tmp_path / "images"
    for i in range(6):
        write_image(images / f"{'red' if i % 2 else 'blue'}/{i}.png", seed=i)

    def index() -> None:
        store = open_store(path=str(root))
        try:
            index_and_analyze(images, store, IndexOptions("c", "mobilenet-v2", batch_size=4, progress=False), mobilenet)
        finally:
            store.close()

    index()
    store = open_store(path=str(root))
    store.open("c").add_tag([point_id("red/1.png")], "kept")
    store.close()
    (images / "blue/0.png").unlink()
    write_image(images / "red/7.png", seed=7)
    index()
    assert (root / "c" / FILE_NAME).exists()
    before = len(rebuilds)
    store = open_store(path=str(root))
    collection = store.open("c")
    _assert_same_as_scan(collection)
    assert len(rebuilds) == before
    columns = collection.columns(["path", "tags"])
    assert sorted(columns.values["path"]) == ["blue/2.png", "blue/4.png", "red/1.png", "red/3.png", "red/5.png",
                                              "red/7.png"]
    assert dict(zip(columns.values["path"], columns.values["tags"]))["red/1.png"] == ["kept"]
    store.close()
