"""The labelling loop end to end on the real embedded store: select-next (tag, round, annotator
files), labels back (CSV and Label Studio), rounds, and model probabilities for uncertainty."""
from __future__ import annotations

import csv
import json
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest
from PIL import Image

import app
from store import PointFilter, open_store, point_id

CLASSES = ("cat", "dog", "bird")
PER_CLASS = 20
DIM = 16


def clustered_folder(tmp_path: Path, labelled_per_class: int = 3) -> dict[str, str]:
    """60 PNGs and an embedded collection 'loop' of three tight clusters (one per class); only
    the first `labelled_per_class` of each class carry their label. Returns path -> true class."""
    rng = np.random.default_rng(0)
    centres = np.eye(DIM)[:3] * 3
    truth, ids, vectors, payloads = {}, [], [], []
    for c, name in enumerate(CLASSES):
        for i in range(PER_CLASS):
            path = f"img/{name}-{i:02d}.png"
            (tmp_path / "images" / path).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8), "RGB").save(tmp_path / "images" / path)
            truth[path] = name
            label = name if i < labelled_per_class else ""
            ids.append(point_id(path))
            vectors.append(centres[c] + rng.normal(size=DIM) * 0.6)
            payloads.append({"path": path, "label": label, "labels": [label] if label else [], "tags": [],
                             "x": float(c + rng.random()), "y": float(rng.random()), "split": "train"})
    store = open_store(path=str(tmp_path / "qdrant"))
    collection = store.create("loop", DIM, {"model": "test", "source_root": str(tmp_path / "images")})
    for name in ("label", "tags", "path", "split"):
        collection.create_index(name, "keyword")
    collection.upsert(ids, np.array(vectors, dtype=np.float32), payloads)
    collection.flush()
    store.close()
    return truth


@pytest.fixture
def loop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("QDRANT_URL", raising=False)
    monkeypatch.setenv("EMBEDSCAPE_ARTIFACTS", str(tmp_path / "artifacts"))
    truth = clustered_folder(tmp_path)

    def run(*argv: str) -> int:
        return app.main(["--qdrant-path", str(tmp_path / "qdrant"), *argv])

    run.truth, run.tmp = truth, tmp_path  # type: ignore[attr-defined]
    return run


def payloads(tmp: Path) -> dict[str, dict]:
    store = open_store(path=str(tmp / "qdrant"))
    try:
        return {r.payload["path"]: r.payload for batch in store.open("loop").scroll() for r in batch}
    finally:
        store.close()


