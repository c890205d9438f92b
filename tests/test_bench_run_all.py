"""`make bench` runs bench/run_all.py: it knows every benchmark script and says why one is skipped."""
from __future__ import annotations

import importlib.util

import pytest

from conftest import ROOT


def load_run_all():
    spec = importlib.util.spec_from_file_location("run_all", ROOT / "bench" / "run_all.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_bench_script_has_quick_arguments() -> None:
    run_all = load_run_all()
    scripts = {p.stem.removeprefix("bench_") for p in (ROOT / "bench").glob("bench_*.py")}
    assert scripts == set(run_all.BENCHMARKS)
    assert run_all.BENCHMARKS["indexing"](False) == ["--images", "1000", "--runs", "3"]
    assert run_all.BENCHMARKS["indexing"](True) == []
    assert "run_all.py" in (ROOT / "Makefile").read_text()


def test_a_benchmark_that_cannot_run_here_is_skipped_with_its_reason(capsys: pytest.CaptureFixture) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present: the GPU benchmark would run")
    assert load_run_all().main(["--only", "gpu"]) == 0
    assert "gpu            skipped: no CUDA GPU" in capsys.readouterr().out
