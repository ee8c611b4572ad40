"""Every fact names its source and carries the tag of its weakest link; a dial whose angles
are unverified shows positions, never pressures."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from valvereader.catalogue import UNKNOWN_VALVE_ID, VALVE_IDS
from valvereader.catalogue.templates import load_all, reading_basis, validate
from valvereader.errors import TemplateError
from valvereader.paths import templates_dir

ALL_IDS = (*VALVE_IDS, UNKNOWN_VALVE_ID)


def _raw(valve_id: str) -> dict[str, Any]:
    return dict(yaml.safe_load((templates_dir() / valve_id / "template.yaml").read_text(encoding="utf-8")))


def _broken(valve_id: str, change: Any) -> dict[str, Any]:
    data = copy.deepcopy(_raw(valve_id))
    change(data)
    return data


def test_a_confirmed_fact_without_a_source_fails() -> None:
    def drop(d: dict[str, Any]) -> None:
        d["mechanism"]["source"] = []

    with pytest.raises(TemplateError, match=r"at mechanism: a \[C\] fact must name its source"):
        validate(_broken("codman_certas_plus", drop))


def test_a_secondary_fact_without_a_source_fails() -> None:
    def drop(d: dict[str, Any]) -> None:
        d["summary"]["source"] = []

    with pytest.raises(TemplateError, match=r"at summary: a \[S\] fact must name its source"):
        validate(_broken("medtronic_ps_medical_delta", drop))


def test_a_fact_tagged_stronger_than_its_sources_fails() -> None:
    def overclaim(d: dict[str, Any]) -> None:
        d["pitfalls"][1]["tag"] = "C"  # cam displacement: a case report only

    with pytest.raises(TemplateError, match=r"pitfalls\[1\]: tagged \[C\] but its strongest source \(koreamed\) is \[S\]"):
        validate(_broken("codman_hakim_programmable", overclaim))


def test_a_measured_fact_must_say_which_figure() -> None:
    def unplace(d: dict[str, Any]) -> None:
        del d["settings"]["angles"]["where"]

    with pytest.raises(TemplateError, match=r"settings.angles: an \[M\] fact must say 'where: measured on"):
        validate(_broken("codman_certas_plus", unplace))


def test_the_type_line_follows_the_same_rule() -> None:
    def overclaim(d: dict[str, Any]) -> None:
        d["type_tag"] = "C"

    with pytest.raises(TemplateError, match=r"type_tag: tagged \[C\]"):
        validate(_broken("integra_dp", overclaim))


@pytest.mark.parametrize("valve_id", ALL_IDS)
def test_every_fact_names_a_source_unless_unverified(valve_id: str) -> None:
    template = load_all()[valve_id]
    for fact in template.all_facts():
        if fact.tag in "CS":
            assert fact.sources, fact.text
            assert all(key in template.sources for key in fact.sources)
        if fact.tag == "M":
            assert fact.where.startswith("measured on") or "M" in {template.source_kinds[k] for k in fact.sources}


def test_no_dial_with_unverified_angles_reads_a_pressure() -> None:
    checked = 0
    for template in load_all().values():
        dial = template.dial
        for setting in dial.settings if dial is not None else []:
            if setting.angle_tag == "U" and setting.angle_deg is not None:
                text = setting.reading_text()
                assert template.settings.unit not in text and "geometry not verified" in text
                assert text.count("[U]") == 1
                checked += 1
    assert checked >= 21  # proGAV 2.0's 21 positions at least


def test_a_saved_reading_finds_its_basis_again() -> None:
    template = load_all()["codman_hakim_programmable"]
    setting = template.settings.values[7]
    basis = reading_basis("codman_hakim_programmable", setting.reading_text())
    assert basis.startswith("[M]") and "programmer_insets" in basis and "k974739" in basis
    assert reading_basis("codman_hakim_programmable", "not a reading") == ""
    assert reading_basis(None, setting.reading_text()) == ""
