"""What made a collection's vectors is recorded with it; a re-index that would mix models or
precisions is refused with the way out, and `--reembed` embeds everything again keeping what
users wrote. Real engine (embedded Qdrant), real models."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import app
from conftest import build_tiny_clip, write_image
from indexer.models import MobileNetEmbedder, ModelLoadError, cpu_runs_bf16_natively
from indexer.pipeline import IndexOptions
from scoring.indexing import index_and_analyze
from indexer.sources import SourceError
from store import open_store, point_id

NAMES = [f"{label}/{i}.png" for label in ("red", "blue") for i in range(3)]
NATIVE_BF16 = cpu_runs_bf16_natively()


@pytest.fixture
def images(tmp_path: Path) -> Path:
    for i, name in enumerate(NAMES):
        write_image(tmp_path / "images" / name, seed=i)
    return tmp_path / "images"


def index(images: Path, qdrant: Path, model: str = "mobilenet-v2", **options):
    store = open_store(path=str(qdrant))
    try:
        return index_and_analyze(images, store, IndexOptions("c", model, device="cpu", batch_size=4, progress=False,
                                                         analyze=False, **options))
    finally:
        store.close()


def read(qdrant: Path, name: str = "c") -> tuple[dict, dict[str, dict]]:
    """(metadata, path -> payload with 'vector') from a freshly opened store."""
    store = open_store(path=str(qdrant))
    try:
        collection = store.open(name)
        points = {r.payload["path"]: {**r.payload, "vector": r.vector}
                  for batch in collection.scroll(None, with_vectors=True) for r in batch}
        return collection.read_metadata(), points
    finally:
        store.close()


def edit(qdrant: Path, change) -> None:
    store = open_store(path=str(qdrant))
    try:
        change(store.open("c"))
    finally:
        store.close()


def tag_red(qdrant: Path) -> None:
    edit(qdrant, lambda c: c.add_tag([point_id(n) for n in NAMES if n.startswith("red")], "checked"))


def assert_tags_kept(points: dict[str, dict]) -> None:
    assert {p: v["tags"] for p, v in points.items()} == {n: ["checked"] if n.startswith("red") else [] for n in NAMES}


def test_the_collection_records_what_made_its_vectors_and_info_shows_it(images: Path, tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture) -> None:
    qdrant = str(tmp_path / "q")
    assert app.main(["--qdrant-path", qdrant, "index", str(images), "--collection", "c", "--model", "mobilenet-v2",
                     "--precision", "fp32", "--runtime", "onnxruntime"]) == 0
    assert f"{len(NAMES)} embedded by mobilenet-v2 in fp32 (onnxruntime on cpu)" in capsys.readouterr().out
    assert app.main(["--qdrant-path", qdrant, "info", "--collection", "c", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["model"], info["precision"], info["runtime"], info["device"]) == ("mobilenet-v2", "fp32",
                                                                                   "onnxruntime", "cpu")
    assert app.main(["--qdrant-path", qdrant, "info", "--collection", "c"]) == 0
    out = capsys.readouterr().out
    assert "precision    fp32" in out and "runtime      onnxruntime" in out

    # A new collection in auto gets what this CPU runs natively.
    assert app.main(["--qdrant-path", qdrant, "index", str(images), "--collection", "auto", "--model",
                     "mobilenet-v2"]) == 0
    metadata, _ = read(tmp_path / "q", "auto")
    assert (metadata["precision"], metadata["runtime"]) == ("bf16" if NATIVE_BF16 else "fp32", "openvino")


def test_auto_keeps_the_precision_the_collection_records(images: Path, tmp_path: Path) -> None:
    qdrant = tmp_path / "q"
    assert index(images, qdrant, precision="fp32").embedded == len(NAMES)
    before, run1 = read(qdrant)
    again = index(images, qdrant)  # auto: bf16 on this CPU for a new collection, but this one is fp32
    after, run2 = read(qdrant)
    assert (again.embedded, again.unchanged, again.problems) == (0, len(NAMES), [])
    assert before["precision"] == after["precision"] == "fp32"
    for path in NAMES:
        np.testing.assert_array_equal(run2[path]["vector"], run1[path]["vector"])
    # A changed file is embedded in the collection's precision too.
    write_image(images / NAMES[0], seed=99)
    assert index(images, qdrant).embedded == 1
    fp32 = MobileNetEmbedder("cpu", "openvino", "fp32")
    expected = fp32.embed_images([Image.open(images / NAMES[0]).convert("RGB")])[0]
    np.testing.assert_allclose(read(qdrant)[1][NAMES[0]]["vector"], expected, atol=1e-5)


@pytest.mark.skipif(not NATIVE_BF16, reason="this CPU has no native bfloat16, so there is no second precision to "
                                            "change to; the model change below tests the same refusal and re-embed")
def test_another_precision_is_refused_and_reembed_redoes_every_image(images: Path, tmp_path: Path) -> None:
    qdrant = tmp_path / "q"
    index(images, qdrant, precision="fp32")
    tag_red(qdrant)
    _, fp32_points = read(qdrant)
    with pytest.raises(SourceError) as refused:
        index(images, qdrant, precision="bf16")
    message = str(refused.value)
    assert "holds vectors of mobilenet-v2 in fp32" in message and "in bf16" in message
    assert "--reembed" in message and "--precision fp32" in message
    metadata, points = read(qdrant)
    assert metadata["precision"] == "fp32" and all(points[p]["vector"] is not None for p in NAMES)
    for path in NAMES:
        np.testing.assert_array_equal(points[path]["vector"], fp32_points[path]["vector"])  # nothing written

    report = index(images, qdrant, precision="bf16", reembed=True)
    assert (report.embedded, report.unchanged) == (len(NAMES), 0)
    metadata, points = read(qdrant)
    assert (metadata["precision"], metadata["model"]) == ("bf16", "mobilenet-v2") and metadata["reembedded_at"]
    assert_tags_kept(points)
    index(images, tmp_path / "fresh", precision="bf16")  # the same images straight into bf16
    _, fresh = read(tmp_path / "fresh")
    for path in NAMES:
        np.testing.assert_allclose(points[path]["vector"], fresh[path]["vector"], atol=1e-6)
        assert np.abs(points[path]["vector"] - fp32_points[path]["vector"]).max() > 1e-4
        assert points[path]["sha1"] == fp32_points[path]["sha1"]
    # From now on auto keeps bf16: nothing to do.
    assert index(images, qdrant).unchanged == len(NAMES)


def test_another_model_is_refused_and_reembed_switches_keeping_tags(images: Path, tmp_path: Path) -> None:
    """Two CLIP models of the same size (16-d), so the collection can take either's vectors."""
    first, second = (str(build_tiny_clip(tmp_path / name)) for name in ("clip-a", "clip-b"))
    qdrant = tmp_path / "q"
    index(images, qdrant, first)
    tag_red(qdrant)
    _, before = read(qdrant)
    with pytest.raises(SourceError, match=f"holds vectors of {first} in fp32.*--reembed.*--model {first}"):
        index(images, qdrant, second)
    report = index(images, qdrant, second, reembed=True)
    assert (report.embedded, report.unchanged) == (len(NAMES), 0)
    metadata, after = read(qdrant)
    assert (metadata["model"], metadata["precision"], metadata["runtime"]) == (second, "fp32", "torch")
    assert_tags_kept(after)
    for path in NAMES:
        assert float(np.dot(after[path]["vector"], before[path]["vector"])) < 0.999, path
        assert (after[path]["label"], after[path]["x"] is not None) == (before[path]["label"], True)


