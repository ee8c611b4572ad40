"""Every template's settings, angles and tags equal ../shared/valves/valve-facts*.yaml.

The facts files are parsed here on their own (not through the template code) and the
numbers are derived from their text, so a template edited by hand cannot drift silently.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from valvereader.catalogue.templates import Template, load_template

FACTS_ID = {  # our valve id -> id in the facts files
    "codman_hakim_programmable": "codman_hakim_programmable",
    "codman_certas_plus": "codman_certas_plus",
    "sophysa_sophy_minism8": "sophysa_sophy_mini_sm8",
    "miethke_progav_2": "miethke_progav_2_0",
    "miethke_progav_1": "miethke_progav_gen1",
    "medtronic_ps_medical_strata": "medtronic_strata",
    "integra_dp": "integra_dp",
    "medtronic_ps_medical_delta": "medtronic_delta",
}


@pytest.fixture(scope="module")
def facts(valve_facts: Path) -> dict[str, dict[str, Any]]:
    """facts id -> {'main': entry or {}, 'add': entry or {}, 'raw': the lines of both files}."""
    merged: dict[str, dict[str, Any]] = {}
    for name, key in (("valve-facts.yaml", "main"), ("valve-facts-additions.yaml", "add")):
        text = (valve_facts / name).read_text(encoding="utf-8")
        for entry in yaml.safe_load(text)["valves"]:
            merged.setdefault(entry["id"], {"main": {}, "add": {}, "raw": ""})[key] = entry
        for entry_facts in merged.values():
            entry_facts["raw"] += text
    return merged


def _angles(template: Template) -> dict[str, float | None]:
    return {s.label: s.angle_deg for s in template.settings.values}


def _close(a: float, b: float, tol: float = 0.01) -> bool:
    d = abs(a - b) % 360.0
    return min(d, 360.0 - d) <= tol


def _clock(text: str) -> float:
    hours, minutes = text.split(":")
    return (int(hours) % 12) * 30.0 + int(minutes) * 0.5


def _angle_tags(template: Template) -> set[str]:
    return {s.angle_tag for s in template.settings.values}


def test_every_template_names_its_facts_entry(facts: dict[str, dict[str, Any]]) -> None:
    for valve_id, fid in FACTS_ID.items():
        assert load_template(valve_id).facts_id == fid
        assert fid in facts


def test_codman_hakim_settings_and_refined_angles(facts: dict[str, dict[str, Any]]) -> None:
    f = facts["codman_hakim_programmable"]
    t = load_template("codman_hakim_programmable")
    values = f["main"]["settings"]["values_mmH2O"]
    assert [s.value for s in t.settings.values] == [float(v) for v in values]
    refined = f["add"]["updates"]["notch_clock_positions_refined"]
    a, step, p0, per = map(float, re.search(r"([\d.]+) \+ ([\d.]+) x \(P_mmH2O - (\d+)\)/(\d+)", refined["rule"]).groups())
    for s in t.settings.values:
        assert s.angle_deg is not None and _close(s.angle_deg, a + step * (float(s.value) - p0) / per)  # type: ignore[arg-type]
    for pressure, clock in refined["examples"].items():  # the rule's own examples, within its +/-15 deg
        assert _close(_angles(t)[str(pressure)] or 0.0, _clock(clock.strip("~")), 15.0)
    assert "notch_clock_positions_refined:  # [M]" in f["raw"] and _angle_tags(t) == {"M"}


def test_codman_certas_plus_settings_and_sector_angles(facts: dict[str, dict[str, Any]]) -> None:
    main = facts["codman_certas_plus"]["main"]
    t = load_template("codman_certas_plus")
    pressures = main["settings"]["values_mmH2O_at_20mL_h"]
    sectors = main["sector_angles_deg_canonical"]
    assert [s.label for s in t.settings.values] == [str(k) for k in pressures]
    for s in t.settings.values:
        expected = pressures[int(s.label)]
        assert s.value == (float(expected) if isinstance(expected, int) else expected)
        assert s.angle_deg == float(sectors[int(s.label)])
    assert re.search(r"sector_angles_deg_canonical:.*# \[M", facts["codman_certas_plus"]["raw"])
    assert _angle_tags(t) == {"M"}


def test_sophy_ranges_equal_the_facts_and_angles_stay_unknown(facts: dict[str, dict[str, Any]]) -> None:
    f = facts["sophysa_sophy_mini_sm8"]
    t = load_template("sophysa_sophy_minism8")
    by_model = f["main"]["settings"]["values_mmH2O_by_model"]
    expected = {int(re.search(r"\((\d) point", k).group(1)): v for k, v in by_model.items()}  # type: ignore[union-attr]
    assert {r.dots: [int(x) for x in r.values] for r in t.settings.ranges} == expected
    assert [s.value for s in t.settings.values] == [float(v) for v in expected[1]]
    assert "NOT FOUND" in f["add"]["updates"]["angles_per_position"]
    assert all(s.angle_deg is None and s.tag == "U" for s in t.settings.values)
    assert t.dial is not None and not t.dial.readable


def _progav_card(facts: dict[str, dict[str, Any]]) -> tuple[dict[int, float], float]:
    text = facts["miethke_progav_2_0"]["add"]["updates"]["angle_per_cmH2O"]
    anchors = {int(p): float(a) for p, a in re.findall(r"(\d+) at ~?(\d+) deg", text)}
    step = float(re.search(r"([\d.]+) deg per cmH2O", text).group(1))  # type: ignore[union-attr]
    return anchors, step


@pytest.mark.parametrize(("valve_id", "tag"), [("miethke_progav_2", "U"), ("miethke_progav_1", "M")])
def test_progav_angles_follow_the_gen1_card_with_their_tag(
    facts: dict[str, dict[str, Any]], valve_id: str, tag: str
) -> None:
    anchors, step = _progav_card(facts)
    t = load_template(valve_id)
    assert [s.label for s in t.settings.values] == [str(p) for p in range(21)]
    assert "0-20" in str(facts[FACTS_ID[valve_id]]["main"])
    angles = _angles(t)
    assert anchors and all(_close(angles[str(p)] or 0.0, a, 2.0) for p, a in anchors.items())
    for p in range(20):
        assert _close((angles[str(p + 1)] or 0.0) - (angles[str(p)] or 0.0), step)
    assert _angle_tags(t) == {tag}
    assert "[U]" in facts["miethke_progav_2_0"]["add"]["updates"]["angle_per_cmH2O"]


def test_strata_levels_pressures_and_clock_positions(facts: dict[str, dict[str, Any]]) -> None:
    main = facts["medtronic_strata"]["main"]
    t = load_template("medtronic_ps_medical_strata")
    assert [s.value for s in t.settings.values] == main["settings"]["performance_levels"]
    ranges = main["settings"]["StrataMR_mmH2O_0cmHP_at_5_to_50_mL_h"]
    clocks = dict(re.findall(r"(\d\.\d) ~(\d+:\d+)", " ".join(main["reading_method"])))
    for s in t.settings.values:
        assert ranges[float(s.label)] in s.pressure
        assert s.angle_deg == _clock(clocks[s.label])
    assert "[M StrataMR" in " ".join(main["reading_method"]) and _angle_tags(t) == {"M"}


def test_integra_dp_is_fixed_without_angles(facts: dict[str, dict[str, Any]]) -> None:
    add = facts["integra_dp"]["add"]
    t = load_template("integra_dp")
    assert add["type"].startswith("fixed") and t.kind == "fixed" and t.dial is None
    levels = [x.strip() for x in add["settings"]["levels"].split("(")[0].split("/")]
    assert [s.label for s in t.settings.values] == levels
    assert all(s.angle_deg is None and s.value is None for s in t.settings.values)


def test_delta_levels_keep_the_unconfirmed_level_unverified(facts: dict[str, dict[str, Any]]) -> None:
    text = facts["medtronic_delta"]["add"]["settings"]["performance_levels"]
    t = load_template("medtronic_ps_medical_delta")
    confirmed = re.findall(r"\d\.\d", text.split("confirmed")[0])
    unconfirmed = re.findall(r"(\d\.\d) not confirmed", text)
    assert [s.label for s in t.settings.values] == confirmed + unconfirmed
    assert {s.label for s in t.settings.values if s.value_tag == "U"} == set(unconfirmed)
    assert t.kind == "fixed" and t.dial is None


@pytest.mark.parametrize("valve_id", list(FACTS_ID))
def test_check_after_mri_matches_the_facts(facts: dict[str, dict[str, Any]], valve_id: str) -> None:
    f = facts[FACTS_ID[valve_id]]
    mri = str(f["add"].get("mri") or f["main"].get("mri") or "")
    if re.search(r"(verify|confirm|check)[^.;]{0,30}after", mri, re.IGNORECASE):
        expected: bool | None = True
    elif "WILL NOT change" in mri:
        expected = False
    else:
        expected = None
    assert load_template(valve_id).mri.check_after_mri is expected
