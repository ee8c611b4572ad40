"""What an export shows: one plain dataclass filled by the viewer (or the CLI), and the
text lines every export format derives from it, de-identified on request."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np

from .. import DISCLAIMER, __version__
from ..prediction import REASON_NOT_RADIOGRAPH, Prediction, Verdict, verdict_meaning
from ..radiograph import RadiographMeta

PROGRAM = "Shunt Valve Reader"
ATTENTION_LABEL = "model attention"
NO_VALVE_NEXT = ("Check the film; if a valve is there, mark it with the valve-region tool (V) or read it by hand "
                 "from the implant records.")
# Where the region read came from (Prediction.box_source), in words.
REGION_READ = {"located": "the region the locator found", "reader": "the region the reader marked",
               "attention": "the whole film (no region located)"}
READER_REGION_NOTE = "region read: chosen by the reader, not located by the program"


@dataclass
class ReportContent:
    """Everything one exported page or image holds.

    view_rgb: uint8 (H, W, 3), exactly what is on screen, overlays included. With
        ``deidentify`` the caller passes a view rendered without corner text.
    valve_crop_rgb: uint8 (h, w, 3) zoomed valve (reading aid included if shown), or None.
    template_svg: the predicted (or chosen) valve's diagram.svg, or None.
    template_sections: [(title, [lines])] from the valve's template, in reading order.
    prediction: the model's result; ``meta``: where the pixels came from.
    reading: the setting chosen with the reading aid ("1.5 (≙ 150 mmH2O)"), or None.
    review: the reader's decision in words ("Accepted", "Corrected to Integra DP"), or None.
    model_name: model name and version as the model card gives them.
    deidentify: leave out patient name, id, birth date, study date, accession, file name, UIDs.
    heatmap_shown: the view carries the "model attention" overlay (labels and colour bar);
        always False for "No valve found", whose view carries no overlay.
    attention_colours: (n, 3) uint8 colour ramp of the overlay, low to high, for the colour bar.
    image_label: how the image is named when not de-identified (default: file name of meta.source).
    study_number, study_total: the study's place in its worklist ("study 3" of 20, the numbering
        of the worklist CSV), or None for a report on its own.
    prior: the same patient's prior film, read against this one on a second page (the valve,
        reading and date of each, and whether the readings agree), or None.
    """

    view_rgb: np.ndarray
    prediction: Prediction
    meta: RadiographMeta = field(default_factory=RadiographMeta)
    valve_crop_rgb: np.ndarray | None = None
    template_svg: Path | None = None
    template_sections: list[tuple[str, list[str]]] = field(default_factory=list)
    reading: str | None = None
    review: str | None = None
    model_name: str = ""
    deidentify: bool = True
    created: datetime = field(default_factory=lambda: datetime.now().astimezone())
    heatmap_shown: bool = True
    attention_colours: np.ndarray | None = None
    image_label: str | None = None
    study_number: int | None = None
    study_total: int | None = None
    prior: ReportContent | None = None  # a prior film of the patient to compare with (a page of its own)

    def __post_init__(self) -> None:
        self.view_rgb = as_rgb8(self.view_rgb, "view_rgb")
        if self.valve_crop_rgb is not None:
            self.valve_crop_rgb = as_rgb8(self.valve_crop_rgb, "valve_crop_rgb")
        if self.template_svg is not None:
            self.template_svg = Path(self.template_svg)
        if self.no_valve:  # an attention map would point at a valve the result does not name
            self.heatmap_shown = False

    # --- derived text, shared by PNG, PDF, CSV and DICOM ------------------------------------
    @property
    def model_title(self) -> str:
        return self.model_name or self.prediction.model or "unnamed model"

    @property
    def program_line(self) -> str:
        return f"{PROGRAM} {__version__}"

    @property
    def disclaimer(self) -> str:
        return DISCLAIMER

    def identity_lines(self) -> list[tuple[str, str]]:
        """(label, value) pairs naming the patient and study; empty when de-identified."""
        if self.deidentify:
            return []
        meta = self.meta
        pairs = [
            ("Patient", _person(meta.patient_name)),
            ("Patient ID", meta.patient_id),
            ("Birth date", _date(meta.patient_birth_date)),
            ("Study date", _date(meta.study_date)),
            ("Accession", meta.accession_number),
            ("Image", self.source_name),
        ]
        return [(label, value) for label, value in pairs if value]

    def acquisition_lines(self) -> list[tuple[str, str]]:
        """(label, value) pairs that identify nobody: modality, view, body part, spacing."""
        meta = self.meta
        spacing = meta.pixel_spacing
        pairs = [
            ("Modality", meta.modality),
            ("View", meta.view_position),
            ("Body part", meta.body_part),
            # a negative image file the model read inverted (inference.polarity) says so here too
            ("Format", f"{meta.file_format}, a negative: read inverted" if meta.file_format and self.prediction.inverted
             else meta.file_format),
            (
                "Pixel spacing",
                f"{spacing.row_mm:.3g} × {spacing.column_mm:.3g} mm, {spacing.describe()}" if spacing else None,
            ),
        ]
        return [(label, value) for label, value in pairs if value]

    @property
    def source_name(self) -> str | None:
        if self.deidentify:
            return None
        if self.image_label:
            return self.image_label
        return Path(self.meta.source).name if self.meta.source else None

    @property
    def no_valve(self) -> bool:
        """The model found no valve: no valve is named, no template is read."""
        return self.prediction.verdict is Verdict.NO_VALVE

    def result_line(self) -> str:
        """The result in one line: "Confident: CODMAN CERTAS Plus (95%)", "Unknown valve (closest
        known: Integra DP, 60%)", or "No valve found"."""
        from ..catalogue import display_name

        prediction = self.prediction
        if self.no_valve:
            return prediction.verdict.label
        if self.closest_known:
            return f"{prediction.verdict.label} (closest known: {self.closest_known}, {prediction.confidence:.0%})"
        return f"{prediction.verdict.label}: {display_name(prediction.predicted)} ({prediction.confidence:.0%})"

    @property
    def closest_known(self) -> str | None:
        """For an "unknown valve", the closest catalogue valve's name, given only as a hint (no
        valve is named); else None."""
        from ..catalogue import display_name

        return display_name(self.prediction.predicted) if self.prediction.verdict is Verdict.UNKNOWN else None

    def meaning(self) -> str:
        """What the verdict means (the screen's words) and, without a valve, what to do next."""
        text = verdict_meaning(self.prediction)
        if self.no_valve and "(V)" not in text:
            text = f"{text} {NO_VALVE_NEXT}"
        return text

    def region_read(self) -> str:
        """Where the region read came from, in words; "No valve found" names no located region."""
        if self.no_valve and not self.reader_region:
            if self.prediction.verdict_reason == REASON_NOT_RADIOGRAPH:
                return "none: the file is not a plain X-ray"
            return "none: no region on the film was valve-like enough"
        if self.prediction.pipeline == "whole-image" and self.prediction.box_source == "located":
            return "the whole image (it read more like a valve than the located region, which the box shows)"
        return REGION_READ.get(self.prediction.box_source, self.prediction.box_source or "not known")

    @property
    def reader_region(self) -> bool:
        """The model read a region the reader chose (drawn or double-clicked), not one it located."""
        return self.prediction.box_source == "reader"

    @property
    def study_text(self) -> str | None:
        """"Study 3 of 20" in a worklist (the CSV's "study 3"), else None."""
        if self.study_number is None:
            return None
        total = f" of {self.study_total}" if self.study_total else ""
        return f"Study {self.study_number}{total}"

    def created_text(self) -> str:
        return self.created.strftime("%Y-%m-%d %H:%M")


def as_rgb8(array: np.ndarray, name: str) -> np.ndarray:
    """``array`` as C-contiguous uint8 (H, W, 3); grey and RGBA are converted.

    Raises:
        ValueError: not an image-shaped array, or an empty one.
    """
    image = np.asarray(array)
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise ValueError(f"{name} must be an (H, W, 3) RGB image, got shape {image.shape}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {image.shape})")
    image = image[:, :, :3]
    if image.dtype != np.uint8:
        if np.issubdtype(image.dtype, np.floating) and float(np.nanmax(image)) <= 1.0:
            image = np.nan_to_num(image) * 255.0
        image = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(image)


def _person(name: str | None) -> str | None:
    # DICOM person names use ^ between family and given names.
    if not name:
        return None
    parts = [p for p in str(name).split("^") if p]
    if len(parts) >= 2:
        return f"{parts[0].upper()}, {' '.join(parts[1:])}"
    return parts[0] if parts else None


def _date(value: str | None) -> str | None:
    if not value:
        return None
    text = str(value).strip()
    if len(text) == 8 and text.isdigit():
        return f"{text[:4]}-{text[4:6]}-{text[6:]}"
    return text
