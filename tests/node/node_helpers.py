"""Helpers of the DICOM node tests: sending over loopback, objects to send, dciodvfy."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

SAMPLES = Path(__file__).resolve().parents[2] / "resources" / "samples"
SAMPLE = SAMPLES / "composite_sophy.dcm"  # a phantom film with a Sophy Mini SM8 (ground_truth.csv)
SAMPLE_VALVE = "sophysa_sophy_minism8"
LOOPBACK = "127.0.0.1"


def send(port: int, datasets, calling_aet: str = "MODALITY", called_aet: str = "VALVEREADER"):
    """C-STORE ``datasets`` to 127.0.0.1:port over one association: the statuses, or None
    when the association was refused."""
    from pynetdicom import AE

    ae = AE(ae_title=calling_aet)
    for ds in datasets:
        syntax = ds.file_meta.TransferSyntaxUID
        if not any(cx.abstract_syntax == ds.SOPClassUID and syntax in cx.transfer_syntax for cx in ae.requested_contexts):
            ae.add_requested_context(ds.SOPClassUID, syntax)
    assoc = ae.associate(LOOPBACK, port, ae_title=called_aet)
    if not assoc.is_established:
        return None
    try:
        return [int(assoc.send_c_store(ds).Status) for ds in datasets]
    finally:
        assoc.release()


def sample_dataset():
    from pydicom import dcmread

    return dcmread(SAMPLE)


def non_image_dataset():
    """A Basic Text SR: a DICOM object without a picture."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.88.11"  # Basic Text SR Storage
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality, ds.PatientName, ds.PatientID = "SR", "TEST^NONIMAGE", "N1"
    ds.ValueType, ds.ContinuityOfContent = "CONTAINER", "SEPARATE"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds


def broken_image_dataset():
    """A DX image whose pixel data is far shorter than its rows and columns say."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"  # Digital X-Ray Image Storage - For Presentation
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality, ds.PatientName, ds.PatientID = "DX", "TEST^BROKEN", "B1"
    ds.Rows = ds.Columns = 512
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit, ds.PixelRepresentation, ds.SamplesPerPixel = 15, 0, 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.PixelData = np.zeros(500, dtype=np.uint16).tobytes()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds


def dciodvfy_errors(path: Path) -> list[str]:
    """dciodvfy's error lines for ``path`` (skips the test where dicom3tools is absent)."""
    if shutil.which("dciodvfy") is None:
        pytest.skip("dciodvfy (dicom3tools) is not installed: scripts/install-system-deps.sh")
    result = subprocess.run(["dciodvfy", str(path)], check=False, capture_output=True, text=True, timeout=60)
    return [line for line in (result.stdout + result.stderr).splitlines() if line.startswith("Error")]
