"""One contract, two backends: what every store must do for the rest of embedscape."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from store import CollectionNotFound, PointFilter, Store, StoreError, point_id


def _make(store: Store, n: int = 50, dim: int = 8):
    rng = np.random.default_rng(0)
    collection = store.create("things", dim, {"model": "test"})
    for field in ("label", "tags"):
        collection.create_index(field, "keyword")
    collection.create_index("brightness", "float")
    ids = [point_id(f"img/{i}.png") for i in range(n)]
    vectors = rng.normal(size=(n, dim)).astype(np.float32)
    payloads = [{"path": f"img/{i}.png", "label": "cat" if i % 2 else "dog", "tags": ["odd"] if i % 2 else [],
                 "brightness": i / n, "x": float(i), "y": 0.0} for i in range(n)]
    collection.upsert(ids, vectors, payloads)
    return collection, ids, vectors


def test_point_ids_are_stable_uuid5() -> None:
    # Pinned: a changed namespace or scheme would give every existing collection new ids
    # (re-indexing would then duplicate every point and orphan its tags).
    assert point_id("a/b.png") == "e67c77c5-5816-5134-ad12-87e3af959ba5"
    assert point_id("a/b.png") == point_id("a/b.png")
    assert point_id("a/b.png") != point_id("a/c.png")
    assert len(point_id("x")) == 36
    # The documented id (README): UUID5 of the relative path in the fixed namespace, so ids
    # made by earlier versions and by other tools that follow the README still match.
    import uuid

    from store.base import POINT_ID_NAMESPACE

    for path in ("a/b.png", "", "ünï 猫.webp", "x" * 500, "dir with space/IMG_0001.JPG"):
        assert point_id(path) == str(uuid.uuid5(POINT_ID_NAMESPACE, path))
    assert point_id("cat/1.png") == "a7aae30c-ebce-5014-8b06-4ad71440add7"  # pinned: ids must never change


def test_create_count_filter_and_facets(store: Store) -> None:
    collection, ids, _ = _make(store)
    assert store.list_collections() == ["things"]
    assert collection.count() == 50
    assert collection.count(PointFilter(labels=["cat"])) == 25
    assert collection.count(PointFilter(tags_any=["odd"])) == 25
    assert collection.count(PointFilter(tags_none=["odd"])) == 25
    assert collection.count(PointFilter(ids=ids[:7])) == 7
    assert collection.count(PointFilter(ranges={"brightness": (0.5, None)})) == 25
    assert collection.count(PointFilter(labels=["cat"], ranges={"brightness": (None, 0.1)})) == 3
    assert collection.label_counts() == {"cat": 25, "dog": 25}
    assert collection.tag_counts() == {"odd": 25}


def test_every_part_of_a_point_filter_alone_and_together(store: Store) -> None:
    """store/point_filter.py translates a PointFilter once for both backends: each part alone,
    and all of them at once (AND)."""
    collection, ids, _ = _make(store)
    collection.add_tag(ids[:10], "first")
    paths = {"path": [f"img/{i}.png" for i in range(5)]}
    assert collection.count(PointFilter()) == 50
    assert collection.count(PointFilter(tags_all=["odd", "first"])) == 5
    assert collection.count(PointFilter(tags_any=["odd", "first"])) == 30
    assert collection.count(PointFilter(values=paths)) == 5
    assert collection.count(PointFilter(ids=[])) == 0
    both = PointFilter(labels=["cat"], tags_all=["odd", "first"], tags_none=["never"], ids=ids[:6],
                       ranges={"brightness": (0.02, None)}, values=paths)
    assert sorted(collection.ids(both)) == sorted([ids[1], ids[3]])


def test_payload_indexes_are_created_listed_and_dropped(store: Store) -> None:
    collection, _, _ = _make(store)
    collection.create_index("path", "keyword")
    if not collection.indexed_fields():
        pytest.skip("qdrant-client's local mode (the server's stand-in) keeps no payload indexes")
    assert collection.indexed_fields() == {"label", "tags", "brightness", "path"}
    collection.drop_index("path")
    collection.drop_index("never-indexed")  # nothing to drop is not an error
    assert collection.indexed_fields() == {"label", "tags", "brightness"}
    assert collection.count(PointFilter(labels=["cat"])) == 25  # the values and other indexes stay
    assert sorted(collection.columns(["path"]).values["path"])[:2] == ["img/0.png", "img/1.png"]


def test_upsert_same_id_updates_instead_of_duplicating(store: Store) -> None:
    collection, ids, vectors = _make(store)
    collection.upsert(ids[:5], vectors[:5], [{"path": "changed", "label": "cow", "tags": []}] * 5)
    assert collection.count() == 50
    assert collection.count(PointFilter(labels=["cow"])) == 5


def test_columns_vectors_retrieve_and_search(store: Store) -> None:
    collection, ids, vectors = _make(store)
    columns = collection.columns(["label", "x"])
    assert sorted(columns.ids) == sorted(ids)
    by_id = dict(zip(columns.ids, columns.array("x")))
    assert by_id[ids[7]] == 7.0
    got_ids, got_vectors = collection.vectors()
    row = list(got_ids).index(ids[3])
    unit = vectors[3] / np.linalg.norm(vectors[3])
    assert np.allclose(got_vectors[row] / np.linalg.norm(got_vectors[row]), unit, atol=1e-5)
    hits = collection.search(vectors[3], limit=3, fields=["path"])
    assert hits[0].id == ids[3] and hits[0].payload["path"] == "img/3.png"
    assert hits[0].score == pytest.approx(1.0, abs=1e-4)
    filtered = collection.search(vectors[3], limit=3, flt=PointFilter(labels=["dog"]))
    assert ids[3] not in [h.id for h in filtered]
    records = collection.retrieve(ids[:2], ["label"])
    assert {r.id: r.payload for r in records} == {ids[0]: {"label": "dog"}, ids[1]: {"label": "cat"}}


def test_payload_updates_and_delete(store: Store) -> None:
    collection, ids, _ = _make(store)
    collection.set_payloads(ids[:3], [{"x": 100.0}, {"x": 101.0}, {"x": 102.0}])
    assert [r.payload["x"] for r in collection.retrieve(ids[:3], ["x"])] == [100.0, 101.0, 102.0]
    collection.set_payload(ids[:2], {"label": "bird"})
    assert collection.retrieve([ids[0]], ["label", "path"])[0].payload == {"label": "bird", "path": "img/0.png"}
    collection.delete_payload_keys(ids[:1], ["label"])
    assert "label" not in collection.retrieve([ids[0]])[0].payload
    collection.delete(ids[:10])
    assert collection.count() == 40


def test_tags_add_remove_keep_other_tags(store: Store) -> None:
    collection, ids, _ = _make(store)
    assert collection.add_tag(ids[:4], "snow") == 4
    assert collection.add_tag(ids[:4], "snow") == 0
    tags = {r.id: r.payload["tags"] for r in collection.retrieve(ids[:4], ["tags"])}
    assert tags == {ids[0]: ["snow"], ids[1]: ["odd", "snow"], ids[2]: ["snow"], ids[3]: ["odd", "snow"]}
    assert collection.remove_tag(ids[:2], "snow") == 2
    assert collection.tag_counts() == {"odd": 25, "snow": 2}


def test_concurrent_tagging_loses_no_tag(store: Store) -> None:
    collection, ids, _ = _make(store, n=200)
    names = [f"t{i}" for i in range(6)]
    threads = [threading.Thread(target=collection.add_tag, args=(ids[i * 20: i * 20 + 100], name))
               for i, name in enumerate(names)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    counts = collection.tag_counts()
    assert all(counts[name] == 100 for name in names)


def test_tag_edits_from_known_tags_match_reading_them(store: Store) -> None:
    collection, ids, _ = _make(store)
    current = [["odd"] if i % 2 else [] for i in range(6)]  # what _make wrote
    assert collection.add_tag(ids[:6], "snow", current) == 6
    tags = {r.id: r.payload["tags"] for r in collection.retrieve(ids[:6], ["tags"])}
    assert tags == {pid: [*current[i], "snow"] for i, pid in enumerate(ids[:6])}
    assert collection.remove_tag(ids[:6], "odd", [[*c, "snow"] for c in current]) == 3
    assert collection.tag_counts() == {"odd": 22, "snow": 6}


def test_a_shared_collection_reads_the_tags_back_whatever_the_caller_knows(store: Store) -> None:
    """Where other processes may write (a Qdrant server), a caller's copy can be stale, so
    the store reads the tags back and another tool's tags are kept."""
    collection, ids, _ = _make(store)
    if collection.exclusive:
        pytest.skip("no other process can write an embedded collection while it is open")
    assert collection.add_tag(ids[:2], "snow", [[], []]) == 2  # ids[1] holds "odd"
    assert collection.retrieve([ids[1]], ["tags"])[0].payload["tags"] == ["odd", "snow"]


