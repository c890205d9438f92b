"""Decode and embed on a Ray cluster: `python app.py index PATH --engine ray`.

Ray Data streams the dataset's files through a pool of actors (`map_batches` over a callable
class, so each actor loads the model once). Each actor runs the local engine's own steps,
`prepare_image` (read, hash, skip if unchanged, decode, image metrics, preprocess) and the
embedder's `embed_batch`, so a file gives the same point either way. The results stream
back to the driver, which writes them through the pipeline's writer thread as they arrive:
the embedded store can be opened by one process only, and a Qdrant server is written the
same way (so a run killed half-way resumes as a local one does). The graph, the map and the
scores then run on the driver's machine (indexer/pipeline.py `finish_index`, scoring/indexing.py).

Where Ray runs: `RAY_ADDRESS` (Ray's own variable, e.g. `ray://head:10001` or `auto` on a
cluster node) names the cluster; unset, a local Ray instance on this machine is started for
the run. A caller that already called `ray.init` keeps its connection, and passes
`runtime_env=worker_runtime_env()` to it so the workers can import this project's code
(Ray uploads it; `py_modules` is taken only by `ray.init`). The Python packages of
requirements.txt must be installed on every node, and the image folder must be readable at the same path on every
node (a shared filesystem), since the workers read the files themselves.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from imaging.progress import progress_bar
from indexer.models import ModelLoadError
from indexer.pipeline import IndexOptions, PreparedImage, prepare_image
from indexer.sources import ImageSource
from store.schema import METRIC_FIELDS

RAY_INSTALL = "pip install 'ray[data]'  (or: pip install -r requirements-ray.txt)"
# Files per Ray block, in batches: a block is what an actor is handed and what comes back to the
# driver at once, so small blocks keep every actor busy and results (and resume points) flowing.
BATCHES_PER_BLOCK = 8
PROJECT = Path(__file__).resolve().parents[1]
WORKER_PACKAGES = ("indexer", "imaging", "analysis", "store")  # what prepare_image and the embedders import


class RayUnavailable(ModelLoadError):
    """--engine ray without Ray installed; the message says how to install it."""


def import_ray() -> Any:
    try:
        import ray
        import ray.data  # noqa: F401  (Ray Data is the [data] extra)
    except ImportError as error:
        raise RayUnavailable(f"--engine ray needs Ray Data, which is not installed: {RAY_INSTALL}. "
                             f"({error})") from error
    return ray


def ray_embedded_batches(sources: Sequence[ImageSource], stored_sha1: Sequence[str | None], options: IndexOptions,
                         triage: Callable[[PreparedImage], bool]) -> Iterator[tuple[list[PreparedImage], np.ndarray]]:
    """Batches of decoded files and their vectors, embedded by Ray actors, in the order they
    finish. `triage` records each unchanged or skipped file and says which to write."""
    ray = import_ray()
    started_here = _connect(ray)
    try:
        results = _embedding_dataset(ray, sources, stored_sha1, options)
        bar = progress_bar(total=len(sources), unit="img", desc=f"indexing {options.collection} on Ray",
                   disable=not options.progress, smoothing=0.1)
        for result in results.iter_batches(batch_size=None, batch_format="numpy"):
            works, vectors = _unpacked(result, sources, options.image_metrics)
            bar.update(len(works))
            keep = [i for i, work in enumerate(works) if triage(work)]
            if keep:
                yield [works[i] for i in keep], vectors[keep]
        bar.close()
    finally:
        if started_here:
            ray.shutdown()


def worker_runtime_env() -> dict[str, Any]:
    """The `runtime_env` for `ray.init` that ships this project's packages to the workers."""
    return {"py_modules": [str(PROJECT / name) for name in WORKER_PACKAGES]}


def _connect(ray: Any) -> bool:
    """Join RAY_ADDRESS's cluster, or start a local instance; True when this call started Ray."""
    if ray.is_initialized():
        return False
    address = os.environ.get("RAY_ADDRESS") or None
    ray.init(address=address, runtime_env=worker_runtime_env(), logging_level=logging.WARNING)
    return True


