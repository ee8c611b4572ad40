"""Loading radiographs: DICOM (pydicom 3 + pylibjpeg) and PNG/JPEG/TIFF/BMP (Pillow).

Public API:
    load(path, frame=0) -> Radiograph      display-ready float32 0..1, white = dense bone
    is_supported_file(path) -> bool        by content, reads at most 16 KiB
    scan(paths, recursive=True) -> Iterator[ScanEntry]   header-only folder scan

Every failure of ``load`` is an ``InputError`` subclass from ``valvereader.errors`` whose
message names the file and says what is wrong; nothing untyped escapes.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import InputError, NotDicomError, UnreadableFileError, UnsupportedImageError
from ..radiograph import Radiograph
from .loaders import import_loaders
from .scan import ScanEntry, is_supported_file, scan

__all__ = ["ScanEntry", "import_loaders", "is_supported_file", "load", "scan"]


def load(path: str | Path, frame: int = 0) -> Radiograph:
    """Load ``path`` (DICOM, PNG, JPEG, TIFF or BMP) as a display-ready Radiograph.

    DICOM: rescale/Modality LUT, then VOI LUT or window (else 0.5/99.5 percentiles of the
    valid pixels), MONOCHROME1 / Presentation LUT Shape inversion, colour to grey; frame
    ``frame`` of a multi-frame object (noted in ``meta.notes``).

    Raises:
        UnreadableFileError: missing, a folder, or no permission.
        NotDicomError: neither DICOM nor a supported image.
        NoPixelDataError, NonImageObjectError: DICOM without a picture.
        UnsupportedTransferSyntaxError: compression without an installed decoder.
        TruncatedDataError, PixelDataSizeError, AbsurdDimensionsError: damaged or lying files.
        UnsupportedImageError: anything else that stops the image from being shown.
        InputError: ``frame`` out of range.
    """
    path = Path(path)
    name = path.name or str(path)
    try:
        import_loaders()  # (one thread at a time: see .loaders)
        from .sniff import sniff

        if not path.exists():
            raise UnreadableFileError(f"{path} does not exist")
        if path.is_dir():
            raise UnreadableFileError(f"{path} is a folder, not a file")
        if path.stat().st_size == 0:
            raise NotDicomError(f"{name} is empty (0 bytes)")
        kind = sniff(path)
        if kind == "dicom":
            from .dicom import load_dicom

            return load_dicom(path, frame)
        if kind == "image":
            from .images import load_image

            return load_image(path, frame)
        raise NotDicomError(
            f"{name} is neither DICOM (no 'DICM' marker and no DICOM header) "
            "nor a PNG, JPEG, TIFF or BMP image"
        )
    except InputError:
        raise
    except OSError as exc:
        raise UnreadableFileError(f"cannot read {name}: {exc.strerror or exc}") from exc
    except MemoryError as exc:
        raise UnsupportedImageError(f"{name}: not enough memory to load this image") from exc
    except Exception as exc:
        raise UnsupportedImageError(
            f"{name} could not be loaded ({type(exc).__name__}: {str(exc)[:200]})"
        ) from exc
