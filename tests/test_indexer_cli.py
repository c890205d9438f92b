"""The command line on an indexed collection: `index`, `info --json`, `export --format csv`."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

import app
from conftest import INDEXED_LABELS
from store import open_store, point_id


def payloads(qdrant: Path, name: str = "c") -> dict[str, dict]:
    store = open_store(path=str(qdrant))
    try:
        return {r.id: r.payload for batch in store.open(name).scroll(None) for r in batch}
    finally:
        store.close()


def test_index_wrote_every_image_with_label_and_map(indexed: dict) -> None:
    points = payloads(indexed["qdrant"])
    assert len(points) == indexed["count"]
    for pid, payload in points.items():
        assert pid == point_id(payload["path"])
        assert payload["label"] == payload["path"].split("/")[0] and payload["labels"] == [payload["label"]]
        assert payload["split"] == "" and payload["tags"] == []
        assert (payload["width"], payload["height"]) == (16, 16)
        assert -10.001 <= payload["x"] <= 10.001 and -10.001 <= payload["y"] <= 10.001
        for metric in ("brightness", "contrast", "sharpness", "colourfulness", "aspect_ratio", "area"):
            assert isinstance(payload[metric], float), metric
        assert "mislabel_score" in payload and "outlier_score" in payload  # the analysis ran at the end
    assert (indexed["qdrant"] / "c" / "knn.npz").is_file()
    assert (indexed["qdrant"] / "c" / "index-report.json").is_file()


def test_info_json(indexed: dict, capsys: pytest.CaptureFixture) -> None:
    capsys.readouterr()
    assert app.main(["--qdrant-path", str(indexed["qdrant"]), "info", "--collection", "c", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["collection"] == "c"
    assert info["points"] == indexed["count"]
    assert info["model"] == "mobilenet-v2" and info["dimension"] == 1280
    assert info["source_root"] == str(indexed["images"].resolve())
    assert info["labels"] == {label: 4 for label in INDEXED_LABELS}
    assert info["indexed_at"]
    assert info["projection"]["method"] == "umap" and info["projection"]["seed"] == 0
    assert isinstance(info["tags"], dict)


def test_info_text(indexed: dict, capsys: pytest.CaptureFixture) -> None:
    capsys.readouterr()
    assert app.main(["--qdrant-path", str(indexed["qdrant"]), "info", "--collection", "c"]) == 0
    out = capsys.readouterr().out
    assert f"points       {indexed['count']}" in out
    assert "labels       3: " in out and "apple (4)" in out


def test_info_unknown_collection(indexed: dict, capsys: pytest.CaptureFixture) -> None:
    assert app.main(["--qdrant-path", str(indexed["qdrant"]), "info", "--collection", "nope"]) == 2
    err = capsys.readouterr().err
    assert "no collection 'nope'" in err and "collections there: c" in err


def test_export_csv_matches_the_store(indexed: dict, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    qdrant = indexed["qdrant"]
    store = open_store(path=str(qdrant))
    try:
        collection = store.open("c")
        collection.add_tag([point_id("apple/0.png"), point_id("pear/1.png")], "export-check")
        collection.add_tag([point_id("apple/0.png")], "two, with comma")
    finally:
        store.close()
    out = tmp_path / "sub" / "points.csv"
    capsys.readouterr()
    assert app.main(["--qdrant-path", str(qdrant), "export", "--collection", "c", "--format", "csv",
                     "--out", str(out)]) == 0
    assert capsys.readouterr().out.startswith(f"wrote {indexed['count']} points to {out}")
    with out.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    # The columns the issue asks for come first (later ones, e.g. scores, may follow).
    assert list(rows[0])[:7] == ["id", "path", "label", "tags", "x", "y", "split"]
    stored = payloads(qdrant)
    assert len(rows) == len(stored) == indexed["count"]
    assert {r["id"] for r in rows} == set(stored)
    for row in rows:
        payload = stored[row["id"]]
        assert row["path"] == payload["path"] and row["label"] == payload["label"]
        assert row["split"] == payload["split"]
        assert (row["tags"].split("|") if row["tags"] else []) == payload["tags"]
        np.testing.assert_allclose([float(row["x"]), float(row["y"])], [payload["x"], payload["y"]], rtol=1e-6)
    by_path = {r["path"]: r for r in rows}
    assert by_path["apple/0.png"]["tags"] == "export-check|two, with comma"
    assert by_path["pear/1.png"]["tags"] == "export-check"


def test_export_unknown_format_is_an_argument_error(indexed: dict, tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as caught:
        app.main(["--qdrant-path", str(indexed["qdrant"]), "export", "--collection", "c", "--format", "xlsx",
                  "--out", str(tmp_path / "x")])
    assert caught.value.code == 2


def test_index_again_through_cli_changes_nothing(indexed: dict, capsys: pytest.CaptureFixture) -> None:
    """Without --model the collection's own model is used; nothing is re-embedded."""
    before = payloads(indexed["qdrant"])
    capsys.readouterr()
    code = app.main(["--qdrant-path", str(indexed["qdrant"]), "index", str(indexed["images"]), "--collection", "c"])
    out = capsys.readouterr().out
    assert code == 0
    assert f"{indexed['count']} images found, 0 embedded" in out and f"{indexed['count']} unchanged" in out
    after = payloads(indexed["qdrant"])
    assert set(after) == set(before)
    assert all(after[pid]["tags"] == before[pid]["tags"] for pid in before)
