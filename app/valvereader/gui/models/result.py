"""What the model says, in the result panel's words: the verdict's colours, the valve's name
(or why none is named), the reader's correction and the numbers one click deeper."""

from __future__ import annotations

from ...prediction import Prediction, Verdict
from .valves import valve_label

VERDICT_COLOURS = {  # (text, background)
    Verdict.CONFIDENT: ("#1f6f43", "#d8f5e3"),
    Verdict.REVIEW: ("#8a5a00", "#fff0cc"),
    Verdict.UNKNOWN: ("#7a1f2b", "#ffdce1"),
    Verdict.NO_VALVE: ("#7a1f2b", "#ffdce1"),
}
READER_REGION_TEXT = "Region chosen by the reader"


def valve_html(prediction: Prediction, corrected_valve_id: str | None = None) -> str:
    """The valve named (name, maker), none found, or unknown with the closest known; then the
    reader's correction."""
    shown = prediction.predicted if prediction.verdict not in (Verdict.UNKNOWN, Verdict.NO_VALVE) else None
    if prediction.verdict is Verdict.NO_VALVE:
        text = "<b>No valve found</b>"
    elif shown is not None:
        name, maker = valve_label(shown)
        text = f"<b>{name}</b><br>{maker}"
    else:
        name, _ = valve_label(prediction.predicted)
        text = f"<b>Unknown valve</b><br>closest known: {name}"
    if corrected_valve_id:
        cname, _ = valve_label(corrected_valve_id)
        text += f"<br><i>Reader's correction: {cname}</i>"
    return text


def numbers_text(prediction: Prediction) -> str:
    """Confidence, entropy, top-2 gap, open-set score and the model."""
    ood = "n/a" if prediction.ood_score is None else f"{prediction.ood_score:.3f}"
    return (f"Confidence (top probability): {prediction.confidence * 100:.1f} %\n"
            f"Entropy: {prediction.entropy:.3f} nats\n"
            f"Top-2 gap: {prediction.margin * 100:.1f} points\n"
            f"Open-set score: {ood}\n"
            f"Model: {prediction.model or '—'} ({prediction.pipeline or '—'})")
