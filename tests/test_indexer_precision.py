"""mobilenet-v2 in bfloat16 against fp32 on real images, how the precision is chosen, and what
happens when it cannot run.

bf16 rounds every product inside the network, so its vectors cannot match the fp32 reference
to 2e-4 as fp32 does (tests/test_indexer_models.py); they are held to the fp32 vectors by
measured bounds instead. Measured on the first 256 Fashion-MNIST test images (AMD EPYC with
AVX512-BF16, no AMX; OpenVINO 2026.4), and over the 39 disjoint sets of 256 among all 10,000
(`bench/bench_indexing.py` prints these; see docs/BENCHMARKS.md):

                                    median cosine     min cosine        10-NN kept
    bf16 vs fp32, first 256         0.9981            0.9937            0.934
    bf16 vs fp32, 39 sets of 256    0.9980-0.9983     0.9906-0.9948     0.924-0.946
    fp32 shifted one pixel, 39 sets 0.9841-0.9866     0.9103-0.9565     0.792-0.824
    fp32 mirrored, 39 sets          0.9799-0.9825     0.9364-0.9596     0.769-0.813

The issue that asked for this measured the same on a Xeon with AMX (2,048 images: median
0.998, min 0.991, 90% of 10 neighbours kept; fewer neighbours are kept in a larger set, where
they lie closer together). Each bound sits between the worst bf16 set and the best one-pixel
shift, a smaller change than a real fault (a wrong resize, layout or normalisation moves vectors
further): loose enough for another CPU's bf16 rounding (AMX accumulates differently), tight
enough that a wrong embedding fails, which `test_the_bounds_reject_a_slightly_wrong_embedding`
checks on every CPU.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from indexer.models import (MobileNetEmbedder, ModelLoadError, choose_precision, cpu_flags, cpu_runs_bf16_natively,
                            load_embedder)

SAMPLE = 256
MEDIAN_COSINE = 0.996   # bf16 0.9980 or more; one-pixel shift 0.9866 or less
MIN_COSINE = 0.975      # bf16 0.9906 or more; one-pixel shift 0.9565 or less
NEIGHBOURS_KEPT = 0.88  # bf16 0.924 or more; one-pixel shift 0.824 or less
NATIVE_BF16 = cpu_runs_bf16_natively()
needs_native_bf16 = pytest.mark.skipif(
    not NATIVE_BF16, reason="this CPU has no native bfloat16 (OpenVINO lists no BF16 capability), so bf16 cannot "
                            "run here; fp32 is checked against the reference on every CPU")


@pytest.fixture(scope="module")
def fashion() -> list[np.ndarray]:
    """The first 256 Fashion-MNIST test images as 28x28 RGB, as the indexer hands them to the model."""
    from indexer.demo import DEBIAN_DIR, load_split

    if not DEBIAN_DIR.exists():
        pytest.skip("Fashion-MNIST is not installed: sudo apt-get install dataset-fashion-mnist (make test does)")
    images, _ = load_split("test", DEBIAN_DIR)
    return [np.repeat(image[:, :, None], 3, axis=2) for image in images[:SAMPLE]]


@pytest.fixture(scope="module")
def fp32_vectors(fashion: list[np.ndarray]) -> np.ndarray:
    return embed(MobileNetEmbedder("cpu", "openvino", "fp32"), fashion)


def embed(embedder: MobileNetEmbedder, items: list[np.ndarray], batch: int = 32) -> np.ndarray:
    return np.vstack([embedder.embed_batch(items[i:i + batch]) for i in range(0, len(items), batch)])


def agreement(vectors: np.ndarray, reference: np.ndarray, k: int = 10) -> dict[str, float]:
    """Median and minimum cosine between each image's two vectors, and the share of each
    image's k nearest neighbours (within the sample) that both sets of vectors agree on."""
    cosine = np.sum(vectors * reference, axis=1)

    def neighbours(v: np.ndarray) -> np.ndarray:
        similarity = v @ v.T
        np.fill_diagonal(similarity, -np.inf)
        return np.argpartition(-similarity, k, axis=1)[:, :k]

    kept = [len(set(a) & set(b)) / k for a, b in zip(neighbours(vectors), neighbours(reference))]
    return {"median_cosine": float(np.median(cosine)), "min_cosine": float(cosine.min()),
            "neighbours_kept": float(np.mean(kept))}


def within_bounds(measured: dict[str, float]) -> dict[str, bool]:
    return {"median_cosine": measured["median_cosine"] >= MEDIAN_COSINE,
            "min_cosine": measured["min_cosine"] >= MIN_COSINE,
            "neighbours_kept": measured["neighbours_kept"] >= NEIGHBOURS_KEPT}


