"""A saved reading carries the tag of the facts it rests on into the worklist CSV
(`reading_basis`) and the PDF report (the 'Basis' line under 'Reading')."""

from __future__ import annotations

import csv
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from valvereader.catalogue import VALVE_IDS
from valvereader.catalogue.templates import load_template
from valvereader.catalogue.text import sections
from valvereader.geometry import Box
from valvereader.prediction import Prediction, VerdictThresholds
from valvereader.report import ReportContent, export_pdf
from valvereader.report.worklist import export_worklist_csv, worklist_row
from valvereader.review import ReviewRecord


def _reading(valve_id: str, index: int) -> tuple[str, str]:
    setting = load_template(valve_id).settings.values[index]
    return setting.reading_text(), setting.basis


def test_the_worklist_csv_has_the_basis_of_each_saved_reading(tmp_path: Path) -> None:
    certas, certas_basis = _reading("codman_certas_plus", 2)
    progav, progav_basis = _reading("miethke_progav_2", 13)
    rows = [
        worklist_row("a.png", review=ReviewRecord("a.png", "accepted", reading=certas, predicted="codman_certas_plus")),
        worklist_row("b.png", review=ReviewRecord("b.png", "corrected", corrected_valve_id="miethke_progav_2",
                                                  reading=progav, predicted="miethke_progav_1")),
        worklist_row("c.png", review=ReviewRecord("c.png", "accepted", predicted="codman_certas_plus")),
    ]
    path = export_worklist_csv(rows, tmp_path / "worklist.csv")
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if not line.startswith("#")]
    table = list(csv.DictReader(lines))
    assert table[0]["reading"] == certas and "109 mmH2O if original CERTAS" in certas
    assert table[0]["reading_basis"] == certas_basis and certas_basis.startswith("[M]")
    assert table[1]["reading_basis"] == progav_basis and progav_basis.startswith("[U]")
    assert table[2]["reading"] == "" and table[2]["reading_basis"] == ""


def _prediction(valve_id: str) -> Prediction:
    probabilities = np.full(len(VALVE_IDS), 0.01, dtype=np.float32)
    probabilities[VALVE_IDS.index(valve_id)] = 0.93
    return Prediction(valve_ids=VALVE_IDS, probabilities=probabilities,
                      verdict=VerdictThresholds().verdict(0.93, None), box=Box(40, 40, 80, 80),
                      heatmap=None, model="valve-identifier-test 0.3", pipeline="locate+identify")


def test_the_pdf_report_prints_the_basis_under_the_reading(tmp_path: Path) -> None:
    if shutil.which("pdftotext") is None:
        pytest.skip("poppler-utils (pdftotext) not installed")
    template = load_template("codman_hakim_programmable")
    reading, _ = _reading("codman_hakim_programmable", 7)
    content = ReportContent(
        view_rgb=np.full((200, 160, 3), 90, dtype=np.uint8), prediction=_prediction("codman_hakim_programmable"),
        template_svg=template.diagram, template_sections=sections(template), reading=reading,
    )
    pdf = export_pdf(content, tmp_path / "report.pdf")
    text = " ".join(subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, check=True).stdout.decode().split())
    assert "100 mmH2O [M], may be 90 mmH2O or 110 mmH2O" in text
    assert "Basis" in text and "programmer_insets" in text
