"""docs/templates.md names every template and lists every unverified fact."""

from __future__ import annotations

from pathlib import Path

import pytest

from valvereader.catalogue import UNKNOWN_VALVE_ID, VALVE_IDS
from valvereader.catalogue.templates import load_template

DOC = Path(__file__).resolve().parents[2] / "docs" / "templates.md"


@pytest.mark.parametrize("valve_id", (*VALVE_IDS, UNKNOWN_VALVE_ID))
def test_docs_name_the_template_and_list_its_unverified_facts(valve_id: str) -> None:
    if not DOC.exists():
        pytest.skip("docs/templates.md not in this checkout")
    text = DOC.read_text(encoding="utf-8")
    template = load_template(valve_id)
    assert f"(`{valve_id}`)" in text
    unverified = text.split("## Facts still unverified")[1]
    for fact in template.unverified_facts():
        assert f"- {fact.text}" in unverified, f"docs/templates.md lacks: {fact.text}"


def test_docs_check_list_has_one_current_row_per_valve() -> None:
    if not DOC.exists():
        pytest.skip("docs/templates.md not in this checkout")
    from valvereader.catalogue.text import EVIDENCE_HEADER, markdown_evidence_row

    text = DOC.read_text(encoding="utf-8")
    assert EVIDENCE_HEADER in text
    for valve_id in (*VALVE_IDS, UNKNOWN_VALVE_ID):
        row = markdown_evidence_row(load_template(valve_id))
        assert row in text, f"docs/templates.md check list is stale for {valve_id}: run python -m valvereader.catalogue.text"
    progav = markdown_evidence_row(load_template("miethke_progav_2"))
    assert "the clock position only, no pressure **[U]**" in progav
