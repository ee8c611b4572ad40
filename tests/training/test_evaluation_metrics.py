"""Metrics, calibration, thresholds and open-set scores on constructed data."""

from __future__ import annotations

import numpy as np
import pytest

from valvereader.training.evaluate import (
    choose_thresholds,
    classification_metrics,
    expected_calibration_error,
    summarise,
)
from valvereader.training.openset import (
    OpenSetStats,
    fit_mahalanobis,
    knn_distances,
    leave_one_class_out,
    load_openset,
    mahalanobis_scorer,
    save_openset,
    standardised,
)

IDS = ("a", "b", "c")


def _one_hot(predicted, k=3, p=0.9):
    out = np.full((len(predicted), k), (1 - p) / (k - 1))
    out[np.arange(len(predicted)), predicted] = p
    return out


def test_per_class_precision_recall_and_error_rate_follow_the_confusion_matrix() -> None:
    true = np.array([0, 0, 0, 0, 1, 1, 2, 2])
    predicted = np.array([0, 0, 0, 1, 1, 1, 2, 0])
    m = classification_metrics(true, _one_hot(predicted), IDS)
    assert m.accuracy == pytest.approx(6 / 8)
    a, b, c = m.per_class
    assert (a.precision, a.recall, a.error_rate) == pytest.approx((3 / 4, 3 / 4, 1 / 4))
    assert (b.precision, b.recall) == pytest.approx((2 / 3, 1.0))
    assert (c.precision, c.recall) == pytest.approx((1.0, 0.5))
    assert m.macro_f1 == pytest.approx(np.mean([0.75, 0.8, 2 / 3]))
    assert m.normalised_confusion()[2].tolist() == [0.5, 0.0, 0.5]
    assert a.mean_max_softmax == pytest.approx(0.9) and a.mean_top2_gap == pytest.approx(0.85)


def test_ece_is_zero_when_confidence_matches_accuracy_and_large_when_overconfident() -> None:
    confidence = np.full(100, 0.8)
    correct = np.arange(100) < 80
    assert expected_calibration_error(confidence, correct)[0] == pytest.approx(0.0, abs=1e-9)
    assert expected_calibration_error(np.ones(10), np.arange(10) < 5)[0] == pytest.approx(0.5)


def test_summary_gives_mean_and_sd_over_splits() -> None:
    runs = [classification_metrics(np.array([0, 1, 2]), _one_hot(np.array(p)), IDS) for p in ([0, 1, 2], [0, 1, 1])]
    s = summarise(runs)
    assert s["accuracy"]["mean"] == pytest.approx((1 + 2 / 3) / 2)
    assert s["accuracy"]["sd"] == pytest.approx(np.std([1, 2 / 3], ddof=1))


def test_confident_threshold_keeps_validation_precision_at_target() -> None:
    rng = np.random.default_rng(0)
    n = 400
    true = rng.integers(0, 3, n)
    confidence = rng.uniform(0.4, 1.0, n)
    right = rng.random(n) < confidence  # higher confidence, more often right
    predicted = np.where(right, true, (true + 1) % 3)
    probabilities = np.zeros((n, 3))
    probabilities[np.arange(n), predicted] = confidence
    probabilities[np.arange(n), (predicted + 1) % 3] = 1 - confidence
    ood = rng.random(n)
    thresholds, effect = choose_thresholds(probabilities, true, ood, target_precision=0.95)
    above = confidence >= thresholds.confident
    assert np.mean(right[above]) >= 0.95
    assert thresholds.unknown_confidence < thresholds.confident
    assert thresholds.ood_review == pytest.approx(np.quantile(ood, 0.95))
    assert thresholds.ood_review <= thresholds.ood_unknown
    assert 0 < effect["confident_share"] < 1


def _clusters(rng, centres, n=60, dim=6):
    x = np.concatenate([rng.normal(c, 0.3, (n, dim)) for c in centres])
    return x, np.repeat(np.arange(len(centres)), n)


def test_mahalanobis_score_flags_a_class_it_was_not_fitted_on() -> None:
    rng = np.random.default_rng(1)
    centres = [np.eye(6)[i] * 3 + 1 for i in range(4)]
    train_x, train_y = _clusters(rng, centres)
    test_x, test_y = _clusters(rng, centres, n=30)
    result = leave_one_class_out(train_x, train_y, test_x, test_y, 4, {"m": mahalanobis_scorer("none")})
    assert set(result["m"]) == {0, 1, 2, 3}
    assert min(result["m"].values()) > 0.95


def test_open_set_file_round_trips_and_matches_the_documented_formula(tmp_path) -> None:
    rng = np.random.default_rng(2)
    x, y = _clusters(rng, [np.zeros(6), np.ones(6) * 2])
    stats = fit_mahalanobis(x, y, [0, 1], normalise="l2")
    again = load_openset(save_openset(tmp_path / "o.safetensors", stats))
    assert isinstance(again, OpenSetStats) and again.normalise == "l2"
    probe = rng.normal(0, 1, (5, 6))
    z = probe / np.linalg.norm(probe, axis=1, keepdims=True)
    by_hand = np.min([[np.sqrt((zi - m) @ again.precision @ (zi - m)) for m in again.class_means] for zi in z], axis=1)
    np.testing.assert_allclose(again.score(probe), by_hand, rtol=1e-4)


def test_knn_distance_is_the_kth_nearest_bank_feature_by_cosine_leaving_itself_out() -> None:
    rng = np.random.default_rng(4)
    pooled = rng.normal(size=(12, 5))
    bank = np.array([0, 2, 3, 7, 9])
    distances = knn_distances(pooled, bank, (1, 2))
    unit = pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
    for i in range(len(pooled)):
        others = [j for j in bank if j != i]  # a bank image is not its own neighbour
        sims = sorted((float(unit[i] @ unit[j]) for j in others), reverse=True)
        assert distances[1][i] == pytest.approx(1 - sims[0])
        assert distances[2][i] == pytest.approx(1 - sims[1])
    score = rng.normal(3.0, 2.0, size=12)
    z = standardised(score, bank)
    assert z[bank].mean() == pytest.approx(0.0, abs=1e-9) and z[bank].std() == pytest.approx(1.0, rel=1e-6)
