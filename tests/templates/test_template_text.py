"""catalogue.text.sections gives tagged text blocks for the GUI panel and the PDF report."""

from __future__ import annotations

import re

import pytest

from valvereader.catalogue import UNKNOWN_VALVE_ID, VALVE_IDS
from valvereader.catalogue.templates import clock_position, load_template
from valvereader.catalogue.text import as_plain_text, sections, setting_line

ALL_IDS = (*VALVE_IDS, UNKNOWN_VALVE_ID)
TAGGED = re.compile(r"\[(C|S|M)\]$|\[U\] unverified$")


@pytest.mark.parametrize("valve_id", ALL_IDS)
def test_sections_number_the_reading_steps_and_tag_every_fact_line(valve_id: str) -> None:
    template = load_template(valve_id)
    blocks = dict(sections(template))
    steps = blocks["How to read the X-ray"]
    assert len(steps) == len(template.reading_steps)
    for i, line in enumerate(steps, 1):
        assert line.startswith(f"{i}. ") and TAGGED.search(line), line
    for heading in ("Pitfalls", "Radiopaque parts", "MRI"):
        assert all(TAGGED.search(line) for line in blocks[heading]), heading


@pytest.mark.parametrize("valve_id", ALL_IDS)
def test_unverified_section_lists_every_unverified_fact(valve_id: str) -> None:
    template = load_template(valve_id)
    listed = dict(sections(template))["Unverified"]
    assert len([x for x in listed if x.startswith("[U] unverified: ")]) == len(template.unverified_facts())


@pytest.mark.parametrize("valve_id", ALL_IDS)
def test_mri_section_says_whether_to_check_after_mri(valve_id: str) -> None:
    template = load_template(valve_id)
    text = " ".join(dict(sections(template))["MRI"])
    expected = {True: "yes", False: "not required", None: "not known"}[template.mri.check_after_mri]
    assert f"Check the setting after MRI: {expected}" in text
    assert template.mri.line().startswith("MRI: ")


def test_setting_lines_show_angle_clock_and_tag_or_say_unknown() -> None:
    hakim = load_template("codman_hakim_programmable").settings.values[0]
    sophy = load_template("sophysa_sophy_minism8").settings.values[0]
    assert setting_line(hakim) == f"30 mmH2O: indicator at 68 deg ({clock_position(68.0)}) [M]"
    assert "indicator angle not known [U] unverified" in setting_line(sophy)
    assert "setting 1 (30 mmH2O)" in setting_line(sophy)


def test_clock_position_converts_canonical_degrees() -> None:
    assert [clock_position(a) for a in (0.0, 90.0, 165.0, 232.5, 359.9)] == ["12:00", "3:00", "5:30", "7:45", "12:00"]


def test_plain_text_page_contains_sources_and_legend() -> None:
    page = as_plain_text(load_template("codman_certas_plus"))
    assert "Sources\n-------" in page and "K181902" in page and "[U] unverified - check" in page
