"""What the model says about one radiograph, and how sure it is."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

import numpy as np

from .geometry import Box


class Verdict(str, Enum):
    CONFIDENT = "confident"
    REVIEW = "review"
    UNKNOWN = "unknown"
    NO_VALVE = "no_valve"  # nothing on the film is valve-like enough: no valve is named

    @property
    def label(self) -> str:
        return {"confident": "Confident", "review": "Needs review", "unknown": "Unknown valve",
                "no_valve": "No valve found"}[self.value]


@dataclass(frozen=True)
class VerdictThresholds:
    """Chosen on validation data; stored in the model card.

    confident: max softmax at or above which (and ood below ``ood_review``) a result is confident.
    unknown_confidence: max softmax below which the valve is called unknown.
    ood_review / ood_unknown: open-set score (higher = less like the training valves) above
    which the result needs review / is called unknown. None disables the open-set rule.
    """

    confident: float = 0.90
    unknown_confidence: float = 0.50
    ood_review: float | None = None
    ood_unknown: float | None = None

    def verdict(self, confidence: float, ood_score: float | None) -> Verdict:
        return self.decide(confidence, ood_score)[0]

    def decide(self, confidence: float, ood_score: float | None) -> tuple[Verdict, str]:
        """The verdict and which rule gave it (a ``REASON_*``), so that the screen and the
        report can say why: 98 % that "needs review" is an unusual image, not an unsure model."""
        if confidence < self.unknown_confidence:
            return Verdict.UNKNOWN, REASON_LOW_CONFIDENCE
        if ood_score is not None and self.ood_unknown is not None and ood_score >= self.ood_unknown:
            return Verdict.UNKNOWN, REASON_UNLIKE_TRAINING
        if ood_score is not None and self.ood_review is not None and ood_score >= self.ood_review:
            return Verdict.REVIEW, REASON_UNUSUAL
        if confidence >= self.confident:
            return Verdict.CONFIDENT, REASON_SURE
        return Verdict.REVIEW, REASON_UNSURE


REASON_SURE = "sure"  # confident enough, and the image looks like the training valves
REASON_UNSURE = "unsure"  # below the "confident" probability
REASON_UNUSUAL = "unusual"  # the open-set score is past the review threshold
REASON_LOW_CONFIDENCE = "low_confidence"  # below the "unknown" probability
REASON_UNLIKE_TRAINING = "unlike_training"  # the open-set score is past the unknown threshold
REASON_NOT_RADIOGRAPH = "not_radiograph"  # the file's modality is not a plain X-ray (CT, MR, ...)

# DICOM modalities that are not projection X-rays: the model was trained on plain radiographs
# only, so whatever it says about these is a guess (a CT slice of a head once came out "Medtronic
# Delta, 93 %"). Files of these modalities are never "confident" (see cap_for_modality).
NOT_RADIOGRAPH_MODALITIES = frozenset({
    "CT", "MR", "US", "NM", "PT", "OCT", "OPT", "OP", "OPM", "XC", "ES", "SM", "GM", "IVUS", "IVOCT",
    "BDUS", "ECG", "EPS", "HD", "RTDOSE", "RTSTRUCT", "SEG",
})


def cap_for_modality(prediction: Prediction, modality: str | None) -> Prediction:
    """A result for a file whose DICOM modality is not a plain X-ray (``NOT_RADIOGRAPH_MODALITIES``)
    is at best "needs review", with REASON_NOT_RADIOGRAPH; "unknown valve" stays. Anything else
    (a plain X-ray, no modality, PNG or JPEG) is left as it is. Changes ``prediction`` in place
    and returns it."""
    if (modality or "").strip().upper() in NOT_RADIOGRAPH_MODALITIES and prediction.verdict is not Verdict.UNKNOWN:
        prediction.verdict = Verdict.REVIEW
        prediction.verdict_reason = REASON_NOT_RADIOGRAPH
    return prediction


SMOOTHED_NOTE = "The image was grainier than any the model was trained on; the model read a smoothed copy."


def verdict_meaning(prediction: Prediction) -> str:
    """What the verdict means for the reader, in one or two sentences, from the rule that gave
    it (the same words on screen and in the report; a prediction without its rule, such as one
    cached by an older version, gets the words that fit either rule), and whether the image
    was smoothed first (valvereader.noise)."""
    meaning = _verdict_meaning(prediction)
    return f"{meaning} {SMOOTHED_NOTE}" if prediction.smoothed else meaning


def _verdict_meaning(prediction: Prediction) -> str:
    confidence = f"{prediction.confidence:.0%}".replace("%", " %")
    reason = prediction.verdict_reason
    compare = "Compare the valve with the template and the other likely valves before relying on it."
    records = "Identify the valve from the implant records or the manufacturer's documents."
    if prediction.verdict is Verdict.CONFIDENT:
        return ("The model is sure and the image looks like its training valves. Still compare the valve with the "
                "template before reading its setting.")
    if prediction.verdict is Verdict.REVIEW:
        if reason == REASON_NOT_RADIOGRAPH:
            return (f"This file is not a plain X-ray (its DICOM modality says so), and the model reads only plain "
                    f"X-rays of the skull: its {confidence} is a guess here. {records}")
        if reason == REASON_UNUSUAL:
            return f"The image looks unusual next to the model's training valves: do not trust its {confidence} on its own. {compare}"
        if reason == REASON_UNSURE:
            return f"The model is not sure ({confidence} for its first choice). {compare}"
        return f"The model is unsure or the image is unusual. {compare}"
    if reason == REASON_UNLIKE_TRAINING:
        return f"The image looks unlike every valve the model knows; the probabilities do not apply. {records}"
    if reason == REASON_LOW_CONFIDENCE:
        return f"No valve the model knows fits (at most {confidence}). {records}"
    return f"This does not look like any valve the model knows. {records}"


def softmax_entropy(probabilities: np.ndarray) -> float:
    p = np.clip(np.asarray(probabilities, dtype=np.float64), 1e-12, 1.0)
    return float(-(p * np.log(p)).sum())


def top2_margin(probabilities: np.ndarray) -> float:
    p = np.sort(np.asarray(probabilities, dtype=np.float64))[::-1]
    return float(p[0] - (p[1] if p.size > 1 else 0.0))


@dataclass
class Prediction:
    """Probabilities over ``valve_ids`` plus uncertainty, verdict, box and attention map.

    ``box`` and ``heatmap`` are in the original image's pixel coordinates; ``heatmap`` is
    float32 (rows, columns) in 0..1 ("model attention", not a finding) or None.
    """

    valve_ids: tuple[str, ...]
    probabilities: np.ndarray
    verdict: Verdict
    ood_score: float | None = None
    box: Box | None = None
    heatmap: np.ndarray | None = field(default=None, repr=False)
    model: str = ""
    pipeline: str = ""  # "locate+identify" or "whole-image"
    # The attention map at the network's resolution and the image region it covers: enough to
    # draw it scaled (cheap) without building the full-size ``heatmap``.
    attention: np.ndarray | None = field(default=None, repr=False)
    attention_region: Box | None = None
    image_shape: tuple[int, int] | None = None
    verdict_reason: str = ""  # the rule that gave the verdict (REASON_*; "" when not known)
    smoothed: bool = False  # the view read was noisier than any training image and blurred first
    # Where the region read came from: "located" (the locator's box), "reader" (drawn by the
    # reader, or given with ``classify --boxes``), "attention" (no box: the whole image was read
    # and the box is where the model looked).
    box_source: str = "located"

    def full_heatmap(self) -> np.ndarray | None:
        """``heatmap``, built from ``attention`` on first use when it was not made eagerly."""
        if self.heatmap is None and self.attention is not None and self.attention_region and self.image_shape:
            from .explain import place_map

            self.heatmap = place_map(self.attention, self.attention_region, self.image_shape)
        return self.heatmap

    @property
    def index(self) -> int:
        return int(np.argmax(self.probabilities))

    @property
    def predicted(self) -> str:
        """The most probable class (also for "no valve found", where it names nothing: see ``named``)."""
        return self.valve_ids[self.index]

    @property
    def named(self) -> str:
        """The valve the result names: ``predicted``, or "" when no valve was found."""
        return "" if self.verdict is Verdict.NO_VALVE else self.predicted

    @property
    def confidence(self) -> float:
        return float(np.max(self.probabilities))

    @property
    def entropy(self) -> float:
        return softmax_entropy(self.probabilities)

    @property
    def margin(self) -> float:
        return top2_margin(self.probabilities)

    def ranked(self) -> list[tuple[str, float]]:
        order = np.argsort(self.probabilities)[::-1]
        return [(self.valve_ids[i], float(self.probabilities[i])) for i in order]
