"""Content words: what the embedding model itself says a point shows, one word per point,
computed from the stored vectors alone (no image is decoded again, nothing is downloaded).

    words = load_content_words("mobilenet-v2")       # or a CLIP model's name / folder
    words.top_words(unit_vectors)                    # -> (n,) array of class names
    words.top_words_with_confidence(unit_vectors)    # -> the same, and each word's probability

- mobilenet-v2: its own ImageNet classifier head. The stored vector is the pooled 1280-d
  feature divided by its length, and the head's bias makes the logits' ranking depend on that
  length, which is not stored. The lengths vary little, so the vector is scaled back by one
  typical length (FEATURE_NORM) before the head: measured on 2,000 Fashion-MNIST images and 19
  scikit-image photos, the top class then agrees with the full model's on 99.9 % and 100 % of
  them (without the bias: 98.3 %; with length 1: 53 %). See tests/test_cluster_naming.py.
- a model with a text tower (CLIP through sentence-transformers): zero-shot, the class whose
  prompt "a photo of a {class}" embeds nearest to the point's vector.

The probability of a word is the softmax of the scores: the head's logits, or for CLIP the
cosine similarities times CLIP's trained logit scale (100). Cluster names use a word only where
it is confident (scoring/clusters.py), because a model shown what it was never trained on
(clothes, for an ImageNet model) still gives every point its nearest class.

The vocabulary is the 1000 ImageNet class names (`imagenet_classes.txt`, copied from gradio's
Apache-2.0 package data, see the file's header).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

CLASSES_FILE = Path(__file__).with_name("imagenet_classes.txt")
# Median length of mobilenet-v2's pooled feature: 24.0 on Fashion-MNIST, 26.0 on photos.
FEATURE_NORM = 24.0
PROMPT = "a photo of a {}"
BLOCK = 8192  # vectors scored at a time (bounds the (block, 1000) score matrix)
CLIP_LOGIT_SCALE = 100.0  # CLIP's learnt temperature (clamped at 100 in training, where it ends)


@lru_cache(maxsize=1)
def imagenet_classes() -> tuple[str, ...]:
    lines = CLASSES_FILE.read_text(encoding="utf-8").splitlines()
    names = tuple(line.strip() for line in lines if line.strip() and not line.startswith("#"))
    if len(names) != 1000:
        raise ValueError(f"{CLASSES_FILE.name} holds {len(names)} class names, not 1000")
    return names


@dataclass(frozen=True)
class ContentWords:
    """Scores unit vectors against a vocabulary; `source` says how (shown in reports)."""

    vocabulary: tuple[str, ...]
    source: str
    scores: Callable[[np.ndarray], np.ndarray]  # (n, d) unit vectors -> (n, len(vocabulary))

    def top_indices(self, vectors: np.ndarray) -> np.ndarray:
        vectors = np.asarray(vectors, dtype=np.float32)
        return np.concatenate([self.scores(vectors[i:i + BLOCK]).argmax(axis=1)
                               for i in range(0, len(vectors), BLOCK)] or [np.zeros(0, np.int64)])

    def top_words(self, vectors: np.ndarray) -> np.ndarray:
        """(n,) the highest-scoring word of each vector."""
        return np.asarray(self.vocabulary, dtype=object)[self.top_indices(vectors)].astype(str)

    def top_words_with_confidence(self, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """((n,) the highest-scoring word of each vector, (n,) its softmax probability)."""
        from scipy.special import softmax

        vectors = np.asarray(vectors, dtype=np.float32)
        tops, probabilities = [np.zeros(0, np.int64)], [np.zeros(0)]
        for i in range(0, len(vectors), BLOCK):
            scores = self.scores(vectors[i:i + BLOCK]).astype(np.float64)
            tops.append(scores.argmax(axis=1))
            probabilities.append(softmax(scores, axis=1).max(axis=1))
        words = np.asarray(self.vocabulary, dtype=object)[np.concatenate(tops)].astype(str)
        return words, np.concatenate(probabilities)


def mobilenet_content_words() -> ContentWords:
    """mobilenet-v2's ImageNet head applied to the stored (unit) vectors, scaled by FEATURE_NORM."""
    import torch

    from indexer.mobilenet import weights_path

    state = torch.load(weights_path(), map_location="cpu", weights_only=True)
    weight = state["classifier.1.weight"].numpy().astype(np.float32)   # (1000, 1280)
    bias = state["classifier.1.bias"].numpy().astype(np.float32)
    scaled = (weight * FEATURE_NORM).T.copy()
    return ContentWords(imagenet_classes(), "mobilenet-v2 ImageNet classifier",
                        lambda vectors: vectors @ scaled + bias)


def zero_shot_content_words(embed_text: Callable[[list[str]], np.ndarray], model: str) -> ContentWords:
    """Zero-shot classes through a model's text tower (`embed_text` returns unit vectors)."""
    vocabulary = imagenet_classes()
    text = np.asarray(embed_text([PROMPT.format(name) for name in vocabulary]), dtype=np.float32).T.copy()
    return ContentWords(vocabulary, f"zero-shot with {model}'s text tower",
                        lambda vectors: CLIP_LOGIT_SCALE * (vectors @ text))


def load_content_words(model: str | None) -> ContentWords | None:
    """Content words for the collection's `model`; None for a model with neither an ImageNet
    head nor a text tower. Raises indexer.models.ModelLoadError when the model cannot be loaded."""
    from indexer.models import ModelLoadError, load_embedder

    if not model:
        return None
    if model.replace("_", "-") in ("mobilenet-v2", "mobilenetv2"):
        try:
            return mobilenet_content_words()
        except ImportError as error:
            raise ModelLoadError(str(error)) from error
    embedder = load_embedder(model, device="cpu")
    if not embedder.has_text:
        return None
    return zero_shot_content_words(lambda texts: embedder.embed_text(texts), model)
