"""Read one DICOM file into a Radiograph, with a specific typed error for every way it can fail.

Checks run from cheap to expensive: is it DICOM, does it hold pixels, are its dimensions
plausible, does the file hold as many bytes as it declares, can its compression be decoded,
and only then one frame is decoded. The whole file is read through an in-memory buffer so
that a length field claiming gigabytes can never make pydicom allocate more than the file.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.pixels import get_decoder, pixel_array
from pydicom.tag import BaseTag
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    RLELossless,
)

from ..errors import (
    AbsurdDimensionsError,
    InputError,
    NonImageObjectError,
    NoPixelDataError,
    NotDicomError,
    PixelDataSizeError,
    TruncatedDataError,
    UnsupportedImageError,
    UnsupportedTransferSyntaxError,
)
from ..radiograph import PixelSpacing, Radiograph, RadiographMeta
from .display import level_range, render
from .quiet import quiet_pydicom
from .syntaxes import (
    is_non_image_sop_class,
    sop_class_name,
    syntax_name,
    unsupported_syntax_advice,
)

MAX_FRAMES = 100_000
MAX_FRAME_PIXELS = 1 << 28  # 268 M pixels: 16384 x 16384, far beyond any detector
MAX_FRAME_BYTES = 1 << 30  # a decoded frame larger than 1 GiB is refused before decoding
_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
_SUPPORTED_PHOTOMETRIC = frozenset(
    {"MONOCHROME1", "MONOCHROME2", "RGB", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT",
     "YBR_PARTIAL_420", "PALETTE COLOR"}
)
_SEQUENCE_DELIMITER_LE = b"\xfe\xff\xdd\xe0"
_SEQUENCE_DELIMITER_BE = b"\xff\xfe\xe0\xdd"


def _megabytes(count: int) -> str:
    return f"{count / 1e6:,.1f} MB" if count >= 100_000 else f"{count:,} bytes"


def _int(ds: Dataset, keyword: str, name: str) -> int:
    """Integer value of a required Image Pixel attribute, or a specific error."""
    value = ds.get(keyword)
    if value is None or value == "":
        raise UnsupportedImageError(
            f"{name}: DICOM attribute {keyword} is missing; the pixels cannot be interpreted"
        )
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise UnsupportedImageError(f"{name}: DICOM attribute {keyword} is {value!r}, not a number") from exc


def parse(raw: bytes, name: str) -> Dataset:
    """Parse DICOM bytes (with or without preamble and meta header).

    Raises:
        NotDicomError: the bytes are not a DICOM data set.
        TruncatedDataError: the header ends in the middle of an element.
    """
    try:
        ds = pydicom.dcmread(io.BytesIO(raw), force=True)
    except InvalidDicomError as exc:
        raise NotDicomError(f"{name} is not a DICOM file ({exc})") from exc
    except EOFError as exc:
        raise TruncatedDataError(f"{name}: the file ends inside its DICOM header ({exc})") from exc
    except Exception as exc:
        raise UnsupportedImageError(
            f"{name}: the DICOM header is damaged and cannot be read ({type(exc).__name__}: {exc})"
        ) from exc
    if len(ds) == 0:
        if len(getattr(ds, "file_meta", ())):
            # pydicom returns nothing at all when compressed pixel data ends before its
            # delimiter: read the header again without the pixels to tell that apart.
            try:
                header_elements = len(pydicom.dcmread(io.BytesIO(raw), force=True, stop_before_pixels=True))
            except Exception:  # noqa: BLE001 - the message below covers it
                header_elements = 0
            if header_elements:
                raise TruncatedDataError(
                    f"{name}: the file ends inside its compressed pixel data; it is truncated or damaged"
                )
            raise TruncatedDataError(
                f"{name}: the file ends right after its DICOM meta header; it is truncated or damaged"
            )
        raise NotDicomError(f"{name} holds no DICOM elements")
    return ds


def _ensure_transfer_syntax(ds: Dataset) -> UID:
    """The transfer syntax, inferred from how the data set was read when the meta is missing."""
    uid = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
    if uid:
        return UID(str(uid).strip())
    implicit, little = ds.original_encoding
    if implicit is None or little is None:
        implicit, little = True, True
    inferred = (
        ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian if little else ExplicitVRBigEndian
    )
    ds.file_meta.TransferSyntaxUID = inferred
    return UID(inferred)


def _check_pixels_present(ds: Dataset, name: str) -> str:
    keyword = next((k for k in _PIXEL_KEYWORDS if k in ds), None)
    if keyword is not None:
        return keyword
    sop_class = ds.get("SOPClassUID") or ds.file_meta.get("MediaStorageSOPClassUID")
    if is_non_image_sop_class(sop_class):
        raise NonImageObjectError(
            f"{name} is a {sop_class_name(sop_class)} object, not an image; "
            "open the X-ray image itself"
        )
    # Image attributes without the pixels they describe: most often a file cut off right
    # before its Pixel Data element (a copy or transfer that stopped).
    cut = " (its image attributes are there: the file may have been cut short)" if "Rows" in ds and "Columns" in ds else ""
    raise NoPixelDataError(
        f"{name} is DICOM ({sop_class_name(sop_class)}) but holds no pixel data{cut}"
    )


def _frames(ds: Dataset, name: str) -> int:
    value = ds.get("NumberOfFrames")
    if value in (None, ""):
        return 1
    try:
        frames = int(value)
    except (TypeError, ValueError):
        ds.NumberOfFrames = 1  # so that the decoder agrees with what is checked here
        return 1
    if frames < 0 or frames > MAX_FRAMES:
        raise AbsurdDimensionsError(f"{name}: Number of Frames {frames} is absurd")
    return max(frames, 1)


def _check_geometry(ds: Dataset, name: str, keyword: str) -> tuple[int, int, int, int, int]:
    """(rows, columns, frames, samples, bits allocated), each checked for plausibility."""
    rows = _int(ds, "Rows", name)
    columns = _int(ds, "Columns", name)
    if rows < 1 or columns < 1:
        raise AbsurdDimensionsError(f"{name}: image size {rows} x {columns} pixels is empty")
    frames = _frames(ds, name)
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    if samples not in (1, 3):
        raise UnsupportedImageError(
            f"{name}: {samples} samples per pixel; only grey (1) and colour (3) are supported"
        )
    bits = _int(ds, "BitsAllocated", name) if keyword == "PixelData" else (
        32 if keyword == "FloatPixelData" else 64
    )
    if bits not in (1, 8, 16, 32, 64):
        raise UnsupportedImageError(f"{name}: Bits Allocated {bits} is not a valid DICOM value")
    stored = ds.get("BitsStored", bits)
    try:
        stored = int(stored)
    except (TypeError, ValueError):
        stored = bits
    if not 1 <= stored <= bits:
        raise UnsupportedImageError(
            f"{name}: Bits Stored {stored} does not fit in Bits Allocated {bits}"
        )
    photometric = str(ds.get("PhotometricInterpretation", "") or "").strip().upper()
    if photometric not in _SUPPORTED_PHOTOMETRIC:
        raise UnsupportedImageError(
            f"{name}: photometric interpretation {photometric or '(missing)'} is not supported; "
            "grey (MONOCHROME1/2), RGB, YBR and PALETTE COLOR are"
        )
    return rows, columns, frames, samples, bits


def _check_frame_size(rows: int, columns: int, samples: int, bits: int, name: str) -> None:
    """Refuse frames no detector produces before a decoder allocates memory for them."""
    if rows * columns > MAX_FRAME_PIXELS or rows * columns * samples * max(bits // 8, 1) > MAX_FRAME_BYTES:
        raise AbsurdDimensionsError(
            f"{name}: {rows} x {columns} pixels per frame is beyond any radiograph; refusing to decode"
        )


def _check_decoder(uid: UID, name: str) -> None:
    try:
        decoder = get_decoder(uid)
    except NotImplementedError as exc:
        raise UnsupportedTransferSyntaxError(
            f"{name}: pixel data in {syntax_name(uid)} cannot be decoded: "
            f"{unsupported_syntax_advice(uid)}"
        ) from exc
    if not decoder.is_available:
        raise UnsupportedTransferSyntaxError(
            f"{name}: pixel data in {syntax_name(uid)} cannot be decoded: "
            f"{unsupported_syntax_advice(uid)}"
        )


def _declared_bytes(ds: Dataset, keyword: str, frames: int) -> int:
    """Bytes of native pixel data the header declares (as pydicom's get_expected_length)."""
    count = int(ds.Rows) * int(ds.Columns) * frames
    if keyword == "FloatPixelData":
        return count * 4
    if keyword == "DoubleFloatPixelData":
        return count * 8
    count *= int(ds.get("SamplesPerPixel", 1) or 1)
    bits = int(ds.BitsAllocated)
    length = (count + 7) // 8 if bits == 1 else count * (bits // 8)
    if str(ds.get("PhotometricInterpretation", "")).strip() == "YBR_FULL_422":
        length = length // 3 * 2
    return length


def _check_size(ds: Dataset, uid: UID, keyword: str, name: str, file_size: int, frames: int) -> None:
    """Compare declared pixel data with what the file holds, before anything is decoded."""
    if uid.is_encapsulated:
        if frames * 8 > file_size:  # every frame needs at least one 8-byte item header
            raise PixelDataSizeError(
                f"{name}: declares {frames} compressed frames, more than a {_megabytes(file_size)} file can hold"
            )
        return
    declared = _declared_bytes(ds, keyword, frames)
    held = len(ds[keyword].value or b"")
    if uid == DeflatedExplicitVRLittleEndian:
        file_size = max(file_size, held)  # the data set was inflated: compare with that
    # Far more than the file holds: the header lies (or the file is a stub). Somewhat more:
    # an ordinary truncated copy, reported as such below.
    if declared > 2 * file_size:
        raise PixelDataSizeError(
            f"{name}: declares {_megabytes(declared)} of pixel data "
            f"({ds.Rows} x {ds.Columns} x {frames} frame(s)) but the file holds only "
            f"{_megabytes(file_size)}; the header is wrong or the file is cut short"
        )
    if held < declared:
        raise TruncatedDataError(
            f"{name}: pixel data ends after {_megabytes(held)} of the {_megabytes(declared)} "
            "the header declares; the file is truncated"
        )


def _pixel_array(ds: Dataset, uid: UID, frame: int) -> np.ndarray:
    """Decode one frame. Rust decoders (pylibjpeg-rle) panic on some damaged data with a
    BaseException that is not an Exception; RLE is then retried with pydicom's own decoder."""
    try:
        return np.asarray(pixel_array(ds, index=frame))
    except (KeyboardInterrupt, SystemExit, GeneratorExit):
        raise
    except Exception:
        raise
    except BaseException as panic:  # pyo3 PanicException
        if uid == RLELossless:
            try:
                return np.asarray(pixel_array(ds, index=frame, decoding_plugin="pydicom"))
            except Exception as exc:
                raise exc from panic
        raise RuntimeError(f"decoder crashed: {type(panic).__name__}: {panic}") from panic


def _native_grey_view(ds: Dataset, uid: UID, frame: int) -> np.ndarray | None:
    """One frame of uncompressed little-endian 8/16-bit grey pixels as a read-only view of the
    data set's bytes, when pydicom's unused-bit correction (a full copy) would change nothing:
    every value already lies in the range of Bits Stored. None otherwise (decode normally)."""
    if uid.is_encapsulated or uid == ExplicitVRBigEndian or "PixelData" not in ds:
        return None
    if int(ds.get("SamplesPerPixel", 1) or 1) != 1 or int(ds.get("BitsAllocated", 0) or 0) not in (8, 16):
        return None
    if str(ds.get("PhotometricInterpretation", "")).strip().upper() not in ("MONOCHROME1", "MONOCHROME2"):
        return None
    try:
        array = np.asarray(pixel_array(ds, index=frame, view_only=True, correct_unused_bits=False))
    except Exception:  # noqa: BLE001 - the ordinary path reports what is wrong
        return None
    bits = int(ds.BitsAllocated)
    stored = int(ds.get("BitsStored", bits) or bits)
    if array.ndim != 2 or array.dtype.itemsize * 8 != bits:
        return None
    if not _fits_stored_bits(array, stored, bits):
        return None  # garbage in the unused bits: pydicom masks or sign-extends them
    return array


def _decode_frame(ds: Dataset, uid: UID, raw: bytes, frame: int, name: str) -> np.ndarray:
    try:
        fast = _native_grey_view(ds, uid, frame)
        if fast is not None:
            return fast
        return _pixel_array(ds, uid, frame)
    except (MemoryError, OverflowError) as exc:
        raise PixelDataSizeError(f"{name}: pixel data too large to decode ({exc})") from exc
    except Exception as exc:
        message = " ".join(str(exc).split())
        lowered = message.lower()
        if uid.is_encapsulated and _SEQUENCE_DELIMITER_LE not in raw and _SEQUENCE_DELIMITER_BE not in raw:
            raise TruncatedDataError(
                f"{name}: compressed pixel data ends before its end marker; the file is truncated"
            ) from exc
        if "missing" in lowered and ("plugin" in lowered or "dependenc" in lowered):
            raise UnsupportedTransferSyntaxError(
                f"{name}: pixel data in {syntax_name(uid)} cannot be decoded: "
                f"{unsupported_syntax_advice(uid)}"
            ) from exc
        if "less than expected" in lowered or "insufficient" in lowered or "truncat" in lowered:
            raise TruncatedDataError(f"{name}: pixel data is shorter than declared ({message})") from exc
        raise UnsupportedImageError(
            f"{name}: {syntax_name(uid)} pixel data could not be decoded; the file may be damaged "
            f"({type(exc).__name__}: {message[:300]})"
        ) from exc


def _text(ds: Dataset, keyword: str) -> str | None:
    try:
        value = ds.get(keyword)
    except Exception:  # noqa: BLE001 - a badly encoded text element must not stop loading
        return None
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _spacing_pair(value: Any) -> tuple[float, float] | None:
    try:
        row_mm, column_mm = (float(v) for v in value)
    except (TypeError, ValueError):
        return None
    if not (np.isfinite(row_mm) and np.isfinite(column_mm)) or row_mm <= 0 or column_mm <= 0:
        return None
    return row_mm, column_mm


def pixel_spacing(ds: Dataset) -> PixelSpacing | None:
    """ImagerPixelSpacing if present (projection radiography), else PixelSpacing, also from
    the shared functional groups of enhanced multi-frame objects; None when unreadable."""
    for keyword in ("ImagerPixelSpacing", "PixelSpacing"):
        pair = _spacing_pair(ds.get(keyword))
        if pair:
            return PixelSpacing(pair[0], pair[1], kind=keyword)
    try:
        measures = ds.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0]
        pair = _spacing_pair(measures.get("PixelSpacing"))
    except (AttributeError, IndexError, KeyError, TypeError):
        pair = None
    return PixelSpacing(pair[0], pair[1], kind="PixelSpacing") if pair else None


