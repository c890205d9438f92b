"""Leaks between splits: near-duplicate groups whose members sit in different splits."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

import app
from analysis.leaks import split_leak_groups
from store import open_store, point_id
from test_labelling_loop import clustered_folder


def test_only_groups_spanning_two_named_splits_are_leaks() -> None:
    groups = np.array([0, 0, 1, 1, 2, 2, -1, 3, 3, 3])
    splits = np.array(["train", "test", "train", "train", "val", "", "test", "train", "train", "val"])
    assert split_leak_groups(groups, splits).tolist() == [0, 0, -1, -1, -1, -1, -1, 3, 3, 3]
    assert split_leak_groups(groups, np.full(10, "")).tolist() == [-1] * 10


def test_analyze_finds_a_copy_across_splits_and_info_counts_it(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.delenv("QDRANT_URL", raising=False)
    monkeypatch.setenv("EMBEDSCAPE_ARTIFACTS", str(tmp_path / "artifacts"))
    clustered_folder(tmp_path)
    store = open_store(path=str(tmp_path / "qdrant"))
    collection = store.open("loop")
    original, copy, same_split = point_id("img/cat-05.png"), point_id("img/dog-07.png"), point_id("img/bird-09.png")
    vector = collection.retrieve([original], with_vectors=True)[0].vector
    payloads = {r.id: r.payload for r in collection.retrieve([copy, same_split])}
    # dog-07 becomes a near copy of cat-05 in the test split; bird-09 a copy kept in train.
    collection.upsert([copy, same_split], np.stack([vector * 1.0, vector + 1e-3]).astype(np.float32),
                      [{**payloads[copy], "split": "test"}, payloads[same_split]])
    collection.flush()
    store.close()
    run = lambda *argv: app.main(["--qdrant-path", str(tmp_path / "qdrant"), *argv])  # noqa: E731
    assert run("analyze", "--collection", "loop", "--clusters", "none") == 0
    assert "1 near-duplicate groups across splits (leaks)" in capsys.readouterr().out
    assert run("info", "--collection", "loop") == 0
    assert "split leaks  1 near-duplicate groups across splits, 3 points" in capsys.readouterr().out
    out = tmp_path / "leaks.jsonl"
    assert run("export", "--collection", "loop", "--range", "split_leak_group:0:", "--format", "jsonl",
               "--out", str(out)) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["path"] for r in rows) == ["img/bird-09.png", "img/cat-05.png", "img/dog-07.png"]
    assert {r["split"] for r in rows} == {"train", "test"} and len({r["split_leak_group"] for r in rows}) == 1
    assert run("compare", "--collection", "loop", "--split", "train", "test") == 0
    printed = capsys.readouterr().out
    assert "subset A: train (59 points)" in printed and "subset B: test (1 points)" in printed
    assert run("compare", "--collection", "loop", "--split", "train", "val") == 2
    assert "no split 'val' in 'loop'; splits: test, train" in capsys.readouterr().err
