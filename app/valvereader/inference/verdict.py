"""The verdict of one view: its open-set score and class-distance ratio, the card's verdict
rule (``VerdictThresholds.decide``) on them and the probability, and the Prediction with its
attention map and box."""

from __future__ import annotations

import dataclasses

import numpy as np

from ..explain import attention_box, class_activation_map, place_map
from ..model.card import ModelCard
from ..prediction import Prediction, VerdictThresholds, distance_ratio
from ..preprocess import PreparedImage
from .cards import softmax
from .film_head import FilmHead
from .locating import Located
from .open_set import OpenSetScorer
from .views import Evidence


class ViewVerdict:
    """The verdict of :class:`~valvereader.inference.predictor.Predictor` (mixed into it)."""

    identifier_card: ModelCard
    valve_ids: tuple[str, ...]
    thresholds: VerdictThresholds
    temperature: float
    pipeline: str
    _scorer: OpenSetScorer
    film_head: FilmHead | None
    _classifier_weights: np.ndarray

    def _open_set(self, outputs: dict[str, np.ndarray]) -> tuple[np.ndarray, float | None]:
        """(logits as float64, open-set score or None) of one view, computed once per view."""
        cached = outputs.get("_scored")
        if cached is None:
            logits = outputs["logits"].astype(np.float64)
            pooled = outputs["features"].mean(axis=(2, 3))
            distances = outputs["_distances"] = self._scorer.class_distances(pooled)  # type: ignore[assignment]
            score = distances.min(axis=1) if distances is not None else self._scorer(logits, pooled)
            cached = outputs["_scored"] = (logits, None if score is None else float(score[0]))  # type: ignore[assignment]
        return cached  # type: ignore[return-value]

    def _thresholds_of(self, outputs: dict[str, np.ndarray]) -> VerdictThresholds:
        """The verdict's thresholds for one view: a film region's (the film head applied) has the
        film head's cap on "confident" where the card gives one."""
        head = self.film_head
        if "head_weight" in outputs and head is not None and head.ood_review is not None:
            return dataclasses.replace(self.thresholds, ood_review=head.ood_review)
        return self.thresholds

    def _between(self, outputs: dict[str, np.ndarray]) -> float | None:
        """The view's nearest / second-nearest class-distance ratio (prediction.distance_ratio):
        the verdict's "between two catalogue valves" evidence; None without class distances."""
        distances = outputs.get("_distances")
        if distances is None:
            distances = self._scorer.class_distances(outputs["features"].mean(axis=(2, 3)))
        return None if distances is None else distance_ratio(distances[0])

    def _finish(
        self,
        shape: tuple[int, int],
        prepared: PreparedImage,
        outputs: dict[str, np.ndarray],
        located: Located,
        with_heatmap: bool,
        heatmap_max_side: int | None = None,
    ) -> Prediction:
        """The Prediction of the view read: probabilities, verdict, attention map and box."""
        logits, ood_score = self._open_set(outputs)
        probabilities = softmax(logits, self.temperature)[0]
        index = int(np.argmax(probabilities))
        # The map of the logits shown: with the mirror reading, of both readings.
        mirrored = outputs.get("mirror_features")
        weights = self._classifier_weights[index]
        if "head_weight" in outputs:  # a film region's logits: the classifier's and the film head's
            weights = (weights + outputs["head_weight"][index]) * float(outputs.get("head_scale", 1.0))
        cam = class_activation_map(outputs["features"][0], weights,
                                   None if mirrored is None else mirrored[0])
        box = located.box if located.box is not None else attention_box(cam, prepared.crop)
        between = self._between(outputs)
        verdict, reason = self._thresholds_of(outputs).decide(float(probabilities[index]), ood_score, between)
        heatmap = None
        if with_heatmap:
            step = max(1, -(-max(shape) // heatmap_max_side)) if heatmap_max_side else 1
            heatmap = place_map(cam, prepared.crop, shape, step)
        return Prediction(
            valve_ids=self.valve_ids,
            probabilities=probabilities.astype(np.float32),
            verdict=verdict,
            verdict_reason=reason,
            ood_score=ood_score,
            distance_ratio=between,
            box=box,
            heatmap=heatmap,
            model=self.identifier_card.title,
            pipeline=self.pipeline,
            attention=cam,
            attention_region=prepared.crop,
            image_shape=shape,
            smoothed=prepared.smoothed,
            box_source="located" if located.box is not None else "attention",
        )

    def _evidence_row(self, entry: Evidence, whole: bool = False) -> dict:
        """One view as the Prediction's ``candidates`` list it: region, scores, valve, and
        whether it stands for the whole image (``whole``: the whole image's own view, or a region
        covering most of an image that is not a film)."""
        probabilities = softmax(self._open_set(entry.outputs)[0], self.temperature)[0]
        index = int(np.argmax(probabilities))
        region, located = entry.region, entry.located
        return {"box": None if located.box is None else located.box.as_tuple(), "read": None if region is None else region.as_tuple(),
                "locator_score": None if region is None else round(float(located.score), 4),
                "ood_score": None if entry.ood is None else round(float(entry.ood), 3), "valve": self.valve_ids[index],
                "probability": round(float(probabilities[index]), 4), "whole": bool(whole or region is None),
                **({} if entry.probe is None else {"probe": round(entry.probe, 4)})}
