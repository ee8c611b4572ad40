"""The batch worklist as CSV: one row per study with the model's result and the reader's decision."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable
from dataclasses import dataclass, fields
from pathlib import Path

from .. import DISCLAIMER, atomic
from ..catalogue import display_name
from ..catalogue.templates import reading_basis
from ..prediction import Prediction, Verdict, verdict_meaning
from ..radiograph import RadiographMeta
from ..review import ReviewRecord
from .content import NO_VALVE_NEXT

IDENTIFYING = ("image", "patient_name", "patient_id", "study_date")


@dataclass
class WorklistRow:
    """One study of a batch. Empty strings where something is not known (or failed)."""

    image: str
    patient_name: str = ""
    patient_id: str = ""
    study_date: str = ""
    predicted: str = ""
    predicted_name: str = ""
    confidence: str = ""
    verdict: str = ""
    verdict_why: str = ""  # what the verdict means, from the rule that gave it
    entropy: str = ""
    top2_gap: str = ""
    box_source: str = ""  # who chose the region read: "reader", "located" (the locator), "attention" (whole film)
    review: str = ""
    corrected_valve_id: str = ""
    final_valve_id: str = ""
    reading: str = ""
    reading_basis: str = ""  # the facts the reading rests on, weakest tag first ("[M] indicator angle ...")
    reviewed_at: str = ""
    model: str = ""
    error: str = ""


def worklist_row(
    image_path: str | os.PathLike[str],
    prediction: Prediction | None = None,
    meta: RadiographMeta | None = None,
    review: ReviewRecord | None = None,
    error: str | None = None,
) -> WorklistRow:
    """Build a row from what the viewer holds for one study (any part may be missing)."""
    row = WorklistRow(image=str(image_path), error=error or "")
    if meta is not None:
        row.patient_name = str(meta.patient_name or "")
        row.patient_id = str(meta.patient_id or "")
        row.study_date = str(meta.study_date or "")
    if prediction is not None:
        named = prediction.verdict is not Verdict.NO_VALVE  # "no valve found" names none
        row.predicted = prediction.predicted if named else ""
        row.predicted_name = display_name(prediction.predicted) if named else ""
        row.confidence = f"{prediction.confidence:.4f}" if named else ""
        row.verdict = prediction.verdict.label
        row.verdict_why = verdict_meaning(prediction)
        if not named and "(V)" not in row.verdict_why:
            row.verdict_why += f" {NO_VALVE_NEXT}"
        row.entropy = f"{prediction.entropy:.4f}"
        row.top2_gap = f"{prediction.margin:.4f}"
        row.box_source = prediction.box_source
        row.model = prediction.model
    if review is not None:
        row.review = review.decision
        row.corrected_valve_id = review.corrected_valve_id or ""
        row.final_valve_id = review.final_valve_id or ""
        row.reading = review.reading or ""
        row.reading_basis = reading_basis(review.final_valve_id or review.corrected_valve_id or review.predicted,
                                          review.reading)
        row.reviewed_at = review.time
    return row


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    # A spreadsheet would run a cell starting with = + - @ as a formula.
    if text and text[0] in "=+-@\t\r" and not _is_number(text):
        return "'" + text
    return text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def export_worklist_csv(rows: Iterable[WorklistRow], path: str | Path, deidentify: bool = True) -> Path:
    """Write the worklist as UTF-8 CSV (header row first, then ``# disclaimer``), atomically.

    With ``deidentify`` the patient name, id and study date columns are left out and the
    image column becomes "study 1", "study 2"... (file names often carry patient ids).

    Raises:
        OSError: the file cannot be written.
    """
    names = [f.name for f in fields(WorklistRow)]
    if deidentify:
        names = ["study", *[n for n in names if n not in IDENTIFYING]]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(names)
    for number, row in enumerate(rows, start=1):
        values = {f.name: getattr(row, f.name) for f in fields(WorklistRow)}
        values["study"] = f"study {number}"
        writer.writerow([_cell(values[n]) for n in names])
    buffer.write(f"# {DISCLAIMER}\n")
    return atomic.write_text(path, buffer.getvalue())
