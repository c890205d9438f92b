"""Copy a collection to a Qdrant server: vectors, payloads, metadata, payload indexes, and
the artifact files (kNN graph, reports) beside it.

    target = open_target_store(url="http://qdrant:6333", api_key=None)
    push_collection(store.open("fashion-mnist"), target, name="fashion-mnist", progress=progress_bar)

`progress`: a factory of progress bars called as `progress(total=, desc=, unit=)` (the
command line passes imaging/progress.py's `progress_bar`, which suits a terminal and a log
alike); None reports nothing.

With a server, artifact files live in a local folder per collection (EMBEDSCAPE_ARTIFACTS),
so they are copied there: the app that serves the pushed collection must see that folder.
"""
from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from store.base import Collection, Store, StoreError, validate_collection_name
from store.columns_cache import FILE_NAME as COLUMNS_CACHE_FILE
from store.edge import IN_USE_FILE
from store.schema import index_kind
from store.start_answers import FILE_NAME as START_ANSWERS_FILE
from store.write_behind import JOURNAL_DIR

PUSH_BATCH = 256
# Files of the embedded backend that live in its collection folder but are not artifacts: the
# engine's shard and metadata, the columns cache and the start's saved reads (rebuilt from the
# target), the write-behind journal (applied before the points are read) and the open lock.
BACKEND_FILES = frozenset({"shard", "collection.json", COLUMNS_CACHE_FILE, START_ANSWERS_FILE, JOURNAL_DIR,
                           IN_USE_FILE})


@dataclass
class PushReport:
    source: str
    target: str
    target_store: str
    points: int = 0
    artifacts: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (f"pushed {self.points} points of '{self.source}' to '{self.target}' in {self.target_store}; "
                f"{len(self.artifacts)} artifact files copied")


def open_target_store(url: str | None = None, api_key: str | None = None, local_path: str | None = None) -> Store:
    """A Qdrant server by URL, or qdrant-client's local mode at `local_path` (a stand-in for tests)."""
    from store import DEFAULT_ARTIFACTS
    from store.server import ServerStore

    if not url and not local_path:
        raise StoreError("say where to push: --url http://HOST:6333")
    artifacts = Path(os.environ.get("EMBEDSCAPE_ARTIFACTS", DEFAULT_ARTIFACTS))
    return ServerStore(artifacts, url=url, api_key=api_key, path=None if url else local_path)


def push_collection(source: Collection, target_store: Store, name: str | None = None, overwrite: bool = False,
                    batch: int = PUSH_BATCH, progress: Callable[..., Any] | None = None) -> PushReport:
    """Copy `source` into `target_store` as `name` (default: the same name).

    An existing target collection is refused unless `overwrite` (then it is dropped first).
    """
    name = validate_collection_name(name or source.name)
    if target_store.exists(name):
        if not overwrite:
            raise StoreError(f"collection '{name}' already exists in {target_store.description}; "
                             "choose another --target-collection or pass --overwrite to replace it")
        target_store.drop(name)
    metadata = {k: v for k, v in source.read_metadata().items() if k not in ("dimension", "distance")}
    metadata.update(pushed_from=source.name, pushed_at=datetime.now(timezone.utc).isoformat(timespec="seconds"))
    target = target_store.create(name, source.dimension, metadata)
    report = PushReport(source.name, name, target_store.description)
    indexed = source.indexed_fields()
    kinds: dict[str, str] = {}
    total = source.count()
    bar_of = progress or (lambda **_: nullcontext(_SilentBar()))
    with bar_of(total=total, unit="pt", desc=f"push {source.name} -> {name}") as bar:
        for records in source.scroll(None, None, with_vectors=True, batch=batch):
            if not records:
                continue
            vectors = np.vstack([r.vector for r in records]).astype(np.float32)
            target.upsert([r.id for r in records], vectors, [r.payload for r in records])
            for record in records:
                _note_kinds(record.payload, indexed, kinds)
            report.points += len(records)
            bar.update(len(records))
    for field_name, kind in sorted(kinds.items()):
        target.create_index(field_name, kind)
    _push_named_vectors(source, target, batch)
    target.flush()
    report.artifacts = copy_artifacts(source.artifact_dir, target.artifact_dir)
    if target.count() != total:
        raise StoreError(f"push incomplete: {target.count()} of {total} points arrived in '{name}'; run it again "
                         "with --overwrite")
    return report


def _push_named_vectors(source: Collection, target: Collection, batch: int) -> None:
    """The named vectors (other embedding models, `index --add-vector`) of every point that has them."""
    for name, dimension in source.vector_names().items():
        target.add_vector(name, dimension)
        for records in source.scroll([], None, with_vectors=True, batch=batch, using=name):
            kept = [r for r in records if r.vector is not None]
            if kept:
                target.set_vectors(name, [r.id for r in kept], np.vstack([r.vector for r in kept]))


class _SilentBar:
    def update(self, n: int = 1) -> None:
        pass


def _note_kinds(payload: dict[str, Any], indexed: set[str], kinds: dict[str, str]) -> None:
    """The index kind of each field the source indexes: as the payload schema declares it, else
    from the values (float wins over integer when a field holds both)."""
    for key, value in payload.items():
        if key not in indexed or key in kinds and kinds[key] != "integer":
            continue
        declared = index_kind(key)
        if declared is not None:
            kinds[key] = declared
        elif isinstance(value, bool):
            kinds[key] = "bool"
        elif isinstance(value, float):
            kinds[key] = "float"
        elif isinstance(value, int):
            kinds[key] = "integer"
        elif isinstance(value, (str, list)):
            kinds[key] = "keyword"


def copy_artifacts(source_dir: Path, target_dir: Path) -> list[str]:
    """Copy artifact files (not the embedded engine's own) and return their relative paths."""
    source_dir, target_dir = Path(source_dir), Path(target_dir)
    if not source_dir.is_dir() or (target_dir.exists() and source_dir.resolve() == target_dir.resolve()):
        return []
    copied = []
    for path in sorted(source_dir.rglob("*")):
        relative = path.relative_to(source_dir)
        if relative.parts[0] in BACKEND_FILES or not path.is_file():
            continue
        destination = target_dir / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, destination)
        copied.append(relative.as_posix())
    return copied
