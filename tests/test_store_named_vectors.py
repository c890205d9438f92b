"""Named vectors on both store backends: a second vector added to existing points keeps their
ids, payloads and default vectors; it is searched, read and filtered on by its name, and a
reopened collection still has it."""
from __future__ import annotations

import numpy as np
import pytest

from store import DEFAULT_VECTOR, PointFilter, StoreError, open_store, point_id


def _unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def _filled(store, n: int = 30):
    rng = np.random.default_rng(1)
    collection = store.create("nv", 8, {"model": "first"})
    collection.create_index("tags", "keyword")
    ids = [point_id(f"img/{i}.png") for i in range(n)]
    default = _unit(rng.normal(size=(n, 8)))
    collection.upsert(ids, default, [{"path": f"img/{i}.png", "label": "ab"[i % 2], "tags": ["keep"] if i < 3 else []}
                                     for i in range(n)])
    return collection, ids, default


def test_add_vector_keeps_points_and_is_searchable(store) -> None:
    collection, ids, default = _filled(store)
    second = _unit(np.random.default_rng(2).normal(size=(len(ids), 5)))
    collection.add_vector("m2", 5)
    assert collection.vector_names() == {"m2": 5}
    assert collection.count(PointFilter(lacks_vector="m2")) == len(ids)
    collection.set_vectors("m2", ids[:20], second[:20])
    assert collection.count(PointFilter(lacks_vector="m2")) == 10
    collection.set_vectors("m2", ids[20:], second[20:])
    assert collection.count(PointFilter(lacks_vector="m2")) == 0

    got_ids, got = collection.vectors(using="m2")
    order = [ids.index(i) for i in got_ids]
    np.testing.assert_allclose(got, second[order], atol=1e-5)
    got_ids, got = collection.vectors()  # the default vector is what it was
    np.testing.assert_allclose(got, default[[ids.index(i) for i in got_ids]], atol=1e-5)
    assert collection.dimension == 8
    assert collection.count(PointFilter(tags_any=["keep"])) == 3  # payloads untouched

    hits = collection.search(second[7], limit=1, using="m2", fields=["path"])
    assert hits[0].id == ids[7] and hits[0].payload["path"] == "img/7.png"
    hits = collection.search(default[7], limit=1)
    assert hits[0].id == ids[7]
    record = collection.retrieve([ids[4]], [], with_vectors=True, using="m2")[0]
    np.testing.assert_allclose(record.vector, second[4], atol=1e-5)


def test_add_vector_refuses_another_dimension_and_bad_names(store) -> None:
    collection, _, _ = _filled(store, 4)
    collection.add_vector("m2", 5)
    collection.add_vector("m2", 5)  # the same again: nothing to do
    with pytest.raises(StoreError, match="5-d vectors named 'm2'"):
        collection.add_vector("m2", 6)
    with pytest.raises(StoreError, match="invalid vector name"):
        collection.add_vector("a b/..", 5)


@pytest.mark.parametrize("backend", ["edge", "client-local"])
def test_named_vector_survives_reopen(tmp_path, monkeypatch, backend: str) -> None:
    monkeypatch.setenv("EMBEDSCAPE_ARTIFACTS", str(tmp_path / "artifacts"))

    def reopen():
        if backend == "edge":
            return open_store(path=str(tmp_path / "q"))
        return open_store(local_client_path=str(tmp_path / "q-local"))

    store = reopen()
    collection, ids, _ = _filled(store, 6)
    collection.add_vector("m2", 3)
    collection.set_vectors("m2", ids, _unit(np.arange(18, dtype=np.float32).reshape(6, 3) + 1))
    collection.optimize()
    store.close()
    store = reopen()
    collection = store.open("nv")
    assert collection.vector_names() == {"m2": 3}
    got_ids, got = collection.vectors(using="m2")
    assert len(got_ids) == 6 and got.shape == (6, 3)
    assert collection.vectors(using=DEFAULT_VECTOR)[1].shape == (6, 8)
    store.close()


def test_push_carries_named_vectors(tmp_path, monkeypatch) -> None:
    from store.push import open_target_store, push_collection

    monkeypatch.setenv("EMBEDSCAPE_ARTIFACTS", str(tmp_path / "artifacts"))
    source_store = open_store(path=str(tmp_path / "edge"))
    collection, ids, _ = _filled(source_store, 12)
    second = _unit(np.random.default_rng(4).normal(size=(12, 5)))
    collection.add_vector("m2", 5)
    collection.set_vectors("m2", ids[:10], second[:10])  # two points without it
    target_store = open_target_store(local_path=str(tmp_path / "server"))
    push_collection(collection, target_store, batch=5)
    pushed = target_store.open("nv")
    assert pushed.vector_names() == {"m2": 5}
    got_ids, got = pushed.vectors(using="m2")
    assert sorted(got_ids) == sorted(ids[:10])
    np.testing.assert_allclose(got, second[[ids.index(i) for i in got_ids]], atol=1e-5)
    assert pushed.count(PointFilter(lacks_vector="m2")) == 2
    target_store.close()
    source_store.close()
