"""examples/tag_with_qdrant_client.py: another tool lists and tags points through qdrant-client."""
from __future__ import annotations

import importlib.util
from pathlib import Path

from actions_helpers import build_collection, ids_where
from store.push import open_target_store

ROOT = Path(__file__).resolve().parents[1]


def test_example_lists_tagged_points_and_adds_a_tag(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("EMBEDSCAPE_ARTIFACTS", str(tmp_path / "artifacts"))
    server = tmp_path / "server"
    store = open_target_store(local_path=str(server))
    _, payloads, _ = build_collection(store)
    store.close()  # local mode locks its folder: one client at a time

    spec = importlib.util.spec_from_file_location("tag_example", ROOT / "examples" / "tag_with_qdrant_client.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)

    def run(*argv: str):
        code = example.main(["--path", str(server), "--collection", "things", *argv])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    snowy = ids_where(payloads, lambda p: "snowy" in p["tags"])
    code, out, err = run("--tag", "snowy", "--add-tag", "reviewed")
    assert code == 0, err
    rows = [line.split("\t") for line in out.splitlines()]
    assert {r[0] for r in rows} == snowy and all(payloads[r[0]]["path"] == r[1] for r in rows)
    assert f"added 'reviewed' to {len(snowy)} points" in err

    # What the app reads after a reload: the tag is on exactly those points, others kept.
    store = open_target_store(local_path=str(server))
    try:
        collection = store.open("things")
        assert collection.tag_counts()["reviewed"] == len(snowy)
        for record in collection.retrieve(list(snowy), ["tags"]):
            assert record.payload["tags"] == [*payloads[record.id]["tags"], "reviewed"]
    finally:
        store.close()
    code, out, err = run("--tag", "reviewed")
    assert code == 0 and len(out.splitlines()) == len(snowy) and f"{len(snowy)} points tagged 'reviewed'" in err
