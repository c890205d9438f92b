"""The object collection of an index run: one point per labelled box, in `NAME-objects`.

The index pipeline decodes each image once; for an image with boxes, the decode worker also
cuts the crops of the boxes that need embedding out of the decoded picture (`crops`), so a box
costs a crop and a model call but no file read or decode. The crop is the box plus a context
margin (detection/geometry.py says which and why), resized to the model's input size so crops
of every shape batch together, then through the embedder's own preprocessing, like an image.

Ids are stable: a box's point id is the UUID5 of "<image path>#<annotation id>", so tags and
relabels survive re-indexing. A box is re-embedded only when its image's content or its own
coordinates changed (its `sha1` is the hash of both); boxes gone from the labels, or whose
image file is gone, are deleted.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from analysis.image_metrics import image_metrics
from detection.crops import cut_crop
from detection.masks import pixel_mask, rasterise
from detection.geometry import (
    CONTEXT_MARGIN, BBox, area_and_aspect, clip_box, crop_region, to_pixels, was_clipped,
)
from imaging.images import DecodedImage
from indexer.annotations import Box
from indexer.models import Embedder
from indexer.sources import Dataset, ImageSource, SourceError
from store import Collection, point_id
from store.schema import (
    ANNOTATION_ID, AREA, ASPECT_RATIO, BBOX, CATEGORIES, COLLECTION_KIND, CROP_MARGIN, CROP_MODE, IMAGE_COLLECTION,
    IMAGE_HEIGHT,
    IMAGE_ID,
    IMAGE_WIDTH, IMAGES_KIND, LABEL, MASK, OBJECT_COLLECTION, OBJECT_COLLECTION_SUFFIX, OBJECT_FIELDS, OBJECTS_KIND,
    ORIGINAL_LABEL, PATH, SHA1, SPLIT, TAGS, ADDED_SOURCE, SOURCE,
)



class ObjectCollectionError(SourceError):
    """The object collection's name is taken by something else; the message says what to do."""


def object_collection_name(image_collection: str) -> str:
    return image_collection + OBJECT_COLLECTION_SUFFIX


def object_point_id(relative_path: str, annotation_id: int) -> str:
    """The stable id of a box: its image's path and its id in the source."""
    return point_id(f"{relative_path}#{annotation_id}")


BOX_CROP, MASK_CROP = "box", "mask"   # --crop: the box's pixels, or only its mask's
BLANK = (124, 116, 104)   # ImageNet's mean colour: a blanked background is the model's "nothing"


def box_hash(image_sha1: str, box: Box, margin: float = CONTEXT_MARGIN, crop: str = BOX_CROP) -> str:
    """What a box's vector depends on: its image's content, its coordinates as the source gives
    them and the crop margin (another margin re-embeds every box); a box with a mask, its mask
    too (so a mask changed in the labels reaches the payload; boxes without one keep the hash
    they had before masks were read)."""
    text = f"{image_sha1}|{box.bbox}|{box.normalised}|margin={margin}"
    if box.mask is not None:
        text += "|mask=" + json.dumps(box.mask, sort_keys=True)
    if crop != BOX_CROP:
        text += f"|crop={crop}"
    return hashlib.sha1(text.encode()).hexdigest()


@dataclass
class ObjectWork:
    """One box after the decode worker: its crop, ready to embed, and its payload."""

    source: ImageSource
    box: Box
    item: Any
    payload: dict[str, Any]

    @property
    def point_id(self) -> str:
        return object_point_id(self.source.relative_path, self.box.annotation_id)


@dataclass
class Crops:
    """The crops of one image's boxes, and what went wrong with some of them."""

    works: list[ObjectWork] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)        # clipped boxes
    dropped: list[tuple[str, str]] = field(default_factory=list)  # (point id, why): nothing left after clipping


