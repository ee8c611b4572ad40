"""Choosing the verification rule on validation rows: what the card's numbers decide in the
program is what the fit promised, rounding included."""

from __future__ import annotations

import numpy as np

from valvereader.inference.locating import FilmVerification
from valvereader.training.film_rule import fit, peak_from_results


def _view(score: float | None, ood: float, hit: bool = False, right: bool = False) -> dict:
    return {"locator_score": score, "ood_score": ood, "hit": hit, "right": right}


def _rows(rng: np.random.Generator) -> tuple[list[dict], list[dict]]:
    films = []
    for _ in range(120):  # films with a valve: a strong located peak, usually on the valve
        score = float(rng.uniform(0.3, 0.99))
        films.append({"kind": "valve", "views": [_view(score, float(rng.uniform(20, 120)), True, rng.random() < 0.9),
                                                 _view(float(rng.uniform(0.02, 0.3)), 150.0)]})
    for _ in range(60):  # valve-free films: weak peaks; a third read whole (no spacing)
        views = [_view(float(rng.uniform(0.02, 0.6)), float(rng.uniform(80, 250)))]
        if rng.random() < 0.33:
            views.append(_view(None, float(rng.uniform(120, 300))))
        films.append({"kind": "negative", "views": views})
    crops = [{"views": [_view(float(rng.uniform(0.02, 0.9)), 40.0, True, True), _view(None, float(rng.uniform(10, 140)))]}
             for _ in range(80)]
    return films, crops


def _card_says_no_valve(rule: FilmVerification, row: dict) -> bool:
    located = [v for v in row["views"] if v["locator_score"] is not None]
    best = max(rule.valveness(v["locator_score"], v["ood_score"]) for v in located)
    whole = next((v["ood_score"] for v in row["views"] if v["locator_score"] is None), None)
    rescued = whole is not None and rule.whole_ood_above is not None and whole < rule.whole_ood_above
    return rule.no_valve_below is not None and best < rule.no_valve_below and not rescued


def test_the_cards_numbers_give_the_specificity_the_fit_reports() -> None:
    films, crops = _rows(np.random.default_rng(3))
    chosen = fit(films, crops, specificity=0.95)
    rule = FilmVerification(chosen["candidates"], chosen["min_score"], chosen["ood_weight"], chosen["no_valve_below"],
                            chosen["whole_ood_above"], chosen["confident_min_score"])
    negatives = [r for r in films if r["kind"] == "negative"]
    share = np.mean([_card_says_no_valve(rule, r) for r in negatives])
    assert share >= 0.95
    assert share == chosen["validation"]["no_valve_on_films_without_valve"]
    assert sum(_card_says_no_valve(rule, r) for r in crops) == chosen["validation"]["no_valve_on_crops"]


def test_a_recipe_asks_for_its_fallback_specificity_only_when_the_first_misses_too_many() -> None:
    films, crops = _rows(np.random.default_rng(3))
    strict = fit(films, crops, 0.97, fallback_specificity=0.9, max_misses=1.0)
    assert strict["validation"]["specificity_asked"] == 0.97
    assert strict["validation"]["no_valve_on_films_without_valve"] >= 0.97
    misses = strict["validation"]["no_valve_on_films_with_valve"]
    assert misses > 0  # the fixture's films overlap enough for 97 % to cost films with a valve
    relaxed = fit(films, crops, 0.97, fallback_specificity=0.9, max_misses=misses / 2)
    assert relaxed["validation"]["specificity_asked"] == 0.9
    assert relaxed["validation"]["no_valve_on_films_with_valve"] <= misses
    assert relaxed["no_valve_below"] <= strict["no_valve_below"]


def _film(kind: str, score: float, probability: float, right: bool = True) -> dict:
    return {"kind": kind, "views": [{"locator_score": score, "ood_score": 20.0, "hit": kind == "valve", "right": right,
                                     "probability": probability}]}


def test_with_the_identifiers_thresholds_the_confident_peak_counts_only_what_the_identifier_is_sure_of() -> None:
    from valvereader.prediction import VerdictThresholds

    sure = VerdictThresholds(confident=0.9, unknown_confidence=0.5, ood_review=80.0, ood_unknown=200.0)
    rng = np.random.default_rng(5)
    films = [_film("valve", float(s), 0.99) for s in rng.uniform(0.3, 0.99, 60)]
    films += [_film("valve", float(s), 0.7, right=False) for s in (0.80, 0.85, 0.9)]  # wrong, but the identifier is unsure
    films += [_film("negative", float(s), 0.6) for s in rng.uniform(0.0, 0.05, 40)]
    crops = [{"views": [_view(0.9, 20.0, True, True)]}]
    every_name = fit(films, crops, specificity=0.95)
    assert every_name["confident_min_score"] > 0.9  # the three wrong names sit below 0.9 and above
    joint = fit(films, crops, specificity=0.95, identifier=sure)
    assert joint["confident_min_score"] < 0.35
    assert joint["validation"]["confident_right"] == joint["validation"]["confident_films"] >= 55
    # A valve-free film that escapes "no valve" and that the identifier is sure of is a wrong confident answer.
    films.append(_film("negative", 0.7, 0.99))
    joint = fit(films, crops, specificity=0.95, identifier=sure)
    assert joint["confident_min_score"] > 0.7


