"""What the viewer needs from the layers below, in one place, Qt-free: expand paths into a
batch, load a radiograph, load the predictor, find a template. Called from workers."""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from ...radiograph import Radiograph, RadiographMeta
from .state import Study

# Scan entries of these kinds are not radiographs and stay out of the worklist.
SKIPPED_KINDS = {"non-image", "nonimage", "other", "unsupported", "skip", "ignored"}
IMAGE_SUFFIXES = {".dcm", ".dicom", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ""}


def _io() -> Any | None:
    try:
        from ... import io
    except ImportError:  # pragma: no cover - io is part of the package
        return None
    return io if hasattr(io, "load") else None


def is_supported_file(path: Path) -> bool:
    io = _io()
    if io is not None and hasattr(io, "is_supported_file"):
        return bool(io.is_supported_file(path))
    if path.name.startswith(".") or path.name.startswith("valvereader-"):
        return False
    return path.suffix.lower() in IMAGE_SUFFIXES


def expand_paths(paths: Iterable[Path]) -> tuple[list[Study], Path | None]:
    """Files and folders → studies (folders recursively, header-only scan) and the batch
    folder (where review decisions are saved): the folder opened, else the first file's."""
    # Absolute from here on: the batch's decisions and kept results are keyed relative to the
    # batch folder, so a path relative to the working directory would be keyed wrongly.
    paths = [Path(p).expanduser().resolve() for p in paths]
    folder: Path | None = None
    studies: list[Study] = []
    io = _io()
    for path in paths:
        if path.is_dir():
            folder = folder or path
            if io is not None and hasattr(io, "scan"):
                for entry in io.scan([path]):
                    if str(getattr(entry, "kind", "image")) in SKIPPED_KINDS:
                        continue
                    studies.append(Study(Path(entry.path), entry.patient_id, entry.study_date,
                                         entry.modality, error=getattr(entry, "error", None) or None))
            else:
                for root, dirs, files in os.walk(path):
                    dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                    for name in sorted(files):
                        file = Path(root) / name
                        if is_supported_file(file):
                            studies.append(Study(file))
        elif path.exists():
            studies.append(Study(path))
        else:
            studies.append(Study(path, error=f"{path} does not exist"))
    if folder is None and studies:
        folder = studies[0].path.parent
    return studies, folder


def load_radiograph(path: Path) -> Radiograph:
    """The loader's radiograph; a plain image reader until ``valvereader.io`` provides one."""
    io = _io()
    if io is not None:
        return io.load(path)
    from PIL import Image

    with Image.open(path) as image:
        grey = np.asarray(image.convert("I;16") if image.mode.startswith("I;16") else image.convert("L"))
    scale = 65535.0 if grey.dtype == np.uint16 else 255.0
    meta = RadiographMeta(source=str(path), file_format=(path.suffix[1:] or "image").upper(),
                          original_shape=(int(grey.shape[0]), int(grey.shape[1])))
    return Radiograph(grey.astype(np.float32) / scale, meta)


class RadiographCache:
    """The last few loaded radiographs, shared by the display loader and the analysis worker
    so the image on screen is decoded once."""

    def __init__(self, size: int = 3):
        self._size = size
        self._items: OrderedDict[Path, Radiograph] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, path: Path) -> Radiograph:
        with self._lock:
            if path in self._items:
                self._items.move_to_end(path)
                return self._items[path]
        radiograph = load_radiograph(path)
        with self._lock:
            self._items[path] = radiograph
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return radiograph

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


def describe_error(exc: BaseException) -> str:
    """One line a reader can act on; our own errors already say what to do."""
    from ...errors import ValveReaderError

    if isinstance(exc, ValveReaderError):
        return str(exc)
    if isinstance(exc, FileNotFoundError):
        return f"File not found: {exc.filename or exc}"
    if isinstance(exc, PermissionError):
        return f"Permission denied: {exc.filename or exc}"
    return f"{type(exc).__name__}: {exc}"