@needs_native_bf16
def test_bf16_vectors_stay_close_to_fp32_on_fashion_mnist(fashion: list[np.ndarray], fp32_vectors: np.ndarray) -> None:
    bf16 = MobileNetEmbedder("cpu", "openvino", "bf16")
    assert bf16.precision == "bf16"
    vectors = embed(bf16, fashion)
    assert vectors.shape == (SAMPLE, 1280) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3)
    measured = agreement(vectors, fp32_vectors)
    assert all(within_bounds(measured).values()), measured
    # It really ran in bf16: fp32 arithmetic would agree to ~1e-6, not ~1e-2.
    assert np.abs(vectors - fp32_vectors).max() > 1e-3


def test_the_bounds_reject_a_slightly_wrong_embedding(fashion: list[np.ndarray], fp32_vectors: np.ndarray) -> None:
    """Every image shifted by one pixel, in fp32 (so this runs on every CPU): each bound fails."""
    shifted = [np.ascontiguousarray(np.roll(image, 1, axis=1)) for image in fashion]
    measured = agreement(embed(MobileNetEmbedder("cpu", "openvino", "fp32"), shifted), fp32_vectors)
    assert not any(within_bounds(measured).values()), measured


def test_auto_precision_is_bf16_exactly_where_the_cpu_runs_it_natively() -> None:
    embedder = load_embedder("mobilenet-v2", "cpu")
    assert embedder.runtime == "openvino"
    assert embedder.precision == ("bf16" if NATIVE_BF16 else "fp32")
    assert load_embedder("mobilenet-v2", "cpu", precision="fp32").precision == "fp32"


def test_choice_of_precision() -> None:
    assert [choose_precision("auto", native) for native in (True, False)] == ["bf16", "fp32"]
    assert [choose_precision("fp32", native) for native in (True, False)] == ["fp32", "fp32"]
    assert choose_precision("bf16", True) == "bf16"
    with pytest.raises(ModelLoadError, match="no bfloat16"):
        choose_precision("bf16", False)
    with pytest.raises(ValueError, match="--precision"):
        choose_precision("fp16", True)


@pytest.mark.skipif(NATIVE_BF16, reason="this CPU runs bf16 natively; the refusal is for CPUs that do not")
def test_bf16_on_a_cpu_without_it_is_refused() -> None:
    with pytest.raises(ModelLoadError, match="no bfloat16"):
        MobileNetEmbedder("cpu", "openvino", "bf16")


@pytest.mark.parametrize("runtime", ["onnxruntime", "torch"])
def test_bf16_is_refused_by_the_fp32_only_runtimes(runtime: str) -> None:
    with pytest.raises(ModelLoadError, match=f"OpenVINO on the CPU only; {runtime} on cpu runs fp32"):
        load_embedder("mobilenet-v2", "cpu", runtime, "bf16")
    assert load_embedder("mobilenet-v2", "cpu", runtime, "auto").precision == "fp32"


def test_bf16_is_refused_for_sentence_transformers_models(tiny_clip: Path) -> None:
    with pytest.raises(ModelLoadError, match="runs fp32 through sentence-transformers"):
        load_embedder(str(tiny_clip), "cpu", precision="bf16")
    assert load_embedder(str(tiny_clip), "cpu").precision == "fp32"


def test_without_openvino_the_cpu_flags_decide() -> None:
    class NoCpuPlugin:
        def get_property(self, device: str, name: str) -> object:
            raise RuntimeError("no CPU plugin")

    assert cpu_runs_bf16_natively(NoCpuPlugin()) == bool({"avx512_bf16", "amx_bf16"} & cpu_flags())
    if Path("/proc/cpuinfo").exists() and "flags" in Path("/proc/cpuinfo").read_text():
        assert "sse2" in cpu_flags() or "fpu" in cpu_flags()  # the flags line was found and split


def test_a_batch_gives_the_same_vectors_as_one_image_at_a_time_in_the_auto_precision(fashion: list[np.ndarray]) -> None:
    """Whatever precision auto picked, an image's vector does not depend on its batch."""
    embedder = load_embedder("mobilenet-v2", "cpu")
    items = fashion[:8] + [np.asarray(Image.fromarray(fashion[8]).resize((40, 30)))]
    one_by_one = np.vstack([embedder.embed_batch([item]) for item in items])
    np.testing.assert_allclose(embedder.embed_batch(items), one_by_one, atol=1e-5)
