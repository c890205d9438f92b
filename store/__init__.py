"""Everything that talks to Qdrant. Nothing outside this package imports a Qdrant library.

`open_store()` picks the backend from flags or the environment:
    QDRANT_URL (+ QDRANT_API_KEY)  -> a Qdrant server through qdrant-client
    otherwise QDRANT_PATH           -> Qdrant's engine embedded in-process (default ./data/qdrant)
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from store.base import (
    DEFAULT_VECTOR, CollectionNotFound, Collection, Columns, PointFilter, PointRecord, Store, StoreError, default_filter,
    point_id, validate_vector_name,
)

DEFAULT_PATH = "./data/qdrant"
DEFAULT_ARTIFACTS = "./data/artifacts"

__all__ = [
    "DEFAULT_VECTOR", "validate_vector_name", "Collection", "CollectionNotFound", "Columns", "PointFilter", "PointRecord", "Store", "StoreError",
    "default_filter", "open_store", "opened_store", "point_id",
]


def open_store(path: str | None = None, url: str | None = None, api_key: str | None = None,
               local_client_path: str | None = None) -> Store:
    """The configured store. Arguments win over QDRANT_URL / QDRANT_API_KEY / QDRANT_PATH.

    `local_client_path` selects qdrant-client's local mode (a stand-in for a server in tests).
    """
    url = url or os.environ.get("QDRANT_URL") or None
    api_key = api_key or os.environ.get("QDRANT_API_KEY") or None
    artifacts = Path(os.environ.get("EMBEDSCAPE_ARTIFACTS", DEFAULT_ARTIFACTS))
    if url or local_client_path:
        from store.server import ServerStore

        return ServerStore(artifacts, url=url, api_key=api_key, path=local_client_path)
    from store.edge import EdgeStore

    return EdgeStore(Path(path or os.environ.get("QDRANT_PATH") or DEFAULT_PATH))


@contextmanager
def opened_store(path: str | None = None, url: str | None = None, api_key: str | None = None) -> Iterator[Store]:
    """`open_store`, closed on the way out whatever happens (every command of app.py runs in one)."""
    store = open_store(path=path, url=url, api_key=api_key)
    try:
        yield store
    finally:
        store.close()
