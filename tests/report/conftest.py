"""Report fixtures: a hand-built prediction, metadata with a planted patient, a view image."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from planted_patient import (
    PLANTED_ACCESSION,
    PLANTED_BIRTH,
    PLANTED_FILE,
    PLANTED_ID,
    PLANTED_NAME,
    PLANTED_STUDY_DATE,
    skull_view,
)

from valvereader.catalogue import VALVE_IDS
from valvereader.geometry import Box
from valvereader.prediction import Prediction, VerdictThresholds
from valvereader.radiograph import PixelSpacing, RadiographMeta


@pytest.fixture
def prediction() -> Prediction:
    probabilities = np.array([0.02, 0.05, 0.01, 0.03, 0.01, 0.02, 0.82, 0.04], dtype=np.float32)
    confidence = float(probabilities.max())
    return Prediction(
        valve_ids=VALVE_IDS,
        probabilities=probabilities,
        verdict=VerdictThresholds().verdict(confidence, None),
        box=Box(240, 120, 280, 160),
        heatmap=np.zeros((480, 400), dtype=np.float32),
        model="valve-identifier-test 0.3",
        pipeline="locate+identify",
    )


@pytest.fixture
def meta() -> RadiographMeta:
    return RadiographMeta(
        source=f"/data/{PLANTED_FILE}",
        file_format="DICOM",
        patient_name=PLANTED_NAME,
        patient_id=PLANTED_ID,
        patient_birth_date=PLANTED_BIRTH,
        study_date=PLANTED_STUDY_DATE,
        accession_number=PLANTED_ACCESSION,
        modality="DX",
        view_position="LL",
        body_part="SKULL",
        pixel_spacing=PixelSpacing(0.15, 0.15, "ImagerPixelSpacing"),
    )


@pytest.fixture
def diagram_svg(tmp_path: Path) -> Path:
    path = tmp_path / "diagram.svg"
    path.write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" width="200" height="200" viewBox="0 0 200 200">'
        '<circle cx="100" cy="100" r="80" fill="none" stroke="#222" stroke-width="4"/>'
        '<line x1="100" y1="100" x2="100" y2="30" stroke="#c00" stroke-width="6"/>'
        '<text x="100" y="190" text-anchor="middle" font-size="14">TEMPLATEMARK</text></svg>'
    )
    return path


@pytest.fixture
def make_content(prediction: Prediction, meta: RadiographMeta, diagram_svg: Path) -> Callable[..., object]:
    from valvereader.report import ReportContent

    def make(deidentify: bool = True, **overrides: object) -> ReportContent:
        values: dict[str, object] = {
            "view_rgb": skull_view(),
            "valve_crop_rgb": skull_view(120, 120),
            "template_svg": diagram_svg,
            "template_sections": [
                ("Reading the setting", ["Find the arrow.", "Read the dial the indicator points to."]),
                ("Mirror image", ["The notch must be on the right; if left, the image is flipped."]),
            ],
            "prediction": prediction,
            "meta": meta,
            "reading": "1.5 (150 mmH2O)",
            "review": "Accepted",
            "model_name": "valve-identifier-test 0.3",
            "deidentify": deidentify,
            "created": datetime(2026, 1, 2, 3, 4),
            "attention_colours": np.stack([np.arange(256), np.zeros(256), 255 - np.arange(256)], 1).astype(np.uint8),
        }
        values.update(overrides)
        return ReportContent(**values)  # type: ignore[arg-type]

    return make
