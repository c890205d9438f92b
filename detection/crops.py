"""Pictures of boxes: a box's crop (what its vector was computed from), its thumbnail, and an
image with its boxes drawn. The indexer cuts crops with `cut_crop`; the explorer shows them
with `crop_thumbnail` and `draw_boxes`.

    crop_thumbnail(image_file, bbox)            -> PIL image, at most THUMB_SIZE a side (mask=: its outline drawn)
    draw_boxes(image_file, boxes, highlight)    -> PIL image with every box and its class (max_side / min_side),
                                                   each box's mask filled translucent under it

The caller resolves `image_file` from the point's `path` inside the collection's source_root
(ui/images.py does that check for every point, object points included).
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from detection.boxes import ObjectBox
from detection.geometry import CONTEXT_MARGIN, BBox, scaled_region
from detection.masks import rasterise
from imaging.images import decode_image

THUMB_SIZE = 160
BOX_COLOUR = (255, 196, 0)
HIGHLIGHT_COLOUR = (230, 30, 30)
MASK_ALPHA = 110   # of 255: the object stays visible through its mask


def cut_crop(image: Image.Image, bbox: BBox, size: tuple[int, int], margin: float = CONTEXT_MARGIN) -> Image.Image:
    """The crop of `bbox` (pixels of an upright image of `size`) with its context margin, from
    `image` as decoded (which may be smaller than `size`, e.g. a JPEG decoded in draft mode)."""
    return image.crop(scaled_region(bbox, size, image.size, margin))


def crop_thumbnail(image_file: Path, bbox: BBox, size: int = THUMB_SIZE, margin: float = CONTEXT_MARGIN,
                   enlarge: bool = True, mask: dict | None = None) -> Image.Image:
    """The box's crop with its context margin (the pixels its vector was computed from), scaled
    to fit `size` x `size`: shrunk when larger, enlarged (nearest neighbour, so small objects
    stay crisp) when `enlarge`; with the box's `mask`, the mask's outline drawn on it (one
    pixel of the thumbnail, in the box colour). Raises imaging.images.ImageSkipped when the
    file is not usable."""
    decoded = decode_image(image_file)
    region = scaled_region(bbox, (decoded.width, decoded.height), decoded.image.size, margin)
    crop = decoded.image.crop(region)
    scale = size / max(crop.width, crop.height)
    if scale < 1 or (enlarge and scale > 1):
        new = (max(1, round(crop.width * scale)), max(1, round(crop.height * scale)))
        crop = crop.resize(new, Image.LANCZOS if scale < 1 else Image.NEAREST)
    if mask is not None and decoded.image.size == (decoded.width, decoded.height):
        crop = outline_mask(crop, mask, (decoded.width, decoded.height), region)
    return crop


def outline_mask(crop: Image.Image, mask: dict, size: tuple[int, int],
                 region: tuple[int, int, int, int]) -> Image.Image:
    """`crop` (of `region` of an image of `size`, maybe resized) with the mask's outline drawn;
    a mask that cannot be drawn leaves it as it is."""
    from scipy.ndimage import binary_erosion

    try:
        raster = rasterise(mask, *size)
    except (ValueError, TypeError, KeyError):
        return crop
    if raster.shape != (size[1], size[0]):
        return crop
    left, top, right, bottom = region
    part = Image.fromarray(raster[top:bottom, left:right]).resize(crop.size, Image.NEAREST)
    inside = np.asarray(part, bool)
    edge = inside & ~binary_erosion(inside, border_value=0)
    pixels = np.asarray(crop.convert("RGB")).copy()
    pixels[edge] = BOX_COLOUR
    return Image.fromarray(pixels)


def draw_boxes(image_file: Path, boxes: Sequence[ObjectBox], highlight: str | None = None,
               max_side: int | None = None, min_side: int | None = None) -> Image.Image:
    """The upright image with every box outlined and labelled with its class; the box whose
    point id is `highlight` drawn last, thicker, in another colour. `max_side` shrinks the
    picture first, `min_side` enlarges a small one (nearest neighbour, so that class names
    stay legible on an 80-pixel image); the boxes are scaled with it."""
    image = decode_image(image_file).image
    original = image.size
    scale = 1.0
    if max_side and max(image.size) > max_side:
        scale = max_side / max(image.size)
        image = image.resize((round(image.width * scale), round(image.height * scale)), Image.LANCZOS)
    elif min_side and min_side // max(image.size) > 1:
        scale = float(min_side // max(image.size))  # whole pixels, so nothing smears
        image = image.resize((round(image.width * scale), round(image.height * scale)), Image.NEAREST)
    image = draw_masks(image, boxes, highlight, original)
    draw = ImageDraw.Draw(image)
    line = max(1, round(max(image.size) / 300))
    for box in sorted(boxes, key=lambda b: b.point_id == highlight):
        chosen = box.point_id == highlight
        colour = HIGHLIGHT_COLOUR if chosen else BOX_COLOUR
        x, y, w, h = (v * scale for v in box.bbox)
        draw.rectangle([x, y, x + w, y + h], outline=colour, width=line * (2 if chosen else 1))
        text_box = draw.textbbox((x, y), box.label)
        top = max(0.0, y - (text_box[3] - text_box[1]) - 2)
        draw.rectangle([x, top, x + text_box[2] - text_box[0] + 4, top + text_box[3] - text_box[1] + 2], fill=colour)
        draw.text((x + 2, top), box.label, fill=(0, 0, 0))
    return image


def draw_masks(image: Image.Image, boxes: Sequence[ObjectBox], highlight: str | None,
               original: tuple[int, int]) -> Image.Image:
    """`image` (the picture of an `original`-sized image, maybe scaled) with each box's mask
    filled translucent in its box's colour; a mask that cannot be drawn is left out."""
    overlay = np.zeros((image.height, image.width, 4), np.uint8)
    for box in sorted(boxes, key=lambda b: b.point_id == highlight):
        if box.mask is None:
            continue
        try:
            raster = rasterise(box.mask, *original)
        except (ValueError, TypeError, KeyError):
            continue
        if raster.shape != (original[1], original[0]):
            continue   # an RLE of another size than the image: not this image's mask
        if raster.shape != (image.height, image.width):
            raster = np.asarray(Image.fromarray(raster).resize(image.size, Image.NEAREST))
        overlay[raster] = (*(HIGHLIGHT_COLOUR if box.point_id == highlight else BOX_COLOUR), MASK_ALPHA)
    if not overlay[..., 3].any():
        return image
    return Image.alpha_composite(image.convert("RGBA"), Image.fromarray(overlay, "RGBA")).convert("RGB")
