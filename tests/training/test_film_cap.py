"""Choosing a film region's cap on "confident" (``valvereader.training.film_cap``) from classify
rows: the decision it simulates, the highest cap that keeps its three conditions, and the card
it writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from valvereader.inference.locating import FilmVerification
from valvereader.prediction import VerdictThresholds
from valvereader.training.film_cap import choose_cap, confident_under, main, write_cap

BARS = (VerdictThresholds(confident=0.9, unknown_confidence=0.5, ood_unknown=200.0),
        FilmVerification(confident_min_probability=0.99, confident_min_score=0.2,
                         film_look_alikes=(("codman_hakim_programmable", ("medtronic_ps_medical_strata",)),)))
TRUTH = {"kind": "valve", "valve_id": "integra_dp", "box_x0": "10", "box_y0": "10", "box_x1": "50", "box_y1": "50"}


def row(ood: float, p: float = 0.999, predicted: str = "integra_dp", box: tuple = (5, 5, 55, 55), verdict: str = "review",
        peak: float = 0.5) -> dict:
    return {"status": "ok", "verdict": verdict, "ood_score": f"{ood}", "confidence": f"{p}", "locator_score": f"{peak}",
            "predicted": predicted, **dict(zip(("box_x0", "box_y0", "box_x1", "box_y1"), (str(v) for v in box)))}


def test_a_row_is_confident_under_a_cap_only_past_every_other_bar() -> None:
    assert confident_under(row(90.0), 100.0, BARS)
    assert not confident_under(row(100.0), 100.0, BARS)  # at the cap: not below it
    assert not confident_under(row(90.0, p=0.98), 100.0, BARS)  # the film's probability bar
    assert not confident_under(row(90.0, peak=0.1), 100.0, BARS)  # the locator peak
    assert not confident_under(row(90.0, predicted="codman_hakim_programmable"), 100.0, BARS)  # a look-alike
    assert not confident_under(row(90.0, verdict="no_valve"), 100.0, BARS)
    assert not confident_under(row(250.0), 300.0, BARS)  # past ood_unknown, whatever the cap


def test_the_highest_cap_that_keeps_all_three_conditions_is_chosen() -> None:
    # 10 films named right with scores 10..100; one named wrong at 95; an outside design at 85.
    films = [(TRUTH, row(10.0 * k)) for k in range(1, 11)] + [(TRUTH, row(95.0, predicted="codman_certas_plus"))]
    outside = [({"kind": "valve", "valve_id": "unknown_x"}, row(85.0, predicted="codman_certas_plus"))]
    quantiles = (0.3, 0.5, 0.7, 0.8, 0.9)
    loose = choose_cap(films, outside, BARS, precision=0.5, outside_max=1.0, quantiles=quantiles)
    assert loose["chosen"]["quantile"] == 0.9
    by_outside = choose_cap(films, outside, BARS, precision=0.5, outside_max=0.0, quantiles=quantiles)
    assert by_outside["chosen"]["cap"] <= 85.0 and by_outside["chosen"]["outside_confident"] == 0
    by_precision = choose_cap(films, outside, BARS, precision=1.0, outside_max=1.0, quantiles=quantiles)
    assert by_precision["chosen"]["cap"] <= 95.0 and by_precision["chosen"]["confident_wrong"] == 0
    free = [({"kind": "negative", "valve_id": ""}, row(5.0))]
    assert choose_cap(films + free, outside, BARS, precision=0.5, outside_max=1.0, quantiles=quantiles)["chosen"] is None
    with pytest.raises(ValueError, match="nothing to choose"):
        choose_cap(free, outside, BARS)


def test_the_cap_is_written_into_the_card_with_how_it_was_chosen(tmp_path: Path) -> None:
    weights = tmp_path / "w"
    weights.mkdir()
    (weights / "identifier.json").write_text(json.dumps({"name": "identifier", "version": "1.0", "training": {}}))
    with pytest.raises(ValueError, match="no film head"):
        write_cap(weights, 100.0, "test", None)
    (weights / "identifier.json").write_text(json.dumps({"name": "identifier", "version": "1.0", "training": {},
                                                          "film_head": {"formula": "test"}}))
    write_cap(weights, 101.23456, "how", "9.9", "identifier-9.9")
    card = json.loads((weights / "identifier.json").read_text())
    assert "--recipe identifier-9.9" in card["training"]["reproduce"]
    assert card["film_head"]["ood_review"] == 101.235 and card["film_head"]["ood_review_chosen"] == "how"
    assert card["version"] == "9.9" and "film_head.ood_review" in card["training"]["reshipped"]


def test_the_command_needs_one_results_file_per_truth(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        main(["--csv", "a.csv", "b.csv", "--results", "a.csv", "--outside-csv", "c.csv", "--outside-results", "c.csv"])


def test_each_kind_of_outside_design_is_kept_to_the_share_on_its_own() -> None:
    films = [(TRUTH, row(10.0 * k)) for k in range(1, 11)]
    real = [({"kind": "valve", "valve_id": "unknown_x"}, row(95.0))] + [({"kind": "valve", "valve_id": "unknown_x"}, row(300.0))] * 9
    drawn = [({"kind": "phantom", "valve_id": "unknown_y"}, row(45.0))] + [({"kind": "phantom", "valve_id": "unknown_y"}, row(300.0))] * 9
    quantiles = (0.3, 0.5, 0.7, 0.9)
    alone = choose_cap(films, {"outside": real}, BARS, precision=0.5, outside_max=0.05, quantiles=quantiles)
    both = choose_cap(films, {"outside": real, "phantom": drawn}, BARS, precision=0.5, outside_max=0.05, quantiles=quantiles)
    assert alone["chosen"]["cap"] > 45.0 and alone["chosen"]["cap"] <= 95.0
    assert both["chosen"]["cap"] <= 45.0 and both["chosen"]["phantom_outside_confident"] == 0
    assert both["outside_films"] == {"outside": 10, "phantom": 10}
