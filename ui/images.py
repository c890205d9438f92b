"""Image routes: the dataset's images, and only those, as cached thumbnails and full size.

    GET /thumb/{point_id}           thumbnail (at most THUMB_SIZE px a side), cached on disk;
                                    of a box (object collection): its crop, what it was embedded from
    GET /image/{point_id}           the original file (of a box: its image's file)
    GET /boxes/{point_id}           the image with every box of it drawn and named; of a box,
                                    that box highlighted (detection datasets)
    GET {prefix}/thumb/row/{row}    the thumbnail of a map row of one explorer (the hover card
                                    only knows rows; each explorer has its own rows)

One server may show several collections (an image collection and its object collection):
point ids are UUIDs unique across them, so the id routes look a point up in each in turn.

A request names a point, never a path: the path comes from the point's payload in the
store and must resolve (symlinks included) to a file inside its collection's source_root.
Anything else is a 404, so no request can read a file outside the dataset.
Thumbnails are written once under `collection.artifact_dir / "thumbnails"`, named by point
id and content hash (a box's hash covers its image and its coordinates), so a re-indexed,
changed image or a moved box gets a new thumbnail. The encoded bytes of the thumbnails served
last are also kept in memory under the same name (`ThumbnailMemory`, at most
EMBEDSCAPE_THUMB_MEMORY_MB, default 64): a page opens with 40 thumbnails, and answering them
from files (a stat, an open, reads and a close, each in a worker thread) cost more server time
than the rest of their request (bench/bench_load.py --page-cost, docs/BENCHMARKS.md). Pictures with boxes are drawn per request
(classes change with every relabel) and not cached.
"""
from __future__ import annotations

import io
import os
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, Response
from PIL import Image, ImageOps

from detection.boxes import boxes_of_image, crop_margin, is_object_collection
from detection.crops import crop_thumbnail, draw_boxes
from imaging.images import ImageSkipped
from store import Collection
from store.schema import BBOX, IMAGE_ID, MASK, PATH, SHA1
from ui.run_overlay import draw_predictions

THUMB_SIZE = 160
# Pictures with boxes: shrunk to BOXES_SIDE pixels a side, small ones enlarged to about
# BOXES_MIN_SIDE (whole multiples) so class names stay legible; lossless PNG up to SMALL_SIDE.
BOXES_SIDE = 1024
BOXES_MIN_SIDE = 480
SMALL_SIDE = 320
THUMB_DIR = "thumbnails"
MEDIA_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".webp": "image/webp",
               ".gif": "image/gif", ".bmp": "image/bmp", ".tif": "image/tiff", ".tiff": "image/tiff"}
# nosniff: a dataset file is shown as the image type its name says, never sniffed as a page.
NO_SNIFF = {"X-Content-Type-Options": "nosniff"}
CACHE_HEADERS = {"Cache-Control": "private, max-age=86400", **NO_SNIFF}
NOT_CACHED = {"Cache-Control": "no-store", **NO_SNIFF}
_UNUSABLE = (OSError, ValueError, Image.DecompressionBombError, ImageSkipped)
MEMORY_ENV = "EMBEDSCAPE_THUMB_MEMORY_MB"
DEFAULT_MEMORY_MB = 64.0  # ~6,000 photo thumbnails (10 KB JPEGs), ~90,000 small PNGs


