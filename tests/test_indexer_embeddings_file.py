"""`index PATH --embeddings FILE`: vectors the user already has, through the real command line
into the real embedded Qdrant store.

Every format gives the same points (ids, vectors, payloads); every kind of bad row is reported
with its row number and nothing at all is written; running again updates in place.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import app
from conftest import write_image
from indexer.embeddings_file import check_embeddings, open_embeddings, relative_path
from store import PointFilter, open_store, point_id

DIM = 8
LABELS = ("cat", "dog", "owl")


@pytest.fixture
def dataset(tmp_path: Path) -> dict:
    """12 real PNGs (4 per label) and their vectors: clustered per label, so the map and the
    scores have something to find."""
    rng = np.random.default_rng(0)
    root = tmp_path / "images"
    paths, labels, vectors = [], [], []
    for index, label in enumerate(LABELS):
        for i in range(4):
            relative = f"{label}/{i}.png"
            write_image(root / relative, seed=10 * index + i, size=(8, 8))
            vector = rng.normal(size=DIM) * 0.2
            vector[index] += 2.0
            paths.append(relative)
            labels.append(label)
            vectors.append(vector)
    return {"root": root, "paths": paths, "labels": labels, "vectors": np.asarray(vectors, np.float32),
            "qdrant": tmp_path / "qdrant", "tmp": tmp_path}


def parquet(path: Path, rows: dict[str, list], vector_type: pa.DataType | None = None) -> Path:
    columns = dict(rows)
    vectors = columns.pop("embedding")
    table = pa.table({"embedding": pa.array(vectors, type=vector_type or pa.list_(pa.float32())), **columns})
    pq.write_table(table, path)
    return path


def good_rows(data: dict) -> dict[str, list]:
    n = len(data["paths"])
    return {"path": list(data["paths"]), "embedding": data["vectors"].tolist(), "label": list(data["labels"]),
            "split": ["train" if i % 3 else "test" for i in range(n)], "weight": [float(i) / 2 for i in range(n)],
            "camera": [f"cam-{i % 2}" for i in range(n)], "frame": list(range(n)), "night": [i % 4 == 0 for i in range(n)]}


def run_index(data: dict, *extra: str, collection: str = "c") -> int:
    return app.main(["--qdrant-path", str(data["qdrant"]), "index", str(data["root"]), "--collection", collection,
                     *extra])


def points(data: dict, collection: str = "c") -> dict[str, tuple[dict, np.ndarray]]:
    store = open_store(path=str(data["qdrant"]))
    try:
        records = [r for batch in store.open(collection).scroll(with_vectors=True) for r in batch]
    finally:
        store.close()
    return {r.id: (r.payload, r.vector) for r in records}


def unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def assert_indexed(data: dict, stored: dict[str, tuple[dict, np.ndarray]], extras: bool = True) -> None:
    """Every row is one point: id from its path, its vector (normalised), label, split, map position."""
    assert set(stored) == {point_id(p) for p in data["paths"]}
    expected = unit(data["vectors"])
    rows = good_rows(data)
    for i, path in enumerate(data["paths"]):
        payload, vector = stored[point_id(path)]
        np.testing.assert_allclose(vector, expected[i], atol=1e-6)
        assert payload["path"] == path and payload["label"] == data["labels"][i]
        assert payload["split"] == rows["split"][i]
        assert isinstance(payload["x"], float) and isinstance(payload["y"], float)
        assert "mislabel_score" in payload and "outlier_score" in payload
        if extras:
            assert (payload["weight"], payload["camera"], payload["frame"], payload["night"]) == (
                rows["weight"][i], rows["camera"][i], rows["frame"][i], rows["night"][i])


def test_parquet_with_a_list_column(dataset: dict, capsys: pytest.CaptureFixture) -> None:
    file = parquet(dataset["tmp"] / "vectors.parquet", good_rows(dataset))
    assert run_index(dataset, "--embeddings", str(file)) == 0
    assert "12 rows of vectors.parquet checked" in capsys.readouterr().out
    assert_indexed(dataset, points(dataset))
    store = open_store(path=str(dataset["qdrant"]))
    try:
        collection = store.open("c")
        metadata = collection.read_metadata()
        report = json.loads((collection.artifact_dir / "index-report.json").read_text())
        indexed = collection.indexed_fields()
        assert collection.count(PointFilter(labels=["dog"])) == 4  # through the label index
    finally:
        store.close()
    assert metadata["model"] == "embeddings:vectors.parquet" and metadata["dimension"] == DIM
    assert metadata["vectors_from"]["file"] == "vectors.parquet" and metadata["vectors_from"]["rows"] == 12
    assert metadata["layout"] == "embeddings-file" and metadata["has_text_encoder"] is False
    assert report["found"] == report["embedded"] == report["total_points"] == 12
    assert {"label", "split", "tags", "mislabel_score"} <= indexed  # built after the bulk write


def test_parquet_with_a_fixed_size_list_column_and_a_named_model(dataset: dict) -> None:
    file = parquet(dataset["tmp"] / "fixed.parquet", good_rows(dataset), pa.list_(pa.float32(), DIM))
    assert open_embeddings(file).fixed_dimension == DIM
    assert run_index(dataset, "--embeddings", str(file), "--model", "my-clip") == 0
    assert_indexed(dataset, points(dataset))
    store = open_store(path=str(dataset["qdrant"]))
    try:
        assert store.open("c").read_metadata()["model"] == "my-clip"
    finally:
        store.close()


def test_a_folder_of_parquet_files_and_another_column_name(dataset: dict) -> None:
    rows = good_rows(dataset)
    rows["features"] = rows.pop("embedding")
    folder = dataset["tmp"] / "parts"
    folder.mkdir()
    table = pa.table({k: (pa.array(v, pa.list_(pa.float64())) if k == "features" else v) for k, v in rows.items()})
    pq.write_table(table.slice(0, 5), folder / "part-0.parquet")
    pq.write_table(table.slice(5), folder / "part-1.parquet")
    assert run_index(dataset, "--embeddings", str(folder), "--embedding-column", "features") == 0
    assert_indexed(dataset, points(dataset))


def test_npy_with_a_csv_of_paths(dataset: dict) -> None:
    np.save(dataset["tmp"] / "vectors.npy", dataset["vectors"].astype(np.float64))
    rows = good_rows(dataset)
    with (dataset["tmp"] / "vectors.csv").open("w", newline="") as handle:  # found beside the .npy
        writer = csv.writer(handle)
        writer.writerow(["path", "label", "split", "weight", "camera", "frame"])
        for i in range(len(rows["path"])):
            writer.writerow([rows[k][i] for k in ("path", "label", "split", "weight", "camera", "frame")])
    assert run_index(dataset, "--embeddings", str(dataset["tmp"] / "vectors.npy")) == 0
    stored = points(dataset)
    assert_indexed(dataset, stored, extras=False)
    for i, path in enumerate(rows["path"]):  # CSV columns keep the types they read as
        payload = stored[point_id(path)][0]
        assert (payload["weight"], payload["camera"], payload["frame"]) == (rows["weight"][i], rows["camera"][i], i)


def test_npy_with_paths_given_and_a_row_count_mismatch_writes_nothing(dataset: dict,
                                                                       capsys: pytest.CaptureFixture) -> None:
    np.save(dataset["tmp"] / "v.npy", dataset["vectors"])
    paths = dataset["tmp"] / "rows.csv"
    paths.write_text("path,label\n" + "".join(f"{p},{lab}\n" for p, lab in zip(dataset["paths"][:-1], dataset["labels"])))
    assert run_index(dataset, "--embeddings", str(dataset["tmp"] / "v.npy"), "--paths", str(paths)) == 2
    assert "rows.csv has 11 rows but v.npy has 12" in capsys.readouterr().err
    assert not open_store(path=str(dataset["qdrant"])).exists("c")
    assert run_index(dataset, "--embeddings", str(dataset["tmp"] / "v.npy")) == 2  # no v.csv beside it
    assert "--paths" in capsys.readouterr().err


def test_every_bad_row_is_reported_and_nothing_is_written(dataset: dict, capsys: pytest.CaptureFixture) -> None:
    rows = good_rows(dataset)
    vectors = rows["embedding"]
    rows["path"] += ["../outside.png", "/elsewhere/x.png", None, "missing.png", "cat/0.png", "./dog/1.png"]
    vectors += [vectors[0]] * 6
    for extra in ("label", "split", "weight", "camera", "frame", "night"):
        rows[extra] += [rows[extra][0]] * 6
    vectors[1] = vectors[1][:5]                       # row 1: wrong dimension
    vectors[2] = [float("nan")] + vectors[2][1:]      # row 2: NaN
    vectors[3] = [float("inf")] + vectors[3][1:]      # row 3: infinite
    vectors[4] = [0.0] * DIM                          # row 4: all zeros
    vectors[6] = None                                 # row 6: no vector
    file = parquet(dataset["tmp"] / "bad.parquet", rows)
    rejects = dataset["tmp"] / "rejects.csv"
    assert run_index(dataset, "--embeddings", str(file), "--rejects", str(rejects)) == 2
    err = capsys.readouterr().err
    expected = {
        0: "path repeated in the file",                   # cat/0.png again in row 16
        1: "vector has 5 values, expected 8",
        2: "NaN or infinite value",
        3: "NaN or infinite value",
        4: "vector is all zeros",
        5: "path repeated in the file",                   # dog/1.png again as ./dog/1.png in row 17
        6: "no vector",
        12: "outside the dataset folder",
        13: "outside the dataset folder",
        14: "no path",
        15: "no such file in the dataset folder",
        16: "path repeated in the file",
        17: "path repeated in the file",
    }
    for row, reason in expected.items():
        assert any(line.startswith(f"row {row} (") and reason in line for line in err.splitlines()), (row, err)
    assert "13 of 18 rows cannot be used, so nothing was written" in err
    with rejects.open() as handle:
        listed = {int(r["row"]): r["reason"] for r in csv.DictReader(handle)}
    assert set(listed) == set(expected) and all(reason in listed[row] for row, reason in expected.items())
    store = open_store(path=str(dataset["qdrant"]))
    assert not store.exists("c") and store.list_collections() == []


def test_a_refused_file_leaves_an_existing_collection_as_it_was(dataset: dict) -> None:
    assert run_index(dataset, "--embeddings", str(parquet(dataset["tmp"] / "good.parquet", good_rows(dataset)))) == 0
    before = points(dataset)
    rows = good_rows(dataset)
    rows["embedding"] = [[v + 1.0 for v in vector] for vector in rows["embedding"]]
    rows["embedding"][-1] = rows["embedding"][-1][:-1]  # the last row is bad: the others must not be written
    assert run_index(dataset, "--embeddings", str(parquet(dataset["tmp"] / "good.parquet", rows))) == 2
    after = points(dataset)
    assert set(after) == set(before)
    for pid, (payload, vector) in before.items():
        np.testing.assert_array_equal(after[pid][1], vector)
        assert after[pid][0] == payload


def test_running_again_updates_in_place_and_keeps_tags(dataset: dict) -> None:
    file = dataset["tmp"] / "vectors.parquet"
    rows = good_rows(dataset)
    assert run_index(dataset, "--embeddings", str(parquet(file, rows))) == 0
    first = points(dataset)
    tagged = point_id(dataset["paths"][0])
    assert app.main(["--qdrant-path", str(dataset["qdrant"]), "tag", "--collection", "c", "--add", "keep",
                     "--ids-file", str(_ids_file(dataset["tmp"], [tagged]))]) == 0
    rows["embedding"][0] = (np.asarray(rows["embedding"][0]) * -1).tolist()
    rows["label"][0] = "fox"
    rows["weight"][0] = 99.0
    assert run_index(dataset, "--embeddings", str(parquet(file, rows))) == 0
    second = points(dataset)
    assert set(second) == set(first) and len(second) == 12
    payload, vector = second[tagged]
    assert payload["tags"] == ["keep"] and payload["label"] == "fox" and payload["weight"] == 99.0
    np.testing.assert_allclose(vector, -first[tagged][1], atol=1e-6)
    untouched = point_id(dataset["paths"][5])
    np.testing.assert_allclose(second[untouched][1], first[untouched][1], atol=1e-7)


def _ids_file(folder: Path, ids: list[str]) -> Path:
    path = folder / "ids.txt"
    path.write_text("\n".join(ids) + "\n")
    return path


def test_absolute_paths_inside_the_folder_and_missing_files_when_allowed(dataset: dict) -> None:
    rows = good_rows(dataset)
    rows["path"][0] = str(dataset["root"].resolve() / rows["path"][0])
    rows["path"][1] = "cat/not-on-disk.png"
    file = parquet(dataset["tmp"] / "v.parquet", rows)
    assert run_index(dataset, "--embeddings", str(file)) == 2  # the missing file is refused by default
    assert run_index(dataset, "--embeddings", str(file), "--allow-missing-files") == 0
    stored = points(dataset)
    assert stored[point_id(dataset["paths"][0])][0]["path"] == dataset["paths"][0]
    assert stored[point_id("cat/not-on-disk.png")][0]["path"] == "cat/not-on-disk.png"


def test_the_collection_dimension_and_model_are_checked(dataset: dict, mobilenet, capsys: pytest.CaptureFixture) -> None:
    from indexer.pipeline import IndexOptions
    from scoring.indexing import index_and_analyze

    store = open_store(path=str(dataset["qdrant"]))
    try:
        index_and_analyze(dataset["root"], store, IndexOptions("c", model="mobilenet-v2", progress=False), mobilenet)
    finally:
        store.close()
    file = parquet(dataset["tmp"] / "v.parquet", good_rows(dataset))
    assert run_index(dataset, "--embeddings", str(file)) == 2
    assert "indexed with model mobilenet-v2" in capsys.readouterr().err
    # Said to be mobilenet-v2's vectors: every row then has the wrong dimension for the collection.
    assert run_index(dataset, "--embeddings", str(file), "--model", "mobilenet-v2") == 2
    assert "12 x vector has 8 values, expected 1280" in capsys.readouterr().err


def test_file_level_problems_say_what_to_do(dataset: dict, capsys: pytest.CaptureFixture) -> None:
    no_path = dataset["tmp"] / "no-path.parquet"
    pq.write_table(pa.table({"file": ["a.png"], "embedding": [[1.0, 2.0]]}), no_path)
    two_lists = dataset["tmp"] / "two.parquet"
    pq.write_table(pa.table({"path": ["a.png"], "a": [[1.0]], "b": [[2.0]]}), two_lists)
    for file, message in ((no_path, "needs a 'path' column"), (two_lists, "--embedding-column"),
                          (dataset["tmp"] / "nothing.parquet", "does not exist"),
                          (dataset["root"] / "cat" / "0.png", "use a Parquet file")):
        assert run_index(dataset, "--embeddings", str(file)) == 2
        assert message in capsys.readouterr().err
    assert run_index(dataset, "--embeddings", str(no_path), "--labels", str(no_path)) == 2
    assert "leave out --labels" in capsys.readouterr().err


def test_relative_path_rules(tmp_path: Path) -> None:
    root = tmp_path.resolve()
    assert relative_path("a/b.png", root) == ("a/b.png", "")
    assert relative_path("./a//b.png", root) == ("a/b.png", "")
    assert relative_path("a/../b.png", root) == ("b.png", "")
    assert relative_path(str(root / "a" / "b.png"), root) == ("a/b.png", "")
    assert relative_path("../b.png", root)[1] == "outside the dataset folder"
    assert relative_path("/etc/passwd", root)[1] == "outside the dataset folder"
    assert relative_path("", root)[1] == relative_path(None, root)[1] == "no path"


def test_check_reads_in_batches_and_counts_every_row(dataset: dict) -> None:
    """More rows than a read batch, with the bad ones in different batches."""
    n = 70_000
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(n, 4)).astype(np.float32)
    vectors[3] = 0.0
    vectors[66_000, 1] = np.nan
    paths = [f"x/{i}.png" for i in range(n)]
    paths[69_999] = paths[10]
    file = dataset["tmp"] / "big.parquet"
    pq.write_table(pa.table({"path": paths, "embedding": pa.FixedSizeListArray.from_arrays(vectors.reshape(-1), 4)}),
                   file, row_group_size=20_000)
    checked = check_embeddings(open_embeddings(file), dataset["root"].resolve(), None, check_files=False, progress=False)
    assert checked.rows == n and checked.dimension == 4
    assert [(p.row, p.reason) for p in checked.problems] == [
        (3, "vector is all zeros"), (10, "path repeated in the file"),
        (66_000, "NaN or infinite value in the vector"), (69_999, "path repeated in the file")]


def test_both_store_backends_take_the_same_file(dataset: dict, store) -> None:
    """The embedded engine, and qdrant-client's local mode standing in for a Qdrant server."""
    from indexer.embeddings_file import EmbeddingsInput
    from indexer.pipeline import IndexOptions
    from scoring.indexing import embeddings_and_analyze

    file = parquet(dataset["tmp"] / "v.parquet", good_rows(dataset))
    report = embeddings_and_analyze(dataset["root"], store, IndexOptions("c", model="m", progress=False),
                              EmbeddingsInput(file))
    assert report.total_points == 12
    stored = {r.id: (r.payload, r.vector) for batch in store.open("c").scroll(with_vectors=True) for r in batch}
    assert_indexed(dataset, stored)
