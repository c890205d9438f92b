"""The action commands end to end: export, tag, delete, subset, compare (exit codes, messages)."""
from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

import app
from actions_helpers import build_collection
from store import open_store


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Run `python app.py ...` on a fresh embedded store holding collection 'things'."""
    monkeypatch.delenv("QDRANT_URL", raising=False)
    monkeypatch.setenv("EMBEDSCAPE_ARTIFACTS", str(tmp_path / "artifacts"))
    store = open_store(path=str(tmp_path / "qdrant"))
    _, payloads, _ = build_collection(store, tmp_path / "images")
    store.close()

    def run(*argv: str) -> int:
        return app.main(["--qdrant-path", str(tmp_path / "qdrant"), *argv])

    run.payloads = payloads  # type: ignore[attr-defined]
    run.tmp = tmp_path  # type: ignore[attr-defined]
    return run


def _open(tmp: Path):
    store = open_store(path=str(tmp / "qdrant"))
    return store, store.open("things")


def test_export_formats_and_filters(cli, capsys) -> None:
    out = cli.tmp / "out"
    assert cli("export", "--collection", "things", "--format", "jsonl", "--out", str(out / "a.jsonl"),
               "--tag", "snowy", "--label", "cat") == 0
    assert "wrote 3 points" in capsys.readouterr().out
    records = [json.loads(line) for line in (out / "a.jsonl").read_text().splitlines()]
    assert all(r["label"] == "cat" and "snowy" in r["tags"] for r in records) and len(records) == 3
    assert cli("export", "--collection", "things", "--format", "imagefolder", "--out", str(out / "folder"),
               "--link", "symlink", "--range", "mislabel_score::0.2") == 0
    assert len(list((out / "folder").rglob("*.png"))) == 7  # i = 0..6 (score i/30)
    assert cli("export", "--collection", "things", "--format", "paths", "--out", str(out / "p.txt"),
               "--tag", "excluded", "--include-excluded") == 0
    assert (out / "p.txt").read_text().strip().endswith("dog/img07.png")


@pytest.mark.parametrize("extra, message", [
    (["--tag", "rainy"], "no points have tag 'rainy'; known tags: snowy (8), blurry (6), excluded (1)"),
    (["--label", "cow"], "no points have label 'cow'"),
    (["--range", "brightness:1000:"], "no points match the filter"),
    (["--subset", "a/b"], "invalid subset name 'a/b'"),
    (["--subset", "nope"], "no subset 'nope'"),
    (["--range", "brightness"], "bad --range"),
])
def test_export_bad_input_exits_2_with_a_clear_message(cli, capsys, extra, message) -> None:
    assert cli("export", "--collection", "things", "--out", str(cli.tmp / "x.csv"), *extra) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err
    assert not (cli.tmp / "x.csv").exists()


def test_export_unwritable_path_and_bad_collection_exit_2(cli, capsys) -> None:
    (cli.tmp / "file").write_text("x")
    assert cli("export", "--collection", "things", "--out", str(cli.tmp / "file" / "x.csv")) == 2
    assert "cannot write" in capsys.readouterr().err
    assert cli("export", "--collection", "../things", "--out", str(cli.tmp / "x.csv")) == 2
    assert "invalid collection name" in capsys.readouterr().err
    assert cli("export", "--collection", "other", "--out", str(cli.tmp / "x.csv")) == 2
    assert "no collection 'other'" in capsys.readouterr().err


def test_tag_add_and_remove_with_filters(cli, capsys) -> None:
    assert cli("tag", "--collection", "things", "--add", "review", "--label", "dog", "--tag-none", "snowy") == 0
    assert "added tag 'review' to 6 of 6 matching points" in capsys.readouterr().out
    store, collection = _open(cli.tmp)
    assert collection.tag_counts()["review"] == 6
    store.close()
    assert cli("tag", "--collection", "things", "--remove", "review", "--tag", "review") == 0
    assert "removed tag 'review' from 6 of 6" in capsys.readouterr().out
    assert cli("tag", "--collection", "things", "--add", "x", "--tag", "nope") == 2
    assert "no points have tag 'nope'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:  # --add or --remove is required
        cli("tag", "--collection", "things", "--label", "dog")
    assert exited.value.code == 2


def test_delete_asks_refuses_without_a_terminal_and_deletes_with_yes(cli, capsys, monkeypatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert cli("delete", "--collection", "things", "--label", "bird") == 2
    assert "refusing to delete 10 points from things" in capsys.readouterr().err

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr("sys.stdin", Terminal("n\n"))
    assert cli("delete", "--collection", "things", "--label", "bird") == 1
    captured = capsys.readouterr().out
    assert "Delete 10 points from things? [y/N]" in captured and "nothing deleted" in captured
    monkeypatch.setattr("sys.stdin", Terminal("y\n"))
    assert cli("delete", "--collection", "things", "--label", "bird") == 0
    assert "deleted 10 points" in capsys.readouterr().out
    assert cli("delete", "--collection", "things", "--tag", "excluded", "--yes") == 0
    assert "deleted 1 points" in capsys.readouterr().out
    assert cli("delete", "--collection", "things", "--yes") == 2
    assert "give a filter" in capsys.readouterr().err
    assert cli("delete", "--collection", "things", "--label", "bird", "--yes") == 2
    assert "no points have label 'bird'" in capsys.readouterr().err
    store, collection = _open(cli.tmp)
    assert collection.count() == 19
    store.close()


def test_subset_commands_and_compare(cli, capsys) -> None:
    assert cli("subset", "--collection", "things", "save", "low", "--range", "mislabel_score::0.5") == 0
    assert "saved subset 'low': 15 points" in capsys.readouterr().out
    assert cli("subset", "--collection", "things", "save", "high", "--range", "mislabel_score:0.4:") == 0
    assert cli("subset", "--collection", "things", "save", "high", "--label", "cat") == 2
    assert "already exists" in capsys.readouterr().err
    assert cli("subset", "--collection", "things", "list", "--json") == 0
    listed = json.loads(capsys.readouterr().out)
    assert {n: s["count"] for n, s in listed.items()} == {"low": 15, "high": 18}
    assert "0.4 <= mislabel_score" in listed["high"]["description"]
    assert cli("compare", "--collection", "things", "low", "high") == 0
    report = capsys.readouterr().out
    assert "subset A: low (15 points)" in report and "overlap:  4 points" in report
    assert "mislabel_score" in report and "bird" in report
    assert cli("subset", "--collection", "things", "rename", "high", "upper") == 0
    assert cli("subset", "--collection", "things", "delete", "low") == 0
    assert cli("subset", "--collection", "things", "list") == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("upper\t18\t")
    for argv, message in ((["save", "../x"], "invalid subset name"),
                          (["rename", "upper", "a/b"], "invalid subset name"),
                          (["delete", "low"], "no subset 'low'"), (["rename", "nope", "x"], "no subset 'nope'")):
        assert cli("subset", "--collection", "things", *argv) == 2
        assert message in capsys.readouterr().err
    assert cli("compare", "--collection", "things", "upper", "low") == 2
    assert "no subset 'low'" in capsys.readouterr().err