def test_metadata_persists_across_reopen(store: Store, tmp_path) -> None:
    collection, _, _ = _make(store)
    collection.update_metadata(source_root="/data/x", projection={"n_neighbors": 15})
    collection.flush()
    metadata = store.open("things").read_metadata()
    assert metadata["source_root"] == "/data/x"
    assert metadata["projection"] == {"n_neighbors": 15}
    assert metadata["dimension"] == 8 and metadata["model"] == "test"


def test_missing_collection_and_bad_names_say_what_to_do(store: Store) -> None:
    with pytest.raises(CollectionNotFound, match="python app.py index"):
        store.open("nothing")
    for bad in ("../etc", "a/b", "", "x" * 200):
        with pytest.raises(StoreError, match="invalid collection name"):
            store.create(bad, 4, {})


def test_dimension_mismatch_is_refused(store: Store) -> None:
    _make(store)
    with pytest.raises(StoreError, match="8-d vectors"):
        store.open_or_create("things", 16, {})
    store.drop("things")
    assert store.list_collections() == []


def test_relabel_keeps_original_and_restores(store: Store) -> None:
    collection, ids, _ = _make(store)
    assert collection.relabel(ids[:3], "fox") == 3          # ids 0, 2 were dog; 1 was cat
    first = {r.id: r.payload for r in collection.retrieve(ids[:3], ["label", "original_label"])}
    assert first[ids[0]] == {"label": "fox", "original_label": "dog"}
    assert first[ids[1]] == {"label": "fox", "original_label": "cat"}
    assert collection.relabel(ids[:1], "wolf") == 1         # a second relabel keeps the first original
    assert collection.retrieve(ids[:1], ["original_label"])[0].payload == {"original_label": "dog"}
    assert collection.count(PointFilter(labels=["fox"])) == 2
    assert collection.restore_labels(ids[:3]) == 3
    restored = {r.id: r.payload for r in collection.retrieve(ids[:3], ["label", "original_label"])}
    assert restored == {ids[0]: {"label": "dog"}, ids[1]: {"label": "cat"}, ids[2]: {"label": "dog"}}
    assert collection.restore_labels(ids[:3]) == 0
