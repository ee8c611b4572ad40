"""Every bundled template passes the schema; broken templates fail with a precise TemplateError."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from valvereader.catalogue import UNKNOWN_VALVE_ID, VALVE_IDS, load_catalogue
from valvereader.catalogue.templates import from_dict, load_all, load_template, validate
from valvereader.errors import TemplateError
from valvereader.paths import templates_dir

ALL_IDS = (*VALVE_IDS, UNKNOWN_VALVE_ID)


def _raw(valve_id: str) -> dict[str, Any]:
    return dict(yaml.safe_load((templates_dir() / valve_id / "template.yaml").read_text(encoding="utf-8")))


@pytest.mark.parametrize("valve_id", ALL_IDS)
def test_every_bundled_template_validates_against_the_schema(valve_id: str) -> None:
    validate(_raw(valve_id))
    template = load_template(valve_id)
    assert template.valve_id == valve_id
    assert template.reading_steps and all(step.tag in "CSMU" for step in template.reading_steps)


def test_catalogue_loads_all_templates_with_their_kind() -> None:
    valves = load_catalogue()
    assert set(valves) == set(ALL_IDS)
    assert {valves[v].kind for v in ("integra_dp", "medtronic_ps_medical_delta")} == {"fixed"}
    assert all(valves[v].diagram is not None for v in ALL_IDS)


def test_programmable_valves_have_a_dial_and_fixed_ones_do_not() -> None:
    templates = load_all()
    for valve_id, template in templates.items():
        assert (template.dial is not None) == (template.kind == "programmable"), valve_id


def _mutated(valve_id: str, change: Any) -> dict[str, Any]:
    data = copy.deepcopy(_raw(valve_id))
    change(data)
    return data


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: d.pop("mri"), "'mri' is a required property"),
        (lambda d: d["reading_steps"][0].update(tag="X"), "reading_steps[0].tag"),
        (lambda d: d["settings"]["values"][2].update(angle_deg="north"), "settings.values[2].angle_deg"),
        (lambda d: d["settings"]["values"][2].update(angle_deg=360), "settings.values[2].angle_deg"),
        (lambda d: d["pitfalls"][0].update(source=["nowhere"]), "source 'nowhere' is not listed"),
        (lambda d: d["settings"]["values"][1].update(angle_deg=None), "unknown angle (null) must be tagged U"),
        (lambda d: d["settings"]["values"][1].update(label="30"), "duplicate labels"),
        (lambda d: d.update(type="fixed valve"), "adjustable must be False"),
        (lambda d: d.update(id="codman_hakim"), "not a catalogue valve id"),
        (lambda d: d["settings"]["values"][0].update(angle_tag="C"), "claims more than settings.angles"),
    ],
)
def test_invalid_template_raises_template_error_naming_the_problem(change: Any, expected: str) -> None:
    with pytest.raises(TemplateError, match=None) as info:
        validate(_mutated("codman_hakim_programmable", change), origin="hakim.yaml")
    assert expected in str(info.value)
    assert str(info.value).startswith("hakim.yaml")


def test_fixed_valve_with_a_dial_angle_is_rejected() -> None:
    data = _mutated("integra_dp", lambda d: d["settings"]["values"][0].update(angle_deg=90.0, angle_tag="U"))
    with pytest.raises(TemplateError, match="has no dial"):
        from_dict(data)


def test_range_table_must_cover_every_position() -> None:
    data = _mutated("sophysa_sophy_minism8", lambda d: d["settings"]["ranges"][0]["values"].pop())
    with pytest.raises(TemplateError, match=r"ranges\[0\] has 7 values for 8 positions"):
        validate(data)


def test_unknown_valve_id_is_a_template_error() -> None:
    with pytest.raises(TemplateError, match="no template for valve id 'acme_valve'"):
        load_template("acme_valve")


def test_missing_and_broken_template_files_are_template_errors(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="template missing"):
        load_template("integra_dp", tmp_path)
    (tmp_path / "integra_dp").mkdir()
    (tmp_path / "integra_dp" / "template.yaml").write_text("id: [unclosed\n", encoding="utf-8")
    with pytest.raises(TemplateError, match="not valid YAML"):
        load_template("integra_dp", tmp_path)


def test_template_in_the_wrong_folder_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "integra_dp").mkdir()
    text = (templates_dir() / "medtronic_ps_medical_delta" / "template.yaml").read_text(encoding="utf-8")
    (tmp_path / "integra_dp" / "template.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(TemplateError, match="expected 'integra_dp'"):
        load_template("integra_dp", tmp_path)


@pytest.mark.parametrize("valve_id", ALL_IDS)
def test_every_unknown_angle_and_unverified_fact_is_listed_as_unverified(valve_id: str) -> None:
    template = load_template(valve_id)
    listed = " ".join(f.text for f in template.unverified_facts())
    for fact in template.all_facts():
        if fact.tag == "U":
            assert fact.text in listed
    for setting in template.settings.values:
        if setting.tag == "U" and template.dial is not None:
            assert setting.label in listed
    assert all(f.tag == "U" for f in template.unverified_facts())
