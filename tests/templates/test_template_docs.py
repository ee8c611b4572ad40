"""docs/templates.md names every template and lists every unverified fact."""

from __future__ import annotations

from pathlib import Path

import pytest

from valvereader.catalogue import UNKNOWN_VALVE_ID, VALVE_IDS
from valvereader.templates import load_template

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
