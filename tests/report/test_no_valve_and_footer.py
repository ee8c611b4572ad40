"""Every export says "No valve found" plainly when the model names no valve (no valve name, no
percentage, no template) and says what to do next; the PNG footer stays inside the picture."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image, ImageFont

from valvereader import DISCLAIMER
from valvereader.catalogue import display_name
from valvereader.prediction import Verdict
from valvereader.report import (
    export_pdf,
    export_png,
    export_secondary_capture,
    export_worklist_csv,
    worklist_row,
)
from valvereader.report.content import NO_VALVE_NEXT
from valvereader.report.fonts import font_path
from valvereader.report.png import footer_lines, render_with_footer, wrap_text

needs_poppler = pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils not installed")


@pytest.fixture
def no_valve(make_content: Callable[..., object], prediction):
    found_none = replace(prediction, verdict=Verdict.NO_VALVE, box=None, box_source="attention")
    return make_content(prediction=found_none, template_svg=None, template_sections=[], reading=None, review=None)


def names_of_valves(prediction) -> list[str]:
    return [display_name(valve_id)[:18] for valve_id in prediction.valve_ids]


@needs_poppler
def test_pdf_says_no_valve_found_and_what_to_do_next_without_naming_a_valve(tmp_path: Path, no_valve) -> None:
    path = export_pdf(no_valve, tmp_path / "none.pdf")
    text = " ".join(subprocess.run(["pdftotext", str(path), "-"], capture_output=True, check=True).stdout.decode().split())
    assert "No valve found" in text
    assert "valve-region tool (V)" in text and "read it by hand" in text
    assert " ".join(DISCLAIMER.split()) in text
    for name in names_of_valves(no_valve.prediction):
        assert name not in text
    assert "HOW TO READ IT" not in text and "82%" not in text and "82.0%" not in text


@needs_poppler
def test_a_valve_named_page_still_carries_its_valve_and_template(tmp_path: Path, make_content) -> None:
    content = make_content()
    text = " ".join(subprocess.run(["pdftotext", str(export_pdf(content, tmp_path / "named.pdf")), "-"],
                                   capture_output=True, check=True).stdout.decode().split())
    assert "No valve found" not in text and NO_VALVE_NEXT.split(";")[0] not in text
    assert display_name(content.prediction.predicted)[:18] in text and "HOW TO READ IT" in text


def test_png_footer_and_text_chunk_say_no_valve_found(tmp_path: Path, no_valve) -> None:
    lines = footer_lines(no_valve)
    assert lines[0].startswith("No valve found") and "valve-region tool (V)" in lines[0]
    assert DISCLAIMER in lines[1]
    for name in names_of_valves(no_valve.prediction):
        assert name not in " ".join(lines)
    with Image.open(export_png(no_valve, tmp_path / "none.png")) as image:
        assert image.text["Verdict"] == "No valve found"  # type: ignore[attr-defined]
        assert image.text["Disclaimer"] == DISCLAIMER  # type: ignore[attr-defined]


def test_secondary_capture_comment_says_no_valve_found(tmp_path: Path, no_valve) -> None:
    capture = pydicom.dcmread(export_secondary_capture(no_valve, None, tmp_path / "none.dcm"))
    comment = str(capture.ImageComments)
    assert comment.startswith("No valve found.") and "valve-region tool (V)" in comment
    assert DISCLAIMER in comment
    for name in names_of_valves(no_valve.prediction):
        assert name not in comment


def test_worklist_csv_row_names_no_valve_and_no_confidence(tmp_path: Path, no_valve) -> None:
    row = worklist_row("a.dcm", prediction=no_valve.prediction)
    assert (row.predicted, row.predicted_name, row.confidence) == ("", "", "")
    assert row.verdict == "No valve found" and "(V)" in row.verdict_why
    text = export_worklist_csv([row], tmp_path / "w.csv").read_text()
    assert "No valve found" in text and DISCLAIMER in text
    assert no_valve.prediction.predicted not in text


def test_footer_wraps_inside_a_narrow_picture(make_content: Callable[..., object]) -> None:
    narrow = np.full((300, 260, 3), 90, dtype=np.uint8)
    content = make_content(view_rgb=narrow, model_name="a very long model name " * 3)
    pixels = render_with_footer(content)
    assert pixels.shape[1] == 260 and pixels.shape[0] > 300 + 4 * 12  # several lines, not two cut ones
    strip = pixels[300:]
    background = np.array([18, 18, 20], dtype=np.uint8)
    assert (strip[:, -10:] == background).all()  # no text runs off the right edge
    assert (strip[-4:] == background).all()  # nor off the bottom
    assert (strip != background).any()


def test_wrap_text_keeps_every_word_within_the_width() -> None:
    path = font_path()
    font = ImageFont.truetype(str(path), 14) if path else ImageFont.load_default(14)
    text = "Decision support only – not for diagnostic use.  model-name-without-any-spaces-at-all-0.3.1 · 2026"
    lines = wrap_text(text, font, 120)
    assert len(lines) > 2
    assert all(font.getlength(line) <= 120 for line in lines)
    assert "".join(lines).replace(" ", "") == text.replace(" ", "")


def pdf_text(path: Path) -> str:
    return " ".join(subprocess.run(["pdftotext", str(path), "-"], capture_output=True, check=True).stdout.decode().split())


@needs_poppler
@pytest.mark.parametrize("reason", ["no_valve", "not_radiograph"])
def test_pdf_of_no_valve_has_no_probability_rows_overlay_or_valve_crop(tmp_path: Path, make_content, prediction,
                                                                        reason: str) -> None:
    # as a caller might pass it: the overlay flag set and a crop of wherever the model looked
    found_none = replace(prediction, verdict=Verdict.NO_VALVE, verdict_reason=reason)
    content = make_content(prediction=found_none, template_svg=None, template_sections=[], reading=None, review=None,
                           heatmap_shown=True)
    assert content.heatmap_shown is False  # a no-valve view carries no attention overlay
    path = export_pdf(content, tmp_path / "none.pdf")
    text = pdf_text(path)
    assert "No valve found" in text and "Not given" in text and "no valve to read" in text
    assert "%" not in text  # not one valve's probability, nor the top one
    assert "model attention" not in text and "Where the model looked" not in text
    assert "the region the locator found" not in text
    assert ("is not a plain X-ray of the kind the model reads" if reason == "not_radiograph"
            else "found nothing valve-like enough") in text
    assert "valve-region tool (V)" in text and " ".join(DISCLAIMER.split()) in text
    images = subprocess.run(["pdfimages", "-list", str(path)], capture_output=True, check=True).stdout.decode()
    assert len([line for line in images.splitlines()[2:] if line.strip()]) == 1  # the film only, no crop


def test_png_footer_of_no_valve_names_no_overlay(make_content, prediction) -> None:
    found_none = replace(prediction, verdict=Verdict.NO_VALVE, verdict_reason="no_valve", box=None)
    lines = footer_lines(make_content(prediction=found_none, heatmap_shown=True, template_svg=None))
    assert "model attention" not in lines[0] and "%" not in " ".join(lines)
    assert "valve-region tool (V)" in lines[0] and DISCLAIMER in lines[1]


def test_the_region_read_says_the_whole_image_named_the_valve_when_the_box_is_the_located_one(
        make_content: Callable[..., object], prediction) -> None:
    whole = make_content(prediction=replace(prediction, pipeline="whole-image", box_source="located"))
    located = make_content(prediction=replace(prediction, pipeline="locate+identify", box_source="located"))
    assert whole.region_read().startswith("the whole image")
    assert located.region_read() == "the region the locator found"


@needs_poppler
def test_an_unknown_valve_page_names_the_closest_valve_only_as_such(tmp_path: Path, make_content, prediction) -> None:
    unknown = make_content(prediction=replace(prediction, verdict=Verdict.UNKNOWN, verdict_reason="between_valves"))
    path = export_pdf(unknown, tmp_path / "unknown.pdf")
    text = " ".join(subprocess.run(["pdftotext", str(path), "-"], capture_output=True, check=True).stdout.decode().split())
    assert f"Closest known: {display_name(prediction.predicted)}" in text
    assert "Unknown valve" in text
    # its probability is the closest valve's: never given as the result's confidence
    assert "Confidence" not in text and f"{prediction.confidence:.1%}, the closest valve's: it does not apply" in text
    assert "none of these applies" in text.lower()
    assert not re.search(r"Unknown valve \d+%", text)


@needs_poppler
def test_a_named_valve_page_gives_its_confidence_beside_the_verdict(tmp_path: Path, make_content, prediction) -> None:
    text = pdf_text(export_pdf(make_content(prediction=prediction), tmp_path / "named.pdf"))
    assert f"{prediction.verdict.label} {prediction.confidence:.0%}" in text
    assert "Confidence" in text and f"{prediction.confidence:.1%}" in text
    assert "does not apply" not in text and "none of these applies" not in text.lower()


def test_the_one_line_result_of_an_unknown_valve_gives_the_closest_valve_only_as_a_hint(make_content, prediction) -> None:
    unknown = make_content(prediction=replace(prediction, verdict=Verdict.UNKNOWN))
    line = unknown.result_line()
    assert line.startswith("Unknown valve (closest known: ") and display_name(prediction.predicted) in line
    assert footer_lines(unknown)[0].startswith("Unknown valve (closest known: ")
