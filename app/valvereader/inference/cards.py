"""What the model cards set for inference: the cards' file names, the identifier's calibration
temperature (the softmax its probabilities are read through) and each network's preprocessing."""

from __future__ import annotations

import numpy as np

from ..errors import ModelCardError
from ..model.card import ModelCard
from ..preprocess import REDUCING_GAP, Preprocess

IDENTIFIER_CARD = "identifier.json"
LOCATOR_CARD = "locator.json"


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """softmax(logits / temperature); temperature 1 gives the plain softmax."""
    if temperature != 1.0:
        logits = logits / temperature
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def calibration_temperature(card: ModelCard) -> float:
    """The identifier's temperature-scaling T (card "calibration"); 1.0 where the card has none."""
    spec = card.data.get("calibration") or {}
    try:
        temperature = float(spec.get("temperature", 1.0))
    except (TypeError, ValueError):
        temperature = float("nan")
    if not np.isfinite(temperature) or temperature <= 0:
        raise ModelCardError(f"{card.path.name}: calibration temperature must be a positive number, not {spec.get('temperature')!r}")
    return temperature


def preprocess_from(card: ModelCard, crop_border_default: bool = True, noise_limit: float | None = None) -> Preprocess:
    """The card's preprocessing. ``noise_limit``: the noise guard's default (valvereader.noise),
    used unless the card's ``preprocessing.noise_limit`` sets its own (null: no guard)."""
    config = card.preprocessing
    threshold = float(config.get("threshold", 0.02))
    crop_border = bool(config.get("crop_border", crop_border_default))
    limit = config.get("noise_limit", noise_limit)
    try:  # (Preprocess checks the gap and the limit; a bad one is the card's error)
        return Preprocess(card.input_size, threshold, crop_border, config.get("reducing_gap", REDUCING_GAP), limit)
    except ValueError as exc:
        raise ModelCardError(f"{card.path.name}: preprocessing.{exc}") from exc
