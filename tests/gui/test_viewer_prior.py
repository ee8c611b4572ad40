"""Review ▸ Compare with a prior film: the same patient's other film beside the one on screen,
with valve, reading and date, following the study shown; the PDF report carries both."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from viewer_fakes import skull_image, write_png

from valvereader.gui.models.prior import same_patient
from valvereader.gui.prior import open_prior

pytestmark = pytest.mark.gui
TIMEOUT = 15000


def batch(qtbot, make_window, tmp_path: Path):
    folder = tmp_path / "batch"
    folder.mkdir()
    for i in range(3):
        write_png(folder / f"film{i}.png", skull_image(valve_at=(150 + 20 * i, 110), seed=i))
    window = make_window()
    window.open_paths([folder])
    qtbot.waitUntil(lambda: all(s.analysed for s in window.worklist.studies) and window.is_settled(), timeout=TIMEOUT)
    studies = window.worklist.studies
    for study, who, date in zip(studies, ("P-17", "P-17", "P-99"), ("20251120", "20250301", "20240101"), strict=True):
        study.patient_id, study.study_date = who, date
    return window, studies


def test_only_the_patients_other_films_are_offered_most_recent_first(qtbot, make_window, tmp_path: Path) -> None:
    _window, studies = batch(qtbot, make_window, tmp_path)
    assert same_patient(studies, 0) == [1]
    assert same_patient(studies, 2) == []
    studies[2].patient_id = "P-17"
    studies[2].study_date = "20250601"
    assert same_patient(studies, 0) == [2, 1]


def test_the_prior_is_shown_beside_the_film_and_the_readings_compared(qtbot, make_window, tmp_path: Path) -> None:
    window, studies = batch(qtbot, make_window, tmp_path)
    studies[0].reading, studies[1].reading = "4 (≙ 130 mmH2O)", "4 (≙ 130 mmH2O)"
    prior = open_prior(window)
    qtbot.waitUntil(lambda: prior.prior is not None, timeout=TIMEOUT)
    assert prior.prior.path == studies[1].path
    assert prior.prior_pane.picture.pixmap() is not None and not prior.prior_pane.picture.pixmap().isNull()
    assert "2025-03-01" in prior.prior_pane.lines.text() and "130 mmH2O" in prior.prior_pane.lines.text()
    assert "2025-11-20" in prior.this_pane.lines.text()
    assert "same reading" in prior.outcome.text()
    assert "264 days earlier" in prior.interval.text()
    # a reading taken on the prior in the batch reaches the comparison
    window.worklist.update(1, reading="6 (≙ 190 mmH2O)")
    qtbot.waitUntil(lambda: "readings differ" in prior.outcome.text(), timeout=TIMEOUT)
    out = window.exports.pdf(tmp_path / "report.pdf")
    data = out.read_bytes()
    assert len(re.findall(rb"/Type\s*/Page(?![a-z])", data)) == 2
    # another patient's film on screen: nothing of P-17 is offered, the prior is dropped
    window.go_to(2)
    qtbot.waitUntil(lambda: window.worklist.current == 2 and window.is_settled(), timeout=TIMEOUT)
    assert prior.prior is None and prior.choice.currentData() is None
    single = window.exports.pdf(tmp_path / "single.pdf")
    assert len(re.findall(rb"/Type\s*/Page(?![a-z])", single.read_bytes())) == 1
    window.close()
    assert not prior.isVisible()


def test_any_file_can_be_the_prior(qtbot, make_window, tmp_path: Path) -> None:
    window, _ = batch(qtbot, make_window, tmp_path)
    elsewhere = write_png(tmp_path / "old_film.png", skull_image(valve_at=(170, 120), seed=7))
    prior = open_prior(window)
    prior.pick_file(elsewhere)
    qtbot.waitUntil(lambda: prior.prior is not None and prior.prior.path == elsewhere, timeout=TIMEOUT)
    assert prior.prior.prediction is not None  # read with the model now
    assert "No reading" in prior.outcome.text()
