"""The plain data a loader hands to the rest of the program."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

SpacingKind = Literal["ImagerPixelSpacing", "PixelSpacing"]


@dataclass(frozen=True)
class PixelSpacing:
    """Millimetres per pixel and which DICOM attribute they came from.

    ImagerPixelSpacing is measured at the detector (not corrected for magnification);
    PixelSpacing is calibrated to the patient.
    """

    row_mm: float
    column_mm: float
    kind: SpacingKind

    def describe(self) -> str:
        if self.kind == "ImagerPixelSpacing":
            return "at detector (ImagerPixelSpacing)"
        return "calibrated (PixelSpacing)"


@dataclass
class RadiographMeta:
    """What the loader knows about where the pixels came from. All fields optional."""

    source: str = ""
    file_format: str = ""  # "DICOM", "PNG", "JPEG", "TIFF"
    patient_name: str | None = None
    patient_id: str | None = None
    patient_birth_date: str | None = None
    study_instance_uid: str | None = None
    series_instance_uid: str | None = None
    sop_instance_uid: str | None = None
    study_date: str | None = None
    accession_number: str | None = None
    modality: str | None = None
    body_part: str | None = None
    view_position: str | None = None
    photometric: str | None = None
    bits_stored: int | None = None
    transfer_syntax: str | None = None
    pixel_spacing: PixelSpacing | None = None
    window_center: float | None = None  # of the stored (modality) values, as applied
    window_width: float | None = None
    frames: int = 1
    original_shape: tuple[int, int] = (0, 0)
    notes: list[str] = field(default_factory=list)  # e.g. "multi-frame: first of 12 frames shown"


@dataclass
class Radiograph:
    """A displayable grey-scale image: float32, shape (rows, columns), 0 = black, 1 = white,
    after modality LUT, VOI LUT/window, MONOCHROME1 inversion and presentation LUT."""

    pixels: np.ndarray
    meta: RadiographMeta

    def __post_init__(self) -> None:
        if self.pixels.ndim != 2:
            raise ValueError(f"Radiograph pixels must be 2-D, got shape {self.pixels.shape}")
        if self.pixels.dtype != np.float32:
            self.pixels = self.pixels.astype(np.float32)

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.pixels.shape[0]), int(self.pixels.shape[1]))
