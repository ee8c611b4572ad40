"""Hypothesis strategies that damage small valid DICOM files.

Shared by tests/io/test_io_fuzz.py (few examples, in the suite) and tools/fuzz_dicom.py
(thousands of examples, result recorded in docs/dicom-robustness.md).
"""

from __future__ import annotations

import io
from functools import cache

import numpy as np
from hypothesis import strategies as st

SEED_NAMES = ("native", "monochrome1_voi", "rgb", "multiframe", "rle", "jpeg2000", "jpegls")

# Attributes whose values drive decoding and LUTs: the ones worth lying about.
MUTABLE_TAGS: dict[str, st.SearchStrategy[object]] = {
    "Rows": st.integers(0, 70000),
    "Columns": st.integers(0, 70000),
    "BitsAllocated": st.sampled_from([0, 1, 7, 8, 12, 16, 24, 32, 64, 65535]),
    "BitsStored": st.integers(0, 70),
    "HighBit": st.integers(0, 70),
    "SamplesPerPixel": st.integers(0, 5),
    "PixelRepresentation": st.integers(0, 3),
    "PlanarConfiguration": st.integers(0, 3),
    "NumberOfFrames": st.one_of(st.integers(-5, 10_000_000), st.sampled_from(["", "x", "1.5"])),
    "PhotometricInterpretation": st.sampled_from(
        ["MONOCHROME1", "MONOCHROME2", "RGB", "YBR_FULL", "YBR_FULL_422", "PALETTE COLOR", "HSV", "", "ARGB"]
    ),
    "WindowCenter": st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.just("")),
    "WindowWidth": st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.just("")),
    "RescaleSlope": st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.just("")),
    "RescaleIntercept": st.floats(allow_nan=True, allow_infinity=True),
    "VOILUTFunction": st.sampled_from(["LINEAR", "SIGMOID", "LINEAR_EXACT", "BOGUS", ""]),
    "PresentationLUTShape": st.sampled_from(["INVERSE", "IDENTITY", "LOG", ""]),
    "PixelPaddingValue": st.integers(0, 65535),
    "ImagerPixelSpacing": st.lists(st.floats(allow_nan=True), min_size=0, max_size=3),
}
TRANSFER_SYNTAXES = [
    "1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.5",
    "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.100",
    "1.2.3.4", "",
]


def _dataset(name: str):
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, JPEG2000Lossless, JPEGLSLossless, RLELossless

    rng = np.random.default_rng(7)
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1"
    ds.file_meta.MediaStorageSOPInstanceUID = "1.2.3.4.5.6"
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.1"
    ds.SOPInstanceUID = "1.2.3.4.5.6"
    ds.PatientID = "FUZZ"
    ds.Modality = "CR"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = 64, 48
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    pixels = rng.integers(0, 4096, (64, 48)).astype(np.uint16)
    if name == "monochrome1_voi":
        ds.PhotometricInterpretation = "MONOCHROME1"
        ds.WindowCenter, ds.WindowWidth = 2048, 4096
        ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
    if name == "rgb":
        ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
        pixels = rng.integers(0, 256, (64, 48, 3)).astype(np.uint8)
    if name == "multiframe":
        ds.NumberOfFrames = 3
        pixels = rng.integers(0, 4096, (3, 64, 48)).astype(np.uint16)
    ds.PixelData = pixels.tobytes()
    ds["PixelData"].VR = "OW" if pixels.dtype.itemsize > 1 else "OB"
    if name == "rle":
        ds.compress(RLELossless)
    elif name == "jpeg2000":
        ds.compress(JPEG2000Lossless)
    elif name == "jpegls":
        ds.compress(JPEGLSLossless)
    return ds


@cache
def seed_bytes(name: str) -> bytes:
    """A valid small DICOM file of kind ``name`` (see SEED_NAMES), as bytes."""
    buffer = io.BytesIO()
    _dataset(name).save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


@st.composite
def byte_mutation(draw: st.DrawFn) -> bytes:
    """A seed file with bytes flipped, inserted, deleted, or cut off."""
    data = bytearray(seed_bytes(draw(st.sampled_from(SEED_NAMES))))
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "length"]))
        if not data:
            break
        # Mostly past the preamble and 'DICM' marker, where the parser and decoders work.
        low = 0 if len(data) <= 140 or draw(st.integers(0, 9)) == 0 else 132
        at = draw(st.integers(low, len(data) - 1))
        if kind == "flip":
            data[at] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 64))]
        elif kind == "truncate":
            del data[at:]
        else:  # overwrite 4 bytes with a large length-like number
            data[at : at + 4] = draw(st.sampled_from([0xFFFFFFFF, 0xFFFFFFF0, 0x7FFFFFFF, 3_200_000_000])).to_bytes(4, "little")
    return bytes(data)


@st.composite
def tag_mutation(draw: st.DrawFn) -> bytes:
    """A seed data set with decoding attributes set to wrong, extreme or missing values."""
    import pydicom

    ds = pydicom.dcmread(io.BytesIO(seed_bytes(draw(st.sampled_from(SEED_NAMES)))))
    for keyword in draw(st.lists(st.sampled_from(sorted(MUTABLE_TAGS)), min_size=1, max_size=4, unique=True)):
        if draw(st.booleans()) and keyword in ds:
            delattr(ds, keyword)
            continue
        try:
            setattr(ds, keyword, draw(MUTABLE_TAGS[keyword]))
        except (ValueError, TypeError, OverflowError):
            continue
    if draw(st.integers(0, 4)) == 0:
        ds.file_meta.TransferSyntaxUID = draw(st.sampled_from(TRANSFER_SYNTAXES))
    buffer = io.BytesIO()
    try:
        ds.save_as(buffer, enforce_file_format=False)
    except Exception:  # noqa: BLE001 - pydicom refused to write it: fall back to the seed
        return seed_bytes("native")
    return buffer.getvalue()


damaged_dicom = st.one_of(byte_mutation(), tag_mutation())
