"""Findings of the audit of the templates against the manufacturers' documents stay fixed:
each fact carries the tag of its weakest link and names the document it rests on."""

from __future__ import annotations

from valvereader.catalogue.templates import load_template
from valvereader.catalogue.text import as_plain_text, sections


def test_hakim_reading_rests_on_the_programmer_insets_not_on_an_mri_page() -> None:
    t = load_template("codman_hakim_programmable")
    assert "card" not in t.sources
    for fact in [*t.reading_steps, *t.reference_marks, *t.radiopaque_parts, t.distinguishing, t.settings.angles]:
        assert "card" not in fact.sources
    measured = [f for f in t.reading_steps if f.tag == "M"]
    assert measured and all("programmer_insets" in f.sources and f.where.startswith("measured on") for f in measured)


def test_hakim_mirror_inference_has_one_tag_the_weaker() -> None:
    t = load_template("codman_hakim_programmable")
    mirror_facts = [f for f in [t.mirror_check, *t.pitfalls, *t.reading_steps] if "mirror" in f.text.lower()]
    assert len(mirror_facts) >= 2 and {f.tag for f in mirror_facts} == {"U"}


def test_certas_mri_names_the_revision_and_shows_the_lower_gradient_limit() -> None:
    t = load_template("codman_certas_plus")
    assert "2000 G/cm" in t.mri.conditions.text and "2023-06" in t.mri.conditions.text
    assert any("1000 G/cm" in n.text and "lower limit" in n.text for n in t.mri.notes)
    mri = dict(sections(t))["MRI"]
    assert any("1000 G/cm" in line for line in mri)


def test_progav_2_marker_side_and_jogging_are_unverified() -> None:
    t = load_template("miethke_progav_2")
    confirmed = [f for f in t.all_facts() if f.tag == "C"]
    assert not [f for f in confirmed if "RIGHT" in f.text or "right" in f.text.split("(")[0]]
    jogging = [f for f in t.pitfalls if "Jogging" in f.text]
    assert jogging and jogging[0].tag == "U" and not jogging[0].sources
    assert any("Fig 17" in f.text and f.tag == "U" for f in t.open_questions)


def test_integra_dp_type_and_dial_are_unverified_in_the_text() -> None:
    t = load_template("integra_dp")
    assert t.type_fact is not None and t.type_fact.tag == "U" and t.settings.angles.tag == "U"
    type_line = next(line for line in as_plain_text(t).splitlines() if line.startswith("Type:"))
    assert type_line.endswith("[U] unverified")


def test_strata_readings_are_unverified_for_strata_ii_and_nsc() -> None:
    t = load_template("medtronic_ps_medical_strata")
    for s in t.settings.values:
        assert [(o.model, o.tag) for o in s.others] == [("Strata II / NSC", "U")]
        assert "Strata II / NSC [U] unverified" in s.reading_text()
