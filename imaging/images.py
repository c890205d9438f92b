"""Decode one image file safely into an upright 8-bit RGB picture, or say why not.

Every odd file a real dataset holds ends here: truncated or corrupt data, non-images with an
image extension, zero-byte files, decompression bombs, CMYK / 16-bit / palette / RGBA /
greyscale modes, EXIF-rotated photos and unreadable files.

Photos are usually far larger than a model's input. When the caller says how small a picture
it can use (`min_side`), a JPEG is decoded at 1/2, 1/4 or 1/8 scale by libjpeg itself (its DCT
scaling, Pillow's draft mode): a 640x480 photo for a 224 px model decodes at 320x240 in about
a third of the time. `width` and `height` always give the file's true pixel size (after EXIF
rotation), whatever scale the picture was decoded at.
"""
from __future__ import annotations

import hashlib
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from analysis.image_metrics import shrink_factor

# Pillow's own limit (about 89 Mpixels); above it an image is refused, not decoded.
MAX_PIXELS = Image.MAX_IMAGE_PIXELS or 89_478_485
_WARNINGS_LOCK = threading.Lock()
TURNING_ORIENTATIONS = range(2, 9)  # EXIF orientations that flip or turn the picture (1: upright)


class ImageSkipped(Exception):
    """The file cannot be used; `reason` is a short human explanation."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class DecodedImage:
    image: Image.Image   # RGB, EXIF orientation applied; `reduced_by` times smaller than the file
    width: int           # the file's true size in pixels, after EXIF rotation
    height: int
    sha1: str
    reduced_by: int = 1  # 1, 2, 4 or 8: the DCT scale the JPEG was decoded at


def file_sha1(path: Path) -> str:
    digest = hashlib.sha1()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def decode_image(path: Path, data: bytes | None = None, min_side: int | None = None,
                 max_analysis_side: int | None = None, sha1: str | None = None) -> DecodedImage:
    """Read, verify and convert `path`; raises ImageSkipped with the reason.

    min_side: decode a JPEG at a reduced scale as long as both sides stay at least this long
      (the model's input size). None: full size.
    max_analysis_side: the longest side image metrics are measured at (they shrink larger
      pictures to it themselves); the reduced decode is never smaller than that, so metrics
      see the same scale as from a full decode. None: only `min_side` limits the reduction.
    sha1: the hex SHA-1 of `data`, when the caller has already hashed it.
    """
    if data is None:
        data = _read_bytes(path)
    if not data:
        raise ImageSkipped("empty file (0 bytes)")
    sha1 = sha1 or hashlib.sha1(data).hexdigest()
    image, (width, height), reduced_by = _open(data, min_side, max_analysis_side)
    return DecodedImage(image, width, height, sha1, reduced_by)


def reduction_factor(width: int, height: int, min_side: int | None, max_analysis_side: int | None) -> int:
    """The largest JPEG DCT scale (1, 2, 4 or 8) that keeps both sides >= min_side and is no
    coarser than the factor image metrics shrink the picture by anyway (ceil(longest / max_analysis_side))."""
    if not min_side:
        return 1
    limit = min(width, height) // min_side
    if max_analysis_side:
        limit = min(limit, shrink_factor(height, width, max_analysis_side))
    return next(scale for scale in (8, 4, 2, 1) if scale <= max(limit, 1))


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except PermissionError:
        raise ImageSkipped("permission denied") from None
    except IsADirectoryError:
        raise ImageSkipped("is a directory") from None
    except OSError as error:
        raise ImageSkipped(f"cannot read file: {error.strerror or error}") from None


def _open(data: bytes, min_side: int | None, max_analysis_side: int | None
          ) -> tuple[Image.Image, tuple[int, int], int]:
    """The upright RGB picture, the file's upright (width, height), and the decode scale."""
    import io

    try:
        # Pillow only warns between 1x and 2x its pixel limit; refuse all of that range too.
        # The warning filters are process-wide and catch_warnings is not thread-safe (decode
        # workers run this concurrently): one thread at a time, and only around the header read.
        with _WARNINGS_LOCK, warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
        if image.width * image.height > MAX_PIXELS:
            raise ImageSkipped(f"too large: {image.width}x{image.height} pixels is over Pillow's "
                               f"decompression-bomb limit of {MAX_PIXELS}")
        stored = image.size
        scale = reduction_factor(*stored, min_side, max_analysis_side)
        if scale > 1:
            # Only JPEG implements draft (other formats ignore it); its own mode keeps colours as they are.
            image.draft(image.mode, (stored[0] // scale, stored[1] // scale))
        decoded = image.size
        image.load()
    except ImageSkipped:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise ImageSkipped(f"too large (decompression-bomb limit): {error}") from None
    except UnidentifiedImageError:
        raise ImageSkipped("not an image (unrecognised format)") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise ImageSkipped(f"corrupt or truncated image: {error}") from None
    upright = to_rgb(image)
    # EXIF orientations 5-8 turn the picture a quarter: the true size turns with it.
    turned = upright.size != decoded and upright.size == decoded[::-1]
    return upright, (stored[::-1] if turned else stored), scale if decoded != stored else 1


def to_rgb(image: Image.Image) -> Image.Image:
    """Upright 8-bit RGB, whatever the mode: CMYK, 16-bit, palette, alpha, greyscale."""
    try:
        # exif_transpose copies the picture even when there is nothing to turn: ask first.
        if image.getexif().get(ExifTags.Base.Orientation, 1) in TURNING_ORIENTATIONS:
            image = ImageOps.exif_transpose(image)
    except Exception:  # a broken EXIF block should not lose the picture
        pass
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        image = _stretch_to_8bit(image)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        # Composite on white: transparent areas otherwise turn black and dominate embeddings.
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    # convert() copies even to its own mode; a decoded RGB picture is handed on as it is.
    return image if image.mode == "RGB" else image.convert("RGB")


def _stretch_to_8bit(image: Image.Image) -> Image.Image:
    """16/32-bit integer or float greyscale: scale the real range to 8 bits instead of clipping."""
    array = np.nan_to_num(np.asarray(image, dtype=np.float32))
    low, high = float(array.min()), float(array.max())
    array = (array - low) * (255.0 / (high - low)) if high > low else np.zeros_like(array)
    return Image.fromarray(np.rint(array).astype(np.uint8), "L")
