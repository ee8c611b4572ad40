"""The regions the identifier reads and the rule that chooses between them.

With a locator, a film (its pixel spacing spans at least the card's ``whole_radiograph_fov_mm``)
is read through the located square alone; any other image (a crop around the valve, a file
without a spacing) is read both ways, and the view that looks more like the training crops
wins (identifier card "view_choice", chosen on validation radiographs and crops;
docs/evaluation/pipelines.md, "View choice").
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..errors import ModelCardError
from ..geometry import Box
from ..model.card import ModelCard
from ..model.runtime import Backend
from ..preprocess import PreparedImage, Preprocess
from ..radiograph import PixelSpacing, Radiograph
from .cards import softmax
from .locating import Located
from .open_set import OpenSetScorer

# An image whose pixel spacing spans at least this many millimetres is a whole radiograph, not a
# crop around a valve (crops: a few cm; skull films: 17 cm and more). Cards may override it.
WHOLE_RADIOGRAPH_FOV_MM = 100.0


def field_of_view_mm(shape: tuple[int, int], spacing: PixelSpacing | None) -> float:
    """The longer side of the image in millimetres (0 without a pixel spacing)."""
    if spacing is None:
        return 0.0
    return max(shape[0] * float(spacing.row_mm), shape[1] * float(spacing.column_mm))


class Prepare:
    """Preprocessing of one radiograph, each step done once and remembered.

    The locator and the identifier's whole-image view read the same border-cropped image: its
    border is found once and its reduction (block means, the expensive part of the resize)
    shared where the two input sizes need the same factor; one resample per view, and the same
    PreparedImage when the settings agree.
    """

    def __init__(self, radiograph: Radiograph, invert: bool = False):
        self.radiograph = radiograph
        # Read with the grey scale inverted (a negative: inference.polarity); the radiograph
        # itself is left as it is.
        self.invert = invert
        self._pixels: np.ndarray | None = None
        self.crops: dict[tuple, Box] = {}
        self.reduced: dict[Box, dict] = {}  # crop → its reductions by factor, while needed
        self.done: dict[tuple, PreparedImage] = {}

    @property
    def pixels(self) -> np.ndarray:
        """The pixels the networks read: the radiograph's, or their inverse."""
        if not self.invert:
            return self.radiograph.pixels
        if self._pixels is None:
            self._pixels = (1.0 - self.radiograph.pixels).astype(np.float32)
        return self._pixels

    def __call__(self, transform: Preprocess, region: Box | None = None) -> PreparedImage:
        pixels = self.pixels
        crop_key = (region, transform.crop_border, transform.threshold if transform.crop_border else None)
        crop = self.crops.get(crop_key)
        if crop is None:
            crop = self.crops[crop_key] = transform.crop_box(pixels, region)
        key = (transform.size, crop)
        if key not in self.done:
            self.done[key] = transform.resize(pixels, crop, self.reduced.setdefault(crop, {}))
        return self.done[key]

    def release(self) -> None:
        """Drop the intermediate reductions (the prepared inputs stay; so does the inverted copy
        of a negative, which predict reads again for the regions it was not made ahead for)."""
        self.reduced.clear()


#: A region covering at least this share of its image stands for the image itself (a crop
#: around a valve), not for a box on a film.
COVERS_MOST = 0.8


def covers_most(region: Box, shape: tuple[int, int]) -> bool:
    """The region covers most of the image (at least ``COVERS_MOST`` of its area)."""
    whole = Box.full(shape)
    return region.width * region.height >= COVERS_MOST * whole.width * whole.height


class Evidence(NamedTuple):
    """One view as read: its region (None: the whole image), the locator's box for it, the
    identifier's input and outputs, the view's open-set score and, for a located region, the
    locator card's valve probe (None without one)."""

    region: Box | None
    located: Located
    prepared: PreparedImage
    outputs: dict[str, np.ndarray]
    ood: float | None
    probe: float | None = None


