"""Decide what kind of file a path is from its first bytes, without reading pixels.

DICOM is recognised by the 'DICM' marker after the 128-byte preamble, or, for files written
without preamble and meta header, by a header that parses into several standard tags.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Literal

from .quiet import quiet_pydicom

FileKind = Literal["dicom", "image"]

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"
TIFF_MAGICS = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
# BMP: "BM", then (bytes 14-17) the size of one of the DIB headers Windows defines: two bytes
# alone would take any file that starts with "BM" (a text beginning "BMI ...") for an image.
BMP_MAGIC = b"BM"
_BMP_DIB_SIZES = frozenset({12, 40, 52, 56, 64, 108, 124})

# Files a folder scan never opens: reports, tables, archives, DICOMDIR indexes.
SKIPPED_SUFFIXES = frozenset(
    {
        ".txt", ".csv", ".tsv", ".json", ".xml", ".md", ".rst", ".yaml", ".yml", ".html",
        ".htm", ".pdf", ".zip", ".gz", ".tgz", ".bz2", ".xz", ".7z", ".tar", ".py", ".log",
        ".ini", ".cfg", ".toml", ".dump", ".icc", ".db", ".sqlite", ".exe", ".dll", ".so",
        ".mp4", ".avi", ".mov", ".doc", ".docx", ".xls", ".xlsx", ".ds_store", ".lnk",
    }
)
SKIPPED_NAMES = frozenset({"DICOMDIR", "THUMBS.DB", "DESKTOP.INI"})
# Names that promise a file this program reads: a folder scan reports such a file when it is
# neither (a damaged copy), where it passes over other unreadable files quietly. The picture
# formats are the ones io.images reads (training data sets take crops by these too).
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"})
X_RAY_SUFFIXES = frozenset({".dcm", ".dicom", ".dic"}) | IMAGE_SUFFIXES

_HEAD_BYTES = 132
_RAW_HEADER_PROBE = 16384
# Groups that open a DICOM data set written without preamble (meta, identification, patient).
_LEADING_GROUPS = frozenset({0x0002, 0x0008, 0x0010, 0x0018, 0x0020, 0x0028})


def is_skipped_name(path: Path) -> bool:
    """True for names a folder scan ignores without opening (DICOMDIR, .txt, .csv ...)."""
    return path.name.upper() in SKIPPED_NAMES or path.suffix.lower() in SKIPPED_SUFFIXES


def is_x_ray_name(path: Path) -> bool:
    """True for names that promise a radiograph (.dcm, .png, .jpg, .tif ...)."""
    return path.suffix.lower() in X_RAY_SUFFIXES


def image_kind_from_head(head: bytes) -> FileKind | None:
    """'dicom' or 'image' from the first 132 bytes alone; None when they do not say."""
    if len(head) >= _HEAD_BYTES and head[128:132] == b"DICM":
        return "dicom"
    if head.startswith((PNG_MAGIC, JPEG_MAGIC)) or head[:4] in TIFF_MAGICS:
        return "image"
    if head.startswith(BMP_MAGIC) and len(head) >= 18 and int.from_bytes(head[14:18], "little") in _BMP_DIB_SIZES:
        return "image"
    return None


def looks_like_raw_dicom(head: bytes) -> bool:
    """True if ``head`` (the start of a file) parses as a DICOM data set without preamble."""
    if len(head) < 8:
        return False
    group_le = int.from_bytes(head[0:2], "little")
    group_be = int.from_bytes(head[0:2], "big")
    if group_le not in _LEADING_GROUPS and group_be not in _LEADING_GROUPS:
        return False
    from .loaders import import_loaders

    import_loaders()  # (one thread at a time: see .loaders)
    import pydicom
    from pydicom.datadict import dictionary_has_tag

    quiet_pydicom()
    try:
        # catch_warnings is not thread-safe (workers scan in threads); warnings are let through.
        ds = pydicom.dcmread(io.BytesIO(head), force=True, stop_before_pixels=True)
        tags = list(ds.keys())
        known = [tag for tag in tags if dictionary_has_tag(tag)]
    except Exception:  # noqa: BLE001 - any parse failure means "not DICOM" here
        return False
    return len(known) >= 3


def sniff(path: str | Path) -> FileKind | None:
    """'dicom', 'image' or None (not a file this program reads). Reads at most 16 KiB.

    Raises:
        OSError: the file cannot be opened (callers turn this into a typed error).
    """
    with open(path, "rb") as handle:
        head = handle.read(_RAW_HEADER_PROBE)
    kind = image_kind_from_head(head[:_HEAD_BYTES])
    if kind is not None:
        return kind
    if looks_like_raw_dicom(head):
        return "dicom"
    return None
