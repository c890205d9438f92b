"""Content words from the models themselves, computed from stored unit vectors: mobilenet-v2's
ImageNet head (checked against the full network's logits) and CLIP zero-shot (a tiny CLIP
built at test time, checked against its own text tower)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from indexer.concepts import FEATURE_NORM, imagenet_classes, load_content_words
from indexer.mobilenet import IMAGENET_MEAN, IMAGENET_STD, load_pretrained
from indexer.models import ModelLoadError


def photos() -> list[Image.Image]:
    from skimage import data

    return [Image.fromarray(image).convert("RGB").resize((224, 224))
            for image in (data.coffee(), data.astronaut(), data.chelsea(), data.rocket(), data.camera())]


def full_model(images: list[Image.Image]) -> tuple[np.ndarray, np.ndarray]:
    """The whole network on 224x224 images (ImageNet normalisation): (pooled features, top class)."""
    net = load_pretrained()
    pixels = np.stack([np.asarray(im, np.float32) / 255.0 for im in images])
    pixels = (pixels - np.array(IMAGENET_MEAN, np.float32)) / np.array(IMAGENET_STD, np.float32)
    with torch.inference_mode():
        features = net.embed(torch.from_numpy(pixels.transpose(0, 3, 1, 2).copy()))
        logits = net.classifier(features)
    return features.numpy(), logits.argmax(dim=1).numpy()


def test_imagenet_classes_ship_with_the_code() -> None:
    names = imagenet_classes()
    assert len(names) == 1000 == len(set(names))
    assert (names[0], names[967]) == ("tench", "espresso")


def test_mobilenet_words_from_unit_vectors_match_the_full_model() -> None:
    features, top = full_model(photos())
    unit = features / np.linalg.norm(features, axis=1, keepdims=True)   # what a collection stores
    words = load_content_words("mobilenet-v2")
    assert words is not None and words.source == "mobilenet-v2 ImageNet classifier"
    reference = [imagenet_classes()[i] for i in top]
    assert list(words.top_words(unit)) == reference
    assert reference[0] == "espresso" and reference[4] == "tripod"
    # The length matters: at length 1 the bias outweighs the image and the words change.
    assert 15 < FEATURE_NORM < 35
    assert list(np.asarray(words.vocabulary)[(unit @ load_pretrained().classifier[1].weight.detach().numpy().T
                                              + words.scores(np.zeros_like(unit))).argmax(1)]) != reference


def test_confidence_is_the_softmax_of_the_head() -> None:
    """The word's probability from the stored unit vector is close to the full network's softmax
    (the length is one typical length, not the image's own), and an image the model was never
    trained on (a random texture) gets a low one: what keeps such words out of cluster names."""
    images = photos()
    rng = np.random.default_rng(0)
    images.append(Image.fromarray(rng.integers(0, 256, (224, 224, 3), dtype=np.uint8)))
    features, _ = full_model(images)
    with torch.inference_mode():
        full = torch.softmax(load_pretrained().classifier(torch.from_numpy(features)), dim=1).max(dim=1).values.numpy()
    words = load_content_words("mobilenet-v2")
    found, confidence = words.top_words_with_confidence(features / np.linalg.norm(features, axis=1, keepdims=True))
    assert found[0] == "espresso"
    np.testing.assert_allclose(confidence, full, atol=0.15)
    assert confidence[0] > 0.5 > confidence[-1]


def test_mobilenet_words_through_the_indexing_embedder(mobilenet) -> None:
    words = load_content_words("mobilenet-v2")
    images = photos()
    vectors = mobilenet.embed_images([images[0], images[4]])   # coffee, camera: clear winners
    assert list(words.top_words(vectors)) == ["espresso", "tripod"]


def test_clip_zero_shot_uses_the_text_tower(tiny_clip) -> None:
    from sentence_transformers import SentenceTransformer

    words = load_content_words(str(tiny_clip))
    assert words is not None and words.source.startswith("zero-shot")
    model = SentenceTransformer(str(tiny_clip), device="cpu")
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)) for _ in range(6)]
    vectors = model.encode(images, normalize_embeddings=True)
    text = model.encode([f"a photo of a {name}" for name in imagenet_classes()], normalize_embeddings=True)
    expected = [imagenet_classes()[i] for i in (vectors @ text.T).argmax(axis=1)]
    assert list(words.top_words(vectors)) == expected
    # Probabilities: CLIP's softmax over 100 x cosine similarity.
    logits = 100.0 * (vectors @ text.T).astype(np.float64)
    probabilities = np.exp(logits - logits.max(1, keepdims=True))
    found, confidence = words.top_words_with_confidence(vectors)
    assert list(found) == expected
    np.testing.assert_allclose(confidence, (probabilities / probabilities.sum(1, keepdims=True)).max(1), rtol=1e-3)


def test_models_without_words_or_unloadable() -> None:
    assert load_content_words(None) is None
    with pytest.raises(ModelLoadError, match="not cached"):
        load_content_words("no-such-model-anywhere")
