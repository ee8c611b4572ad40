"""The worklist's rows in words, apart from the table that shows them: each cell's text, sort
key and tooltip, the filters, the shared start of the batch's file names, the order of moving
on and the summary line. ``gui.worklist`` shows them in a sortable, filterable table."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from ...prediction import Verdict, verdict_meaning
from .state import ReviewDecision, Study
from .valves import short_name

FILTERS = {
    "all": "All studies",
    "needs review": "Needs review",
    "unknown": "Unknown valve",
    "unreviewed": "Not reviewed yet",
    "errors": "Errors",
}
REGION_MARK = "reader's region"  # under the valve when the model read the region the reader chose
KEPT_START = 4  # characters of the shared start kept before the part of a file name that differs


def shared_start(names: Sequence[str]) -> int:
    """How many first characters every file name of the batch shares ("composite_patient_00")."""
    return len(os.path.commonprefix(list(names))) if len(names) > 1 else 0


def without_shared_start(name: str, start: int, kept: int = KEPT_START) -> str | None:
    """``name`` losing the start every file of the batch shares ("…0012_lateral_view.png" for
    composite_patient_0012_lateral_view.png), or None when the shared start is too short to drop."""
    if start > kept + 2:
        return "…" + name[start - kept:]
    return None


def _patient(study: Study) -> str | None:
    return study.patient_id or (study.meta.patient_id if study.meta else None)


def cell_text(study: Study, column: int) -> str | None:
    """What the cell shows: file and patient, valve (with the reader's region marked under
    it), confidence, verdict, review."""
    p = study.prediction
    if column == 1:
        who = _patient(study)
        return f"{study.path.name}\n{who}" if who else study.path.name
    if column == 2:
        if study.decision is ReviewDecision.CORRECTED and study.corrected_valve_id:
            value = short_name(study.corrected_valve_id) + " (corrected)"
        elif p is not None and p.verdict is Verdict.NO_VALVE:
            value = "no valve found"  # names none
        elif p is not None and p.verdict is Verdict.UNKNOWN:
            value = f"closest: {short_name(p.predicted)}"  # a hint, not the valve's name
        else:
            value = short_name(p.predicted) if p else ""
        # the region read was the reader's: said under the valve
        return f"{value}\n{REGION_MARK}" if study.region_by_reader else value
    if column == 3:
        if p is None or p.verdict is Verdict.NO_VALVE:
            return ""
        # an unknown valve's probability is the closest valve's: bracketed, it does not apply
        return f"({p.confidence * 100:.0f}\u00a0%)" if p.verdict is Verdict.UNKNOWN else f"{p.confidence * 100:.0f} %"
    if column == 4:
        return study.verdict_label
    if column == 5:
        return study.decision.label
    return None


def sort_key(row: int, study: Study, column: int) -> Any:
    """The value a column sorts by (the first column: the order the batch was opened in)."""
    p = study.prediction
    named = p if p is not None and p.verdict is not Verdict.NO_VALVE else None
    return [row, study.path.name.lower(), short_name(named.predicted) if named else "",
            named.confidence if named else -1.0, study.verdict_label, study.decision.label][column]


def tooltip_text(study: Study, column: int) -> str:
    p = study.prediction
    if column == 4 and p is not None and not study.error:
        return verdict_meaning(p)  # why this verdict
    if (column in (2, 3) and p is not None and p.verdict is Verdict.UNKNOWN and not study.error
            and not (column == 2 and study.corrected_valve_id)):
        hint = (f"Unknown valve: the closest catalogue valve is {short_name(p.predicted)} ({p.confidence:.0%}), "
                "a hint only; the probabilities do not apply to a valve the model does not know")
        return hint + ("\nThe model read a region chosen by the reader, not the box it located"
                       if study.region_by_reader else "")
    if column == 2 and study.region_by_reader:
        return "The model read a region chosen by the reader, not the box it located"
    if column == 1:  # the whole name, which the cell may shorten in the middle
        who = _patient(study)
        lines = [study.path.name, f"Patient ID {who}" if who else "", str(study.path.parent), study.error or ""]
        return "\n".join(line for line in lines if line)
    return study.error or str(study.path)


def matches(study: Study, mode: str) -> bool:
    """Whether ``study`` is listed under the filter ``mode`` (a key of FILTERS)."""
    if mode == "needs review":
        return study.needs_review
    if mode == "unknown":
        return study.prediction is not None and study.prediction.verdict is Verdict.UNKNOWN
    if mode == "unreviewed":
        return study.decision is ReviewDecision.NONE
    if mode == "errors":
        return study.error is not None
    return True


def neighbour(rows: Sequence[int], current: int, delta: int) -> int | None:
    """The row ``delta`` steps from ``current`` in the shown order ``rows``; from a row not
    shown, the first (forwards) or the last (backwards)."""
    if not rows:
        return None
    if current not in rows:
        return rows[0] if delta > 0 else rows[-1]
    position = min(max(list(rows).index(current) + delta, 0), len(rows) - 1)
    return rows[position]


def summary_text(studies: Sequence[Study]) -> str:
    done = sum(s.analysed for s in studies)
    reviewed = sum(s.decision is not ReviewDecision.NONE for s in studies)
    review = sum(s.needs_review for s in studies)
    return f"{len(studies)} studies · {done} analysed · {review} need review · {reviewed} reviewed"