def _meta(ds: Dataset, path: Path, uid: UID, frames: int, shape: tuple[int, int]) -> RadiographMeta:
    bits = ds.get("BitsStored", ds.get("BitsAllocated"))
    try:
        bits_stored = int(bits) if bits is not None else None
    except (TypeError, ValueError):
        bits_stored = None
    return RadiographMeta(
        source=str(path),
        file_format="DICOM",
        patient_name=_text(ds, "PatientName"),
        patient_id=_text(ds, "PatientID"),
        patient_birth_date=_text(ds, "PatientBirthDate"),
        study_instance_uid=_text(ds, "StudyInstanceUID"),
        series_instance_uid=_text(ds, "SeriesInstanceUID"),
        sop_instance_uid=_text(ds, "SOPInstanceUID"),
        study_date=_text(ds, "StudyDate"),
        accession_number=_text(ds, "AccessionNumber"),
        modality=_text(ds, "Modality"),
        body_part=_text(ds, "BodyPartExamined"),
        view_position=_text(ds, "ViewPosition"),
        photometric=_text(ds, "PhotometricInterpretation"),
        bits_stored=bits_stored,
        transfer_syntax=syntax_name(uid),
        pixel_spacing=pixel_spacing(ds),
        frames=frames,
        original_shape=shape,
    )


