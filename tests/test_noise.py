"""The noise guard: estimate, smoothing, and the preprocessing and results that use them."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from valvereader.geometry import Box
from valvereader.noise import DEFAULT_LIMIT, network_scale, noise_sigma, smooth
from valvereader.preprocess import Preprocess


def _smooth_image(shape=(300, 260)) -> np.ndarray:
    """A clean image: gradients and a bright disc, no grain (like the training crops)."""
    y, x = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)
    image = 0.2 + 0.4 * x / shape[1] + 0.1 * np.sin(y / 40.0)
    image[(y - 150) ** 2 + (x - 130) ** 2 < 30**2] = 0.9
    return image.astype(np.float32)


@pytest.mark.parametrize("sigma", [0.01, 0.03, 0.08])
def test_the_estimate_finds_the_noise_added_to_a_clean_image(sigma: float) -> None:
    rng = np.random.default_rng(3)
    noisy = _smooth_image() + rng.normal(0.0, sigma, (300, 260)).astype(np.float32)
    assert noise_sigma(noisy) == pytest.approx(sigma, rel=0.15)


def test_a_clean_image_has_almost_no_noise_and_a_tiny_one_none() -> None:
    assert noise_sigma(_smooth_image()) < 0.005
    assert noise_sigma(np.ones((2, 50), dtype=np.float32)) == 0.0


def test_smoothing_keeps_flat_grey_and_takes_out_most_of_the_grain() -> None:
    flat = np.full((64, 80), 0.4, dtype=np.float32)
    assert np.allclose(smooth(flat, 1.5), 0.4, atol=1e-6)
    rng = np.random.default_rng(0)
    grain = rng.normal(0.0, 0.05, (200, 200)).astype(np.float32)
    blurred = smooth(grain, 1.5)
    assert blurred.shape == grain.shape and blurred.dtype == np.float32
    assert blurred.std() < grain.std() / 3


def test_network_scale_counts_how_many_source_pixels_a_network_pixel_averages() -> None:
    assert network_scale(Box(0, 0, 768, 768), 384) == pytest.approx(2.0)
    assert network_scale(Box(0, 0, 200, 100), 384) == 1.0  # enlarged: nothing averaged


def test_a_clean_input_is_prepared_exactly_as_without_the_guard() -> None:
    image = _smooth_image()
    guarded, plain = Preprocess(64, noise_limit=DEFAULT_LIMIT)(image), Preprocess(64)(image)
    assert not guarded.smoothed
    assert np.array_equal(guarded.pixels, plain.pixels)


def test_a_noisy_input_is_smoothed_before_it_is_resized() -> None:
    rng = np.random.default_rng(1)
    noisy = np.clip(_smooth_image() + rng.normal(0.0, 0.06, (300, 260)), 0, 1).astype(np.float32)
    guarded, plain = Preprocess(256, noise_limit=DEFAULT_LIMIT)(noisy), Preprocess(256)(noisy)
    assert guarded.smoothed and not plain.smoothed
    assert guarded.crop == plain.crop
    assert noise_sigma(guarded.pixels) < noise_sigma(plain.pixels) / 2
    # The same noise on a region shrunk four times is averaged by the resize: left alone.
    big = np.clip(np.kron(_smooth_image(), np.ones((4, 4), np.float32))
                  + rng.normal(0.0, 0.06, (1200, 1040)), 0, 1).astype(np.float32)
    assert not Preprocess(256, noise_limit=DEFAULT_LIMIT)(big).smoothed


@pytest.mark.parametrize("limit", [0, -0.1, float("nan"), True, "0.03"])
def test_a_bad_noise_limit_is_refused(limit: object) -> None:
    with pytest.raises(ValueError, match="noise_limit"):
        Preprocess(64, noise_limit=limit)  # type: ignore[arg-type]


sys.path.insert(0, str(Path(__file__).parent / "model"))
from tiny_model import write_tiny_weights


def _set_noise_limit(weights: Path, value: object) -> None:
    import json

    card_path = weights / "identifier.json"
    card = json.loads(card_path.read_text())
    card["preprocessing"]["noise_limit"] = value
    card_path.write_text(json.dumps(card))


def _radiograph(pixels: np.ndarray):
    from valvereader.radiograph import Radiograph, RadiographMeta

    return Radiograph(pixels, RadiographMeta(source="synthetic"))


def test_a_noisy_radiograph_says_it_was_smoothed_on_screen_in_the_csv_and_in_the_cache(tmp_path: Path) -> None:
    from valvereader.inference.classify import prediction_row
    from valvereader.inference.predictor import load_predictor
    from valvereader.prediction import SMOOTHED_NOTE, verdict_meaning
    from valvereader.review import ResultCache

    write_tiny_weights(tmp_path / "w", size=128)
    predictor = load_predictor(tmp_path / "w", device="cpu")
    assert predictor._identify.noise_limit == DEFAULT_LIMIT and predictor._locate is None
    rng = np.random.default_rng(2)
    noisy = np.clip(_smooth_image((160, 140)) + rng.normal(0.0, 0.08, (160, 140)), 0, 1).astype(np.float32)
    prediction = predictor.predict(_radiograph(noisy))
    assert prediction.smoothed
    assert verdict_meaning(prediction).endswith(SMOOTHED_NOTE)
    assert prediction_row(Path("a.png"), prediction)["smoothed"] == "yes"
    clean = predictor.predict(_radiograph(_smooth_image((160, 140))))
    assert not clean.smoothed and SMOOTHED_NOTE not in verdict_meaning(clean)
    assert prediction_row(Path("b.png"), clean)["smoothed"] == ""

    image = tmp_path / "a.png"
    image.write_bytes(b"x")
    cache = ResultCache(tmp_path)
    cache.put(image, prediction)
    assert ResultCache(tmp_path).get(image).smoothed


def test_a_card_may_turn_the_guard_off_and_a_bad_limit_is_its_error(tmp_path: Path) -> None:
    from valvereader.errors import ModelCardError
    from valvereader.inference.predictor import load_predictor

    write_tiny_weights(tmp_path / "w", size=64)
    _set_noise_limit(tmp_path / "w", None)
    assert load_predictor(tmp_path / "w", device="cpu")._identify.noise_limit is None
    _set_noise_limit(tmp_path / "w", 0.05)
    assert load_predictor(tmp_path / "w", device="cpu")._identify.noise_limit == 0.05
    _set_noise_limit(tmp_path / "w", -1)
    with pytest.raises(ModelCardError, match="noise_limit"):
        load_predictor(tmp_path / "w", device="cpu")
