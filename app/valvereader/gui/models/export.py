"""From what is on screen to files, through ``valvereader.report``: the view as PNG and a
one-page PDF, the worklist as CSV and multi-page PDF, a DICOM Secondary Capture."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ... import atomic
from ...catalogue import UNKNOWN_VALVE_ID
from ...prediction import Verdict
from ...radiograph import RadiographMeta
from . import render
from .result import shows_valve
from .state import ReviewDecision, Study
from .valves import diagram_path, load_template, template_sections, valve_label


def review_text(study: Study) -> str | None:
    if study.decision is ReviewDecision.NONE:
        return None
    if study.decision is ReviewDecision.CORRECTED and study.corrected_valve_id:
        return f"Corrected to {valve_label(study.corrected_valve_id)[0]}"
    return study.decision.label


def shown_valve(study: Study) -> str | None:
    """The valve whose template belongs with the study: the reader's correction first."""
    if study.corrected_valve_id:
        return study.corrected_valve_id
    if study.prediction is None or study.prediction.verdict is Verdict.NO_VALVE:
        return None  # no valve named, no template to read it by
    return study.prediction.predicted if study.prediction.verdict is not Verdict.UNKNOWN else UNKNOWN_VALVE_ID


def study_meta(study: Study, loaded: RadiographMeta | None = None) -> RadiographMeta:
    """What is known of the study's file: the header read with its pixels (``loaded``, or the
    study's own once analysed); for a result kept from an earlier reading, what the folder's
    scan found (patient ID, study date)."""
    if loaded is not None:
        if not loaded.study_date and study.study_date:  # the scan found one the loader did not keep
            from dataclasses import replace

            return replace(loaded, study_date=study.study_date)
        return loaded
    if study.meta is not None:
        return study.meta
    return RadiographMeta(source=str(study.path), patient_id=study.patient_id, study_date=study.study_date,
                          modality=study.modality)


def report_content(study: Study, view_rgb: np.ndarray, valve_crop_rgb: np.ndarray | None,
                   model_name: str, deidentify: bool, heatmap_shown: bool,
                   study_number: int | None = None, study_total: int | None = None,
                   meta: RadiographMeta | None = None) -> Any:
    from ...report import ReportContent

    if study.prediction is None:
        raise ValueError("There is no model result for this study to put in a report")
    valve_id = shown_valve(study)
    template = load_template(valve_id) if valve_id else None
    sections = template_sections(template)
    return ReportContent(
        view_rgb=view_rgb, prediction=study.prediction, meta=study_meta(study, meta),
        valve_crop_rgb=valve_crop_rgb, template_svg=diagram_path(valve_id) if valve_id else None,
        template_sections=sections, reading=study.reading or None, review=review_text(study),
        model_name=model_name, deidentify=deidentify,
        heatmap_shown=heatmap_shown and study.prediction.heatmap is not None and shows_valve(study.prediction),
        attention_colours=render.attention_colours(),
        study_number=study_number, study_total=study_total,
    )


CROP_SIDE = 480  # px of a valve crop on a worklist page (printed about 2 inches wide)


def view_overlays(prediction: Any) -> tuple[np.ndarray | None, tuple[int, int, int, int] | None]:
    """The attention map and box drawn on a study's film off screen (render.compose_rgb), as
    the viewport draws them: "No valve found" draws no attention map and no box of the
    model's (a region the reader marked stays: it is the reader's)."""
    if shows_valve(prediction):
        return prediction.heatmap, prediction.box.as_tuple() if prediction.box else None
    reader = prediction.box if prediction.box_source == "reader" else None
    return None, reader.as_tuple() if reader is not None else None


def valve_crop_rgb(pixels: np.ndarray, prediction: Any, side: int = CROP_SIDE) -> np.ndarray | None:
    """The zoomed valve of a study not on screen, as the valve view crops it (a square 1.6×
    the region the model read, in the file's own window), ``side`` pixels square; None when
    the model marked no region or found no valve."""
    from PIL import Image

    from ...geometry import Box

    if not shows_valve(prediction):
        return None
    heatmap = prediction.heatmap
    region = render.zoom_box(prediction.box.as_tuple() if prediction.box else None, heatmap, pixels.shape)
    if region is None:
        return None
    square = Box(*region).square(scale=1.6, minimum=32).clip(pixels.shape)
    crop = pixels[square.y0:square.y1, square.x0:square.x1]
    if crop.size == 0:
        return None
    grey = np.clip(np.rint(np.clip(crop, 0.0, 1.0) * 255.0), 0, 255).astype(np.uint8)
    image = Image.fromarray(grey, "L").resize((side, side), Image.Resampling.LANCZOS).convert("RGB")
    return np.asarray(image)


def save_png(view_rgb: np.ndarray, path: Path, content: Any | None) -> Path:
    """With a model result: the report module's PNG (view + footer naming verdict, model and the
    decision-support line). Without: the view alone, which carries the line itself."""
    if content is not None:
        from ...report import export_png

        return export_png(content, path)
    from io import BytesIO

    from PIL import Image

    buffer = BytesIO()
    Image.fromarray(view_rgb).save(buffer, format="PNG")
    return atomic.write_bytes(path, buffer.getvalue())


def save_pdf(content: Any, path: Path) -> Path:
    from ...report import export_pdf

    return export_pdf(content, path)


def save_secondary_capture(content: Any, source: Path, path: Path) -> Path:
    from ...report import export_secondary_capture

    return export_secondary_capture(content, source, path)


def save_worklist_csv(studies: Sequence[Study], path: Path, deidentify: bool, review_store: Any) -> Path:
    from ...report import export_worklist_csv, worklist_row

    rows = []
    for study in studies:
        record = review_store.get(study.path) if review_store is not None else None
        rows.append(worklist_row(study.path, prediction=study.prediction, meta=study_meta(study),
                                 review=record, error=study.error))
    return export_worklist_csv(rows, path, deidentify=deidentify)


def save_worklist_pdf(contents: Sequence[Any], path: Path) -> Path:
    from ...report import export_worklist_pdf

    if not contents:
        raise ValueError("No analysed study to put in the worklist report")
    return export_worklist_pdf(contents, path)