@dataclass
class ObjectReport:
    collection: str
    found: int = 0
    embedded: int = 0
    unchanged: int = 0
    relabelled: int = 0
    removed: int = 0
    skipped: list[dict[str, str]] = field(default_factory=list)
    clipped: list[str] = field(default_factory=list)
    projection_seconds: float = 0.0
    total_points: int = 0
    quality: str = ""

    def summary(self, seconds: float) -> str:
        rate = self.embedded / seconds if seconds else 0.0
        return (f"{self.collection}: {self.found} boxes found, {self.embedded} embedded ({rate:.0f} obj/s), "
                f"{self.unchanged} unchanged, {len(self.skipped)} skipped, {len(self.clipped)} clipped, "
                f"{self.removed} removed; {self.total_points} points in the collection")


def pixel_box(box: Box, width: int, height: int) -> tuple[BBox | None, str]:
    """The box in pixels, clipped to the image, and a note when it had to be clipped (or, with
    None, why nothing is left)."""
    pixels = to_pixels(box.bbox, box.normalised, width, height)
    clipped = clip_box(pixels, width, height)
    shown = "[" + ", ".join(f"{v:g}" for v in (round(p, 2) for p in pixels)) + "]"
    if clipped is None:
        return None, f"{box.origin}: box {shown} lies outside the {width}x{height} image; skipped"
    if was_clipped(pixels, clipped):
        kept = "[" + ", ".join(f"{v:g}" for v in (round(p, 2) for p in clipped)) + "]"
        return clipped, f"{box.origin}: box {shown} reaches outside the {width}x{height} image; clipped to {kept}"
    return clipped, ""


def model_input(crop: Image.Image, embedder: Embedder) -> Any:
    """The crop as the embedder takes it. Models with a fixed input size (mobilenet-v2) get it
    resized to that size first: their graph scales every input to it anyway, and same-sized
    crops batch into one model call instead of one call per crop shape."""
    size = getattr(embedder, "input_size", None)
    if size and crop.size != (size, size):
        crop = crop.resize((size, size), Image.BILINEAR)
    return embedder.preprocess(crop)


def masked_crop(decoded: DecodedImage, box: Box, bbox: BBox, margin: float) -> Image.Image | None:
    """`--crop mask`: the box's crop with every pixel outside its mask set to BLANK, so the
    vector describes the object and not what stands behind it; None for a box without a usable
    mask (it gets the plain crop)."""
    mask = pixel_mask(box.mask, box.normalised, decoded.width, decoded.height)
    if mask is None or decoded.image.size != (decoded.width, decoded.height):
        return None   # no mask, or a picture decoded smaller than the file (never with boxes to cut)
    try:
        raster = rasterise(mask, decoded.width, decoded.height)
    except (ValueError, TypeError, KeyError):
        return None
    if raster.shape != (decoded.height, decoded.width):
        return None
    blanked = np.asarray(decoded.image.convert("RGB")).copy()
    blanked[~raster] = BLANK
    return cut_crop(Image.fromarray(blanked), bbox, (decoded.width, decoded.height), margin)


def crops(decoded: DecodedImage, source: ImageSource, image_sha1: str, boxes: list[Box], embedder: Embedder,
          with_metrics: bool, margin: float = CONTEXT_MARGIN, crop_mode: str = BOX_CROP) -> Crops:
    """Crops of `boxes` from the decoded image (run by the decode workers)."""
    result = Crops()
    width, height = decoded.width, decoded.height
    pixels = np.asarray(decoded.image) if with_metrics else None
    for box in boxes:
        bbox, note = pixel_box(box, width, height)
        if bbox is None:
            result.dropped.append((object_point_id(source.relative_path, box.annotation_id), note))
            continue
        if note:
            result.notes.append(note)
        crop = (masked_crop(decoded, box, bbox, margin) if crop_mode == MASK_CROP else None) \
            or cut_crop(decoded.image, bbox, (width, height), margin)
        payload = object_payload(source, box, bbox, width, height, box_hash(image_sha1, box, margin, crop_mode))
        if pixels is not None:
            # Metrics of the object itself (no margin): brightness, contrast, ... of what is in the box.
            left, top, right, bottom = crop_region(bbox, width, height, margin=0.0)
            metrics = image_metrics(pixels[top:bottom, left:right])
            payload.update({k: v for k, v in metrics.items() if k not in (AREA, ASPECT_RATIO)})
        result.works.append(ObjectWork(source, box, model_input(crop, embedder), payload))
    return result


