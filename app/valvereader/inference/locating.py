"""From the locator's outputs to candidate boxes, and how candidates are verified before a
valve is named (the locator card's ``verification``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ModelCardError
from ..geometry import Box
from ..model.card import ModelCard
from ..prediction import (
    REASON_FILM_LOOK_ALIKE,
    REASON_FILM_UNSURE,
    REASON_NO_VALVE,
    REASON_WEAK_LOCATION,
    Prediction,
    Verdict,
)
from ..preprocess import PreparedImage


@dataclass
class Located:
    box: Box | None
    score: float


@dataclass(frozen=True)
class FilmVerification:
    """How the locator's candidates are verified before a valve is named (locator card
    ``verification``, chosen on validation films with and without a valve).

    Each candidate's square is read by the identifier; its valve-likeness is
    ``logit(locator peak) - ood_weight * open-set score + probe_weight * valve probe`` (the
    probe: ``inference.valve_probe``, where the card has one), and the most valve-like is read.
    "No valve" when even that one is below ``no_valve_below`` and the whole image, where it was
    read, is no more like a valve than ``whole_ood_above`` allows (a crop around a valve
    reads as a valve whole). A named valve is at best "needs review" (the valve may not be in
    the box) when its region's locator peak is below ``confident_min_score``, unless the whole
    image reads as a valve (a crop around one); "needs review" too when its probability is below
    ``confident_min_probability``, the bar for a valve named on a film: a region cut from a film
    holds skull and grain a crop has not, and names read there are less often right at the
    identifier's own "confident" probability; and "needs review" when the valve named is one of
    ``film_look_alikes`` (valve: the valves the model has named so on films), whatever its
    probability, with those look-alikes named for the reader. These film bars apply to every
    region that is a small part of its image, also where the whole image reads as a valve (a film
    without a pixel spacing), and, but for the peak, to a region the reader chose on a film.
    """

    candidates: int = 1
    min_score: float = 0.3
    ood_weight: float = 0.0
    no_valve_below: float | None = None
    whole_ood_above: float | None = None
    confident_min_score: float | None = None
    probe_weight: float = 0.0
    confident_min_probability: float | None = None
    film_look_alikes: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @classmethod
    def from_card(cls, card: ModelCard | None) -> FilmVerification:
        if card is None:
            return cls()
        spec = card.data.get("verification") or {}
        floor = float((card.data.get("thresholds") or {}).get("min_score", 0.3))

        def number(key: str) -> float | None:
            value = spec.get(key)
            return None if value is None else float(value)

        try:
            return cls(int(spec.get("candidates", 1)), float(spec.get("min_score", floor)), float(spec.get("ood_weight", 0.0)),
                       number("no_valve_below"), number("whole_ood_above"), number("confident_min_score"),
                       float(spec.get("probe_weight", 0.0)), number("confident_min_probability"),
                       tuple((str(valve), tuple(str(v) for v in others))
                             for valve, others in dict(spec.get("film_look_alikes") or {}).items()))
        except (TypeError, ValueError) as exc:
            raise ModelCardError(f"{card.path.name}: verification: {exc}") from exc

    def valveness(self, score: float, ood: float | None, probe: float | None = None) -> float:
        p = min(max(float(score), 1e-6), 1 - 1e-6)
        return float(np.log(p / (1 - p)) - self.ood_weight * (ood or 0.0) + self.probe_weight * (probe or 0.0))

    def apply(self, prediction: Prediction, best: float, whole_ood: float | None, read_whole: bool) -> None:
        """Turn ``prediction`` into "no valve" or cap it, in place (see the class)."""
        # A whole image that reads as a valve (only images that are not films are read whole):
        # a crop around a valve, which holds the valve wherever the box lands.
        whole_is_valve = whole_ood is not None and self.whole_ood_above is not None and whole_ood < self.whole_ood_above
        if self.no_valve_below is not None and best < self.no_valve_below and not whole_is_valve:
            prediction.verdict, prediction.verdict_reason = Verdict.NO_VALVE, REASON_NO_VALVE
            prediction.box = None
            return
        # A crop whose whole image reads as a valve keeps "confident" wherever its box lands, but
        # a region that is a small part of its image is a film's (a film without a pixel spacing
        # can read as a valve whole too): the film's bars apply to it.
        if not (read_whole or whole_is_valve and not prediction.film_region):
            self.film_bars(prediction)

    def film_bars(self, prediction: Prediction, located: bool = True) -> None:
        """A "confident" valve named in a region of a film: "needs review" below the locator peak
        (``located``: not for a region the reader chose), below the film's probability bar, or
        when it is one of the film look-alikes (see the class)."""
        if prediction.verdict is not Verdict.CONFIDENT:
            return
        reason = self.held_back(prediction.confidence, prediction.predicted, prediction.locator_score, located)
        if reason is not None:
            prediction.verdict, prediction.verdict_reason = Verdict.REVIEW, reason
            if reason == REASON_FILM_LOOK_ALIKE:
                prediction.look_alikes = dict(self.film_look_alikes)[prediction.predicted]

    def held_back(self, confidence: float, predicted: str | None, locator_score: float | None, located: bool = True) -> str | None:
        """Which film bar (a ``REASON_*``) holds a "confident" valve named on a film back to "needs
        review", or None where it passes them all (see :meth:`film_bars`)."""
        if located and self.confident_min_score is not None and (locator_score or 0.0) < self.confident_min_score:
            return REASON_WEAK_LOCATION
        if self.confident_min_probability is not None and confidence < self.confident_min_probability:
            return REASON_FILM_UNSURE
        if predicted in dict(self.film_look_alikes):
            return REASON_FILM_LOOK_ALIKE
        return None


