"""PNG, JPEG, TIFF and BMP files as Radiographs (Pillow). 16-bit grey stays 16-bit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import (
    AbsurdDimensionsError,
    InputError,
    NotDicomError,
    TruncatedDataError,
    UnsupportedImageError,
)
from ..radiograph import Radiograph, RadiographMeta
from .display import luminance, robust_window

SUPPORTED_FORMATS = frozenset({"PNG", "JPEG", "MPO", "TIFF", "BMP"})
MAX_IMAGE_PIXELS = 1 << 28


def _to_unit(image: Image.Image, notes: list[str]) -> tuple[np.ndarray, int]:
    """Pixels of an opened, loaded image as float in 0..1 and the bit depth they came in."""
    mode = image.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N"):
        return _sixteen_bit(np.asarray(image, dtype=np.float64), notes), 16
    if mode == "I":
        values = np.asarray(image, dtype=np.float64)
        if values.size and values.min() >= 0 and values.max() <= 65535:
            return _sixteen_bit(values, notes), 16
        center, width = robust_window(values)
        notes.append("32-bit integer image: 0.5-99.5 percentile window used")
        return np.clip((values - (center - width / 2)) / width, 0, 1), 32
    if mode == "F":
        values = np.asarray(image, dtype=np.float64)
        finite = values[np.isfinite(values)]
        if finite.size and finite.min() >= 0 and finite.max() <= 1:
            return np.nan_to_num(values), 32
        center, width = robust_window(values)
        notes.append("floating-point image: 0.5-99.5 percentile window used")
        return np.nan_to_num(np.clip((values - (center - width / 2)) / width, 0, 1)), 32
    if mode in ("L", "1"):
        return np.asarray(image.convert("L"), dtype=np.float64) / 255.0, 8
    if mode in ("LA", "La"):
        return np.asarray(image.getchannel(0), dtype=np.float64) / 255.0, 8
    rgb = np.asarray(image.convert("RGB"), dtype=np.float64)
    notes.append(f"{mode} image converted to grey (luminance)")
    return luminance(rgb) / 255.0, 8


# Grey modes Pillow reverses itself when a TIFF says WhiteIsZero (its "1;I" and "L;I" raw
# modes, 1 to 8 bits); the deeper ones (16-bit, 32-bit, float) it reads as stored.
_PILLOW_REVERSES = frozenset({"1", "L"})


def _white_is_zero(image: Image.Image) -> bool:
    """A TIFF whose PhotometricInterpretation (tag 262) is 0, WhiteIsZero: a grey value of 0 is
    white (a film digitiser's or CR's own export may be written so)."""
    tags = getattr(image, "tag_v2", None)
    if image.format != "TIFF" or tags is None:
        return False
    try:
        return int(tags.get(262, -1)) == 0
    except (TypeError, ValueError):
        return False


# A 16-bit image whose values stay below this cannot be a full-range 16-bit picture: stored
# values of a 10- to 14-bit detector, as crops exported from a DICOM's pixel data often are.
PART_RANGE_LIMIT = 1 << 14


def _sixteen_bit(values: np.ndarray, notes: list[str]) -> np.ndarray:
    """A 16-bit image in 0..1: divided by 65535, or, when its values reach less than a quarter
    of that range (``PART_RANGE_LIMIT``), stretched linearly from its lowest value to its
    highest (divided by 65535, a 12-bit crop came out nearly black and the program read such
    crops at 0.34 instead of 0.99; a 0.5-99.5 percentile window clipped the valve's metal and
    read them at 0.94: docs/evaluation/shift-study.md)."""
    top = float(values.max()) if values.size else 0.0
    if top >= PART_RANGE_LIMIT:
        return values / 65535.0
    bottom = float(values.min())
    if not top > bottom:  # one value throughout: nothing to stretch
        return values / 65535.0
    notes.append(f"16-bit image with values only from {bottom:.0f} to {top:.0f}: stretched to the full grey range")
    return (values - bottom) / (top - bottom)


def load_image(path: Path, frame: int = 0) -> Radiograph:
    """Load a PNG, JPEG, TIFF or BMP file; the frame-th page of a multi-page TIFF.

    Raises:
        NotDicomError, UnsupportedImageError, TruncatedDataError, AbsurdDimensionsError,
        InputError (frame out of range).
    """
    name = path.name
    notes: list[str] = []
    try:
        image = Image.open(path)  # Pillow itself refuses > 2 x MAX_IMAGE_PIXELS (bombs)
    except UnidentifiedImageError as exc:
        raise NotDicomError(f"{name} is neither DICOM nor a readable PNG, JPEG, TIFF or BMP image") from exc
    except Image.DecompressionBombError as exc:
        raise AbsurdDimensionsError(f"{name}: image dimensions are implausibly large ({exc})") from exc
    with image:
        if image.format not in SUPPORTED_FORMATS:
            raise UnsupportedImageError(
                f"{name} is a {image.format} image; PNG, JPEG, TIFF, BMP and DICOM are supported"
            )
        width, height = image.size
        if width < 1 or height < 1 or width * height > MAX_IMAGE_PIXELS:
            raise AbsurdDimensionsError(f"{name}: image size {width} x {height} pixels is absurd")
        frames = int(getattr(image, "n_frames", 1) or 1)
        if not 0 <= frame < frames:
            raise InputError(f"{name}: page {frame + 1} asked for, but the file has {frames}")
        try:
            if frame:
                image.seek(frame)
            if frames > 1:
                notes.append(f"multi-page: page {frame + 1} of {frames} shown")
            image.load()
            if image.format in ("JPEG", "MPO"):
                transposed = ImageOps.exif_transpose(image)
                if transposed is not None and transposed.size != image.size:
                    notes.append("rotated as its EXIF orientation says")
                image_to_read = transposed if transposed is not None else image
            else:
                image_to_read = image
            unit, bits = _to_unit(image_to_read, notes)
            white_is_zero = _white_is_zero(image_to_read)
            if white_is_zero and image_to_read.mode not in _PILLOW_REVERSES:  # dense metal white
                unit = 1.0 - unit
                notes.append("TIFF stores white as zero (WhiteIsZero): grey scale reversed, dense metal white")
        except OSError as exc:
            message = str(exc)
            if "truncated" in message.lower() or "broken data stream" in message.lower():
                raise TruncatedDataError(f"{name}: the image file is truncated ({message})") from exc
            raise UnsupportedImageError(f"{name}: the image cannot be decoded ({message})") from exc
        except (ValueError, SyntaxError, EOFError, MemoryError) as exc:
            raise UnsupportedImageError(
                f"{name}: the image cannot be decoded ({type(exc).__name__}: {exc})"
            ) from exc
        file_format = "JPEG" if image.format == "MPO" else str(image.format)
        mode = image.mode
    if unit.ndim != 2:
        raise UnsupportedImageError(f"{name}: image of shape {unit.shape} is not a 2-D picture")
    meta = RadiographMeta(
        source=str(path),
        file_format=file_format,
        photometric=("MONOCHROME1" if white_is_zero else "MONOCHROME2")
        if mode in ("L", "1", "I;16", "I;16B", "I;16L", "I", "F") else mode,
        bits_stored=bits,
        frames=frames,
        original_shape=(int(unit.shape[0]), int(unit.shape[1])),
        notes=notes,
    )
    return Radiograph(pixels=np.clip(unit, 0, 1).astype(np.float32), meta=meta)