def object_payload(source: ImageSource, box: Box, bbox: BBox, width: int, height: int, sha1: str) -> dict[str, Any]:
    area, aspect = area_and_aspect(bbox)
    payload = {PATH: source.relative_path, IMAGE_ID: point_id(source.relative_path), ANNOTATION_ID: box.annotation_id,
               BBOX: [float(v) for v in bbox], LABEL: box.label, SPLIT: source.split,
               IMAGE_WIDTH: width, IMAGE_HEIGHT: height, SHA1: sha1, AREA: float(area), ASPECT_RATIO: float(aspect)}
    if box.mask is not None:
        payload[MASK] = pixel_mask(box.mask, box.normalised, width, height)
    return payload


def link_collections(images: Collection, objects: Collection, dataset: Dataset,
                     margin: float = CONTEXT_MARGIN, crop_mode: str = BOX_CROP) -> None:
    """Each collection's metadata names the other; the object one says what it is and keeps the
    source's categories (exports write them in the source's order, with its ids)."""
    kind = objects.read_metadata().get(COLLECTION_KIND)
    if kind not in (None, OBJECTS_KIND) or (kind is None and objects.count() > 0):
        raise ObjectCollectionError(
            f"collection '{objects.name}' exists and is not the object collection of '{images.name}'; "
            f"rename it or index into another --collection")
    objects.update_metadata(**{COLLECTION_KIND: OBJECTS_KIND, IMAGE_COLLECTION: images.name,
                               CATEGORIES: [{"id": i, "name": n} for i, n in dataset.categories],
                               CROP_MARGIN: margin, CROP_MODE: crop_mode})
    images.update_metadata(**{COLLECTION_KIND: IMAGES_KIND, OBJECT_COLLECTION: objects.name})
    objects.index_fields(OBJECT_FIELDS)


