"""DICOM Secondary Capture of the view (highdicom ``SCImage``), for sending back to PACS.

Not de-identified and the source is DICOM: ``SCImage.from_ref_dataset`` so the capture joins
the patient's study (same patient and study, new series). De-identified: a new study with
new UIDs, empty patient and study identifiers, no study dates, PatientIdentityRemoved YES
and a DeidentificationMethod saying what was done. The pixels are the view with the
non-identifying footer (verdict, disclaimer, model) burned in; the caller renders the view
without corner text when de-identifying. Output passes dciodvfy (dicom3tools).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from .. import __version__, atomic
from ..errors import InputError
from .content import ATTENTION_LABEL, PROGRAM, READER_REGION_NOTE, ReportContent
from .png import render_with_footer

SERIES_NUMBER = 9901  # high, so the capture sorts after the acquired series
# LO values are at most 64 characters each; the attribute takes several.
DEIDENTIFICATION_METHOD = [
    f"{PROGRAM} {__version__} de-identified export",
    "new study, series and instance UIDs",
    "patient name, ID, birth date, sex removed",
    "accession, study ID, physician, study dates removed",
    "no corner text burned into the pixels",
]


def _read_source(source_path: Path) -> Any | None:
    """The source's header, or None if it is not DICOM."""
    from ..io import import_loaders

    import_loaders()  # (an export may run beside a file's loading: one thread at a time, io.loaders)
    from pydicom import dcmread
    from pydicom.errors import InvalidDicomError

    try:
        return dcmread(source_path, stop_before_pixels=True)
    except (InvalidDicomError, OSError, ValueError, TypeError, AttributeError):
        return None


def _comment(content: ReportContent) -> str:
    text = f"{content.result_line()}. "
    if content.no_valve:
        text += f"{content.meaning()} "
    text += f"Model: {content.model_title}. "
    if content.reader_region:
        text += f"{READER_REGION_NOTE[0].upper()}{READER_REGION_NOTE[1:]}. "
    if content.reading:
        text += f"Reading: {content.reading}. "
    if content.review:
        text += f"Review: {content.review}. "
    if content.heatmap_shown:
        text += f"Overlay shows {ATTENTION_LABEL}, not a finding. "
    return (text + content.disclaimer)[:10240]  # ImageComments is LT: 10240 characters at most


def build_secondary_capture(content: ReportContent, source_path: str | Path | None = None,
                            footer: bool = True) -> Any:
    """The Secondary Capture as a pydicom Dataset (see the module docstring).

    Raises:
        InputError: ``source_path`` is given, not de-identifying, but cannot be read at all.
    """
    import highdicom as hd
    import numpy as np
    from pydicom.uid import ExplicitVRLittleEndian

    pixels = np.ascontiguousarray(render_with_footer(content) if footer else content.view_rgb)
    common: dict[str, Any] = {
        "pixel_array": pixels,
        "photometric_interpretation": hd.PhotometricInterpretationValues.RGB,
        "bits_allocated": 8,
        "coordinate_system": hd.CoordinateSystemNames.PATIENT,
        "series_instance_uid": hd.UID(),
        "series_number": SERIES_NUMBER,
        "sop_instance_uid": hd.UID(),
        "instance_number": 1,
        "manufacturer": PROGRAM,
        "transfer_syntax_uid": ExplicitVRLittleEndian,
        # highdicom wants one; it is blanked below (the user may have rotated or flipped the view).
        "patient_orientation": ("A", "F"),
    }
    reference = None
    if source_path is not None and not content.deidentify:
        path = Path(source_path)
        if not path.is_file():
            raise InputError(f"The source image {path} no longer exists; export without a source "
                             "or with de-identification")
        reference = _read_source(path)
    if reference is not None and "StudyInstanceUID" in reference:
        sc = hd.sc.SCImage.from_ref_dataset(ref_dataset=reference, **common)
    else:
        meta = content.meta
        identity: dict[str, Any] = {}
        if not content.deidentify:
            identity = {
                "patient_name": meta.patient_name or None,
                "patient_id": meta.patient_id or None,
                "patient_birth_date": meta.patient_birth_date or None,
                "accession_number": meta.accession_number or None,
                "study_date": meta.study_date or None,
            }
            study_uid = meta.study_instance_uid or hd.UID()
        else:
            study_uid = hd.UID()
        sc = hd.sc.SCImage(study_instance_uid=study_uid, **identity, **common)
    sc.SpecificCharacterSet = "ISO_IR 192"  # UTF-8: names, "–" and "≙" survive
    sc.PatientOrientation = []  # Type 2: unknown after the viewer's rotate/flip
    # A shunt valve sits on the skull, an unpaired part: no Laterality (dciodvfy checks this).
    sc.BodyPartExamined = "SKULL"
    if "Laterality" in sc:
        del sc.Laterality
    sc.ConversionType = "WSD"  # workstation capture
    sc.SeriesDescription = f"{PROGRAM} export"
    sc.SoftwareVersions = __version__
    sc.ImageComments = _comment(content)
    sc.DerivationDescription = (f"Screen capture of {PROGRAM} showing the model's result; "
                                + content.disclaimer)[:1024]
    # Corner text carries the patient's name unless the view was rendered for de-identification.
    sc.BurnedInAnnotation = "NO" if content.deidentify else "YES"
    if content.deidentify:
        _strip_identity(sc)
    return sc


def _strip_identity(sc: Any) -> None:
    for keyword in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "AccessionNumber",
                    "StudyID", "ReferringPhysicianName", "StudyDate", "StudyTime"):
        # Type 2 in the modules an SC carries: present and empty.
        setattr(sc, keyword, "")
    for keyword in ("OtherPatientIDs", "OtherPatientNames", "InstitutionName", "StudyDescription",
                    "SeriesDate", "SeriesTime", "AcquisitionDate", "AcquisitionTime",
                    "AcquisitionDateTime", "OperatorsName", "PerformingPhysicianName"):
        if keyword in sc:
            delattr(sc, keyword)
    sc.PatientIdentityRemoved = "YES"
    sc.DeidentificationMethod = list(DEIDENTIFICATION_METHOD)


def export_secondary_capture(content: ReportContent, source_path: str | Path | None, path: str | Path,
                             footer: bool = True) -> Path:
    """Write the view as a DICOM Secondary Capture (explicit VR little endian), atomically.

    Args:
        content: what to capture; ``content.deidentify`` decides the patient module.
        source_path: the image the view shows; if DICOM (and not de-identifying) the capture
            joins its study. None or a non-DICOM file gives a new study.
        path: where to write (``.dcm``).

    Raises:
        InputError: the source is gone.
        OSError: the file cannot be written.
    """
    sc = build_secondary_capture(content, source_path, footer=footer)
    buffer = io.BytesIO()
    sc.save_as(buffer, enforce_file_format=True)
    return atomic.write_bytes(path, buffer.getvalue())