def locator_peaks(outputs: dict[str, np.ndarray], prepared: PreparedImage, count: int) -> list[Located]:
    """The ``count`` highest local maxima of the centre map (3 x 3 neighbourhoods), best first,
    each with its box (source pixels), as :func:`decode_locator` decodes the highest."""
    heat = 1.0 / (1.0 + np.exp(-outputs["heatmap"][0, 0].astype(np.float64)))
    padded = np.pad(heat, 1, constant_values=-1.0)
    h, w = heat.shape
    neighbours = np.max([padded[dy : dy + h, dx : dx + w] for dy in range(3) for dx in range(3)], axis=0)
    flat = np.flatnonzero((heat >= neighbours).ravel())
    order = flat[np.argsort(heat.ravel()[flat])[::-1]][: max(1, count)]
    return [_box_at(outputs, prepared, *divmod(int(i), w)) for i in order]


def _box_at(outputs: dict[str, np.ndarray], prepared: PreparedImage, py: int, px: int) -> Located:
    heat = outputs["heatmap"][0, 0]
    h, w = heat.shape
    score = float(1.0 / (1.0 + np.exp(-float(heat[py, px]))))
    bw, bh = (float(v) for v in outputs["size"][0, :, py, px])
    cx, cy = (px + 0.5) / w, (py + 0.5) / h  # fractions of the input
    crop = prepared.crop
    x0 = crop.x0 + (cx - bw / 2) * crop.width
    x1 = crop.x0 + (cx + bw / 2) * crop.width
    y0 = crop.y0 + (cy - bh / 2) * crop.height
    y1 = crop.y0 + (cy + bh / 2) * crop.height
    box = Box(int(np.floor(x0)), int(np.floor(y0)), int(np.ceil(x1)), int(np.ceil(y1))).clip(prepared.source_shape)
    return Located(box if box.width > 0 and box.height > 0 else None, score)


def decode_locator(
    outputs: dict[str, np.ndarray], prepared: PreparedImage, size: int, min_score: float
) -> Located:
    """Peak of the centre heatmap and the box size there, mapped back to the source image.

    Locator outputs: "heatmap" (1, 1, h, w) logits of the valve centre, "size" (1, 2, h, w)
    box width and height as fractions of the input side.
    """
    heat = outputs["heatmap"][0, 0]
    py, px = divmod(int(np.argmax(heat)), heat.shape[1])
    located = _box_at(outputs, prepared, py, px)
    return located if located.score >= min_score else Located(None, located.score)
