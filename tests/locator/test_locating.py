"""Candidates from the locator's map, and the verification that can answer "no valve"."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from valvereader.catalogue import VALVE_IDS
from valvereader.catalogue.valves import display_name
from valvereader.geometry import Box
from valvereader.inference.locating import FilmVerification, decode_locator, locator_peaks
from valvereader.prediction import (
    REASON_FILM_LOOK_ALIKE,
    REASON_FILM_UNSURE,
    REASON_NO_VALVE,
    REASON_WEAK_LOCATION,
    Prediction,
    Verdict,
    verdict_meaning,
)
from valvereader.preprocess import PreparedImage


def _outputs(peaks: list[tuple[int, int, float]], grid: int = 10) -> dict[str, np.ndarray]:
    heat = np.full((1, 1, grid, grid), -6.0, np.float32)
    for y, x, logit in peaks:
        heat[0, 0, y, x] = logit
    size = np.full((1, 2, grid, grid), 0.2, np.float32)
    return {"heatmap": heat, "size": size}


def _prepared(side: int = 100) -> PreparedImage:
    return PreparedImage(np.zeros((10, 10), np.float32), Box(0, 0, side, side), (side, side))


def test_peaks_are_separate_maxima_best_first_and_the_first_is_the_decoded_box():
    outputs = _outputs([(2, 2, 3.0), (2, 3, 2.0), (7, 7, 1.0), (5, 1, 2.5)])
    peaks = locator_peaks(outputs, _prepared(), 3)
    assert [round(p.score, 3) for p in peaks] == [round(1 / (1 + np.exp(-v)), 3) for v in (3.0, 2.5, 1.0)]  # (2,3) is not a maximum
    assert peaks[0].box == decode_locator(outputs, _prepared(), 10, 0.0).box
    centre = ((peaks[2].box.x0 + peaks[2].box.x1) / 2, (peaks[2].box.y0 + peaks[2].box.y1) / 2)
    assert centre == (75.0, 75.0)


def test_below_the_minimum_score_nothing_is_decoded():
    assert decode_locator(_outputs([(4, 4, -3.0)]), _prepared(), 10, 0.3).box is None


def _prediction(verdict: Verdict = Verdict.CONFIDENT, score: float | None = 0.9) -> Prediction:
    p = np.full(len(VALVE_IDS), 0.01, np.float32)
    p[0] = 0.93
    return Prediction(VALVE_IDS, p, verdict, box=Box(1, 1, 20, 20), verdict_reason="sure", locator_score=score)


def test_no_valve_when_even_the_best_candidate_is_not_valve_like():
    rule = FilmVerification(candidates=3, min_score=0.05, ood_weight=0.01, no_valve_below=-1.0)
    assert rule.valveness(0.5, 100.0) == -1.0
    prediction = _prediction()
    rule.apply(prediction, best=-1.5, whole_ood=None, read_whole=False)
    assert prediction.verdict is Verdict.NO_VALVE and prediction.verdict_reason == REASON_NO_VALVE
    assert prediction.box is None and prediction.named == ""
    kept = _prediction()
    rule.apply(kept, best=-0.5, whole_ood=None, read_whole=False)
    assert kept.verdict is Verdict.CONFIDENT and kept.named == VALVE_IDS[0]


def test_a_crop_that_reads_as_a_valve_whole_is_never_no_valve():
    rule = FilmVerification(candidates=3, no_valve_below=0.0, whole_ood_above=50.0)
    crop = _prediction()
    rule.apply(crop, best=-4.0, whole_ood=20.0, read_whole=True)
    assert crop.verdict is Verdict.CONFIDENT
    strange = _prediction()
    rule.apply(strange, best=-4.0, whole_ood=80.0, read_whole=True)
    assert strange.verdict is Verdict.NO_VALVE


def test_a_weakly_located_region_is_at_best_needs_review_and_says_why():
    rule = FilmVerification(candidates=3, confident_min_score=0.5)
    weak = _prediction(score=0.3)
    rule.apply(weak, best=5.0, whole_ood=None, read_whole=False)
    assert weak.verdict is Verdict.REVIEW and weak.verdict_reason == REASON_WEAK_LOCATION
    strong = _prediction(score=0.7)
    rule.apply(strong, best=5.0, whole_ood=None, read_whole=False)
    assert strong.verdict is Verdict.CONFIDENT


def test_a_crop_that_reads_as_a_valve_whole_keeps_confident_wherever_the_box_lands():
    rule = FilmVerification(candidates=3, no_valve_below=0.0, whole_ood_above=50.0, confident_min_score=0.5)
    crop = _prediction(score=0.1)
    rule.apply(crop, best=2.0, whole_ood=20.0, read_whole=False)
    assert crop.verdict is Verdict.CONFIDENT
    film = _prediction(score=0.1)  # a film read without a spacing: its whole image is no valve
    rule.apply(film, best=2.0, whole_ood=120.0, read_whole=False)
    assert film.verdict is Verdict.REVIEW and film.verdict_reason == REASON_WEAK_LOCATION


def test_a_valve_named_on_a_film_below_the_films_probability_bar_is_needs_review_and_says_why():
    rule = FilmVerification(candidates=3, confident_min_score=0.5, confident_min_probability=0.95)
    unsure = _prediction(score=0.7)  # 0.93 for its first choice
    rule.apply(unsure, best=5.0, whole_ood=None, read_whole=False)
    assert unsure.verdict is Verdict.REVIEW and unsure.verdict_reason == REASON_FILM_UNSURE
    assert "93.00 %" in verdict_meaning(unsure) and "film" in verdict_meaning(unsure)
    weak = _prediction(score=0.3)  # the weak location is said first
    rule.apply(weak, best=5.0, whole_ood=None, read_whole=False)
    assert weak.verdict_reason == REASON_WEAK_LOCATION
    sure = _prediction(score=0.7)
    sure.probabilities[0] = 0.96
    rule.apply(sure, best=5.0, whole_ood=None, read_whole=False)
    assert sure.verdict is Verdict.CONFIDENT
    crop = _prediction(score=0.7)  # read whole (an image that is not a film): the film's bar does not apply
    rule.apply(crop, best=5.0, whole_ood=None, read_whole=True)
    assert crop.verdict is Verdict.CONFIDENT


def test_a_valve_the_model_takes_look_alikes_for_on_films_is_never_confident_there_and_the_look_alike_is_named():
    card_rule = {"candidates": 3, "confident_min_score": 0.5, "confident_min_probability": 0.9,
                 "film_look_alikes": {VALVE_IDS[0]: [VALVE_IDS[5]]}}

    card = SimpleNamespace(data={"verification": card_rule}, path=None)
    rule = FilmVerification.from_card(card)  # type: ignore[arg-type]
    assert dict(rule.film_look_alikes) == {VALVE_IDS[0]: (VALVE_IDS[5],)}
    film = _prediction(score=0.7)  # VALVE_IDS[0] at 0.93, past both bars
    rule.apply(film, best=5.0, whole_ood=None, read_whole=False)
    assert film.verdict is Verdict.REVIEW and film.verdict_reason == REASON_FILM_LOOK_ALIKE
    assert film.look_alikes == (VALVE_IDS[5],) and film.named == VALVE_IDS[0]
    text = verdict_meaning(film)
    assert display_name(VALVE_IDS[5]) in text and display_name(VALVE_IDS[0]) in text and "93 %" in text
    other = _prediction(score=0.7)
    other.probabilities[:] = np.roll(other.probabilities, 1)  # another valve named: confident as before
    rule.apply(other, best=5.0, whole_ood=None, read_whole=False)
    assert other.verdict is Verdict.CONFIDENT and other.look_alikes == ()
    crop = _prediction(score=0.7)  # a crop read whole: not a film
    rule.apply(crop, best=5.0, whole_ood=None, read_whole=True)
    assert crop.verdict is Verdict.CONFIDENT


def test_a_card_without_verification_keeps_the_old_single_box_behaviour():
    rule = FilmVerification.from_card(None)
    assert rule.candidates == 1 and rule.no_valve_below is None and rule.confident_min_score is None
    assert rule.confident_min_probability is None and rule.film_look_alikes == ()


def test_a_region_of_a_film_gets_the_films_bars_even_where_its_whole_image_reads_as_a_valve():
    """A film without a pixel spacing can read as a valve whole: its located region, a small part
    of it, still gets the film's bars; a crop's region (covering most of it) keeps "confident"."""
    rule = FilmVerification(candidates=3, no_valve_below=0.0, whole_ood_above=150.0, confident_min_score=0.5,
                            confident_min_probability=0.9, film_look_alikes=((VALVE_IDS[0], (VALVE_IDS[5],)),))
    film = _prediction(score=0.7)  # VALVE_IDS[0] at 0.93: past the probability bar, a look-alike
    film.film_region = True
    rule.apply(film, best=2.0, whole_ood=120.0, read_whole=False)
    assert film.verdict is Verdict.REVIEW and film.verdict_reason == REASON_FILM_LOOK_ALIKE
    weak = _prediction(score=0.1)
    weak.film_region = True
    rule.apply(weak, best=2.0, whole_ood=120.0, read_whole=False)
    assert weak.verdict is Verdict.REVIEW and weak.verdict_reason == REASON_WEAK_LOCATION
    crop = _prediction(score=0.1)  # a crop's located region: film_region False
    rule.apply(crop, best=2.0, whole_ood=120.0, read_whole=False)
    assert crop.verdict is Verdict.CONFIDENT


def test_a_region_the_reader_chose_gets_the_films_bars_but_the_peak():
    rule = FilmVerification(candidates=3, confident_min_score=0.5, confident_min_probability=0.95)
    chosen = _prediction(score=None)  # no locator peak for a reader's region
    chosen.probabilities[0] = 0.96
    rule.film_bars(chosen, located=False)
    assert chosen.verdict is Verdict.CONFIDENT
    unsure = _prediction(score=None)  # 0.93
    rule.film_bars(unsure, located=False)
    assert unsure.verdict is Verdict.REVIEW and unsure.verdict_reason == REASON_FILM_UNSURE


def test_the_look_alike_words_take_the_right_article():
    rule = FilmVerification(candidates=3, film_look_alikes=(("integra_dp", ("medtronic_ps_medical_delta",)),))
    film = _prediction(score=0.7)
    film.probabilities[:] = 0.01
    film.probabilities[VALVE_IDS.index("integra_dp")] = 0.93
    film.film_region = True
    rule.apply(film, best=5.0, whole_ood=None, read_whole=False)
    text = verdict_meaning(film)
    assert film.verdict_reason == REASON_FILM_LOOK_ALIKE
    assert f"an {display_name('integra_dp')}" in text and f"a {display_name('medtronic_ps_medical_delta')}" in text
    assert f"a {display_name('integra_dp')}" not in text
