"""`index --engine ray`: decode and embed on Ray actors, against the same contract as the
local engine. A real local Ray instance (2 CPUs), the real mobilenet-v2 in every actor, the real
embedded Qdrant store, real PNG and JPEG files with a labels file and a corrupt file.

Both engines must give the same points: same ids, same payloads (labels, split, sizes,
hashes, image metrics, map position, scores), vectors equal within float tolerance, and the
same skipped-file report. Re-running on Ray embeds only what changed, as the local engine does.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

import app
from conftest import write_image
from indexer.pipeline import REPORT_FILE
from store import open_store, point_id

LABELS = {"red": (200, 30, 30), "green": (30, 200, 30)}


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray instance for the module; the indexer joins it instead of starting its own."""
    import ray

    from indexer.ray_engine import worker_runtime_env

    ray.init(num_cpus=2, include_dashboard=False, runtime_env=worker_runtime_env())
    yield ray
    ray.shutdown()


def make_dataset(root: Path) -> Path:
    """PNGs and JPEGs of two colours in one folder, labelled by a CSV with a split; one corrupt file."""
    rows = []
    for index, (label, colour) in enumerate(LABELS.items()):
        for i in range(5):
            suffix = ".jpg" if i % 2 else ".png"
            name = f"{label}-{i}{suffix}"
            write_image(root / name, seed=10 * index + i, size=(20 + i, 16))
            rows.append(f"{name},{label},{'train' if i < 3 else 'test'}")
    (root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    labels = root.parent / "labels.csv"
    labels.write_text("path,label,split\n" + "\n".join(rows) + "\n")
    return labels


def index(root: Path, qdrant: Path, collection: str, labels: Path, *extra: str) -> int:
    return app.main(["--qdrant-path", str(qdrant), "index", str(root), "--collection", collection,
                     "--model", "mobilenet-v2", "--labels", str(labels), "--batch-size", "4", *extra])


def points(qdrant: Path, collection: str) -> dict[str, tuple[dict, np.ndarray]]:
    store = open_store(path=str(qdrant))
    try:
        return {r.id: (r.payload, r.vector) for batch in store.open(collection).scroll(with_vectors=True) for r in batch}
    finally:
        store.close()


def report(qdrant: Path, collection: str) -> dict:
    return json.loads((qdrant / collection / REPORT_FILE).read_text())


def test_ray_engine_gives_the_same_points_as_the_local_engine(tmp_path: Path, local_ray) -> None:
    root, qdrant = tmp_path / "images", tmp_path / "qdrant"
    labels = make_dataset(root)
    assert index(root, qdrant, "local", labels) == 0
    assert index(root, qdrant, "ray", labels, "--engine", "ray", "--workers", "1") == 0
    local, on_ray = points(qdrant, "local"), points(qdrant, "ray")
    assert set(local) == set(on_ray) == {point_id(f"{label}-{i}{'.jpg' if i % 2 else '.png'}")
                                         for label in LABELS for i in range(5)}
    for pid, (payload, vector) in local.items():
        ray_payload, ray_vector = on_ray[pid]
        np.testing.assert_allclose(ray_vector, vector, atol=1e-5)
        assert ray_payload.keys() == payload.keys()
        for key, value in payload.items():
            if isinstance(value, float):
                assert ray_payload[key] == pytest.approx(value, abs=1e-4), key
            else:
                assert ray_payload[key] == value, key
        assert payload["label"] in LABELS and payload["split"] in ("train", "test") and payload["width"] >= 20
    local_report, ray_report = report(qdrant, "local"), report(qdrant, "ray")
    assert ray_report["skipped"] == local_report["skipped"] == [
        {"path": "broken.png", "reason": local_report["skipped"][0]["reason"]}]
    assert ray_report["embedded"] == local_report["embedded"] == 10


def test_ray_engine_resumes_and_follows_changes(tmp_path: Path, local_ray, capsys: pytest.CaptureFixture) -> None:
    root, qdrant = tmp_path / "images", tmp_path / "qdrant"
    labels = make_dataset(root)
    assert index(root, qdrant, "c", labels, "--engine", "ray", "--workers", "1") == 0
    store = open_store(path=str(qdrant))
    try:
        store.open("c").add_tag([point_id("red-0.png")], "keep")
    finally:
        store.close()
    capsys.readouterr()
    assert index(root, qdrant, "c", labels, "--engine", "ray", "--workers", "1") == 0
    assert "0 embedded" in capsys.readouterr().out and report(qdrant, "c")["unchanged"] == 10

    write_image(root / "red-0.png", seed=99, size=(20, 16))           # changed content
    (root / "green-4.png").unlink()                                    # gone
    labels.write_text(labels.read_text().replace("red-1.jpg,red,train", "red-1.jpg,green,train"))  # relabelled
    before = points(qdrant, "c")
    assert index(root, qdrant, "c", labels, "--engine", "ray", "--workers", "1") == 0
    after = points(qdrant, "c")
    done = report(qdrant, "c")
    assert (done["embedded"], done["unchanged"], done["relabelled"], done["removed"]) == (1, 8, 1, ["green-4.png"])
    changed = point_id("red-0.png")
    assert after[changed][0]["tags"] == ["keep"]
    assert after[changed][0]["sha1"] != before[changed][0]["sha1"]
    assert not np.allclose(after[changed][1], before[changed][1])
    assert after[point_id("red-1.jpg")][0]["label"] == "green"
    assert point_id("green-4.png") not in after


def test_engine_ray_without_ray_says_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture) -> None:
    root = tmp_path / "images"
    labels = make_dataset(root)
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    assert index(root, tmp_path / "qdrant", "c", labels, "--engine", "ray") == 2
    err = capsys.readouterr().err
    assert "--engine ray needs Ray Data" in err and "pip install 'ray[data]'" in err
    assert not open_store(path=str(tmp_path / "qdrant")).exists("c")  # said before anything was written


def test_engine_ray_refuses_labels_with_boxes_before_writing(tmp_path: Path, local_ray,
                                                             capsys: pytest.CaptureFixture) -> None:
    """Box crops are cut from each decoded image by the local engine; the Ray engine embeds whole
    images only, so labels with boxes are refused (with the two ways out) before anything is written."""
    from detection_fixtures import make_coco

    root, coco = make_coco(tmp_path / "coco")
    assert index(root, tmp_path / "qdrant", "c", coco, "--engine", "ray") == 2
    err = capsys.readouterr().err
    assert "--engine ray embeds whole images only" in err and "--no-objects" in err
    assert not open_store(path=str(tmp_path / "qdrant")).exists("c")
