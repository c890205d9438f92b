"""Image routes: the dataset's images, and only those, as cached thumbnails and full size.

    GET /thumb/{point_id}   thumbnail (at most THUMB_SIZE px a side), cached on disk
    GET /thumb/row/{row}    the same for a map row (the hover card only knows rows)
    GET /image/{point_id}   the original file

A request names a point, never a path: the path comes from the point's payload in the
store and must resolve (symlinks included) to a file inside the collection's source_root.
Anything else is a 404, so no request can read a file outside the dataset.
Thumbnails are written once under `collection.artifact_dir / "thumbnails"`, named by point
id and content hash, so a re-indexed, changed image gets a new thumbnail.
"""
from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, Response
from PIL import Image, ImageOps

from store import Collection
from store.schema import PATH, SHA1

THUMB_SIZE = 160
THUMB_DIR = "thumbnails"
MEDIA_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".webp": "image/webp",
               ".gif": "image/gif", ".bmp": "image/bmp", ".tif": "image/tiff", ".tiff": "image/tiff"}
CACHE_HEADERS = {"Cache-Control": "private, max-age=86400"}


class ImageServer:
    """Resolves point ids to files inside source_root and makes their thumbnails."""

    def __init__(self, collection: Collection, row_to_id: Callable[[int], str | None] | None = None) -> None:
        self.collection = collection
        self.row_to_id = row_to_id
        root = collection.read_metadata().get("source_root")
        self.root = Path(root).resolve() if root else None
        self.cache = Path(collection.artifact_dir) / THUMB_DIR
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    def source_file(self, point_id: str) -> tuple[Path, str]:
        """(resolved file, content hash) of a point; 404 unless it lies inside source_root."""
        if self.root is None or not _is_uuid(point_id):
            raise HTTPException(404, "not found")
        records = self.collection.retrieve([point_id], [PATH, SHA1])
        if not records or not isinstance(records[0].payload.get(PATH), str):
            raise HTTPException(404, "not found")
        relative = records[0].payload[PATH]
        try:
            path = (self.root / relative).resolve(strict=True)
        except (OSError, RuntimeError):
            raise HTTPException(404, "not found") from None
        # resolve() followed every symlink; the real file must still be inside the dataset.
        if not path.is_relative_to(self.root) or not path.is_file():
            raise HTTPException(404, "not found")
        return path, str(records[0].payload.get(SHA1) or "")

    def thumbnail(self, point_id: str) -> Path:
        source, sha1 = self.source_file(point_id)
        key = sha1[:16] or str(int(source.stat().st_mtime))
        for suffix in (".png", ".jpg"):
            cached = self.cache / f"{point_id}-{key}{suffix}"
            if cached.exists():
                return cached
        with self._lock_for(point_id):  # two requests for one new thumbnail make it once
            for suffix in (".png", ".jpg"):
                cached = self.cache / f"{point_id}-{key}{suffix}"
                if cached.exists():
                    return cached
            return self._make_thumbnail(source, self.cache / f"{point_id}-{key}")

    def _make_thumbnail(self, source: Path, stem: Path) -> Path:
        try:
            with Image.open(source) as image:
                image = ImageOps.exif_transpose(image)
                small = image.width <= THUMB_SIZE and image.height <= THUMB_SIZE
                image.thumbnail((THUMB_SIZE, THUMB_SIZE))
                # Small images stay lossless PNG (JPEG smears 28-px digits); photos become JPEG.
                if small:
                    target, fmt = stem.with_suffix(".png"), "PNG"
                    image = image.convert("RGBA" if image.mode in ("RGBA", "LA", "P") else "RGB")
                else:
                    target, fmt = stem.with_suffix(".jpg"), "JPEG"
                    image = image.convert("RGB")
                self.cache.mkdir(parents=True, exist_ok=True)
                tmp = target.with_name(f"{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
                image.save(tmp, fmt, quality=85)
                tmp.replace(target)
                return target
        except (OSError, ValueError, Image.DecompressionBombError):
            raise HTTPException(404, "not found") from None

    def _lock_for(self, key: str) -> threading.Lock:
        with self._locks_guard:
            if len(self._locks) > 10_000:
                self._locks.clear()
            return self._locks.setdefault(key, threading.Lock())


def add_image_routes(app: FastAPI, images: ImageServer,
                     authorize: Callable[[Request], bool] | None = None) -> None:
    """Register the image routes on `app`. `authorize` guards them when the app has a login."""

    def check(request: Request) -> None:
        if authorize is not None and not authorize(request):
            raise HTTPException(401, "not authenticated")

    @app.get("/thumb/row/{row}")
    def thumb_by_row(row: int, request: Request) -> Response:
        check(request)
        point = images.row_to_id(row) if images.row_to_id else None
        if point is None:
            raise HTTPException(404, "not found")
        return _file(images.thumbnail(point))

    @app.get("/thumb/{point_id}")
    def thumb(point_id: str, request: Request) -> Response:
        check(request)
        return _file(images.thumbnail(point_id))

    @app.get("/image/{point_id}")
    def image(point_id: str, request: Request) -> Response:
        check(request)
        path, _ = images.source_file(point_id)
        return _file(path)


def _file(path: Path) -> FileResponse:
    media = MEDIA_TYPES.get(path.suffix.lower(), "application/octet-stream")
    return FileResponse(path, media_type=media, headers=CACHE_HEADERS)


def _is_uuid(text: str) -> bool:
    try:
        return str(uuid.UUID(text)) == text.lower()
    except ValueError:
        return False
