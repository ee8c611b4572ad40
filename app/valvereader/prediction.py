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
    """Chosen on validation data; stored in the model card (section "thresholds").

    confident: max softmax at or above which (and ood below ``ood_review``) a result is confident.
    unknown_confidence: max softmax below which the valve is called unknown.
    ood_review: open-set score (higher = less like the training valves) at or above which a result
        is never confident: the cap that keeps look-alikes of unseen valve types, which the
        classifier often calls 99 % sure, out of "confident".
    ood_unknown: open-set score at or above which the valve is called unknown, unlike any
        training valve.
    between_ratio: for a view past ``ood_review``, the ratio of its distances to the nearest and
        the second-nearest class mean (0..1; 1 = exactly between the two) at or above which the
        valve is called unknown, between two catalogue valves.
    None disables a rule (and a view without an open-set score or a distance ratio skips it).
    """

    confident: float = 0.90
    unknown_confidence: float = 0.50
    ood_review: float | None = None
    ood_unknown: float | None = None
    between_ratio: float | None = None

    def verdict(self, confidence: float, ood_score: float | None, between: float | None = None) -> Verdict:
        return self.decide(confidence, ood_score, between)[0]

    def decide(self, confidence: float, ood_score: float | None, between: float | None = None) -> tuple[Verdict, str]:
        """The verdict and which rule gave it (a ``REASON_*``), so that the screen and the
        report can say why: 98 % that "needs review" is an unusual image, not an unsure model.

        ``between``: the view's nearest / second-nearest class-mean distance ratio (``distance_ratio``),
        or None where the open-set score gives no class distances. The open-set evidence comes
        before the probability: a high probability never makes an unusual view confident."""
        if confidence < self.unknown_confidence:
            return Verdict.UNKNOWN, REASON_LOW_CONFIDENCE
        if ood_score is None:
            return (Verdict.CONFIDENT, REASON_SURE) if confidence >= self.confident else (Verdict.REVIEW, REASON_UNSURE)
        if self.ood_unknown is not None and ood_score >= self.ood_unknown:
            return Verdict.UNKNOWN, REASON_UNLIKE_TRAINING
        if self.ood_review is not None and ood_score >= self.ood_review:
            if between is not None and self.between_ratio is not None and between >= self.between_ratio:
                return Verdict.UNKNOWN, REASON_BETWEEN_VALVES
            return Verdict.REVIEW, REASON_UNUSUAL
        if confidence >= self.confident:
            return Verdict.CONFIDENT, REASON_SURE
        return Verdict.REVIEW, REASON_UNSURE


def distance_ratio(distances: np.ndarray) -> float | None:
    """Nearest over second-nearest of a view's distances to the class means (0..1): near 1 the
    view lies as close to a second catalogue valve as to the nearest one. None for fewer than
    two classes, a distance that is not a number, or a second distance of 0."""
    d = np.sort(np.asarray(distances, dtype=np.float64).ravel())
    if d.size < 2 or not np.isfinite(d).all() or d[1] <= 0:
        return None
    return float(d[0] / d[1])


REASON_SURE = "sure"  # confident enough, and the image looks like the training valves
REASON_UNSURE = "unsure"  # below the "confident" probability
REASON_UNUSUAL = "unusual"  # the open-set score is past the review threshold (the cap on "confident")
REASON_LOW_CONFIDENCE = "low_confidence"  # below the "unknown" probability
REASON_UNLIKE_TRAINING = "unlike_training"  # the open-set score is past the unknown threshold: unlike any training valve
REASON_BETWEEN_VALVES = "between_valves"  # past the review threshold and as near a second catalogue valve as the first
REASON_NOT_RADIOGRAPH = "not_radiograph"  # the file's modality is not a plain X-ray (CT, MR, ...)
REASON_NO_VALVE = "no_valve"  # nothing on the film is valve-like enough (locator and open-set score)
REASON_WEAK_LOCATION = "weak_location"  # named, but the region read is not clearly a valve: it may be elsewhere
REASON_FILM_UNSURE = "film_unsure"  # a valve named on a film, below the film's own "confident" probability
REASON_FILM_LOOK_ALIKE = "film_look_alike"  # a valve named on a film that the model has named for a look-alike there

# DICOM modalities that are not projection X-rays: the model was trained on plain radiographs
# only, so whatever it says about these is a guess (a CT slice of a head once came out "Medtronic
# Delta, 93 %"). Files of these modalities are never "confident" (see cap_for_modality).
NOT_RADIOGRAPH_MODALITIES = frozenset({
    "CT", "MR", "US", "NM", "PT", "OCT", "OPT", "OP", "OPM", "XC", "ES", "SM", "GM", "IVUS", "IVOCT",
    "BDUS", "ECG", "EPS", "HD", "RTDOSE", "RTSTRUCT", "SEG",
})


def cap_for_modality(prediction: Prediction, modality: str | None) -> Prediction:
    """A file whose DICOM modality is not a plain X-ray (``NOT_RADIOGRAPH_MODALITIES``) gets no
    valve name at all: "no valve" with REASON_NOT_RADIOGRAPH (not a radiograph of the kind the
    model reads). Anything else (a plain X-ray, no modality, PNG or JPEG) is left as it is.
    Changes ``prediction`` in place and returns it."""
    if (modality or "").strip().upper() in NOT_RADIOGRAPH_MODALITIES:
        prediction.verdict = Verdict.NO_VALVE
        prediction.verdict_reason = REASON_NOT_RADIOGRAPH
    return prediction


