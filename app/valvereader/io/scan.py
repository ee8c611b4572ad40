"""Find radiographs in files and folders, reading headers only (never pixels)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from .loaders import import_loaders
from .quiet import quiet_pydicom
from .sniff import is_skipped_name, is_x_ray_name, sniff
from .syntaxes import is_non_image_sop_class, sop_class_name

ScanKind = Literal["dicom", "image", "non-image", "unknown"]
_MEDIA_DIRECTORY = "1.2.840.10008.1.3.10"
_HEADER_TAGS = ["SOPClassUID", "PatientID", "StudyDate", "Modality", "Rows"]


@dataclass(frozen=True)
class ScanEntry:
    """One file found by :func:`scan`.

    kind: "dicom" or "image" for files the loader reads; "non-image" for DICOM objects that
    hold no picture (SR, RT plan ...; ``error`` says which); "unknown" only for a file named
    explicitly that is neither (``error`` says why). ``error`` is None when the header read
    cleanly; a file with an error may still be listed so the user sees why it was not loaded.
    """

    path: Path
    kind: ScanKind
    patient_id: str | None = None
    study_date: str | None = None
    modality: str | None = None
    error: str | None = None


def is_supported_file(path: str | Path) -> bool:
    """True for a DICOM, PNG, JPEG, TIFF or BMP file (by content, not by name); False for
    DICOMDIR, folders, unreadable files and anything else. Reads at most 16 KiB."""
    path = Path(path)
    if path.name.upper() == "DICOMDIR" or not path.is_file():
        return False
    try:
        return sniff(path) is not None
    except OSError:
        return False


def _dicom_entry(path: Path) -> ScanEntry | None:
    import_loaders()  # (one thread at a time: see .loaders)
    import pydicom

    quiet_pydicom()
    try:
        ds = pydicom.dcmread(
            path, stop_before_pixels=True, force=True, defer_size="256 KB", specific_tags=_HEADER_TAGS
        )
    except Exception as exc:  # noqa: BLE001 - any header failure is reported on the entry
        return ScanEntry(path, "dicom", error=f"cannot read the DICOM header ({type(exc).__name__}: {exc})")

    def text(keyword: str) -> str | None:
        try:
            value = ds.get(keyword)
        except Exception:  # noqa: BLE001 - badly encoded text is left out
            return None
        return str(value).strip() or None if value is not None else None

    sop_class = text("SOPClassUID")
    if sop_class == _MEDIA_DIRECTORY:
        return None
    fields = {"patient_id": text("PatientID"), "study_date": text("StudyDate"), "modality": text("Modality")}
    if is_non_image_sop_class(sop_class) and "Rows" not in ds:
        message = f"{path.name} is a {sop_class_name(sop_class)} object, not an image"
        return ScanEntry(path, "non-image", error=message, **fields)
    return ScanEntry(path, "dicom", **fields)


def _entry(path: Path, named: bool) -> ScanEntry | None:
    try:
        kind = sniff(path)
    except OSError as exc:
        return ScanEntry(path, "unknown", error=f"cannot open {path.name}: {exc.strerror or exc}")
    if kind == "dicom":
        return _dicom_entry(path)
    if kind == "image":
        return _image_entry(path)
    if named:
        return ScanEntry(path, "unknown", error=f"{path.name} is neither DICOM nor a PNG, JPEG, TIFF or BMP image")
    return None


def _image_entry(path: Path) -> ScanEntry:
    from PIL import Image

    try:
        with Image.open(path) as image:  # header only: Pillow decodes lazily
            image.size  # noqa: B018 - touching size proves the header parsed
    except Exception as exc:  # noqa: BLE001 - reported on the entry
        return ScanEntry(path, "image", error=f"cannot read the image header ({type(exc).__name__}: {exc})")
    return ScanEntry(path, "image")


def scan(paths: Iterable[str | Path], recursive: bool = True) -> Iterator[ScanEntry]:
    """Yield a ScanEntry for every radiograph under ``paths``, in a stable (sorted) order.

    Folders are walked (recursively unless ``recursive`` is False), skipping hidden entries,
    DICOMDIR and obvious non-images (.txt, .csv, .json ...); DICOM files without extension
    are found by content. A file named explicitly, or named like an X-ray (.dcm, .png, .jpg,
    .tif ...) in a folder, always yields an entry, with ``error`` set when it cannot be read
    (a damaged file is reported, not passed over). Only headers are read, one file at a time.
    """
    for given in paths:
        path = Path(given).expanduser()
        if path.is_dir():
            yield from _walk(path, recursive)
        elif path.exists():
            entry = _entry(path, named=True)
            if entry is not None:
                yield entry
        else:
            yield ScanEntry(path, "unknown", error=f"{path} does not exist")


def _walk(folder: Path, recursive: bool) -> Iterator[ScanEntry]:
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")) if recursive else []
        for name in sorted(files):
            path = Path(root) / name
            if name.startswith(".") or is_skipped_name(path) or not path.is_file():
                continue
            # A file named like an X-ray (.dcm, .png ...) that is neither is listed with its
            # error, as a damaged file; anything else that is neither is passed over quietly.
            entry = _entry(path, named=is_x_ray_name(path))
            if entry is not None:
                yield entry