def _embedding_dataset(ray: Any, sources: Sequence[ImageSource], stored_sha1: Sequence[str | None],
                       options: IndexOptions) -> Any:
    import pyarrow as pa

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # the driver's own bar counts files
    table = pa.table({"row": np.arange(len(sources), dtype=np.int64),
                      "file": [str(s.path) for s in sources],
                      "stored_sha1": [h or "" for h in stored_sha1]})
    rows = options.batch_size * BATCHES_PER_BLOCK
    blocks = [table.slice(start, rows) for start in range(0, len(sources), rows)]
    gpus = _use_gpus(ray, options.device)
    actors = options.ray_actors or _default_actors(ray, gpus, options.workers)
    return ray.data.from_arrow(blocks).map_batches(
        EmbedActor, batch_size=options.batch_size, batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(min_size=1, max_size=actors),
        fn_constructor_kwargs={"model": options.model, "device": "cuda" if gpus else "cpu",
                               "runtime": options.runtime, "precision": options.precision,
                               "image_metrics": options.image_metrics,
                               "workers": options.workers},
        num_gpus=1 if gpus else 0, num_cpus=0 if gpus else options.workers)


def _use_gpus(ray: Any, device: str) -> bool:
    if device == "cuda":
        return True
    return device == "auto" and ray.cluster_resources().get("GPU", 0) > 0


def _default_actors(ray: Any, gpus: bool, workers: int) -> int:
    resources = ray.cluster_resources()
    if gpus:
        return max(1, int(resources.get("GPU", 1)))
    return max(1, int(resources.get("CPU", 1)) // max(1, workers))


class EmbedActor:
    """One Ray actor: loads the embedder once, then prepares and embeds batch after batch."""

    def __init__(self, model: str, device: str, runtime: str, precision: str, image_metrics: bool,
                 workers: int) -> None:
        from indexer.models import load_embedder

        self.embedder = load_embedder(model, device, runtime, precision)
        self.image_metrics = image_metrics
        self.pool = ThreadPoolExecutor(max_workers=workers)  # decode threads, as in the local engine

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        sources = [ImageSource(Path(str(f)), "") for f in batch["file"]]
        prepared = list(self.pool.map(
            lambda source, sha1: prepare_image(source, self.embedder, str(sha1) or None, self.image_metrics),
            sources, batch["stored_sha1"]))
        todo = [i for i, work in enumerate(prepared) if work.item is not None]
        vectors = np.zeros((len(prepared), self.embedder.dimension), np.float32)
        if todo:
            vectors[todo] = self.embedder.embed_batch([prepared[i].item for i in todo])
        out = {"row": np.asarray(batch["row"], np.int64), "vector": vectors,
               "embedded": np.array([work.item is not None for work in prepared]),
               "unchanged": np.array([work.unchanged for work in prepared]),
               "sha1": np.array([work.sha1 for work in prepared], dtype=object),
               "skip_reason": np.array([work.skip_reason for work in prepared], dtype=object),
               "width": np.array([work.width for work in prepared], np.int64),
               "height": np.array([work.height for work in prepared], np.int64)}
        for name in METRIC_FIELDS:
            out[name] = np.array([work.metrics.get(name, np.nan) for work in prepared], np.float64)
        return out


def _unpacked(result: dict[str, np.ndarray], sources: Sequence[ImageSource],
              with_metrics: bool) -> tuple[list[PreparedImage], np.ndarray]:
    """The actor's columns back as the pipeline's PreparedImage, one per file."""
    works = []
    for i, row in enumerate(result["row"]):
        embedded = bool(result["embedded"][i])
        metrics = {name: float(result[name][i]) for name in METRIC_FIELDS} if embedded and with_metrics else {}
        works.append(PreparedImage(
            sources[int(row)], str(result["sha1"][i]), item=None, width=int(result["width"][i]),
            height=int(result["height"][i]), metrics=metrics, skip_reason=str(result["skip_reason"][i]),
            unchanged=bool(result["unchanged"][i])))
    return works, np.asarray(result["vector"], np.float32)
