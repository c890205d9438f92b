"""The embedders with real weights: ImageNet MobileNetV2 (OpenVINO, onnxruntime, torch) in fp32, a tiny
CLIP through sentence-transformers, and a clear error for a model that cannot be loaded offline."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import write_image
from indexer.mobilenet import EMBEDDING_DIM, IMAGENET_MEAN, IMAGENET_STD, EmbeddingHead, load_pretrained
from indexer.models import MobileNetEmbedder, ModelLoadError, load_embedder
from indexer.pipeline import IndexOptions
from scoring.indexing import index_and_analyze
from store import open_store

ESPRESSO = 967


def sample_images(count: int = 4, size: tuple[int, int] = (40, 30)) -> list[Image.Image]:
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)) for _ in range(count)]
    from skimage import data

    return images + [Image.fromarray(data.coffee()), Image.fromarray(data.astronaut())]


def reference_embedding(net: torch.nn.Module, items: list[np.ndarray]) -> np.ndarray:
    """The embedding computed step by step, one image at a time: bilinear enlargement to
    224x224, ImageNet normalisation in numpy, then the plain torch network."""
    rows = []
    for item in items:
        pixels = torch.from_numpy(item.astype(np.float32).transpose(2, 0, 1).copy())[None]
        pixels = torch.nn.functional.interpolate(pixels, size=(224, 224), mode="bilinear", align_corners=False)
        scaled = pixels[0].numpy().transpose(1, 2, 0) / 255.0
        normalised = (scaled - np.array(IMAGENET_MEAN, np.float32)) / np.array(IMAGENET_STD, np.float32)
        with torch.inference_mode():
            rows.append(net.embed(torch.from_numpy(normalised.transpose(2, 0, 1).copy())[None]).numpy()[0])
    features = np.stack(rows)
    return features / np.linalg.norm(features, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def net() -> torch.nn.Module:
    return load_pretrained()


def test_mobilenet_gives_1280_d_unit_vectors(mobilenet) -> None:
    assert (mobilenet.name, mobilenet.dimension, mobilenet.device, mobilenet.has_text) == ("mobilenet-v2", 1280, "cpu",
                                                                                           False)
    vectors = mobilenet.embed_images(sample_images(), batch_size=4)
    assert vectors.shape == (6, EMBEDDING_DIM) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.isfinite(vectors).all()
    # Different pictures, different vectors; the same picture, the same vector.
    similarity = vectors @ vectors.T
    assert similarity[4, 5] < 0.9
    np.testing.assert_allclose(mobilenet.embed_images(sample_images()[4:5]), vectors[4:5], atol=1e-5)
    with pytest.raises(NotImplementedError, match="no text encoder"):
        mobilenet.embed_text(["a cup of coffee"])


def test_preprocess_keeps_small_images_and_shrinks_large_ones(mobilenet) -> None:
    small, coffee = sample_images(1)[0], Image.fromarray(__import__("skimage").data.coffee())
    assert mobilenet.preprocess(small).shape == (30, 40, 3)  # enlarged inside the graph, not here
    np.testing.assert_array_equal(mobilenet.preprocess(small), np.asarray(small))
    assert mobilenet.preprocess(coffee).shape == (224, 224, 3) and mobilenet.preprocess(coffee).dtype == np.uint8


@pytest.mark.parametrize("runtime", ["openvino", "onnxruntime", "torch"])
def test_every_cpu_runtime_gives_the_reference_embedding(runtime: str, net) -> None:
    """In fp32, on every CPU. (bf16 is held to fp32 by tests/test_indexer_precision.py.)"""
    embedder = MobileNetEmbedder("cpu", runtime, precision="fp32")
    assert (embedder.runtime, embedder.precision) == (runtime, "fp32")
    images = sample_images()  # four 40x30 images and two photos shrunk to 224x224: two shapes
    items = [embedder.preprocess(im) for im in images]
    reference = reference_embedding(net, items)
    np.testing.assert_allclose(embedder.embed_batch(items), reference, atol=2e-4)
    # One shape at a time gives the same vectors as the mixed batch.
    np.testing.assert_allclose(embedder.embed_batch(items[:4]), reference[:4], atol=2e-4)
    np.testing.assert_allclose(embedder.embed_batch(items[4:]), reference[4:], atol=2e-4)


def test_a_batch_of_many_shapes_matches_one_image_at_a_time(mobilenet) -> None:
    images = sample_images(3, (40, 30)) + sample_images(2, (17, 60))[:2] + sample_images(1, (224, 224))[:1]
    items = [mobilenet.preprocess(im) for im in images]
    one_by_one = np.vstack([mobilenet.embed_batch([item]) for item in items])
    np.testing.assert_allclose(mobilenet.embed_batch(items), one_by_one, atol=1e-5)


def test_auto_runtime_prefers_openvino_and_an_unknown_runtime_is_refused() -> None:
    assert MobileNetEmbedder("cpu").runtime == "openvino"
    with pytest.raises(ValueError, match="--runtime"):
        MobileNetEmbedder("cpu", "tensorrt")


def test_onnx_export_into_an_empty_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mobilenet) -> None:
    monkeypatch.setenv("EMBEDSCAPE_CACHE", str(tmp_path / "cache"))
    fresh = MobileNetEmbedder("cpu")
    exported = list((tmp_path / "cache").glob("*.onnx"))
    assert len(exported) == 1 and exported[0].stat().st_size > 1_000_000
    assert not list((tmp_path / "cache").glob("*.tmp"))
    items = [mobilenet.preprocess(im) for im in sample_images(2)]
    np.testing.assert_allclose(fresh.embed_batch(items), mobilenet.embed_batch(items), atol=1e-5)


def test_imagenet_classification_of_a_real_photo(net) -> None:
    """The whole network with its classifier: skimage's coffee photo is an espresso (class 967)."""
    from skimage import data

    image = Image.fromarray(data.coffee())
    scale = 256 / min(image.size)
    image = image.resize((round(image.width * scale), round(image.height * scale)), Image.BILINEAR)
    left, top = (image.width - 224) // 2, (image.height - 224) // 2
    pixels = np.asarray(image.crop((left, top, left + 224, top + 224)), np.float32) / 255.0
    normalised = (pixels - np.array(IMAGENET_MEAN, np.float32)) / np.array(IMAGENET_STD, np.float32)
    with torch.inference_mode():
        logits = net(torch.from_numpy(normalised.transpose(2, 0, 1).copy())[None])
    probabilities = torch.softmax(logits, dim=1)[0]
    assert int(probabilities.argmax()) == ESPRESSO
    assert float(probabilities[ESPRESSO]) > 0.9