def test_a_reembed_that_stopped_part_way_is_finished_by_the_next_run(images: Path, tmp_path: Path) -> None:
    """The stop is made by --limit (the first 2 images), which leaves the collection as a run
    killed after 2 images would: the next plain run embeds exactly the other images."""
    qdrant = tmp_path / "q"
    index(images, qdrant, runtime="onnxruntime", precision="fp32")
    tag_red(qdrant)
    partial = index(images, qdrant, runtime="openvino", precision="fp32", reembed=True, limit=2)
    assert (partial.embedded, partial.unchanged) == (2, 0)
    metadata, points = read(qdrant)
    assert metadata["runtime"] == "openvino"
    assert sum(points[p].get("sha1") is None for p in NAMES) == len(NAMES) - 2, "the rest is still to do"
    rest = index(images, qdrant, runtime="openvino")
    assert (rest.embedded, rest.unchanged) == (len(NAMES) - 2, 2)
    _, points = read(qdrant)
    assert all(points[p]["sha1"] for p in NAMES)
    assert_tags_kept(points)


def test_a_collection_in_bf16_where_bf16_cannot_run_says_how_to_reembed(images: Path, tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture) -> None:
    """A bf16 collection indexed again where bf16 cannot run (here: with --runtime onnxruntime,
    which runs fp32 only, as a CPU without bfloat16 does)."""
    qdrant = tmp_path / "q"
    index(images, qdrant, precision="fp32")
    edit(qdrant, lambda c: c.update_metadata(precision="bf16"))  # as if indexed on a CPU with bfloat16
    with pytest.raises(ModelLoadError, match="holds bf16 vectors of mobilenet-v2.*--precision fp32 --reembed"):
        index(images, qdrant, runtime="onnxruntime")
    args = ["--qdrant-path", str(qdrant), "index", str(images), "--collection", "c", "--runtime", "onnxruntime"]
    assert app.main(args) == 2
    assert "--precision fp32 --reembed" in capsys.readouterr().err
    assert app.main([*args, "--precision", "fp32", "--reembed"]) == 0
    metadata, points = read(qdrant)
    assert (metadata["precision"], metadata["runtime"]) == ("fp32", "onnxruntime")
    assert len(points) == len(NAMES)


