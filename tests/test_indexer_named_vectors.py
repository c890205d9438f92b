"""`index --add-vector`: a second model's vectors (a tiny CLIP built at test time, beside
mobilenet-v2) or a file's vectors added to every point of an existing collection, on both
store backends and through the command line."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

import app
from conftest import write_image
from indexer.named_vectors import add_model_vector, load_map
from indexer.pipeline import IndexOptions
from scoring.indexing import index_and_analyze
from store import PointFilter, open_store, point_id

LABELS = ("apple", "pear", "plum")


def _images(root: Path, per_label: int = 4) -> Path:
    for index, label in enumerate(LABELS):
        for i in range(per_label):
            write_image(root / label / f"{i}.png", seed=100 * index + i)
    return root


def test_add_model_vector_on_both_backends(store, tmp_path: Path, mobilenet, tiny_clip: Path) -> None:
    root = _images(tmp_path / "images")
    index_and_analyze(root, store, IndexOptions("c", model="mobilenet-v2", progress=False, analyze=False), mobilenet)
    collection = store.open("c")
    tagged = point_id("pear/1.png")
    collection.add_tag([tagged], "keep")
    before = {r.id: r.payload for batch in collection.scroll(None) for r in batch}
    _, default_before = collection.vectors()

    report = add_model_vector(root, store, IndexOptions("c", model=str(tiny_clip), progress=False), "clip")
    assert (report.written, report.already, report.missing, report.dimension) == (12, 0, 0, 16)
    after = {r.id: r.payload for batch in collection.scroll(None) for r in batch}
    assert after == before  # ids, labels, tags, map: all as they were
    np.testing.assert_array_equal(collection.vectors()[1], default_before)
    ids, clip_vectors = collection.vectors(using="clip")
    assert clip_vectors.shape == (12, 16) and set(ids) == set(before)
    about = collection.read_metadata()["vectors"]["clip"]
    assert about["model"] == str(tiny_clip) and about["precision"] == "fp32" and about["dimension"] == 16
    map_ids, coords = load_map(collection, "clip")
    assert set(map_ids) == set(before) and coords.shape == (12, 2) and np.isfinite(coords).all()
    assert (collection.artifact_dir / "knn-clip.npz").is_file()

    again = add_model_vector(root, store, IndexOptions("c", model=str(tiny_clip), progress=False), "clip")
    assert (again.written, again.already) == (0, 12)  # nothing left to embed


def test_add_vector_resumes_after_a_reindex_dropped_it(store, tmp_path: Path, mobilenet, tiny_clip: Path) -> None:
    """A changed image is upserted again with its default vector only (Qdrant replaces the
    point's vectors): running --add-vector again embeds just that one."""
    root = _images(tmp_path / "images")
    options = IndexOptions("c", model="mobilenet-v2", progress=False, analyze=False)
    index_and_analyze(root, store, options, mobilenet)
    add_model_vector(root, store, IndexOptions("c", model=str(tiny_clip), progress=False), "clip")
    write_image(root / "plum" / "2.png", seed=999)
    index_and_analyze(root, store, options, mobilenet)
    collection = store.open("c")
    assert collection.ids(PointFilter(lacks_vector="clip")) == [point_id("plum/2.png")]
    report = add_model_vector(root, store, IndexOptions("c", model=str(tiny_clip), progress=False), "clip")
    assert (report.written, report.already) == (1, 11)
    assert collection.count(PointFilter(lacks_vector="clip")) == 0


def test_add_vector_refuses_another_model_under_the_same_name(store, tmp_path: Path, mobilenet,
                                                              tiny_clip: Path) -> None:
    root = _images(tmp_path / "images", 2)
    index_and_analyze(root, store, IndexOptions("c", model="mobilenet-v2", progress=False, analyze=False), mobilenet)
    add_model_vector(root, store, IndexOptions("c", model=str(tiny_clip), progress=False), "second", mobilenet)
    from store import StoreError

    with pytest.raises(StoreError, match="vector 'second' of collection 'c' holds mobilenet-v2"):
        add_model_vector(root, store, IndexOptions("c", model=str(tiny_clip), progress=False), "second")


def test_cli_add_vector_from_model_and_from_file(tmp_path: Path, tiny_clip: Path,
                                                 capsys: pytest.CaptureFixture) -> None:
    root = _images(tmp_path / "images")
    qdrant = ["--qdrant-path", str(tmp_path / "q")]
    assert app.main([*qdrant, "index", str(root), "--collection", "c", "--model", "mobilenet-v2",
                     "--no-analyze"]) == 0
    assert app.main([*qdrant, "tag", "--collection", "c", "--label", "plum", "--add", "p"]) == 0
    assert app.main([*qdrant, "index", str(root), "--collection", "c", "--model", str(tiny_clip),
                     "--add-vector", "clip"]) == 0
    assert "vector 'clip'" in capsys.readouterr().out

    paths = sorted(str(p.relative_to(root).as_posix()) for p in root.rglob("*.png"))
    rng = np.random.default_rng(3)
    np.save(tmp_path / "pixels.npy", rng.normal(size=(len(paths) + 1, 7)).astype(np.float32))
    with open(tmp_path / "pixels.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path"])
        writer.writerows([[p] for p in paths] + [["not/a/point.png"]])
    assert app.main([*qdrant, "index", str(root), "--collection", "c", "--embeddings", str(tmp_path / "pixels.npy"),
                     "--allow-missing-files", "--add-vector", "pixels"]) == 0
    out = capsys.readouterr().out
    assert "written to 12 points" in out and "1 rows of the file name no point" in out

    assert app.main([*qdrant, "info", "--collection", "c", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["model"] == "mobilenet-v2" and info["dimension"] == 1280  # the default vector stays
    assert {name: about["dimension"] for name, about in info["vectors"].items()} == {"": 1280, "clip": 16, "pixels": 7}
    assert info["vectors"]["pixels"]["vectors_from"]["file"] == "pixels.npy"
    assert info["tags"] == {"p": 4}
    assert app.main([*qdrant, "info", "--collection", "c"]) == 0
    assert "vector       pixels: embeddings:pixels.npy, precision not recorded, 7-d, 12 points" in capsys.readouterr().out


def test_cli_add_vector_needs_a_collection_and_a_source(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root = _images(tmp_path / "images", 1)
    qdrant = ["--qdrant-path", str(tmp_path / "q")]
    assert app.main([*qdrant, "index", str(root), "--collection", "nope", "--model", "mobilenet-v2",
                     "--add-vector", "m"]) == 2
    assert "no collection 'nope': index it first" in capsys.readouterr().err
    assert app.main([*qdrant, "index", str(root), "--collection", "nope", "--add-vector"]) == 2
    assert "--add-vector needs the second model" in capsys.readouterr().err
    assert app.main([*qdrant, "index", str(root), "--collection", "nope", "--model", "mobilenet-v2", "--reembed",
                     "--add-vector", "m"]) == 2
    assert "leave out --labels, --reembed" in capsys.readouterr().err


# --- compare-models -----------------------------------------------------------------------
def _two_model_collection(store, tmp_path: Path, per_class: int = 30):
    """A collection whose default vector separates three classes cleanly and whose second
    vector ('noisy') mixes two of them: a known answer for the comparison."""
    rng = np.random.default_rng(0)
    labels = np.repeat(["a", "b", "c"], per_class)
    centres = np.eye(3, 12) * 6
    clean = centres[np.searchsorted(["a", "b", "c"], labels)] + rng.normal(size=(len(labels), 12))
    mixed = clean.copy()
    mixed[labels == "b", 1] = 0.0
    mixed[labels == "b", 0] = 6.0  # b looks like a to the second model
    noisy = mixed[:, :8] + rng.normal(size=(len(labels), 8))
    collection = store.create("m", 12, {"model": "clean-model"})
    ids = [point_id(f"{label}/{i}.png") for i, label in enumerate(labels)]
    collection.upsert(ids, clean.astype(np.float32), [{"path": f"{l}/{i}.png", "label": l, "tags": []}
                                                     for i, l in enumerate(labels)])
    collection.add_vector("noisy", 8)
    collection.set_vectors("noisy", ids, noisy.astype(np.float32))
    collection.update_metadata(vectors={"noisy": {"dimension": 8, "model": "noisy-model"}})
    return collection, ids, labels


def test_compare_models_on_both_backends(store, tmp_path: Path) -> None:
    from scoring.model_compare import compare_models, format_comparison

    collection, ids, labels = _two_model_collection(store, tmp_path)
    result = compare_models(collection)  # the only two vectors
    table = result.as_dict()
    clean, noisy = table["per_model"]
    assert table["vectors"] == ["default", "noisy"] and table["models"] == ["clean-model", "noisy-model"]
    assert clean["probe_accuracy"] > 0.95 and noisy["probe_accuracy"] < 0.85
    assert "default separates these labels better" in table["verdict"]
    assert noisy["confused_pairs"][0]["class_a"] == "a" and noisy["confused_pairs"][0]["class_b"] == "b"
    overlap = {r.id: r.payload["model_overlap"] for batch in collection.scroll(["model_overlap"]) for r in batch}
    assert set(overlap) == set(ids)
    by_class = {c: np.mean([overlap[i] for i, l in zip(ids, labels) if l == c]) for c in "abc"}
    assert by_class["c"] > by_class["b"]  # class c keeps its neighbours; a and b are mixed by the second model
    worst = table["most_different"][0]
    assert worst["overlap"] == min(overlap.values()) and worst["path"].split("/")[0] in ("a", "b")
    text = format_comparison(table)
    assert "linear-probe accuracy (5-fold)" in text and "verdict: default separates" in text

    # The explorer offers it for colouring and for sorting the grid; sorted, the most different come first.
    from ui.explorer import colour_fields, ordered
    from ui.live_table import LiveTable
    from ui.state import MapState

    point_table = LiveTable(collection).table
    assert "model_overlap" in colour_fields(point_table)
    rows, _ = ordered(point_table, MapState(sort_field="model_overlap"), np.arange(len(point_table)), None)
    assert point_table.ids[int(rows[0])] == worst["id"] or overlap[point_table.ids[int(rows[0])]] == worst["overlap"]


def test_compare_models_names_its_vectors(store, tmp_path: Path) -> None:
    from scoring.model_compare import compare_models
    from store import StoreError

    collection, _, _ = _two_model_collection(store, tmp_path)
    with pytest.raises(StoreError, match="has no vector 'nope'"):
        compare_models(collection, "default", "nope")
    collection.add_vector("third", 4)
    with pytest.raises(StoreError, match="has 3 vectors \\(default, noisy, third\\); name the two"):
        compare_models(collection)


def test_cli_compare_models_and_export_column(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    store = open_store(path=str(tmp_path / "q"))
    _two_model_collection(store, tmp_path)
    store.close()
    qdrant = ["--qdrant-path", str(tmp_path / "q")]
    assert app.main([*qdrant, "compare-models", "--collection", "m", "default", "noisy", "--json"]) == 0
    table = json.loads(capsys.readouterr().out)
    assert table["verdict"].startswith("default separates")
    assert app.main([*qdrant, "compare-models", "--collection", "m"]) == 0
    assert "most different neighbourhoods (10):" in capsys.readouterr().out
    assert app.main([*qdrant, "compare-models", "--collection", "m", "noisy"]) == 2
    assert app.main([*qdrant, "export", "--collection", "m", "--format", "csv", "--out", str(tmp_path / "m.csv"),
                     "--range", "model_overlap:0:0.5"]) == 0
    with open(tmp_path / "m.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows and all(float(row["model_overlap"]) <= 0.5 for row in rows)


# --- analyze --vector ------------------------------------------------------------------------
def _same(a: dict, b: dict) -> bool:
    """Equal score records; floats to within 1e-9 (the embedded engine reads a rewritten
    payload's floats back to within an ulp)."""
    return a.keys() == b.keys() and all(
        a[k] == pytest.approx(b[k], rel=1e-9) if isinstance(b[k], float) else a[k] == b[k] for k in b)


def _scores(collection) -> dict[str, dict]:
    fields = ["mislabel_score", "suggested_label", "quality_flags", "outlier_score", "scores_by_vector",
              "mislabel_flagged_by"]
    return {r.id: dict(r.payload) for b in collection.scroll(fields) for r in b}


def test_analyze_by_either_model_keeps_both_models_scores_and_either_queue(tmp_path: Path,
                                                                           capsys: pytest.CaptureFixture) -> None:
    from review.book import ReviewBook
    from review.decisions import KEPT
    from ui.quality_page import analysis_vector

    store = open_store(path=str(tmp_path / "q"))
    collection, ids, labels = _two_model_collection(store, tmp_path)
    wrong = [ids[i] for i in np.flatnonzero(labels == "c")[:3]]  # c points labelled a: both models see c
    collection.set_payload(wrong, {"label": "a"})
    store.close()
    qdrant = ["--qdrant-path", str(tmp_path / "q")]
    assert app.main([*qdrant, "analyze", "--collection", "m", "--clusters", "none"]) == 0
    store = open_store(path=str(tmp_path / "q"))
    default_only = {pid: {k: v for k, v in p.items() if k != "mislabel_flagged_by"}
                    for pid, p in _scores(store.open("m")).items()}
    store.close()
    assert app.main([*qdrant, "analyze", "--collection", "m", "--vector", "noisy"]) == 0
    assert app.main([*qdrant, "analyze", "--collection", "m", "--vector", "nope"]) == 2
    assert "has no vector 'nope'" in capsys.readouterr().err

    store = open_store(path=str(tmp_path / "q"))
    collection = store.open("m")
    payloads = _scores(collection)
    # The default vector's scores are where they were; the second model's are its own.
    assert {pid: {k: v for k, v in p.items() if k not in ("mislabel_flagged_by", "scores_by_vector")}
            for pid, p in payloads.items()} == default_only
    noisy = {pid: p["scores_by_vector"]["noisy"] for pid, p in payloads.items()}
    assert all({"mislabel_score", "suggested_label", "quality_flags", "cluster"} <= set(s) for s in noisy.values())
    default_flagged = {pid for pid, p in payloads.items() if "mislabel" in (p.get("quality_flags") or [])}
    noisy_flagged = {pid for pid, s in noisy.items() if "mislabel" in s["quality_flags"]}
    assert set(wrong) <= default_flagged & noisy_flagged and noisy_flagged - default_flagged  # the a/b mix
    metadata = collection.read_metadata()
    assert metadata["analysis"]["vector"] == "" and metadata["analysis_by_vector"]["noisy"]["mislabels"] == len(
        noisy_flagged)
    assert (collection.artifact_dir / "confused-pairs-noisy.json").is_file()
    assert analysis_vector(collection) == ("", "clean-model (vector default)")
    both = {pid for pid, p in payloads.items() if p.get("mislabel_flagged_by") == ["default", "noisy"]}
    assert set(wrong) <= both == default_flagged & noisy_flagged
    assert set(collection.ids(PointFilter(values={"mislabel_flagged_by": ["default"]}))) == default_flagged

    # Either model's queue: its own flags, labels both doubt first; a decision records its suggestion.
    for vector, flagged in (("", default_flagged), ("noisy", noisy_flagged)):
        queue = [item for item in ReviewBook(collection, vector).items("mislabel") if item.flagged]
        assert {item.key for item in queue} == flagged
        assert {item.key for item in queue[:len(both)]} == both and all(item.models == 2 for item in queue[:len(both)])
    only_noisy = sorted(noisy_flagged - default_flagged)[0]
    ReviewBook(collection, "noisy").decide("mislabel", [only_noisy], KEPT)
    entry = collection.retrieve([only_noisy], ["review"])[0].payload["review"]["mislabel"]
    assert entry["suggested"] == noisy[only_noisy]["suggested_label"]
    store.close()

    # Analysing the default vector again leaves the second model's scores in place.
    assert app.main([*qdrant, "analyze", "--collection", "m", "--clusters", "none"]) == 0
    store = open_store(path=str(tmp_path / "q"))
    after = {pid: p["scores_by_vector"]["noisy"] for pid, p in _scores(store.open("m")).items()}
    assert after.keys() == noisy.keys() and all(_same(after[pid], noisy[pid]) for pid in noisy)
    store.close()


def test_each_named_vectors_scores_are_kept_beside_the_others_on_both_backends(store, tmp_path: Path) -> None:
    from scoring.analyze import analyze_collection

    collection, ids, _ = _two_model_collection(store, tmp_path)
    third = np.random.default_rng(3).normal(size=(len(ids), 5)).astype(np.float32)
    collection.add_vector("other", 5)
    collection.set_vectors("other", ids, third)
    analyze_collection(collection, clusters=None)
    default_only = _scores(collection)
    analyze_collection(collection, clusters=None, vector="noisy")
    after_noisy = _scores(collection)
    analyze_collection(collection, clusters=None, vector="other")
    payloads = _scores(collection)
    plain = ("mislabel_score", "suggested_label", "quality_flags", "outlier_score")
    assert all(payloads[pid].get(k) == p.get(k) for pid, p in default_only.items() for k in plain)
    for pid, payload in payloads.items():
        assert set(payload["scores_by_vector"]) == {"noisy", "other"}
        assert _same(payload["scores_by_vector"]["noisy"], after_noisy[pid]["scores_by_vector"]["noisy"])
    assert set(collection.read_metadata()["analysis_by_vector"]) == {"noisy", "other"}


def test_pixel_vectors_script_gives_a_second_model_from_a_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """scripts/pixel_vectors.py (the demo's weightless second model) through --add-vector."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    from pixel_vectors import main as pixel_main

    root = _images(tmp_path / "images", 3)
    qdrant = ["--qdrant-path", str(tmp_path / "q")]
    assert app.main([*qdrant, "index", str(root), "--collection", "c", "--model", "mobilenet-v2", "--no-analyze"]) == 0
    assert pixel_main([str(root), str(tmp_path / "px.npy"), "--side", "8"]) == 0
    assert np.load(tmp_path / "px.npy").shape == (9, 64)
    assert app.main([*qdrant, "index", str(root), "--collection", "c", "--embeddings", str(tmp_path / "px.npy"),
                     "--model", "pixels-8x8", "--add-vector", "pixels"]) == 0
    capsys.readouterr()
    assert app.main([*qdrant, "compare-models", "--collection", "c", "--json"]) == 0
    table = json.loads(capsys.readouterr().out)
    assert table["vectors"] == ["default", "pixels"] and table["models"][1] == "pixels-8x8"
    assert table["models"][0].startswith("mobilenet-v2 (")
    assert 0.0 <= table["mean_overlap"] <= 1.0 and table["verdict"]