class ThumbnailMemory:
    """The encoded thumbnails served last with their media type, by name (point id and content
    hash: a changed image or a moved box has another name), at most `limit` bytes of them; the
    least recently used go first."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.size = 0
        self._items: OrderedDict[str, tuple[bytes, str]] = OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def from_env(cls) -> ThumbnailMemory:
        """Bounded by EMBEDSCAPE_THUMB_MEMORY_MB (0 keeps nothing)."""
        return cls(int(float(os.environ.get(MEMORY_ENV, str(DEFAULT_MEMORY_MB))) * 2**20))

    def get(self, name: str) -> tuple[bytes, str] | None:
        with self._lock:
            item = self._items.get(name)
            if item is not None:
                self._items.move_to_end(name)
            return item

    def put(self, name: str, content: bytes, media: str) -> None:
        if len(content) > self.limit:
            return
        with self._lock:
            old = self._items.pop(name, None)
            self.size += len(content) - (len(old[0]) if old is not None else 0)
            self._items[name] = (content, media)
            while self.size > self.limit:
                _, (dropped, _) = self._items.popitem(last=False)
                self.size -= len(dropped)

    def __len__(self) -> int:
        return len(self._items)


@dataclass(frozen=True)
class _Source:
    """One collection the server shows: where its files are, whether its points are boxes."""

    collection: Collection
    root: Path | None
    cache: Path
    objects: bool
    margin: float

    @classmethod
    def of(cls, collection: Collection) -> _Source:
        root = collection.read_metadata().get("source_root")
        objects = is_object_collection(collection)
        return cls(collection, Path(root).resolve() if root else None, Path(collection.artifact_dir) / THUMB_DIR,
                   objects, crop_margin(collection) if objects else 0.0)


@dataclass(frozen=True)
class Located:
    """A point found in one of the sources, with its file checked to lie inside the dataset."""

    point_id: str
    source: _Source
    path: Path
    sha1: str
    payload: dict[str, Any]


class ImageServer:
    """Resolves point ids to files inside their collection's source_root and makes their
    thumbnails (a box's: its crop) and pictures with boxes."""

    def __init__(self, collections: Collection | Sequence[Collection]) -> None:
        collections = [collections] if isinstance(collections, Collection) else list(collections)
        self.sources = [_Source.of(c) for c in collections]
        self.objects = next((s.collection for s in self.sources if s.objects), None)
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self.memory = ThumbnailMemory.from_env()

    def locate(self, point_id: str) -> Located:
        """The point and its resolved file; 404 unless the file lies inside its source_root."""
        if not _is_uuid(point_id):
            raise HTTPException(404, "not found")
        for source in self.sources:
            if source.root is None:
                continue
            records = source.collection.retrieve([point_id], [PATH, SHA1, BBOX, IMAGE_ID, MASK])
            if records:
                return self._checked(source, point_id, records[0].payload)
        raise HTTPException(404, "not found")

    def _checked(self, source: _Source, point_id: str, payload: dict[str, Any]) -> Located:
        relative = payload.get(PATH)
        if not isinstance(relative, str) or source.root is None:
            raise HTTPException(404, "not found")
        try:
            path = (source.root / relative).resolve(strict=True)
        except (OSError, RuntimeError):
            raise HTTPException(404, "not found") from None
        # resolve() followed every symlink; the real file must still be inside the dataset.
        if not path.is_relative_to(source.root) or not path.is_file():
            raise HTTPException(404, "not found")
        return Located(point_id, source, path, str(payload.get(SHA1) or ""), payload)

    def source_file(self, point_id: str) -> tuple[Path, str]:
        """(resolved file, content hash) of a point (a box: of its image's file)."""
        found = self.locate(point_id)
        return found.path, found.sha1

    def thumbnail_bytes(self, point_id: str) -> tuple[bytes, str, str]:
        """(encoded thumbnail, media type, name): from memory, else from its file (made if new)."""
        found = self.locate(point_id)
        name = f"{point_id}-{self._key(found)}"
        item = self.memory.get(name)
        if item is None:
            path = self._thumbnail(found)
            item = (path.read_bytes(), MEDIA_TYPES.get(path.suffix.lower(), "application/octet-stream"))
            self.memory.put(name, *item)
        return (*item, name)

    def thumbnail(self, point_id: str) -> Path:
        """The thumbnail's file (made if new)."""
        return self._thumbnail(self.locate(point_id))

    def _key(self, found: Located) -> str:
        if found.source.objects and _bbox(found.payload) is None:
            raise HTTPException(404, "not found")
        return found.sha1[:16] or str(int(found.path.stat().st_mtime))

    def _thumbnail(self, found: Located) -> Path:
        point_id, key = found.point_id, self._key(found)
        cache = found.source.cache
        for suffix in (".png", ".jpg"):
            cached = cache / f"{point_id}-{key}{suffix}"
            if cached.exists():
                return cached
        with self._lock_for(point_id):  # two requests for one new thumbnail make it once
            for suffix in (".png", ".jpg"):
                cached = cache / f"{point_id}-{key}{suffix}"
                if cached.exists():
                    return cached
            return self._make_thumbnail(found, cache / f"{point_id}-{key}")

    def _make_thumbnail(self, found: Located, stem: Path) -> Path:
        try:
            bbox = _bbox(found.payload)
            if found.source.objects and bbox is not None:
                # The crop with the margin it was embedded with; small crops are enlarged
                # (nearest neighbour) so that a 12-pixel box still fills its card.
                mask = found.payload.get(MASK)   # its outline drawn on the crop
                image = crop_thumbnail(found.path, bbox, THUMB_SIZE, found.source.margin,
                                       mask=mask if isinstance(mask, dict) else None)
                small = max(bbox[2], bbox[3]) * (1 + 2 * found.source.margin) <= THUMB_SIZE
            else:
                with Image.open(found.path) as opened:
                    image = ImageOps.exif_transpose(opened)
                    small = image.width <= THUMB_SIZE and image.height <= THUMB_SIZE
                    image.thumbnail((THUMB_SIZE, THUMB_SIZE))
                    image.load()
            return _save(image, stem, small)
        except _UNUSABLE:
            raise HTTPException(404, "not found") from None

    def boxes_picture(self, point_id: str) -> tuple[bytes, str]:
        """(encoded picture, media type): the image of a box, or an image, with every box of it
        drawn and named; a box's own box highlighted. 404 where no object collection is shown."""
        found = self.locate(point_id)
        if self.objects is None:
            raise HTTPException(404, "not found")
        if found.source.objects:
            image_id, highlight = str(found.payload.get(IMAGE_ID) or ""), point_id
        else:
            image_id, highlight = point_id, None
        boxes = boxes_of_image(self.objects, image_id) if image_id else []
        try:
            picture = draw_boxes(found.path, boxes, highlight, max_side=BOXES_SIDE, min_side=BOXES_MIN_SIDE)
            draw_predictions(picture, self.objects, image_id, _upright_size(found.path))  # a detector's, dashed
        except _UNUSABLE:
            raise HTTPException(404, "not found") from None
        return _encode(picture, max(picture.size) <= SMALL_SIDE)

    def _lock_for(self, key: str) -> threading.Lock:
        with self._locks_guard:
            if len(self._locks) > 10_000:
                self._locks.clear()
            return self._locks.setdefault(key, threading.Lock())


def _upright_size(path: Path) -> tuple[int, int]:
    """The image's size as viewers show it (EXIF orientations 5-8 swap width and height)."""
    with Image.open(path) as image:
        turned = image.getexif().get(0x0112) in (5, 6, 7, 8)
        return (image.height, image.width) if turned else image.size


def _bbox(payload: dict[str, Any]) -> tuple[float, float, float, float] | None:
    bbox = payload.get(BBOX)
    if not isinstance(bbox, list) or len(bbox) != 4:
        return None
    try:
        x, y, w, h = (float(v) for v in bbox)
    except (TypeError, ValueError):
        return None
    return (x, y, w, h) if w > 0 and h > 0 else None


def _save(image: Image.Image, stem: Path, small: bool) -> Path:
    """Small pictures stay lossless PNG (JPEG smears 28-px digits); photos become JPEG."""
    if small:
        target, fmt = stem.with_suffix(".png"), "PNG"
        image = image.convert("RGBA" if image.mode in ("RGBA", "LA", "P") else "RGB")
    else:
        target, fmt = stem.with_suffix(".jpg"), "JPEG"
        image = image.convert("RGB")
    stem.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    image.save(tmp, fmt, quality=85)
    tmp.replace(target)
    return target


def _encode(image: Image.Image, lossless: bool) -> tuple[bytes, str]:
    buffer = io.BytesIO()
    if lossless:
        image.convert("RGB").save(buffer, "PNG", compress_level=1)  # half the time of the default 6, 10 % larger
        return buffer.getvalue(), "image/png"
    image.convert("RGB").save(buffer, "JPEG", quality=90)
    return buffer.getvalue(), "image/jpeg"


def add_image_routes(app: FastAPI, images: ImageServer,
                     authorize: Callable[[Request], bool] | None = None) -> None:
    """Register the id routes on `app` (each explorer's row route: `add_row_route`).
    `authorize` guards them when the app has a login."""

    def check(request: Request) -> None:
        if authorize is not None and not authorize(request):
            raise HTTPException(401, "not authenticated")

    @app.get("/thumb/{point_id}")
    def thumb(point_id: str, request: Request) -> Response:
        check(request)
        return _thumbnail(*images.thumbnail_bytes(point_id))

    @app.get("/image/{point_id}")
    def image(point_id: str, request: Request) -> Response:
        check(request)
        return _file(images.locate(point_id).path)

    @app.get("/boxes/{point_id}")
    def boxes(point_id: str, request: Request) -> Response:
        check(request)
        content, media = images.boxes_picture(point_id)
        return Response(content, media_type=media, headers=NOT_CACHED)


def add_row_route(app: FastAPI, prefix: str, images: ImageServer, row_to_id: Callable[[int], str | None],
                  authorize: Callable[[Request], bool] | None = None) -> None:
    """GET {prefix}/thumb/row/{row}: the thumbnail of row `row` of one explorer's map."""

    @app.get(f"{prefix}/thumb/row/{{row}}")
    def thumb_by_row(row: int, request: Request) -> Response:
        if authorize is not None and not authorize(request):
            raise HTTPException(401, "not authenticated")
        point = row_to_id(row)
        if point is None:
            raise HTTPException(404, "not found")
        return _thumbnail(*images.thumbnail_bytes(point))


def _thumbnail(content: bytes, media: str, name: str) -> Response:
    """A thumbnail's bytes; its ETag is its name (point id and content hash)."""
    return Response(content, media_type=media, headers={**CACHE_HEADERS, "ETag": f'"{name}"'})


def _file(path: Path) -> FileResponse:
    media = MEDIA_TYPES.get(path.suffix.lower(), "application/octet-stream")
    return FileResponse(path, media_type=media, headers=CACHE_HEADERS)


def _is_uuid(text: str) -> bool:
    try:
        return str(uuid.UUID(text)) == text.lower()
    except ValueError:
        return False
