"""The planted patient that de-identified exports must not reveal, and a synthetic view."""

from __future__ import annotations

from pathlib import Path

import numpy as np

PLANTED_NAME = "Zebedee^Quillfeather"
PLANTED_ID = "PID-7734921"
PLANTED_BIRTH = "19630512"
PLANTED_STUDY_DATE = "20190304"
PLANTED_ACCESSION = "ACC55501"
PLANTED_FILE = "quillfeather_7734921.dcm"


def planted_strings() -> list[str]:
    """Every identifier a de-identified export must not contain, in the forms it could take."""
    return [
        "Zebedee", "Quillfeather", "QUILLFEATHER", PLANTED_ID, "7734921", PLANTED_BIRTH, "1963-05-12",
        PLANTED_STUDY_DATE, "2019-03-04", PLANTED_ACCESSION,
    ]


def skull_view(rows: int = 480, cols: int = 400) -> np.ndarray:
    """A grey ellipse with a bright 'valve' and a reddish attention blob, uint8 RGB."""
    yy, xx = np.mgrid[0:rows, 0:cols]
    skull = (((yy - rows / 2) / (rows * 0.45)) ** 2 + ((xx - cols / 2) / (cols * 0.42)) ** 2) < 1
    grey = np.where(skull, 110, 15).astype(np.float32)
    valve = (np.abs(yy - rows * 0.3) < 12) & (np.abs(xx - cols * 0.65) < 20)
    grey[valve] = 240
    rgb = np.repeat(grey[:, :, None], 3, axis=2)
    blob = np.exp(-(((yy - rows * 0.3) / 40) ** 2 + ((xx - cols * 0.65) / 40) ** 2))
    rgb[..., 0] = rgb[..., 0] * (1 - 0.5 * blob) + 255 * 0.5 * blob
    return np.clip(rgb, 0, 255).astype(np.uint8)


def write_source_dicom(path: Path) -> Path:
    """A small DX image with the planted patient, as a PACS would send it."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.PatientName, ds.PatientID, ds.PatientBirthDate = PLANTED_NAME, PLANTED_ID, PLANTED_BIRTH
    ds.PatientSex = "F"
    ds.StudyDate, ds.StudyTime, ds.AccessionNumber = PLANTED_STUDY_DATE, "101010", PLANTED_ACCESSION
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.StudyID, ds.ReferringPhysicianName, ds.Modality = "1", "", "DX"
    ds.Rows = ds.Columns = 16
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = np.zeros((16, 16), dtype=np.uint16).tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path