def test_a_collection_from_before_precision_was_recorded_gets_a_note(images: Path, tmp_path: Path) -> None:
    qdrant = tmp_path / "q"
    index(images, qdrant)

    def forget_precision(collection) -> None:
        collection.write_metadata({k: v for k, v in collection.read_metadata().items()
                                   if k not in ("precision", "runtime", "device")})

    edit(qdrant, forget_precision)
    report = index(images, qdrant)
    assert report.unchanged == len(NAMES)
    assert any("before its precision was recorded" in note and "--reembed" in note for note in report.problems)
    metadata, _ = read(qdrant)
    assert metadata["precision"] in ("fp32", "bf16") and metadata["runtime"] == "openvino"


def test_cli_refuses_bf16_where_it_cannot_run(images: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code = app.main(["--qdrant-path", str(tmp_path / "q"), "index", str(images), "--collection", "c",
                     "--model", "mobilenet-v2", "--runtime", "onnxruntime", "--precision", "bf16"])
    assert code == 2
    assert "bf16 runs mobilenet-v2 through OpenVINO on the CPU only" in capsys.readouterr().err
    assert not (tmp_path / "q" / "c").exists()


def test_reembed_covers_the_boxes_of_the_object_collection(tmp_path: Path) -> None:
    from detection_fixtures import make_coco
    from indexer.objects import object_point_id

    root, coco = make_coco(tmp_path)
    qdrant = tmp_path / "q"
    store = open_store(path=str(qdrant))
    try:
        options = IndexOptions("c", "mobilenet-v2", labels_file=coco, device="cpu", batch_size=4, progress=False,
                               analyze=False, runtime="onnxruntime", precision="fp32")
        first = index_and_analyze(root, store, options)
        store.open("c-objects").add_tag([object_point_id("b.png", 20)], "checked")
        again = index_and_analyze(root, store, replace(options, runtime="openvino"))
        assert (again.embedded, again.objects.embedded) == (0, 0)  # same model and precision: nothing to do
        redone = index_and_analyze(root, store, replace(options, runtime="openvino", reembed=True))
        objects = store.open("c-objects")
        metadata = objects.read_metadata()
        boxes = {r.id: r.payload for batch in objects.scroll(None) for r in batch}
    finally:
        store.close()
    assert first.objects.embedded > 0
    assert (redone.embedded, redone.objects.embedded) == (first.embedded, first.objects.embedded)
    assert (metadata["precision"], metadata["runtime"]) == ("fp32", "openvino")
    assert all(payload.get("sha1") for payload in boxes.values())
    assert boxes[object_point_id("b.png", 20)]["tags"] == ["checked"]
