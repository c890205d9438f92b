"""push: a collection copied to a Qdrant server (qdrant-client's local mode stands in)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import app
from actions_helpers import build_collection
from store import Store, StoreError
from store.push import open_target_store, push_collection
from subsets.saved import list_subsets, save_subset


def _artifacts(collection) -> None:
    folder = collection.artifact_dir
    (folder / "thumbs").mkdir(parents=True, exist_ok=True)
    (folder / "knn.npz").write_bytes(b"graph-bytes")
    (folder / "thumbs" / "a.bin").write_bytes(b"\x00\x01")


def _snapshot(collection) -> dict[str, tuple[dict, np.ndarray]]:
    ids, vectors = collection.vectors()
    payloads = {r.id: r.payload for r in collection.retrieve(list(ids))}
    return {pid: (payloads[pid], vectors[row]) for row, pid in enumerate(ids)}


def test_push_copies_points_vectors_payloads_metadata_and_artifacts(store: Store, tmp_path: Path) -> None:
    source, _, _ = build_collection(store)
    save_subset(source, "firsts", source.ids()[:5])
    _artifacts(source)
    target_store = open_target_store(local_path=str(tmp_path / "server"))
    try:
        report = push_collection(source, target_store, "pushed", batch=7)
        target = target_store.open("pushed")
        assert report.points == 30 and target.count() == 30
        before, after = _snapshot(source), _snapshot(target)
        assert set(before) == set(after)
        for pid, (payload, vector) in before.items():
            assert after[pid][0] == payload
            np.testing.assert_allclose(after[pid][1], vector, rtol=1e-6, atol=1e-6)
        metadata = target.read_metadata()
        assert metadata["model"] == "test" and metadata["pushed_from"] == "things" and metadata["dimension"] == 8
        assert {n: s.count for n, s in list_subsets(target).items()} == {"firsts": 5}
        assert sorted(report.artifacts) == ["knn.npz", "thumbs/a.bin"]
        assert (target.artifact_dir / "knn.npz").read_bytes() == b"graph-bytes"
        assert not (target.artifact_dir / "shard").exists()
        with pytest.raises(StoreError, match="already exists.*--overwrite"):
            push_collection(source, target_store, "pushed")
        source.delete(source.ids()[:3])
        assert push_collection(source, target_store, "pushed", overwrite=True).points == 27
        assert target_store.open("pushed").count() == 27
        with pytest.raises(StoreError, match="invalid collection name"):
            push_collection(source, target_store, "../evil")
    finally:
        target_store.close()


def test_push_from_the_command_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.delenv("QDRANT_URL", raising=False)
    monkeypatch.setenv("EMBEDSCAPE_ARTIFACTS", str(tmp_path / "artifacts"))
    from store import open_store

    local = open_store(path=str(tmp_path / "qdrant"))
    source, payloads, _ = build_collection(local)
    _artifacts(source)
    local.close()
    base = ["--qdrant-path", str(tmp_path / "qdrant"), "push", "--collection", "things"]
    assert app.main([*base, "--local-path", str(tmp_path / "server"), "--target-collection", "copy"]) == 0
    captured = capsys.readouterr()
    assert "pushed 30 points of 'things' to 'copy'" in captured.out
    # Off a terminal the progress comes as whole lines (imaging/progress.py), not a redrawn bar.
    assert "push things -> copy: 30/30 pt (100%)" in captured.err and "\r" not in captured.err
    assert app.main([*base, "--local-path", str(tmp_path / "server"), "--target-collection", "copy"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert app.main(base) == 2
    assert "--url" in capsys.readouterr().err
    assert app.main([*base, "--local-path", str(tmp_path / "server"), "--target-collection", "a/b"]) == 2
    assert "invalid collection name" in capsys.readouterr().err
    server = open_target_store(local_path=str(tmp_path / "server"))
    try:
        target = server.open("copy")
        assert target.count() == 30
        assert {r.id: r.payload for r in target.retrieve(list(payloads))} == payloads
        assert (tmp_path / "artifacts" / "copy" / "knn.npz").exists()
    finally:
        server.close()
