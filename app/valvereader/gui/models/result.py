"""What the model says, in the result panel's words: the verdict's colours, the valve's name
(or why none is named), the reader's correction and the numbers one click deeper; for "No valve
found", why no probability is shown and what the zoomed-valve and template panes say instead."""

from __future__ import annotations

from ...prediction import REASON_NOT_RADIOGRAPH, Prediction, Verdict
from .valves import valve_label

VERDICT_COLOURS = {  # (text, background)
    Verdict.CONFIDENT: ("#1f6f43", "#d8f5e3"),
    Verdict.REVIEW: ("#8a5a00", "#fff0cc"),
    Verdict.UNKNOWN: ("#7a1f2b", "#ffdce1"),
    Verdict.NO_VALVE: ("#7a1f2b", "#ffdce1"),
}
READER_REGION_TEXT = "Region chosen by the reader"
ZOOM_EMPTY_TEXT = "Zoomed valve appears here\nonce the model has found it"
MARK_IT_TEXT = "If you see a valve on the film, mark it with the valve-region tool (V): the model then reads that region."


def shows_valve(prediction: Prediction | None) -> bool:
    """Whether the result names (or looks for) a valve on the film: False for "No valve found",
    whose attention map, box, zoomed valve and probabilities would look like an identification."""
    return prediction is not None and prediction.verdict is not Verdict.NO_VALVE


def no_valve_why(prediction: Prediction) -> str:
    """The plain line shown instead of the probability bars for "No valve found"."""
    if prediction.verdict_reason == REASON_NOT_RADIOGRAPH:
        return ("No valve probabilities: this file is not a radiograph of the kind the model reads "
                "(not a plain X-ray), so no valve is named.")
    return "No valve probabilities: nothing on the film was valve-like enough, so no valve is named."


def no_valve_zoom_text(prediction: Prediction) -> str:
    """What the zoomed-valve pane (and its dial) says for "No valve found"."""
    if prediction.verdict_reason == REASON_NOT_RADIOGRAPH:
        return "No valve to read: not a plain X-ray.\nIdentify the valve on a plain skull X-ray."
    return "No valve to read.\nIf you see one on the film, mark it\nwith the valve-region tool (V)."


def no_valve_template_html(prediction: Prediction) -> str:
    """What the template pane says for "No valve found": no template, and the next step."""
    if prediction.verdict_reason == REASON_NOT_RADIOGRAPH:
        return ("<p><b>No valve to read:</b> the file is not a plain X-ray, so no template is shown.</p>"
                "<p>Identify the valve on a plain skull X-ray or from the implant records.</p>")
    return (f"<p><b>No valve to read:</b> no valve was found, so no template is shown.</p><p>{MARK_IT_TEXT} "
            "Or pick the valve's template above (recorded as a correction).</p>")


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
