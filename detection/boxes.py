"""Image and object collections side by side: which is which, and going from one to the other.

An index run over labels with boxes makes two collections: NAME (one point per image) and
NAME-objects (one point per box; `image_id` on each names its image's point). These functions
answer the explorer's and the exports' questions over the `Collection` API alone:

    is_object_collection(collection)                 -> bool
    partner_name(collection)                         -> the other collection's name, or None
    crop_margin(objects)                             -> the context margin its crops were cut with
    box_of(objects, object_point_id)                 -> ObjectBox (its bbox for crop_thumbnail), or None
    boxes_of_image(objects, image_point_id)          -> [ObjectBox], the image's boxes
    boxes_of_images(objects, image_point_ids)        -> {image id: [ObjectBox]}
    images_of_objects(objects, object_ids)           -> image point ids holding those boxes
    objects_of_images(objects, image_point_ids)      -> object point ids of those images' boxes
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from store import Collection, PointFilter
from store.schema import (
    ANNOTATION_ID, BBOX, COLLECTION_KIND, CROP_MARGIN, IMAGE_COLLECTION, IMAGE_ID, LABEL, MASK, OBJECT_COLLECTION,
    OBJECTS_KIND,
    ORIGINAL_LABEL, PREDICTION_SOURCE, SOURCE, TAGS,
)

BOX_FIELDS = (IMAGE_ID, ANNOTATION_ID, BBOX, LABEL, ORIGINAL_LABEL, TAGS, MASK, SOURCE)
# Image ids per filter request: a match-any over thousands of keywords is one request each.
ID_CHUNK = 1_000


@dataclass(frozen=True)
class ObjectBox:
    """One box as the explorer draws it: [x, y, width, height] in pixels of the upright image."""

    point_id: str
    image_id: str
    annotation_id: int
    bbox: tuple[float, float, float, float]
    label: str
    original_label: str = ""
    tags: tuple[str, ...] = field(default_factory=tuple)
    mask: dict | None = field(default=None, hash=False, compare=False)   # detection/masks.py's form


def is_object_collection(collection: Collection) -> bool:
    return collection.read_metadata().get(COLLECTION_KIND) == OBJECTS_KIND


def prediction_point_ids(collection: Collection) -> set[str]:
    """The points that are a detector's false positives (`source: prediction`), not labels: every
    consumer of labels (evaluation, analyze, label exports) leaves them out."""
    return set(collection.ids(PointFilter(values={SOURCE: [PREDICTION_SOURCE]})))


def partner_name(collection: Collection) -> str | None:
    """The object collection of an image collection, or the image collection of an object one."""
    metadata = collection.read_metadata()
    key = IMAGE_COLLECTION if metadata.get(COLLECTION_KIND) == OBJECTS_KIND else OBJECT_COLLECTION
    name = metadata.get(key)
    return str(name) if name else None


def crop_margin(objects: Collection) -> float:
    """The margin an object collection's crops were cut with (give it to crop_thumbnail, so the
    explorer shows what the model saw)."""
    from detection.geometry import CONTEXT_MARGIN

    return float(objects.read_metadata().get(CROP_MARGIN, CONTEXT_MARGIN))


def _box(point_id: str, payload: dict) -> ObjectBox | None:
    bbox = payload.get(BBOX)
    if not isinstance(bbox, list) or len(bbox) != 4:
        return None
    return ObjectBox(point_id, str(payload.get(IMAGE_ID) or ""), int(payload.get(ANNOTATION_ID) or 0),
                     tuple(float(v) for v in bbox), str(payload.get(LABEL) or ""),
                     str(payload.get(ORIGINAL_LABEL) or ""), tuple(payload.get(TAGS) or ()),
                     payload.get(MASK) if isinstance(payload.get(MASK), dict) else None)


def box_of(objects: Collection, object_id: str) -> ObjectBox | None:
    records = objects.retrieve([object_id], list(BOX_FIELDS))
    return _box(records[0].id, records[0].payload) if records else None


def boxes_of_images(objects: Collection, image_ids: Sequence[str]) -> dict[str, list[ObjectBox]]:
    """Every labelled box of the given images (by image point id), in annotation-id order (a
    detector's prediction points are not labelled boxes)."""
    found: dict[str, list[ObjectBox]] = {pid: [] for pid in image_ids}
    wanted = list(dict.fromkeys(image_ids))
    for start in range(0, len(wanted), ID_CHUNK):
        flt = PointFilter(values={IMAGE_ID: wanted[start:start + ID_CHUNK]})
        for batch in objects.scroll(list(BOX_FIELDS), flt):
            for record in batch:
                box = None if record.payload.get(SOURCE) == PREDICTION_SOURCE else _box(record.id, record.payload)
                if box is not None and box.image_id in found:
                    found[box.image_id].append(box)
    for boxes in found.values():
        boxes.sort(key=lambda b: (b.annotation_id, b.point_id))
    return found


def boxes_of_image(objects: Collection, image_id: str) -> list[ObjectBox]:
    return boxes_of_images(objects, [image_id])[image_id]


def images_of_objects(objects: Collection, object_ids: Sequence[str]) -> list[str]:
    """The image point ids that hold the given boxes (each once, in the boxes' order)."""
    records = objects.retrieve(list(object_ids), [IMAGE_ID])
    by_id = {r.id: r.payload.get(IMAGE_ID) for r in records}
    return list(dict.fromkeys(str(by_id[o]) for o in object_ids if by_id.get(o)))


def objects_of_images(objects: Collection, image_ids: Sequence[str]) -> list[str]:
    """The object point ids of every box of the given images."""
    return [box.point_id for boxes in boxes_of_images(objects, image_ids).values() for box in boxes]