class ObjectIndex:
    """The object collection's side of an index run: which boxes need embedding, writing them,
    label changes of unchanged boxes, and removing boxes that are gone."""

    def __init__(self, collection: Collection, dataset: Dataset, sources: list[ImageSource],
                 margin: float = CONTEXT_MARGIN, crop_mode: str = BOX_CROP) -> None:
        self.collection = collection
        self.margin = margin
        self.crop_mode = crop_mode
        self.dataset = dataset
        self.sources = sources
        known = collection.columns([SHA1, LABEL, ORIGINAL_LABEL, SPLIT, IMAGE_WIDTH, IMAGE_HEIGHT])
        self.known = {pid: {k: known.values[k][i] for k in known.values} for i, pid in enumerate(known.ids)}
        self.report = ObjectReport(collection.name, found=sum(len(s.boxes) for s in sources))
        self.embedded: set[str] = set()
        self.dropped: dict[str, str] = {}

    def pending(self, source: ImageSource, image_sha1: str, size: tuple[int, int] | None = None) -> list[Box]:
        """The boxes of `source` to (re-)embed: new, or their image or coordinates changed.
        With the image's `size` known (an unchanged image), a box wholly outside it is dropped
        here, so it does not make every later run decode the image again. Runs in the decode
        workers: each writes only the `dropped` entries of its own image's boxes."""
        boxes = [box for box in source.boxes
                 if (self.known.get(object_point_id(source.relative_path, box.annotation_id)) or {}).get(SHA1)
                 != box_hash(image_sha1, box, self.margin, self.crop_mode)]
        if size is None:
            return boxes
        kept = []
        for box in boxes:
            bbox, note = pixel_box(box, *size)
            if bbox is None:
                self.dropped[object_point_id(source.relative_path, box.annotation_id)] = note
            else:
                kept.append(box)
        return kept

    def record(self, result: Crops) -> list[ObjectWork]:
        """Notes of one image's crops (main thread); returns the boxes to embed."""
        self.report.clipped += result.notes
        for pid, why in result.dropped:
            self.dropped[pid] = why
        return result.works

    def write(self, vectors: np.ndarray, batch: list[ObjectWork]) -> None:
        from indexer.pipeline import merge_payload  # the image points' rule: tags, scores, user labels kept

        ids = [w.point_id for w in batch]
        changed = [i for i in ids if i in self.known]
        previous = {r.id: r.payload for r in self.collection.retrieve(changed)} if changed else {}
        self.collection.upsert(ids, vectors, [merge_payload(previous.get(pid, {}), w.payload)
                                              for pid, w in zip(ids, batch)])
        self.embedded.update(ids)

    def finish(self, skipped_images: dict[str, str]) -> None:
        """After embedding: relabel unchanged boxes whose class changed in the source, report
        boxes of skipped images and clipped unchanged boxes, delete boxes that are gone."""
        self.report.embedded = len(self.embedded)
        relabel_ids, relabel_payloads = [], []
        for source in self.sources:
            for box in source.boxes:
                pid = object_point_id(source.relative_path, box.annotation_id)
                if source.relative_path in skipped_images:
                    self.report.skipped.append({"path": source.relative_path, "annotation_id": str(box.annotation_id),
                                                "reason": f"image not usable: {skipped_images[source.relative_path]}"})
                elif pid in self.dropped:
                    self.report.skipped.append({"path": source.relative_path, "annotation_id": str(box.annotation_id),
                                                "reason": self.dropped[pid]})
                elif pid in self.known and pid not in self.embedded:
                    self.report.unchanged += 1
                    self._check_unchanged(pid, source, box, relabel_ids, relabel_payloads)
        self._relabel(relabel_ids, relabel_payloads)
        self.report.removed = self._drop_removed()
        self.collection.flush()

    def _check_unchanged(self, pid: str, source: ImageSource, box: Box, ids: list[str],
                         payloads: list[dict[str, Any]]) -> None:
        known = self.known[pid]
        if known.get(IMAGE_WIDTH) and known.get(IMAGE_HEIGHT):
            _, note = pixel_box(box, int(known[IMAGE_WIDTH]), int(known[IMAGE_HEIGHT]))
            if note:
                self.report.clipped.append(note)
        source_label = known.get(ORIGINAL_LABEL) or known.get(LABEL)
        if (source_label, known.get(SPLIT)) != (box.label, source.split):
            ids.append(pid)
            payloads.append({LABEL: box.label, SPLIT: source.split})

    def _relabel(self, ids: list[str], fresh: list[dict[str, Any]]) -> None:
        from indexer.pipeline import merge_payload

        if not ids:
            return
        previous = {r.id: r.payload for r in self.collection.retrieve(ids, [LABEL, ORIGINAL_LABEL, TAGS])}
        self.collection.set_payloads(ids, [merge_payload(previous.get(pid, {}), f) for pid, f in zip(ids, fresh)])
        self.report.relabelled = len(ids)

    def _drop_removed(self) -> int:
        """Delete boxes no longer in the labels (or with nothing left inside their image), and
        boxes whose image file is gone."""
        wanted = {object_point_id(s.relative_path, b.annotation_id) for s in self.dataset.images for b in s.boxes}
        wanted -= set(self.dropped)
        paths = self.collection.columns([PATH, SOURCE])
        gone = [pid for pid, path, source in zip(paths.ids, paths.values[PATH], paths.values[SOURCE])
                if (pid not in wanted and source != ADDED_SOURCE) or not (self.dataset.root / str(path)).exists()]
        self.collection.delete(gone)
        return len(gone)