class ViewRule:
    """The view rule of :class:`~valvereader.inference.predictor.Predictor` (mixed into it)."""

    identifier_card: ModelCard
    temperature: float
    crop_scale: float
    _locator: Backend | None
    _scorer: OpenSetScorer

    def _read_view_choice(self, identifier: ModelCard) -> None:
        """The card's "view_choice": the field of view of a film, the located view's margin and
        the score the views are compared by: the card's open-set score, or one of their own
        when the card names one (view_choice.score, statistics in the file of role
        "view_score"). That one is built on first use: a film (one view) never compares views,
        and the statistics cost tens of MB and ~50 ms to prepare. Its checksum is checked now,
        like every file's."""
        choice = identifier.data.get("view_choice") or {}
        self._view_spec: dict | None = choice.get("score") or None
        self._own_view_scorer: OpenSetScorer | None = None
        self._view_lock = threading.Lock()
        self._view_file: Path | None = (
            identifier.verify(str(self._view_spec.get("role", "view_score"))) if self._view_spec else None)
        view_method = str(self._view_spec.get("method", "none")).lower() if self._view_spec else self._scorer.method
        fov = choice.get("whole_radiograph_fov_mm", WHOLE_RADIOGRAPH_FOV_MM)
        self.whole_radiograph_fov_mm = float(fov) if fov else None
        # The margin is in the units of the card's open-set score; without one (strangeness is
        # then 1 - confidence) it would mean nothing, so it is not applied.
        self.located_margin = float(choice.get("located_margin", 0.0)) if view_method in ("mahalanobis", "energy") else 0.0
        # The whole image is a candidate answer only while it looks like a valve crop: its verdict
        # open-set score below this (a whole skull film never does; without a pixel spacing it
        # was read both ways and sometimes won against its located region).
        limit = choice.get("whole_max_ood")
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, float)) or not limit > 0):
            raise ModelCardError(f"{identifier.path.name}: view_choice.whole_max_ood must be a positive number or null, not {limit!r}")
        self.whole_max_ood = None if limit is None else float(limit)

    @property
    def _view_scorer(self) -> OpenSetScorer:
        """The score the views are compared by: the card's own, or view_choice.score's."""
        if not self._view_spec:
            return self._scorer
        if self._own_view_scorer is None:
            with self._view_lock:
                if self._own_view_scorer is None:
                    role = str(self._view_spec.get("role", "view_score"))
                    self._own_view_scorer = OpenSetScorer(self.identifier_card, self._view_spec, role, self._view_file)
        return self._own_view_scorer

    def _is_film(self, shape: tuple[int, int], spacing: PixelSpacing | None) -> bool:
        """Its pixel spacing says this is a whole radiograph, not a crop around a valve. (Without a
        spacing there is no telling: by its size in pixels a magnified crop looks like a film;
        docs/evaluation/pipelines.md, "Films without a pixel spacing".)"""
        return self.whole_radiograph_fov_mm is not None and field_of_view_mm(shape, spacing) >= self.whole_radiograph_fov_mm

    def _whole_radiograph(self, radiograph: Radiograph) -> bool:
        """A film that predict reads through the located square alone (when the valve is found)."""
        return self._locator is not None and self._is_film(radiograph.shape, radiograph.meta.pixel_spacing)

    def views(
        self, shape: tuple[int, int], located: Located, spacing: PixelSpacing | None = None
    ) -> list[Box | None]:
        """The regions the identifier reads: the located square (if any) and the whole image
        (None). The whole image is left out when it is known to be a whole radiograph (its
        pixel spacing gives a field of view of at least ``whole_radiograph_fov_mm``: a crop
        around a valve spans a few centimetres, a skull film 17 cm or more) or when the located
        square already covers most of it."""
        if located.box is None:
            return [None]
        region = located.box.square(self.crop_scale, minimum=32).clip(shape)
        if self._is_film(shape, spacing) or covers_most(region, shape):
            return [region]
        return [region, None]

    def _score_views(self, views: list[dict[str, np.ndarray]]) -> None:
        """The score the views are compared by (``_view_score``), of all views at once: the
        projection matrix is read once. Where that is the verdict's score too, each view keeps
        it for the verdict; otherwise only the chosen view's verdict score is computed, in _finish."""
        logits = np.concatenate([view["logits"] for view in views]).astype(np.float64)
        scores = self._view_scorer(logits, np.concatenate([view["features"].mean(axis=(2, 3)) for view in views]))
        for i, view in enumerate(views):
            score = None if scores is None else float(scores[i])
            view["_view_score"] = score  # type: ignore[assignment]
            if not self._view_spec:
                view["_scored"] = (logits[i : i + 1], score)  # type: ignore[assignment]

    def _strangeness(self, outputs: dict[str, np.ndarray]) -> float:
        """How unlike the training crops a view looks, by the view choice's score (set by
        _score_views), else 1 - confidence."""
        score = outputs["_view_score"]
        if score is not None:
            return float(score)
        return 1.0 - float(softmax(outputs["logits"].astype(np.float64), self.temperature)[0].max())

    def _choose_view(self, chosen: Evidence, whole_view: Evidence | None) -> tuple[Evidence, str]:
        """The view read, and its pipeline, between the most valve-like located region and the
        whole image (where it was read): the whole image may look more like the training crops
        (a crop around a valve); the located view wins ties and small differences (the card's
        ``located_margin``). The whole image is no candidate when its open-set score is at or
        above the card's ``whole_max_ood``: it does not look like a valve crop (a whole film)."""
        if whole_view is not None and (self.whole_max_ood is None or whole_view.ood is None or whole_view.ood < self.whole_max_ood):
            located_strangeness = self._strangeness(chosen.outputs)
            if self._strangeness(whole_view.outputs) < located_strangeness - self.located_margin:
                return whole_view, "whole-image"
        return chosen, "locate+identify"
