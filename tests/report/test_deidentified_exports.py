"""De-identified exports hold no patient name, id, birth date, study date or file name:
not in pixels we draw, not in text, not in metadata. Controls show the search finds them
when identification is kept, so a pass is not vacuous."""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from planted_patient import PLANTED_ID, planted_strings, write_source_dicom

from valvereader.radiograph import RadiographMeta
from valvereader.report import (
    export_pdf,
    export_png,
    export_secondary_capture,
    export_worklist_csv,
    export_worklist_pdf,
    worklist_row,
)
from valvereader.report.png import footer_lines


def found(haystack: bytes | str) -> list[str]:
    text = haystack.decode("latin-1") if isinstance(haystack, bytes) else haystack
    lowered = text.lower()
    hits = [s for s in planted_strings() if s.lower() in lowered]
    # UTF-16 (PDF metadata strings, some DICOM encodings) would hide ASCII from a plain search.
    if isinstance(haystack, bytes):
        utf16 = haystack.replace(b"\x00", b"").decode("latin-1").lower()
        hits += [s for s in planted_strings() if s.lower() in utf16 and s not in hits]
    return hits


def pdf_streams(data: bytes) -> bytes:
    """All page streams, inflated, so text drawn with standard fonts is searchable too."""
    out = [data]
    for match in re.finditer(rb"stream\r?\n(.*?)\r?\nendstream", data, re.DOTALL):
        try:
            out.append(zlib.decompress(match.group(1)))
        except zlib.error:
            continue
    return b"\n".join(out)


def pdf_text(path: Path) -> str:
    if shutil.which("pdftotext") is None:
        pytest.skip("poppler-utils (pdftotext) not installed")
    return subprocess.run(["pdftotext", str(path), "-"], capture_output=True, check=True).stdout.decode()


def anonymous(content: Any) -> Any:
    return dataclasses.replace(content, meta=RadiographMeta(file_format="DICOM", modality="DX"))


def dicom_values(path: Path) -> str:
    from pydicom import dcmread

    ds = dcmread(path)
    values: list[str] = []

    def walk(dataset: Any) -> None:
        for element in dataset:
            if element.VR == "SQ":
                for item in element.value:
                    walk(item)
            elif element.tag != 0x7FE00010:
                values.append(str(element.value))

    walk(ds.file_meta)
    walk(ds)
    return "\n".join(values)


def test_png_has_no_identifiers_and_its_pixels_do_not_depend_on_them(
    tmp_path: Path, make_content: Callable[..., Any]
) -> None:
    content = make_content(deidentify=True)
    path = export_png(content, tmp_path / "view.png")
    assert found(path.read_bytes()) == []
    with Image.open(path) as image:
        assert found(" ".join(f"{k} {v}" for k, v in image.text.items())) == []  # type: ignore[attr-defined]
        pixels = np.asarray(image.convert("RGB"))
    with Image.open(export_png(anonymous(content), tmp_path / "blank.png")) as image:
        assert np.array_equal(pixels, np.asarray(image.convert("RGB")))
    assert found(" ".join(footer_lines(content))) == []


def test_pdf_has_no_identifiers_in_text_streams_or_metadata(
    tmp_path: Path, make_content: Callable[..., Any]
) -> None:
    path = export_pdf(make_content(deidentify=True), tmp_path / "report.pdf")
    assert found(pdf_text(path)) == []
    assert found(pdf_streams(path.read_bytes())) == []


def test_pdf_control_shows_identifiers_when_identification_is_kept(
    tmp_path: Path, make_content: Callable[..., Any]
) -> None:
    text = pdf_text(export_pdf(make_content(deidentify=False), tmp_path / "report.pdf"))
    assert "ZEBEDEE" in text and PLANTED_ID in text and "2019-03-04" in text


def test_worklist_exports_have_no_identifiers(tmp_path: Path, make_content: Callable[..., Any]) -> None:
    content = make_content(deidentify=True)
    pdf = export_worklist_pdf([content, content], tmp_path / "worklist.pdf")
    assert found(pdf_text(pdf)) == [] and found(pdf_streams(pdf.read_bytes())) == []
    row = worklist_row(content.meta.source, content.prediction, content.meta)
    csv_path = export_worklist_csv([row], tmp_path / "worklist.csv", deidentify=True)
    assert found(csv_path.read_bytes()) == []
    control = export_worklist_csv([row], tmp_path / "control.csv", deidentify=False)
    assert PLANTED_ID in control.read_text()


def test_secondary_capture_from_an_identified_source_carries_no_identifiers(
    tmp_path: Path, make_content: Callable[..., Any]
) -> None:
    from pydicom import dcmread

    source = write_source_dicom(tmp_path / "source.dcm")
    original = dcmread(source)
    content = make_content(deidentify=True)
    path = export_secondary_capture(content, source, tmp_path / "sc.dcm")
    assert found(path.read_bytes()) == []
    assert found(dicom_values(path)) == []
    sc = dcmread(path)
    assert sc.PatientIdentityRemoved == "YES"
    uids = {sc.StudyInstanceUID, sc.SeriesInstanceUID, sc.SOPInstanceUID}
    assert not uids & {original.StudyInstanceUID, original.SeriesInstanceUID, original.SOPInstanceUID}
    blank = dcmread(export_secondary_capture(anonymous(content), None, tmp_path / "blank.dcm"))
    assert np.array_equal(sc.pixel_array, blank.pixel_array)


def test_secondary_capture_control_keeps_the_patient_when_asked(
    tmp_path: Path, make_content: Callable[..., Any]
) -> None:
    source = write_source_dicom(tmp_path / "source.dcm")
    path = export_secondary_capture(make_content(deidentify=False), source, tmp_path / "sc.dcm")
    assert "Quillfeather" in found(dicom_values(path))
