"""Write a processed phantom image as a DX or CR DICOM file with realistic tags."""

from __future__ import annotations

import datetime as dt
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    UID,
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    RLELossless,
    generate_uid,
)

DX_FOR_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.1"
CR_IMAGE = "1.2.840.10008.5.1.4.1.1.1"
SYNTAXES = {"explicit": ExplicitVRLittleEndian, "rle": RLELossless, "jpeg2000": JPEG2000Lossless}


@dataclass(frozen=True)
class DicomSpec:
    patient_id: str
    patient_name: str
    patient_sex: str
    birth_date: str
    study_date: str
    study_seed: str  # makes study and series UIDs repeat within a patient's study
    instance: int
    view: str  # "lateral" or "ap"
    modality: str = "DX"
    photometric: str = "MONOCHROME2"
    bits_stored: int = 12
    syntax: str = "explicit"  # explicit | rle | jpeg2000
    pixel_spacing_mm: float = 0.2
    kvp: float = 70.0
    mas: float = 10.0
    laterality_marker: str = "R"


def to_stored(display: np.ndarray, bits: int, photometric: str) -> np.ndarray:
    """0..1 display values (1 = white in MONOCHROME2) to stored integers."""
    top = (1 << bits) - 1
    values = np.rint(np.clip(display, 0.0, 1.0) * top)
    if photometric == "MONOCHROME1":
        values = top - values
    return values.astype(np.uint8 if bits <= 8 else np.uint16)


def write_dicom(path: Path, display: np.ndarray, spec: DicomSpec) -> None:
    """Save ``display`` (float 0..1, rows x columns) as a single-frame DX/CR object."""
    stored = to_stored(display, spec.bits_stored, spec.photometric)
    sop_class = UID(DX_FOR_PRESENTATION if spec.modality == "DX" else CR_IMAGE)
    sop_uid = generate_uid(entropy_srcs=[spec.study_seed, str(spec.instance), "sop"])
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["DERIVED", "PRIMARY"]
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_uid
    study_time = dt.time(8 + spec.instance % 9, (7 * spec.instance) % 60, 0)
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = spec.study_date
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = study_time.strftime("%H%M%S")
    ds.AccessionNumber = f"PH{zlib.crc32(spec.study_seed.encode()) % 10**8:08d}"
    ds.Modality = spec.modality
    ds.Manufacturer = "valvereader phantom"
    ds.InstitutionName = "Synthetic Phantom"
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = "SKULL 2 VIEWS"
    ds.SeriesDescription = "SKULL LAT" if spec.view == "lateral" else "SKULL AP"
    ds.ManufacturerModelName = "SkullPhantom"
    ds.DerivationDescription = "synthetic phantom radiograph, not a patient image"
    ds.PatientName = spec.patient_name
    ds.PatientID = spec.patient_id
    ds.PatientBirthDate = spec.birth_date
    ds.PatientSex = spec.patient_sex
    ds.BodyPartExamined = "SKULL"
    ds.KVP = f"{spec.kvp:.0f}"
    ds.ExposureInuAs = int(spec.mas * 1000)
    ds.Exposure = round(spec.mas)
    ds.ImagerPixelSpacing = [f"{spec.pixel_spacing_mm:.4f}", f"{spec.pixel_spacing_mm:.4f}"]
    ds.DistanceSourceToDetector = "1150"
    ds.ViewPosition = "LL" if spec.view == "lateral" else "AP"
    ds.StudyInstanceUID = generate_uid(entropy_srcs=[spec.study_seed, "study"])
    ds.SeriesInstanceUID = generate_uid(entropy_srcs=[spec.study_seed, spec.view, "series"])
    ds.StudyID = "1"
    ds.SeriesNumber = 1 if spec.view == "lateral" else 2
    ds.InstanceNumber = spec.instance
    ds.PatientOrientation = ["A", "F"] if spec.view == "lateral" else ["L", "F"]
    ds.BurnedInAnnotation = "YES"
    ds.ImageLaterality = "U"
    if spec.modality == "DX":
        ds.PresentationIntentType = "FOR PRESENTATION"
        ds.PixelIntensityRelationship = "LOG"
        ds.PixelIntensityRelationshipSign = -1 if spec.photometric == "MONOCHROME2" else 1
        ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = "0", "1", "US"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = spec.photometric
    ds.Rows, ds.Columns = int(stored.shape[0]), int(stored.shape[1])
    ds.BitsAllocated = 8 if spec.bits_stored <= 8 else 16
    ds.BitsStored = spec.bits_stored
    ds.HighBit = spec.bits_stored - 1
    ds.PixelRepresentation = 0
    top = (1 << spec.bits_stored) - 1
    ds.WindowCenter = f"{top / 2:.1f}"
    ds.WindowWidth = f"{top + 1:.1f}"
    ds.LossyImageCompression = "00"
    ds.PixelData = stored.tobytes()
    syntax = SYNTAXES[spec.syntax]
    if syntax != ExplicitVRLittleEndian:
        ds.compress(syntax, stored, generate_instance_uid=False)
    ds.save_as(path, enforce_file_format=True)
