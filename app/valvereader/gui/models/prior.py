"""A prior film of the same patient to compare the study on screen with: which studies of the
batch are the patient's (most recent first), and the prior's film, result, reading and review,
read in a worker. ``gui.prior`` shows the comparison."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ...radiograph import RadiographMeta
from . import export
from .state import Study

log = logging.getLogger(__name__)
PANE_SIDE = 300  # px of each zoomed valve


@dataclass
class PriorFilm:
    """A film to compare with: its file, its study in the batch (if it is one), the model's
    result, the reader's reading and review, its header and its zoomed valve."""

    path: Path
    prediction: Any
    meta: RadiographMeta
    crop: np.ndarray | None
    reading: str | None = None
    review: str | None = None

    def content(self, deidentify: bool, model_name: str) -> Any:
        from ...report import ReportContent

        picture = self.crop if self.crop is not None else np.zeros((8, 8, 3), dtype=np.uint8)
        return ReportContent(view_rgb=picture, prediction=self.prediction, meta=self.meta, valve_crop_rgb=self.crop,
                             reading=self.reading, review=self.review, model_name=model_name, deidentify=deidentify,
                             heatmap_shown=False)


def patient_of(study: Study) -> str | None:
    who = study.patient_id or (study.meta.patient_id if study.meta is not None else None)
    return str(who).strip() or None if who else None


def same_patient(studies: list[Study], current: int) -> list[int]:
    """Indices of the batch's other studies with the current study's patient ID, the most
    recent study date first."""
    if not 0 <= current < len(studies):
        return []
    who = patient_of(studies[current])
    if who is None:
        return []
    found = [i for i, s in enumerate(studies) if i != current and patient_of(s) == who]
    return sorted(found, key=lambda i: study_date(studies[i]), reverse=True)


def study_date(study: Study) -> str:
    return str(study.study_date or (study.meta.study_date if study.meta is not None else "") or "")


def load_prior(path: Path, study: Study | None, cache: Any, model: Any) -> PriorFilm:
    """The prior's film and result (from its study in the batch, else read now with the model);
    runs in a worker."""
    radiograph = cache.get(path) if study is not None else _load(path)
    prediction = study.prediction if study is not None else None
    reading = study.reading if study is not None else None
    review = export.review_text(study) if study is not None else None
    if prediction is None:
        status = model()
        if status.predictor is None:
            raise RuntimeError(f"{path.name} cannot be read without a model: {status.message}")
        prediction = status.predictor.predict(radiograph, with_heatmap=True, heatmap_max_side=1024)
    if study is None:  # a file from elsewhere: its folder's review file may hold its reading
        try:
            from ...review import REVIEW_FILE, ReviewStore

            if (path.parent / REVIEW_FILE).is_file():
                record = ReviewStore(path.parent).get(path)
                reading = record.reading if record is not None else None
        except Exception as exc:  # noqa: BLE001 - the comparison goes on without it
            log.debug("no reading for %s: %s", path, exc)
    crop = export.valve_crop_rgb(radiograph.pixels, prediction, side=PANE_SIDE)
    return PriorFilm(path, prediction, export.study_meta(study, radiograph.meta) if study is not None else radiograph.meta, crop, reading, review)


def _load(path: Path) -> Any:
    from .services import load_radiograph

    return load_radiograph(path)


def choice_text(study: Study) -> str:
    """A prior offered in the batch: its study date (YYYY-MM-DD) and file name."""
    date = study_date(study)
    date = f"{date[:4]}-{date[4:6]}-{date[6:]}" if len(date) == 8 else (date or "no date")
    return f"{date} · {study.path.name}"