def test_select_label_and_select_again(loop, capsys) -> None:
    out = loop.tmp / "batch"
    assert loop("select-next", "--collection", "loop", "--budget", "12", "--out", str(out)) == 0
    printed = capsys.readouterr().out
    assert "round 1: chose 12 of 51 unlabelled points by class-balanced-margin" in printed
    assert "tagged 'batch-1'" in printed and "linear probe" in printed
    points = payloads(loop.tmp)
    batch = {p for p, payload in points.items() if "batch-1" in payload["tags"]}
    assert len(batch) == 12 and all(points[p]["label"] == "" for p in batch)

    # The annotators' files: a fill-in CSV, Label Studio tasks, COCO images, a YOLO image list.
    rows = list(csv.DictReader((out / "batch-1.csv").open()))
    assert {r["path"] for r in rows} == batch and all(r["label"] == "" for r in rows)
    tasks = json.loads((out / "batch-1-label-studio.json").read_text())
    assert {unquote(t["data"]["image"].split("?d=", 1)[1]) for t in tasks} == batch
    assert {t["data"]["embedscape_id"] for t in tasks} == {point_id(p) for p in batch}
    coco = json.loads((out / "batch-1-coco.json").read_text())
    assert {image["file_name"] for image in coco["images"]} == batch and coco["annotations"] == []
    yolo = (out / "batch-1-yolo.txt").read_text().split()
    assert sorted(Path(line).relative_to(loop.tmp / "images").as_posix() for line in yolo) == sorted(batch)

    # Labels come back in the filled-in CSV.
    for r in rows:
        r["label"] = loop.truth[r["path"]]
    with (out / "batch-1.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, ["path", "label", "split", "id"])
        writer.writeheader()
        writer.writerows(rows)
    assert loop("labels", "--collection", "loop", str(out / "batch-1.csv")) == 0
    assert "12 of 12 labels written" in capsys.readouterr().out
    points = payloads(loop.tmp)
    assert all(points[p]["label"] == loop.truth[p] for p in batch)

    assert loop("select-next", "--collection", "loop", "--budget", "5", "--strategy", "k-center") == 0
    assert "round 2: chose 5 of 39 unlabelled points by k-center; tagged 'batch-2'; 21 labelled" in \
        capsys.readouterr().out
    points = payloads(loop.tmp)
    second = {p for p, payload in points.items() if "batch-2" in payload["tags"]}
    assert len(second) == 5 and not second & batch

    assert loop("rounds", "--collection", "loop", "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert [(r["round"], r["tag"], r["size"], r["labelled"], r["batch_labelled"]) for r in report["rounds"]] == \
        [(1, "batch-1", 12, 9, 12), (2, "batch-2", 5, 21, 0)]
    assert report["rounds"][0]["strategy"] == "class-balanced-margin" and report["now"]["labelled"] == 21
    assert 0.8 <= report["now"]["probe_accuracy"] <= 1.0  # three separated clusters
    assert all(0.5 <= r["probe_accuracy"] <= 1.0 for r in report["rounds"])
    assert loop("rounds", "--collection", "loop") == 0
    table = capsys.readouterr().out.splitlines()
    assert table[1].startswith("1      batch-1") and table[2].startswith("2      batch-2")
    assert table[3].startswith("now") and f"{report['now']['probe_accuracy']:.1%}" in table[3]


def test_label_studio_export_comes_back_as_labels(loop, capsys) -> None:
    out = loop.tmp / "ls"
    assert loop("select-next", "--collection", "loop", "--budget", "4", "--tag", "for studio", "--out",
                str(out)) == 0
    tasks = json.loads((out / "for_studio-label-studio.json").read_text())
    # What Label Studio exports: the task's data, with the annotators' choices.
    exported = [{**task, "id": n, "annotations": [{"result": [
        {"from_name": "choice", "to_name": "image", "type": "choices",
         "value": {"choices": [loop.truth[task["data"]["path"]]]}}]}]} for n, task in enumerate(tasks)]
    exported[-1]["annotations"] = [{"was_cancelled": True, "result": []}]  # skipped by the annotator
    (out / "export.json").write_text(json.dumps(exported))
    capsys.readouterr()
    assert loop("labels", "--collection", "loop", str(out / "export.json")) == 0
    assert "3 of 4 labels written; 1 rows without a label skipped" in capsys.readouterr().out
    points = payloads(loop.tmp)
    tagged = [p for p, payload in points.items() if "for studio" in payload["tags"]]
    assert sorted(points[p]["label"] for p in tagged if points[p]["label"]) == \
        sorted(loop.truth[t["data"]["path"]] for t in tasks[:-1])


def test_model_probabilities_drive_uncertainty(loop, capsys) -> None:
    unlabelled = sorted(p for p in loop.truth if int(p[-6:-4]) >= 3)
    unsure = set(unlabelled[:4])
    predictions = loop.tmp / "predictions.jsonl"
    with predictions.open("w") as handle:
        for path in unlabelled:
            probabilities = [0.34, 0.33, 0.33] if path in unsure else [0.9, 0.05, 0.05]
            handle.write(json.dumps({"path": path, "probabilities": probabilities}) + "\n")
    assert loop("predictions", "--collection", "loop", str(predictions)) == 0
    points = payloads(loop.tmp)
    assert points[unlabelled[0]]["prediction_probabilities"] == {"bird": 0.34, "cat": 0.33, "dog": 0.33}
    assert points[unlabelled[0]]["prediction"] == "bird"  # the most probable, when no label is given
    capsys.readouterr()
    assert loop("select-next", "--collection", "loop", "--budget", "4", "--strategy", "margin") == 0
    assert "class probabilities from the imported model" in capsys.readouterr().out
    points = payloads(loop.tmp)
    assert {p for p, payload in points.items() if "batch-1" in payload["tags"]} == unsure


def test_filters_restrict_the_candidates(loop, capsys) -> None:
    store = open_store(path=str(loop.tmp / "qdrant"))
    collection = store.open("loop")
    dogs = [point_id(p) for p in loop.truth if loop.truth[p] == "dog"]
    collection.add_tag(dogs, "from-camera-2")
    store.close()
    assert loop("select-next", "--collection", "loop", "--budget", "30", "--tag-all", "from-camera-2",
                "--strategy", "representative") == 0
    assert "chose 17 of 17 unlabelled points by representative" in capsys.readouterr().out
    points = payloads(loop.tmp)
    assert {p for p, payload in points.items() if "batch-1" in payload["tags"]} == \
        {p for p in loop.truth if loop.truth[p] == "dog" and int(p[-6:-4]) >= 3}


@pytest.mark.parametrize("argv, message", [
    (["--budget", "3", "--strategy", "margin", "--label", "cat"], "every point in the filter is labelled"),
    (["--budget", "3", "--tag", "bad\ttag"], "invalid tag"),
    (["--budget", "3", "--tag-all", "nope"], "no points have tag 'nope'"),
])
def test_bad_requests_exit_2_and_write_nothing(loop, capsys, argv, message) -> None:
    assert loop("select-next", "--collection", "loop", *argv) == 2
    assert message in capsys.readouterr().err
    assert not any(payload["tags"] for payload in payloads(loop.tmp).values())
    store = open_store(path=str(loop.tmp / "qdrant"))
    assert "rounds" not in store.open("loop").read_metadata()
    store.close()


def test_uncertainty_needs_two_labelled_classes(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("EMBEDSCAPE_ARTIFACTS", str(tmp_path / "artifacts"))
    clustered_folder(tmp_path, labelled_per_class=0)
    run = lambda *argv: app.main(["--qdrant-path", str(tmp_path / "qdrant"), *argv])  # noqa: E731
    assert run("select-next", "--collection", "loop", "--budget", "3", "--strategy", "entropy") == 2
    assert "entropy needs class probabilities" in capsys.readouterr().err
    assert run("select-next", "--collection", "loop", "--budget", "3") == 0  # the default starts cold
    assert "class-balanced-margin (k-center: no class probabilities yet)" in capsys.readouterr().out
    store = open_store(path=str(tmp_path / "qdrant"))
    tagged = store.open("loop").columns(["path"], PointFilter(tags_any=["batch-1"])).values["path"]
    store.close()
    assert len({p.split("-")[0] for p in tagged}) == 3  # cold start: one from each cluster


def test_probability_columns_and_bad_probabilities(loop, capsys) -> None:
    path = loop.tmp / "predictions.csv"
    path.write_text("path,prob_cat,prob_dog,prob_bird\n"
                    "img/cat-10.png,0.7,0.2,0.1\n"
                    "img/dog-10.png,0.2,1.5,0.1\n"
                    "img/bird-10.png,x,0.5,0.5\n")
    assert loop("predictions", "--collection", "loop", str(path)) == 0
    captured = capsys.readouterr()
    assert "1 of 3 predictions written; 2 rows unusable" in captured.out
    assert "row 2: probabilities must lie between 0 and 1" in captured.err
    assert "row 3: probabilities must be numbers" in captured.err
    point = payloads(loop.tmp)["img/cat-10.png"]
    assert point["prediction"] == "cat" and point["prediction_probabilities"] == {"cat": 0.7, "dog": 0.2, "bird": 0.1}
    jsonl = loop.tmp / "short.jsonl"
    jsonl.write_text(json.dumps({"path": "img/cat-11.png", "probabilities": [0.5, 0.5]}) + "\n")
    assert loop("predictions", "--collection", "loop", str(jsonl)) == 1
    assert "2 probabilities for 3 classes (the collection's labels, sorted)" in capsys.readouterr().err


def test_class_balance_spreads_the_batch_over_predicted_classes(loop, capsys) -> None:
    assert loop("select-next", "--collection", "loop", "--budget", "9", "--strategy", "entropy",
                "--balance", "class") == 0
    assert "by entropy, balanced" in capsys.readouterr().out
    points = payloads(loop.tmp)
    chosen = [loop.truth[p] for p, payload in points.items() if "batch-1" in payload["tags"]]
    counts = [chosen.count(name) for name in CLASSES]
    assert min(counts) >= 2 and max(counts) - min(counts) <= 2  # predicted classes: mostly the true ones
    assert loop("select-next", "--collection", "loop", "--budget", "9") == 0
    points = payloads(loop.tmp)
    second = {p for p, payload in points.items() if "batch-2" in payload["tags"]}
    assert len(second) == 9 and not any("batch-1" in points[p]["tags"] for p in second)  # out for labelling


def test_labelled_and_unlabelled_filters(loop, capsys) -> None:
    """--labelled / --unlabelled narrow every command's filter: export, tag, select-next."""
    out = loop.tmp / "unlabelled.csv"
    assert loop("export", "--collection", "loop", "--unlabelled", "--format", "csv", "--out", str(out)) == 0
    with out.open(newline="") as handle:
        exported = {row["path"] for row in csv.DictReader(handle)}
    assert exported == {p for p in loop.truth if int(p[-6:-4]) >= 3} and len(exported) == 51
    assert loop("tag", "--collection", "loop", "--labelled", "--label", "cat", "--add", "seed-cats") == 0
    points = payloads(loop.tmp)
    assert {p for p, payload in points.items() if "seed-cats" in payload["tags"]} == \
        {f"img/cat-{i:02d}.png" for i in range(3)}
    # Unlabelled and labelled together match nothing: a clear message, exit 2.
    capsys.readouterr()
    assert loop("tag", "--collection", "loop", "--unlabelled", "--label", "cat", "--add", "x") == 2
    assert "no points match" in capsys.readouterr().err
    assert loop("select-next", "--collection", "loop", "--budget", "5", "--labelled") == 2
    assert "every point in the filter is labelled" in capsys.readouterr().err


def test_labelled_flags_exclude_each_other(loop, capsys) -> None:
    with pytest.raises(SystemExit):
        loop("export", "--collection", "loop", "--labelled", "--unlabelled", "--format", "csv", "--out", "x.csv")
    assert "not allowed with argument" in capsys.readouterr().err
