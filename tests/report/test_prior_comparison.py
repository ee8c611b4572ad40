"""A film read against a prior: the outcome in words, and the report's comparison page."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from planted_patient import PLANTED_FILE, PLANTED_NAME

from valvereader import DISCLAIMER
from valvereader.prediction import Verdict
from valvereader.report import export_pdf
from valvereader.report.compare import (
    DIFFERENT_SETTING,
    DIFFERENT_VALVE,
    NOT_READ,
    SAME,
    comparison,
    interval_text,
)

needs_poppler = pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils not installed")


def pair(make_content: Callable[..., object], **prior_values: object):
    current = make_content(reading="4 (130 mmH2O)", review=None)
    prior = make_content(reading="4 (130 mmH2O)", review=None, **prior_values)
    prior.meta = replace(current.meta, study_date="20250101", source="/data/prior_film.dcm")
    return current, prior


def test_the_outcome_says_whether_the_setting_changed(make_content) -> None:
    current, prior = pair(make_content)
    assert comparison(current, prior)[0] == SAME
    prior.reading = "6 (190 mmH2O)"
    outcome, sentence = comparison(current, prior)
    assert outcome == DIFFERENT_SETTING and "4 (130 mmH2O)" in sentence and "6 (190 mmH2O)" in sentence
    prior.reading = None
    assert comparison(current, prior)[0] == NOT_READ
    prior.reading, prior.review = "4 (130 mmH2O)", "Corrected to proGAV 2.0"
    assert comparison(current, prior)[0] == DIFFERENT_VALVE
    prior.review = None
    prior.prediction = replace(prior.prediction, verdict=Verdict.NO_VALVE)
    assert comparison(current, prior)[0] == SAME  # no valve named on the prior: the readings still compare


def test_the_interval_between_the_films_is_told_from_their_dates(make_content) -> None:
    current, prior = pair(make_content)
    current.meta = replace(current.meta, study_date="20250311")
    assert interval_text(current, prior) == "The prior is 69 days earlier."
    prior.meta = replace(prior.meta, study_date=None)
    assert interval_text(current, prior) is None


@needs_poppler
def test_the_report_carries_both_films_on_a_second_page(tmp_path: Path, make_content) -> None:
    current, prior = pair(make_content, deidentify=False)
    current.deidentify = False
    prior.reading = "6 (190 mmH2O)"
    current.prior = prior
    path = export_pdf(current, tmp_path / "report.pdf")
    text = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, check=True).stdout.decode()
    pages = text.split("\f")[:-1]
    assert len(pages) == 2 and "Page 2 of 2" in pages[1]
    second = " ".join(pages[1].split())
    assert "Comparison with a prior film" in second and "The readings differ" in second
    assert "4 (130 mmH2O)" in second and "6 (190 mmH2O)" in second
    assert "prior_film.dcm" in second and "2025-01-01" in second
    assert " ".join(DISCLAIMER.split()) in second


@needs_poppler
def test_a_deidentified_comparison_names_no_file_or_date(tmp_path: Path, make_content) -> None:
    current, prior = pair(make_content)
    current.prior = prior
    path = export_pdf(current, tmp_path / "report.pdf")
    text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, check=True).stdout.decode()
    for secret in ("prior_film", PLANTED_FILE, "2025-01-01", "20250101", PLANTED_NAME.split("^")[0]):
        assert secret not in text
    assert re.search(r"The prior is \d+ days? (earlier|later)", text)
