"""PNG, PDF, CSV and DICOM exports: content, page counts, validity."""

from __future__ import annotations

import csv
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from planted_patient import write_source_dicom

from valvereader import DISCLAIMER
from valvereader.catalogue import display_name
from valvereader.prediction import verdict_meaning
from valvereader.report import (
    export_pdf,
    export_png,
    export_secondary_capture,
    export_worklist_csv,
    export_worklist_pdf,
    worklist_row,
)
from valvereader.review import ReviewRecord

needs_poppler = pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils not installed")


def pdf_text(path: Path) -> str:
    out = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, check=True)
    return out.stdout.decode("utf-8")


def pdf_pages(path: Path) -> int:
    return len(re.findall(rb"/Type\s*/Page(?![a-z])", path.read_bytes()))


def test_pdf_report_is_one_page(tmp_path: Path, make_content: Callable[..., object]) -> None:
    path = export_pdf(make_content(), tmp_path / "report.pdf")
    assert path.read_bytes().startswith(b"%PDF")
    assert pdf_pages(path) == 1


@needs_poppler
def test_pdf_report_names_disclaimer_model_verdict_and_every_class(
    tmp_path: Path, make_content: Callable[..., object]
) -> None:
    content = make_content()
    text = " ".join(pdf_text(export_pdf(content, tmp_path / "report.pdf")).split())
    assert " ".join(DISCLAIMER.split()) in text
    assert "valve-identifier-test 0.3" in text
    assert content.prediction.verdict.label in text
    assert "model attention" in text
    assert "1.5 (150 mmH2O)" in text
    for valve_id in content.prediction.valve_ids:
        assert display_name(valve_id)[:20] in text


@needs_poppler
def test_pdf_draws_the_template_diagram_as_vectors(tmp_path: Path, make_content: Callable[..., object]) -> None:
    pytest.importorskip("svglib")
    # The diagram's own text survives as text only if the SVG went in as vectors.
    assert "TEMPLATEMARK" in pdf_text(export_pdf(make_content(), tmp_path / "report.pdf"))


def test_pdf_without_crop_or_template_still_renders(tmp_path: Path, make_content: Callable[..., object]) -> None:
    content = make_content(valve_crop_rgb=None, template_svg=None, template_sections=[], reading=None)
    assert pdf_pages(export_pdf(content, tmp_path / "bare.pdf")) == 1


def test_worklist_pdf_has_one_page_per_study(tmp_path: Path, make_content: Callable[..., object]) -> None:
    contents = [make_content() for _ in range(3)]
    assert pdf_pages(export_worklist_pdf(contents, tmp_path / "worklist.pdf")) == 3


def test_empty_worklist_pdf_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="empty"):
        export_worklist_pdf([], tmp_path / "worklist.pdf")


def test_png_keeps_the_view_and_adds_a_footer_with_the_disclaimer(
    tmp_path: Path, make_content: Callable[..., object]
) -> None:
    content = make_content()
    path = export_png(content, tmp_path / "view.png")
    with Image.open(path) as image:
        pixels = np.asarray(image.convert("RGB"))
        chunks = dict(image.text)  # type: ignore[attr-defined]
    rows, cols = content.view_rgb.shape[:2]
    assert pixels.shape[1] == cols and pixels.shape[0] > rows
    assert np.array_equal(pixels[:rows], content.view_rgb)
    assert chunks["Disclaimer"] == DISCLAIMER
    assert chunks["Model"] == "valve-identifier-test 0.3"


def test_png_without_footer_is_exactly_the_view(tmp_path: Path, make_content: Callable[..., object]) -> None:
    content = make_content()
    with Image.open(export_png(content, tmp_path / "view.png", footer=False)) as image:
        assert np.array_equal(np.asarray(image.convert("RGB")), content.view_rgb)