class _BufferFile:
    """A read-only file over a buffer for pydicom: ``read`` copies only what it is asked for
    (never more than the buffer holds), so a header is parsed without copying the pixels."""

    def __init__(self, buffer: np.ndarray):
        self._view = buffer.data.cast("B")
        self._position = 0

    def read(self, size: int = -1) -> bytes:
        end = len(self._view) if size is None or size < 0 else min(len(self._view), self._position + size)
        start, self._position = self._position, max(self._position, end)
        return bytes(self._view[start:end])

    def seek(self, offset: int, whence: int = 0) -> int:
        base = (0, self._position, len(self._view))[whence]
        self._position = max(0, base + offset)
        return self._position

    def tell(self) -> int:
        return self._position

    def close(self) -> None:
        pass


# Elements from this size on are not read while parsing (pydicom's defer_size): the pixel data
# of a radiograph, which :func:`_load_native_grey` then views in the file buffer instead of
# copying. Only that function parses this way. Anything else this large (a LUT of 32 Ki entries
# or more, an ICC profile) is read from the same buffer when it is first used. At 4 MiB, as
# before 2026-11-27, a 1280 x 1024 image's 2.6 MB were copied into a new bytes object
# on every load (page faults included, about 5 ms of a 10 ms load here).
_DEFER_BYTES = 1 << 16
_NATIVE_LITTLE_ENDIAN = (ExplicitVRLittleEndian, ImplicitVRLittleEndian)


