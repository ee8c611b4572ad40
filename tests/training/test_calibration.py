"""Temperature scaling: fitted on validation logits, copied into the card, applied by the predictor."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from valvereader.training.heldout import fit_temperature, negative_log_likelihood


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _synthetic(temperature: float, n: int = 4000, k: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from softmax(true_logits); the model reports true_logits * temperature, so
    dividing by ``temperature`` recovers the calibrated probabilities."""
    rng = np.random.default_rng(seed)
    true_logits = rng.normal(0.0, 2.0, (n, k))
    true_logits[np.arange(n), rng.integers(0, k, n)] += 3.0
    p = _softmax(true_logits)
    labels = np.array([rng.choice(k, p=row) for row in p])
    return true_logits * temperature, labels


@pytest.mark.parametrize("generating", [0.4, 1.0, 2.5])
def test_fitted_temperature_recovers_the_generating_one_and_lowers_nll(generating: float) -> None:
    logits, labels = _synthetic(generating)
    fitted = fit_temperature(logits, labels)
    assert fitted == pytest.approx(generating, rel=0.1)
    assert negative_log_likelihood(logits, labels, fitted) <= negative_log_likelihood(logits, labels) + 1e-12
    if generating != 1.0:
        assert negative_log_likelihood(logits, labels, fitted) < negative_log_likelihood(logits, labels) - 1e-3
    # argmax, hence accuracy, does not depend on T
    assert np.array_equal((logits / fitted).argmax(1), logits.argmax(1))


def test_fitted_temperature_stays_in_bounds() -> None:
    logits = np.array([[5.0, 0.0], [0.0, 5.0]])
    labels = np.array([0, 1])  # always right: NLL keeps falling as T shrinks
    assert 0.05 <= fit_temperature(logits, labels) <= 0.051


def test_nll_matches_the_textbook_formula() -> None:
    logits, labels = _synthetic(1.3, n=50)
    expected = -np.mean(np.log(_softmax(logits / 1.3)[np.arange(50), labels]))
    assert negative_log_likelihood(logits, labels, 1.3) == pytest.approx(expected, rel=1e-10)


# --- the predictor ----------------------------------------------------------------------------

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "model"))


def _predictor(folder: Path, calibration: dict | None):
    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    from tiny_model import write_tiny_weights

    from valvereader.inference.predictor import load_predictor

    card_path = write_tiny_weights(folder)
    if calibration is not None:
        card = json.loads(card_path.read_text())
        card["calibration"] = calibration
        card_path.write_text(json.dumps(card))
    return load_predictor(folder, device="cpu")


@pytest.fixture(scope="module")
def radiograph():
    pytest.importorskip("torch")
    from tiny_model import synthetic_radiograph

    return synthetic_radiograph((120, 90))


def _logits(predictor, radiograph) -> np.ndarray:
    _, outputs = predictor.identify(radiograph)
    return outputs["logits"][0].astype(np.float64)


def test_card_temperature_divides_the_logits(tmp_path: Path, radiograph) -> None:
    predictor = _predictor(tmp_path, {"temperature": 2.0, "method": "temperature scaling", "fitted_on": "validation images"})
    assert predictor.temperature == 2.0
    prediction = predictor.predict(radiograph)
    expected = _softmax(_logits(predictor, radiograph) / 2.0)
    np.testing.assert_allclose(prediction.probabilities, expected, rtol=1e-5, atol=1e-7)
    assert prediction.verdict == predictor.thresholds.verdict(float(expected.max()), prediction.ood_score)


def test_card_without_calibration_gives_the_plain_softmax(tmp_path: Path, radiograph) -> None:
    predictor = _predictor(tmp_path, None)
    assert predictor.temperature == 1.0
    prediction = predictor.predict(radiograph)
    np.testing.assert_allclose(prediction.probabilities, _softmax(_logits(predictor, radiograph)), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("bad", [0, -1.0, "warm", None])
def test_bad_temperature_is_a_card_error(tmp_path: Path, bad) -> None:
    from valvereader.errors import ModelCardError

    with pytest.raises(ModelCardError, match="temperature"):
        _predictor(tmp_path, {"temperature": bad})