def test_worklist_csv_has_a_row_per_study_and_the_reader_decision(
    tmp_path: Path, make_content: Callable[..., object]
) -> None:
    content = make_content()
    review = ReviewRecord(image="a.dcm", decision="corrected", corrected_valve_id="codman_certas_plus")
    rows = [
        worklist_row("a.dcm", content.prediction, content.meta, review),
        worklist_row("b.dcm", error="JPEG 2000 pixel data cannot be decoded"),
    ]
    path = export_worklist_csv(rows, tmp_path / "worklist.csv", deidentify=False)
    lines = path.read_text(encoding="utf-8").splitlines()
    table = list(csv.DictReader(lines[:-1]))
    assert lines[-1] == f"# {DISCLAIMER}"
    assert [r["image"] for r in table] == ["a.dcm", "b.dcm"]
    assert table[0]["final_valve_id"] == "codman_certas_plus"
    assert table[0]["verdict"] == content.prediction.verdict.label
    assert table[0]["verdict_why"] == verdict_meaning(content.prediction) and table[0]["verdict_why"]
    assert table[1]["error"].startswith("JPEG 2000") and table[1]["verdict_why"] == ""


def test_worklist_csv_defuses_spreadsheet_formulas(tmp_path: Path) -> None:
    path = export_worklist_csv([worklist_row("=HYPERLINK(1)")], tmp_path / "w.csv", deidentify=False)
    table = list(csv.DictReader(path.read_text().splitlines()[:-1]))
    assert table[0]["image"] == "'=HYPERLINK(1)"


def dciodvfy_errors(path: Path) -> list[str]:
    out = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, check=False)
    return [line for line in (out.stdout + out.stderr).splitlines() if line.startswith("Error")]


@pytest.mark.parametrize(("deidentify", "source_kind"), [(True, "dicom"), (False, "dicom"), (False, "png")])
def test_secondary_capture_passes_dciodvfy_and_opens_in_dcmtk(
    tmp_path: Path, make_content: Callable[..., object], deidentify: bool, source_kind: str
) -> None:
    if shutil.which("dciodvfy") is None:
        pytest.skip("dicom3tools (dciodvfy) not installed")
    if source_kind == "dicom":
        source = write_source_dicom(tmp_path / "source.dcm")
    else:
        source = tmp_path / "source.png"
        Image.fromarray(np.zeros((8, 8), dtype=np.uint8)).save(source)
    path = export_secondary_capture(make_content(deidentify=deidentify), source, tmp_path / "sc.dcm")
    assert dciodvfy_errors(path) == []
    if shutil.which("dcm2pnm"):
        out = tmp_path / "sc.ppm"
        subprocess.run(["dcm2pnm", str(path), str(out)], check=True, capture_output=True)
        assert out.stat().st_size > 1000


def test_secondary_capture_joins_the_source_study_unless_deidentified(
    tmp_path: Path, make_content: Callable[..., object]
) -> None:
    from pydicom import dcmread

    source = write_source_dicom(tmp_path / "source.dcm")
    study = dcmread(source).StudyInstanceUID
    kept = dcmread(export_secondary_capture(make_content(deidentify=False), source, tmp_path / "a.dcm"))
    assert kept.StudyInstanceUID == study and kept.PatientID == dcmread(source).PatientID
    assert kept.SOPClassUID == "1.2.840.10008.5.1.4.1.1.7"
    assert kept.BurnedInAnnotation == "YES"
    anonymous = dcmread(export_secondary_capture(make_content(deidentify=True), source, tmp_path / "b.dcm"))
    assert anonymous.StudyInstanceUID != study
    assert anonymous.PatientIdentityRemoved == "YES" and anonymous.DeidentificationMethod
    assert anonymous.BurnedInAnnotation == "NO"
    assert anonymous.pixel_array.shape[2] == 3


@needs_poppler
def test_a_long_model_name_never_runs_into_the_page_number(tmp_path: Path, make_content: Callable[..., object]) -> None:
    """The footer's first line (disclaimer, model, program) shrinks and, past a point, ends in an
    ellipsis; the page number sits on the second line. Identifier 2.0.0's name once overlapped it."""
    name = "identifier 2.0.0 (ensemble of 2 efficientnet_lite0, 320 + 384 px) " + "and a very long suffix " * 6
    lines = pdf_text(export_pdf(make_content(model_name=name), tmp_path / "report.pdf")).splitlines()
    first = next(line for line in lines if "Decision support only" in line and "Model:" in line)
    second = next(line for line in lines if "Check the valve against the template" in line)
    assert " ".join(DISCLAIMER.split()) in " ".join(first.split())  # never cut
    assert "Page" not in first and first.rstrip().endswith("…")
    assert second.rstrip().endswith("Page 1 of 1")