def _fits_stored_bits(array: np.ndarray, stored: int, bits: int, extremes: tuple[int, int] | None = None) -> bool:
    """Whether every value lies in the range of Bits Stored, i.e. pydicom's unused-bit
    correction (masking, sign extension) would change nothing. ``extremes``: the array's
    (minimum, maximum), when known."""
    if stored >= bits or not array.size:
        return True
    if extremes is None and array.dtype.kind == "u":
        return int(array.max()) < 1 << stored  # one pass: the minimum is not needed
    low, high = extremes if extremes is not None else level_range(array)
    if array.dtype.kind == "u":
        return high < 1 << stored
    return -(1 << (stored - 1)) <= low and high < 1 << (stored - 1)


def _load_native_grey(buffer: np.ndarray, path: Path, frame: int) -> Radiograph | None:
    """The common radiograph (uncompressed little-endian 8/16-bit grey, complete, with clean
    unused bits) without copying its pixel data: the header is parsed with the pixels left in
    the file buffer, and the frame is a view of that buffer. None for anything else, which
    the ordinary path then loads (and reports on) as before."""
    try:
        ds = pydicom.dcmread(_BufferFile(buffer), force=True, defer_size=_DEFER_BYTES)
        uid = UID(str(ds.file_meta.get("TransferSyntaxUID", "") or "").strip())
        if len(ds) == 0 or uid not in _NATIVE_LITTLE_ENDIAN or any(k in ds for k in _PIXEL_KEYWORDS[1:]):
            return None
        element = ds._dict.get(BaseTag(0x7FE00010))  # PixelData, as read (not converted)
        if not isinstance(element, RawDataElement):  # absent, or already converted
            return None
        rows, columns, frames, samples, bits = _check_geometry(ds, path.name, "PixelData")
        photometric = str(ds.get("PhotometricInterpretation", "")).strip().upper()
        if samples != 1 or bits not in (8, 16) or photometric not in ("MONOCHROME1", "MONOCHROME2"):
            return None
        if not 0 <= frame < frames or rows * columns > MAX_FRAME_PIXELS:
            return None
        frame_bytes = rows * columns * bits // 8
        data: bytes | np.ndarray
        if element.value is not None:  # small enough to have been read: a view of that
            data, offset = element.value, frame * frame_bytes
        else:
            data, offset = buffer, int(element.value_tell) + frame * frame_bytes
        if element.length < frames * frame_bytes or offset + frame_bytes > len(data):
            return None  # truncated: the ordinary path says so
        signed = int(ds.get("PixelRepresentation", 0) or 0) == 1
        dtype = np.dtype(f"<{'i' if signed else 'u'}{bits // 8}")
        array = np.frombuffer(data, dtype=dtype, count=rows * columns, offset=offset).reshape(rows, columns)
        stored = int(ds.get("BitsStored", bits) or bits)
        # The image's level range, once: the stored-bits check and the display's level domain
        # both need it.
        extremes = level_range(array) if array.size else None
        if not _fits_stored_bits(array, stored, bits, extremes):
            return None
    except Exception:  # noqa: BLE001 - anything unusual: the ordinary path decides
        return None
    return _radiograph(ds, array, path, uid, frames, frame, rows, columns, extremes)


