"""The locator card's valve probe: its arithmetic, its card checks, and the predictor using it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from locator_weights import with_readout, write_card

from valvereader.errors import ModelCardError
from valvereader.inference.locating import FilmVerification
from valvereader.inference.valve_probe import ValveProbe
from valvereader.model.card import sha256_of

WEIGHTS = Path(__file__).resolve().parents[2] / "weights"


def test_the_probe_is_a_linear_read_out_of_the_views_pooled_features() -> None:
    rng = np.random.default_rng(0)
    weight = rng.normal(size=6).astype(np.float32)
    features = rng.normal(size=(1, 6, 3, 2)).astype(np.float32)
    probe = ValveProbe(weight, 0.5)
    assert probe({"features": features}) == pytest.approx(float(features.mean(axis=(2, 3))[0] @ weight + 0.5), rel=1e-6)
    # the mirror image's features are not read
    assert probe({"features": features, "mirror_features": features * 0}) == probe({"features": features})
    with pytest.raises(ModelCardError, match="6 features expected"):
        probe({"features": features[:, :4]})
    with pytest.raises(ValueError, match="weight vector"):
        ValveProbe(np.zeros((2, 3)), 0.0)


def test_the_probe_adds_its_weighted_log_odds_to_a_candidates_valve_likeness() -> None:
    plain = FilmVerification(ood_weight=0.01)
    probed = FilmVerification(ood_weight=0.01, probe_weight=0.2)
    assert probed.valveness(0.5, 100.0, 3.0) == pytest.approx(plain.valveness(0.5, 100.0) + 0.6)
    assert probed.valveness(0.5, 100.0, None) == plain.valveness(0.5, 100.0)


def _weights(tmp_path: Path, probe: dict | None, verification: dict) -> Path:
    folder, card = with_readout(tmp_path, "valve_probe", probe)
    card["verification"].update(verification)
    return write_card(folder, card)


def _shipped_or_skip() -> None:
    if not (WEIGHTS / "identifier.json").is_file() or not (WEIGHTS / "locator.json").is_file():
        pytest.skip("no shipped weights")


def test_a_probe_for_another_identifier_or_a_weight_without_a_probe_is_refused(tmp_path: Path) -> None:
    from valvereader.inference.predictor import load_predictor

    _shipped_or_skip()
    channels = 2560
    probe = {"weight": np.zeros(channels, np.float32), "bias": np.zeros(1, np.float32)}
    with pytest.raises(ModelCardError, match="another identifier"):
        load_predictor(_weights(tmp_path / "a", probe, {"probe_weight": 0.2, "probe_fitted_for": "0" * 64}), device="cpu")
    with pytest.raises(ModelCardError, match="without a valve_probe file"):
        load_predictor(_weights(tmp_path / "b", None, {"probe_weight": 0.2}), device="cpu")
    with pytest.raises(ModelCardError, match="'weight'"):
        load_predictor(_weights(tmp_path / "c", {"bias": np.zeros(1, np.float32)}, {"probe_weight": 0.2}), device="cpu")


@pytest.mark.parametrize("bias, no_valve", [(-1000.0, True), (1000.0, False)])
def test_the_predictor_weighs_the_probe_into_no_valve(tmp_path: Path, bias: float, no_valve: bool) -> None:
    """A probe that calls every region "not a valve" (or "a valve") decides a film's "no
    valve", and every located candidate row carries the probe's value."""
    from valvereader.inference.predictor import load_predictor
    from valvereader.io import load
    from valvereader.paths import samples_dir
    from valvereader.prediction import Verdict

    _shipped_or_skip()
    films = sorted(samples_dir().glob("*.dcm"))
    if not films:
        pytest.skip("no sample radiographs")
    probe = {"weight": np.zeros(2560, np.float32), "bias": np.asarray([bias], np.float32)}
    predictor = load_predictor(_weights(tmp_path, probe, {"probe_weight": 1.0}), device="cpu")
    prediction = predictor.predict(load(films[0]), with_heatmap=False)
    assert (prediction.verdict is Verdict.NO_VALVE) is no_valve
    located = [c for c in prediction.candidates if c["locator_score"] is not None and not c["whole"]]
    assert located and all(c["probe"] == pytest.approx(bias) for c in located)


def test_the_fitted_probe_folds_its_standardisation_into_one_linear_read_out(tmp_path: Path) -> None:
    from safetensors.numpy import load_file

    from valvereader.training.valve_probe import fit_probe, save_probe

    rng = np.random.default_rng(1)
    labels = np.repeat([1, 0, 0], 40)
    features = rng.normal(size=(120, 8)).astype(np.float32) * np.arange(1, 9) + 5.0
    features[labels == 1, 2] += 15.0  # channel 2 tells valves from the rest
    groups = np.repeat(np.arange(12), 10)
    weight, bias, report = fit_probe(features, labels, groups, strengths=(0.01, 1.0), folds=4)
    assert report["C"] in (0.01, 1.0) and report["cross_validated_auroc"][str(report["C"])] > 0.95
    logits = features @ weight + bias
    assert logits[labels == 1].mean() > logits[labels == 0].mean() and int(np.argmax(np.abs(weight))) == 2
    save_probe(tmp_path / "p.safetensors", weight, bias)
    stored = load_file(str(tmp_path / "p.safetensors"))
    probe = ValveProbe(stored["weight"], float(stored["bias"][0]))
    assert probe({"features": features[:1, :, None, None]}) == pytest.approx(float(logits[0]), rel=1e-5)
    with pytest.raises(ValueError, match="candidates that hold a valve"):
        fit_probe(features, np.zeros(120, int), groups)


def test_attaching_a_probe_names_it_in_the_locator_card_for_the_identifier_beside_it(tmp_path: Path) -> None:
    from valvereader.training.valve_probe import attach_probe, save_probe

    folder = tmp_path / "weights"
    folder.mkdir()
    (folder / "locator.json").write_text(json.dumps({"files": {}, "verification": {"candidates": 3}}), encoding="utf-8")
    (folder / "identifier.json").write_text(json.dumps({"files": {"onnx": {"sha256": "ab" * 32}}}), encoding="utf-8")
    save_probe(tmp_path / "probe.safetensors", np.ones(4, np.float32), -1.0)
    card = json.loads(attach_probe(folder, tmp_path / "probe.safetensors", 0.2).read_text(encoding="utf-8"))
    assert card["verification"] == {"candidates": 3, "probe_weight": 0.2, "probe_fitted_for": "ab" * 32}
    assert card["files"]["valve_probe"] == {"path": "locator.valve_probe.safetensors",
                                            "sha256": sha256_of(folder / "locator.valve_probe.safetensors")}
    assert sha256_of(folder / "locator.valve_probe.safetensors") == sha256_of(tmp_path / "probe.safetensors")
