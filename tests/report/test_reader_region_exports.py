"""Every export of a result read in the reader's region says the region was chosen by the reader
(PDF, PNG footer, DICOM Secondary Capture comment, worklist CSV); a located result does not."""

from __future__ import annotations

import csv
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pydicom
import pytest

from valvereader.geometry import Box
from valvereader.report import (
    export_pdf,
    export_secondary_capture,
    export_worklist_csv,
    worklist_row,
)
from valvereader.report.png import footer_lines

needs_poppler = pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils not installed")


@pytest.fixture
def by_reader(make_content, prediction):
    return make_content(prediction=replace(prediction, box=Box(20, 30, 120, 130), box_source="reader"))


def pdf_text(path: Path) -> str:
    return " ".join(subprocess.run(["pdftotext", str(path), "-"], capture_output=True, check=True).stdout.decode().split())


@needs_poppler
def test_pdf_says_the_region_was_chosen_by_the_reader(tmp_path: Path, by_reader, make_content) -> None:
    text = pdf_text(export_pdf(by_reader, tmp_path / "reader.pdf"))
    assert "Region read" in text and "chosen by the reader (not located)" in text  # label and value columns
    assert "chosen by the reader" not in pdf_text(export_pdf(make_content(), tmp_path / "located.pdf"))


def test_png_footer_says_so(by_reader, make_content) -> None:
    assert "region read: chosen by the reader" in footer_lines(by_reader)[0]
    assert "chosen by the reader" not in " ".join(footer_lines(make_content()))


def test_secondary_capture_comment_says_so(tmp_path: Path, by_reader, make_content) -> None:
    comment = str(pydicom.dcmread(export_secondary_capture(by_reader, None, tmp_path / "r.dcm")).ImageComments)
    assert "Region read: chosen by the reader, not located by the program." in comment
    located = str(pydicom.dcmread(export_secondary_capture(make_content(), None, tmp_path / "l.dcm")).ImageComments)
    assert "chosen by the reader" not in located


def test_worklist_csv_has_the_box_source(tmp_path: Path, by_reader, make_content) -> None:
    rows = [worklist_row("a.dcm", prediction=by_reader.prediction), worklist_row("b.dcm", prediction=make_content().prediction),
            worklist_row("c.dcm", error="cannot read")]
    path = export_worklist_csv(rows, tmp_path / "w.csv", deidentify=False)
    with open(path, newline="") as handle:
        read = [r for r in csv.DictReader(handle) if not r["image"].startswith("#")]
    assert [r["box_source"] for r in read] == ["reader", "located", ""]
