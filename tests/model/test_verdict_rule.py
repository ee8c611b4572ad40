"""The verdict rule: the open-set evidence caps "confident" and decides "unknown valve", and the
reason says which evidence did it; the thresholds' choice (training.openset) on known numbers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from valvereader.catalogue import VALVE_IDS
from valvereader.prediction import (
    REASON_BETWEEN_VALVES,
    REASON_LOW_CONFIDENCE,
    REASON_SURE,
    REASON_UNLIKE_TRAINING,
    REASON_UNSURE,
    REASON_UNUSUAL,
    Prediction,
    Verdict,
    VerdictThresholds,
    distance_ratio,
    verdict_meaning,
)
from valvereader.training.openset import confident_shares, members_joined, tightest_cap

ROOT = Path(__file__).resolve().parents[2]
RULES = VerdictThresholds(confident=0.93, unknown_confidence=0.5, ood_review=80.0, ood_unknown=225.0, between_ratio=0.87)


def test_a_99_percent_look_alike_past_the_cap_is_never_confident() -> None:
    assert RULES.decide(0.999, 79.9) == (Verdict.CONFIDENT, REASON_SURE)
    assert RULES.decide(0.999, 80.0) == (Verdict.REVIEW, REASON_UNUSUAL)
    assert RULES.decide(0.999, 80.0, 0.5) == (Verdict.REVIEW, REASON_UNUSUAL)
    assert RULES.decide(0.999, 150.0, 0.86) == (Verdict.REVIEW, REASON_UNUSUAL)


def test_unknown_says_which_evidence_made_it_unknown() -> None:
    # as near a second catalogue valve as the nearest one, past the cap: between two valves
    assert RULES.decide(0.99, 120.0, 0.87) == (Verdict.UNKNOWN, REASON_BETWEEN_VALVES)
    assert RULES.decide(0.99, 120.0, 0.97) == (Verdict.UNKNOWN, REASON_BETWEEN_VALVES)
    # far from every valve: unlike any training valve, whatever the ratio (far away all ratios near 1)
    assert RULES.decide(0.99, 225.0, 0.999) == (Verdict.UNKNOWN, REASON_UNLIKE_TRAINING)
    assert RULES.decide(0.99, 400.0, None) == (Verdict.UNKNOWN, REASON_UNLIKE_TRAINING)
    # a close view with a high ratio is not "between": the cap comes first
    assert RULES.decide(0.99, 60.0, 0.95) == (Verdict.CONFIDENT, REASON_SURE)
    # the probability rules stay
    assert RULES.decide(0.45, 60.0, 0.2) == (Verdict.UNKNOWN, REASON_LOW_CONFIDENCE)
    assert RULES.decide(0.80, 60.0, 0.2) == (Verdict.REVIEW, REASON_UNSURE)


def test_without_open_set_evidence_the_probability_decides() -> None:
    assert RULES.decide(0.99, None) == (Verdict.CONFIDENT, REASON_SURE)
    assert RULES.decide(0.80, None) == (Verdict.REVIEW, REASON_UNSURE)
    assert RULES.decide(0.30, None) == (Verdict.UNKNOWN, REASON_LOW_CONFIDENCE)
    older = VerdictThresholds(confident=0.93, ood_review=80.0, ood_unknown=225.0)  # a card without between_ratio
    assert older.decide(0.99, 120.0, 0.99) == (Verdict.REVIEW, REASON_UNUSUAL)
    for confidence, score, ratio in ((0.99, 60.0, 0.2), (0.99, 120.0, 0.9), (0.99, 300.0, None), (0.4, None, None)):
        assert RULES.verdict(confidence, score, ratio) is RULES.decide(confidence, score, ratio)[0]


def test_distance_ratio() -> None:
    assert distance_ratio(np.array([50.0, 100.0, 70.0])) == pytest.approx(50 / 70)
    assert distance_ratio(np.array([[90.0, 91.0]])) == pytest.approx(90 / 91)
    assert distance_ratio(np.array([3.0])) is None
    assert distance_ratio(np.array([0.0, 0.0])) is None
    assert distance_ratio(np.array([np.nan, 2.0, 3.0])) is None


def _meaning(confidence: float, score: float | None, ratio: float | None) -> str:
    verdict, reason = RULES.decide(confidence, score, ratio)
    probabilities = np.array([confidence] + [(1 - confidence) / 7] * 7, dtype=np.float32)
    return verdict_meaning(Prediction(VALVE_IDS, probabilities, verdict, score, verdict_reason=reason, distance_ratio=ratio))


def test_the_words_name_the_evidence() -> None:
    between = _meaning(0.99, 120.0, 0.95)
    unlike = _meaning(0.99, 300.0, 0.99)
    capped = _meaning(0.99, 100.0, 0.5)
    assert between.startswith("Between two catalogue valves") and "probabilities do not apply (99 % included)" in between
    assert unlike.startswith("Unlike any training valve") and "probabilities do not apply" in unlike
    assert "looks unusual" in capped and "do not trust its 99 %" in capped
    assert len({between, unlike, capped}) == 3


def test_the_card_reads_the_between_threshold(tmp_path: Path) -> None:
    from valvereader.model.card import ModelCard

    card = json.loads((ROOT / "weights/identifier.json").read_text(encoding="utf-8"))
    card["thresholds"]["between_ratio"] = 0.9
    (tmp_path / "identifier.json").write_text(json.dumps(card), encoding="utf-8")
    rules = ModelCard.load(tmp_path / "identifier.json").thresholds
    assert rules.between_ratio == 0.9
    assert rules.decide(0.99, rules.ood_review, 0.95) == (Verdict.UNKNOWN, REASON_BETWEEN_VALVES)


def test_the_shipped_card_caps_confident_below_its_unknown_threshold() -> None:
    from valvereader.model.card import ModelCard

    rules = ModelCard.load(ROOT / "weights/identifier.json").thresholds
    assert rules.ood_review is not None and rules.ood_unknown is not None and rules.between_ratio is not None
    assert rules.ood_review < rules.ood_unknown and 0.5 < rules.between_ratio < 1.0
    assert rules.decide(0.999, rules.ood_review + 1.0, 0.2)[0] is Verdict.REVIEW


# --- choosing the thresholds -----------------------------------------------------------------
def test_tightest_cap_keeps_the_share_asked_for() -> None:
    ood = np.array([10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0, 100.0])
    sure = np.ones(10, dtype=bool)
    sure[1] = False  # 20 fails the probability rule: it can never be confident
    cap = tightest_cap(ood, sure, 0.7)
    assert cap == pytest.approx(85.0)  # 10, 30 ... 80 are 7 of 10 confident; 90 is not
    assert np.sum(sure & (ood < cap)) == 7
    assert tightest_cap(ood, sure, 0.5) == pytest.approx(65.0)
    with pytest.raises(ValueError, match="no open-set cap keeps 95%"):
        tightest_cap(ood, sure, 0.95)


def test_confident_shares_follow_the_rule() -> None:
    known = np.arange(1.0, 101.0)
    unknown = np.array([50.0, 95.0, 99.5, 200.0])
    shares = confident_shares(known, np.ones(100, bool), unknown, np.array([True, True, False, True]), [0.5, 1.0])
    cap, known_share, unknown_share = shares[0]
    assert cap == pytest.approx(50.5)
    assert known_share == pytest.approx(0.5) and unknown_share == pytest.approx(0.25)
    assert shares[1][0] == float("inf") and shares[1][2] == pytest.approx(0.75)  # no cap: the unsure one only


def test_members_joined_puts_each_member_on_its_own_scale() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(10, 2, 201)
    b = 25.0 * a + 50.0  # the other member: the same images on its own scale
    joined = members_joined([a, b], [a, b])
    assert np.median(joined) == pytest.approx(0.0, abs=1e-9)  # each on its known crops' scale: 0 at the median,
    assert np.quantile(joined, 0.9) == pytest.approx(1.0, abs=1e-9)  # 1 at the 90th percentile
    far = members_joined([a, b], [np.array([np.median(a) + 2 * (np.quantile(a, 0.9) - np.median(a))]), np.array([np.median(b)])])
    assert far[0] == pytest.approx(1.0)  # 2 on one member, 0 on the other


def test_the_card_section_gives_the_outside_check_the_stand_ins_and_outlier_exposure_in_that_order() -> None:
    from valvereader.training.openset import verdict_section

    text = verdict_section({"confident": 0.9, "unknown_confidence": 0.5, "ood_review": 80.0, "ood_unknown": 200.0, "measured": {"note": "N."},
                            "outside_check_of_previous": "OUTSIDE CHECK.", "stand_ins": "STAND-INS.",
                            "outlier_exposure": "OUTLIER EXPOSURE."})
    assert text.index("OUTSIDE CHECK.") < text.index("STAND-INS.") < text.index("OUTLIER EXPOSURE.")
    assert "STAND-INS." not in verdict_section({"confident": 0.9, "unknown_confidence": 0.5})


def test_a_region_of_a_whole_film_says_why_a_known_valve_may_look_unusual_there() -> None:
    from valvereader.prediction import FILM_NOTE, REASON_BETWEEN_VALVES, REASON_SURE, REASON_UNSURE

    probabilities = np.array([0.99] + [0.01 / 7] * 7, dtype=np.float32)

    def meaning(verdict: Verdict, reason: str, film_region: bool) -> str:
        return verdict_meaning(Prediction(VALVE_IDS, probabilities, verdict, 120.0, verdict_reason=reason, film_region=film_region))

    for verdict, reason in ((Verdict.UNKNOWN, REASON_BETWEEN_VALVES), (Verdict.REVIEW, REASON_UNUSUAL)):
        on_film = meaning(verdict, reason, True)
        assert on_film.endswith(FILM_NOTE) and on_film.startswith(meaning(verdict, reason, False))
        assert FILM_NOTE not in meaning(verdict, reason, False)  # a crop: an unseen type is the likely reason
    # Where the region does not look unusual, there is nothing to explain.
    assert FILM_NOTE not in meaning(Verdict.CONFIDENT, REASON_SURE, True)
    assert FILM_NOTE not in meaning(Verdict.REVIEW, REASON_UNSURE, True)
