"""Tiny DICOM files built in the test, so io tests need nothing from ../shared."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    ComputedRadiographyImageStorage,
    ExplicitVRLittleEndian,
    generate_uid,
)


def make_dataset(
    pixels: np.ndarray,
    photometric: str = "MONOCHROME2",
    bits_stored: int | None = None,
    **attributes: Any,
) -> Dataset:
    """A CR image data set holding ``pixels`` (2-D grey, (rows, cols, 3) colour, or
    (frames, rows, cols) multi-frame grey), stored uncompressed little endian."""
    pixels = np.asarray(pixels)
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ComputedRadiographyImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SOPClassUID = ComputedRadiographyImageStorage
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientName = "Test^Patient"
    ds.PatientID = "ID12345"
    ds.PatientBirthDate = "19700101"
    ds.StudyDate = "20240131"
    ds.AccessionNumber = "ACC1"
    ds.Modality = "CR"
    ds.BodyPartExamined = "SKULL"
    ds.ViewPosition = "LL"
    colour = photometric in ("RGB", "YBR_FULL")
    if colour:
        rows, columns = pixels.shape[:2]
        ds.SamplesPerPixel = 3
        ds.PlanarConfiguration = 0
    else:
        rows, columns = pixels.shape[-2:]
        ds.SamplesPerPixel = 1
        if pixels.ndim == 3:
            ds.NumberOfFrames = pixels.shape[0]
    ds.Rows, ds.Columns = int(rows), int(columns)
    ds.PhotometricInterpretation = photometric
    itemsize = pixels.dtype.itemsize
    ds.BitsAllocated = itemsize * 8
    ds.BitsStored = bits_stored or itemsize * 8
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 1 if pixels.dtype.kind == "i" else 0
    ds.PixelData = np.ascontiguousarray(pixels).tobytes()
    ds["PixelData"].VR = "OW" if itemsize > 1 else "OB"
    for key, value in attributes.items():
        setattr(ds, key, value)
    return ds


def save(ds: Dataset, path: Path, **kwargs: Any) -> Path:
    ds.save_as(path, enforce_file_format=True, **kwargs)
    return path


def ramp(rows: int = 32, columns: int = 48, high: int = 4095, dtype: Any = np.uint16) -> np.ndarray:
    """A smooth horizontal-plus-vertical ramp from 0 to ``high``."""
    y, x = np.mgrid[0:rows, 0:columns]
    values = (x / (columns - 1) * 0.7 + y / (rows - 1) * 0.3) * high
    return np.round(values).astype(dtype)