SMOOTHED_NOTE = "The image was grainier than any the model was trained on; the model read a smoothed copy."
INVERTED_NOTE = ("The file looks like a negative (bone and metal dark); the model read it with its grey scale "
                 "inverted.")
# Why a region of a whole film may look unusual although it holds a catalogue valve (measured:
# most regions around known valves blended into real films lie past the review threshold).
FILM_NOTE = ("On a whole film a catalogue valve can look like this too: bone or other metal behind it, a small or faint "
             "valve, or a valve cut by the film's edge.")


def _a(name: str) -> str:
    """``name`` with its indefinite article ("an Integra ...", "a Medtronic ...")."""
    return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}"


def verdict_meaning(prediction: Prediction) -> str:
    """What the verdict means for the reader, in one or two sentences, from the rule that gave
    it (the same words on screen and in the report; a prediction without its rule, such as one
    cached by an older version, gets the words that fit either rule), and whether the image
    was smoothed first (valvereader.noise) or read inverted (inference.polarity)."""
    meaning = _verdict_meaning(prediction)
    if prediction.inverted:  # how the image was read comes before the general notes
        meaning = f"{meaning} {INVERTED_NOTE}"
    if prediction.film_region and (prediction.verdict is Verdict.UNKNOWN
                                   or prediction.verdict is Verdict.REVIEW and prediction.verdict_reason == REASON_UNUSUAL):
        meaning = f"{meaning} {FILM_NOTE}"
    return f"{meaning} {SMOOTHED_NOTE}" if prediction.smoothed else meaning


def _verdict_meaning(prediction: Prediction) -> str:
    confidence = f"{prediction.confidence:.0%}".replace("%", " %")
    reason = prediction.verdict_reason
    if prediction.verdict is Verdict.NO_VALVE:
        if reason == REASON_NOT_RADIOGRAPH:
            return ("Not a radiograph of the kind the model reads (its DICOM modality is not a plain X-ray): no valve is "
                    "named. Identify the valve on a plain skull X-ray or from the implant records.")
        return ("No valve found: nothing on this film looked enough like a shunt valve. If there is one, mark it with "
                "the valve-region tool (V) so the model reads that region, or identify it from the implant records.")
    if reason == REASON_WEAK_LOCATION:
        return (f"The valve may not be in the box: the region read is not clearly a valve, so its {confidence} is not "
                "enough. Check where the valve is; if the box missed it, mark it with the valve-region tool (V).")
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
            return (f"The image looks unusual next to the model's training valves: do not trust its {confidence} on its "
                    f"own, since a valve type the model was never trained on looks like this and can still get a high "
                    f"probability. {compare}")
        if reason == REASON_UNSURE:
            return f"The model is not sure ({confidence} for its first choice). {compare}"
        if reason == REASON_FILM_LOOK_ALIKE:
            from .catalogue.valves import display_name

            named, others = display_name(prediction.predicted), " or ".join(display_name(v) for v in prediction.look_alikes)
            return (f"On whole films the model has taken {_a(others or 'another valve')} for {_a(named)} at high probability, so "
                    f"{_a(named)} read on a film is never called confident ({confidence} here). Compare the valve with the "
                    f"template of the {others or 'other likely valves'} as well.")
        if reason == REASON_FILM_UNSURE:
            precise = f"{prediction.confidence:.2%}".replace("%", " %")  # the film's bar is near 100 %
            return (f"Read on a whole film, {precise} is not enough to be sure: with skull and grain behind the valve "
                    f"the model names it wrong more often than on a crop at the same probability. {compare}")
        return f"The model is unsure or the image is unusual. {compare}"
    if reason == REASON_UNLIKE_TRAINING:
        return (f"Unlike any training valve: the image is far from every valve the model knows, so the probabilities "
                f"do not apply ({confidence} included); it may be a valve type the model was never trained on. {records}")
    if reason == REASON_BETWEEN_VALVES:
        return (f"Between two catalogue valves: unusual for every valve the model knows, and about as close to a second "
                f"one as to the nearest, as a valve type it was never trained on would be. The probabilities do not "
                f"apply ({confidence} included). {records}")
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
    # Nearest / second-nearest class-mean distance of the view read (distance_ratio; None without
    # class distances): near 1 it lies between two catalogue valves (REASON_BETWEEN_VALVES).
    distance_ratio: float | None = None
    smoothed: bool = False  # the view read was noisier than any training image and blurred first
    # The file looked like a negative (bone dark) and was read with its grey scale inverted
    # (inference.polarity); the radiograph itself is left as the file has it.
    inverted: bool = False
    # Where the region read came from: "located" (the locator's box), "reader" (drawn by the
    # reader, or given with ``classify --boxes``), "attention" (no box: the whole image was read
    # and the box is where the model looked).
    box_source: str = "located"
    # The region read is a small part of its image (a box on a whole film), not a crop or the
    # whole image: the verdict's text then says why a known valve may look unusual there.
    film_region: bool = False
    # The locator's peak score of the region read (None: no locator, or a region not located).
    locator_score: float | None = None
    # What each region the identifier read said (box, locator score, open-set score, valve,
    # probability), the chosen one first: the evidence behind "no valve" and the box chosen.
    candidates: list[dict] = field(default_factory=list, repr=False)
    # With REASON_FILM_LOOK_ALIKE: the valves the model has taken for the one named on films.
    look_alikes: tuple[str, ...] = ()

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