def test_embedding_head_matches_the_classifier_features(net) -> None:
    """EmbeddingHead's vector is the (normalised) input of the classifier: the ImageNet features."""
    items = [np.asarray(im.resize((224, 224)), np.uint8) for im in sample_images(1)]
    with torch.inference_mode():
        head = EmbeddingHead(net)(torch.from_numpy(np.stack(items))).numpy()
    np.testing.assert_allclose(head, reference_embedding(net, items), atol=1e-5)


def test_tiny_clip_through_sentence_transformers(tiny_clip: Path) -> None:
    clip = load_embedder(str(tiny_clip), "cpu")
    assert clip.name == str(tiny_clip)
    assert clip.dimension == 16
    assert clip.has_text
    images = clip.embed_images(sample_images(3, size=(50, 20)))
    texts = clip.embed_text(["a photo of a cat", "ünïcödé 猫", ""])
    assert images.shape == (5, 16) and texts.shape == (3, 16)
    assert images.dtype == texts.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(images, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(texts, axis=1), 1.0, atol=1e-5)


def test_index_a_folder_with_tiny_clip(tmp_path: Path, tiny_clip: Path) -> None:
    for i in range(6):
        write_image(tmp_path / "images" / ("cats" if i % 2 else "dogs") / f"{i}.jpg", seed=i, size=(24, 40))
    store = open_store(path=str(tmp_path / "qdrant"))
    try:
        report = index_and_analyze(tmp_path / "images", store,
                               IndexOptions("clip", model=str(tiny_clip), device="cpu", progress=False))
        collection = store.open("clip")
        metadata = collection.read_metadata()
        ids, vectors = collection.vectors()
        hits = collection.search(load_embedder(str(tiny_clip), "cpu").embed_text(["a cat"])[0], limit=3)
    finally:
        store.close()
    assert (report.embedded, report.total_points, report.skipped) == (6, 6, [])
    assert (metadata["model"], metadata["dimension"], metadata["has_text_encoder"]) == (str(tiny_clip), 16, True)
    assert vectors.shape == (6, 16)
    assert len(hits) == 3  # text search works on the collection


def test_unloadable_model_names_the_offline_alternative(monkeypatch: pytest.MonkeyPatch) -> None:
    import sentence_transformers  # noqa: F401  (its import alone takes seconds on a busy machine)

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    started = time.perf_counter()
    with pytest.raises(ModelLoadError) as caught:
        load_embedder("clip-ViT-B-32", "cpu")
    assert time.perf_counter() - started < 10
    message = str(caught.value)
    assert "clip-ViT-B-32" in message and "--model mobilenet-v2" in message


def test_unloadable_model_folder(tmp_path: Path) -> None:
    (tmp_path / "not-a-model").mkdir()
    (tmp_path / "not-a-model" / "config.json").write_text("{broken")
    with pytest.raises(ModelLoadError, match="cannot load the model folder .*mobilenet-v2"):
        load_embedder(str(tmp_path / "not-a-model"), "cpu")


def test_cli_reports_an_unloadable_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture) -> None:
    import app

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    write_image(tmp_path / "images" / "a.png")
    code = app.main(["--qdrant-path", str(tmp_path / "q"), "index", str(tmp_path / "images"), "--collection", "c"])
    err = capsys.readouterr().err
    assert code == 2
    assert "error: model 'clip-ViT-B-32'" in err and "--model mobilenet-v2" in err


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA GPU is present")
def test_cuda_without_gpu_is_a_clear_error() -> None:
    with pytest.raises(ModelLoadError, match="--device cpu"):
        load_embedder("mobilenet-v2", "cuda")