def _pair(kind: str, truth: str, name: str, verdict: str, reason: str, score: float, p: float, hit: bool = True) -> tuple[dict, dict]:
    box = ("10", "10", "50", "50") if hit else ("200", "200", "240", "240")
    truth_row = {"kind": kind, "valve_id": truth, "box_x0": "20", "box_y0": "20", "box_x1": "40", "box_y1": "40"}
    result = {"status": "ok", "predicted": name, "verdict": verdict, "verdict_reason": reason, "locator_score": f"{score:.4f}",
              "confidence": f"{p:.4f}", **dict(zip(("box_x0", "box_y0", "box_x1", "box_y1"), box))}
    return truth_row, result


def test_the_films_probability_bar_and_peak_refitted_from_classify_rows_keep_every_counted_answer_they_promise() -> None:
    rng = np.random.default_rng(3)
    pairs = []
    for _ in range(600):  # right answers, some held back by the old peak
        score, p = float(rng.uniform(0.05, 0.99)), float(rng.uniform(0.935, 0.9999))
        pairs.append(_pair("valve", "a", "a", "confident" if score >= 0.75 else "review", "sure" if score >= 0.75 else "weak_location", score, p))
    for p in (0.95, 0.96, 0.97):  # names wrong at lower probabilities, boxes on the valve
        pairs.append(_pair("valve", "a", "b", "review", "weak_location", 0.5, p))
    pairs.append(_pair("valve", "a", "a", "review", "weak_location", 0.12, 0.999, hit=False))  # box off the valve: wrong
    pairs.append(_pair("valve", "a", "a", "review", "unusual", 0.9, 0.999))  # not counted: the identifier's own review
    fitted = peak_from_results(pairs, 0.995, fit_probability=True)
    bar, peak = fitted["confident_min_probability"], fitted["confident_min_score"]
    assert 0.97 < bar < 0.975 + 0.01 and fitted["counted"] == 604
    kept = [ok for ok, score, p in ((r["predicted"] == t["valve_id"] and r["box_x0"] == "10", float(r["locator_score"]), float(r["confidence"]))
                                    for t, r in pairs if r["verdict_reason"] != "unusual") if p >= bar and score >= peak]
    assert len(kept) == fitted["confident_films"] and sum(kept) == fitted["confident_right"] and np.mean(kept) >= 0.995
    assert peak <= 0.12  # one box off the valve in hundreds of answers needs no peak
    only_peak = peak_from_results(pairs, 0.995)
    assert "confident_min_probability" not in only_peak and only_peak["confident_min_score"] > 0.5  # the wrong names sit at 0.5


def test_a_valve_named_wrong_past_both_bars_becomes_a_look_alike_and_its_names_leave_confident() -> None:
    pairs = [_pair("valve", "a", "a", "confident", "sure", 0.9, 0.999) for _ in range(300)]
    pairs += [_pair("valve", "b", "b", "confident", "sure", 0.9, 0.999) for _ in range(50)]
    pairs.append(_pair("valve", "c", "b", "confident", "sure", 0.9, 0.9995))  # a "c" taken for a "b"
    pairs.append(_pair("valve", "a", "c", "confident", "sure", 0.9, 0.9995, hit=False))  # box off the valve: no look-alike
    fitted = peak_from_results(pairs, 0.99, look_alikes=True)
    assert fitted["film_look_alikes"] == {"b": ["c"]}
    assert fitted["confident_films"] == 301 and fitted["confident_right"] == 300  # "b" names gone, the box miss kept


def test_with_none_on_valve_free_the_peak_rises_above_every_valve_free_answer() -> None:
    pairs = [_pair("valve", "a", "a", "confident", "sure", score, 0.999) for score in np.linspace(0.1, 0.95, 400)]
    pairs.append(_pair("negative", "", "a", "review", "weak_location", 0.55, 0.9995))  # a connector read as a valve
    loose = peak_from_results(pairs, 0.99)
    assert loose["confident_min_score"] < 0.2  # one wrong answer in 401 passes 0.99
    strict = peak_from_results(pairs, 0.99, none_on_valve_free=True)
    assert 0.55 < strict["confident_min_score"] < 0.56 and strict["confident_right"] == strict["confident_films"]