def load_dicom(path: Path, frame: int = 0) -> Radiograph:
    """Load frame ``frame`` of a DICOM file as a display-ready Radiograph.

    Raises:
        InputError subclasses: see the module docstring; nothing else escapes.
    """
    name = path.name
    quiet_pydicom()
    buffer = np.fromfile(path, dtype=np.uint8)
    fast = _load_native_grey(buffer, path, frame)
    if fast is not None:
        return fast
    raw = buffer.tobytes()
    del buffer
    ds = parse(raw, name)
    keyword = _check_pixels_present(ds, name)
    uid = _ensure_transfer_syntax(ds)
    rows, columns, frames, samples, bits = _check_geometry(ds, name, keyword)
    if not 0 <= frame < frames:
        raise InputError(f"{name}: frame {frame + 1} asked for, but the file has {frames} frame(s)")
    if keyword == "PixelData":
        _check_decoder(uid, name)
        if uid == RLELossless and bits == 1:
            raise UnsupportedTransferSyntaxError(
                f"{name}: 1-bit RLE Lossless pixel data (a segmentation mask) cannot be decoded "
                "by pydicom 3.0; convert it uncompressed (e.g. dcmdrle) or open the radiograph itself"
            )
    _check_size(ds, uid, keyword, name, len(raw), frames)
    _check_frame_size(rows, columns, samples, bits, name)
    array = _decode_frame(ds, uid, raw, frame, name)
    del raw
    if array.ndim == 3 and array.shape[-1] != 3 and frames == 1:
        array = array[0]
    return _radiograph(ds, array, path, uid, frames, frame, rows, columns)


def _radiograph(
    ds: Dataset, array: np.ndarray, path: Path, uid: UID, frames: int, frame: int, rows: int, columns: int,
    extremes: tuple[int, int] | None = None,
) -> Radiograph:
    """The decoded frame made display-ready, with what the header says about it (``extremes``:
    its (minimum, maximum), when already known)."""
    name = path.name
    notes: list[str] = []
    if frames > 1:
        notes.append(f"multi-frame: frame {frame + 1} of {frames} shown")
    try:
        rendering = render(array, ds, notes, extremes)
    except InputError:
        raise
    except Exception as exc:
        raise UnsupportedImageError(
            f"{name}: the grey-level attributes (rescale, LUTs, window) are malformed "
            f"({type(exc).__name__}: {str(exc)[:200]})"
        ) from exc
    meta = _meta(ds, path, uid, frames, (rows, columns))
    meta.window_center = rendering.window_center
    meta.window_width = rendering.window_width
    meta.notes = rendering.notes
    return Radiograph(pixels=rendering.pixels, meta=meta)
