"""Exports at the film's resolution, and the worklist PDF's pages: a valve crop on each, the
worklist's study numbers, a size that a PACS or an e-mail takes."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image
from viewer_fakes import skull_image, write_png

pytestmark = pytest.mark.gui
TIMEOUT = 30000
needs_poppler = pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils not installed")


def opened(qtbot, make_window, paths: list[Path]):
    window = make_window()
    window.open_paths(paths)
    qtbot.waitUntil(lambda: bool(window.worklist.studies) and all(s.analysed for s in window.worklist.studies)
                    and window.is_settled(), timeout=TIMEOUT)
    return window


def test_png_and_secondary_capture_carry_a_large_film_at_its_own_resolution(qtbot, make_window,
                                                                              tmp_path: Path) -> None:
    film = write_png(tmp_path / "film.png", skull_image(size=(2400, 1900), valve_at=(900, 600)))
    window = opened(qtbot, make_window, [film])
    canvas = window.canvas
    assert canvas.current_zoom() < 0.5  # the film is shown far smaller than its pixels
    png = window.exports.png(tmp_path / "view.png")
    with Image.open(png) as image:
        scale = image.width / canvas.width()
        shown = canvas.current_zoom() * scale  # film pixels per exported pixel, 1 = its own
        assert shown >= 0.99 or max(image.size) >= 4990
        assert image.height > canvas.height() * scale  # the footer below the view
    import pydicom

    capture = pydicom.dcmread(window.exports.secondary_capture(tmp_path / "view.dcm"))
    assert max(capture.Rows, capture.Columns) >= 2000


def test_a_small_film_is_exported_2000_pixels_on_its_long_side(qtbot, make_window, tmp_path: Path) -> None:
    window = opened(qtbot, make_window, [write_png(tmp_path / "small.png", skull_image())])
    view = window.exports.view_rgb()
    assert max(view.shape[:2]) >= 2000


@needs_poppler
def test_worklist_pdf_pages_carry_the_valve_and_the_worklist_study_number(qtbot, make_window, tmp_path: Path) -> None:
    folder = tmp_path / "batch"
    folder.mkdir()
    for i in range(5):
        write_png(folder / f"study{i}.png", skull_image(size=(900, 720), valve_at=(300 + 20 * i, 200), seed=i))
    (folder / "study2.png").write_bytes(b"not an image")  # an error row: numbers must still match the CSV
    window = opened(qtbot, make_window, [folder])
    out = tmp_path / "worklist.pdf"
    window.exports.worklist_pdf(out)
    qtbot.waitUntil(out.exists, timeout=TIMEOUT)
    text = subprocess.run(["pdftotext", "-layout", str(out), "-"], capture_output=True, check=True).stdout.decode()
    pages = text.split("\f")[:-1]
    assert len(pages) == 4
    assert "no valve crop" not in text
    numbers = [int(re.search(r"Study (\d+) of 5", page).group(1)) for page in pages]
    assert numbers == [1, 2, 4, 5]  # study 3 (the broken file) is in the CSV, not in the PDF
    csv_path = window.exports.worklist_csv(tmp_path / "worklist.csv")
    csv_rows = [line for line in csv_path.read_text().splitlines()[1:] if not line.startswith("#")]
    assert csv_rows[2].startswith("study 3,") and "Error" not in csv_rows[0]
    # every page holds its crop as a picture: two images per page
    images = subprocess.run(["pdfimages", "-list", str(out)], capture_output=True, check=True).stdout.decode()
    assert len([line for line in images.splitlines()[2:] if line.strip()]) == 8
    assert out.stat().st_size < 4 * 400_000  # pictures as JPEG: well under 1 MB a page


@needs_poppler
def test_a_study_with_no_valve_found_is_exported_as_such(qtbot, make_window, tmp_path: Path) -> None:
    from dataclasses import replace

    from viewer_fakes import FakePredictor

    from valvereader.prediction import Verdict

    class FindsNone(FakePredictor):
        def predict(self, radiograph, with_heatmap: bool = True, **options):
            found = super().predict(radiograph, with_heatmap, **options)
            return replace(found, verdict=Verdict.NO_VALVE, verdict_reason="no_valve", box=None, box_source="attention")

    window = make_window(FindsNone())
    window.open_paths([write_png(tmp_path / "film.png", skull_image())])
    qtbot.waitUntil(window.is_settled, timeout=TIMEOUT)
    assert window.template_panel.valve_id is None  # no template for a valve not found
    pdf = window.exports.pdf(tmp_path / "none.pdf")
    text = " ".join(subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, check=True).stdout.decode().split())
    assert "No valve found" in text and "valve-region tool (V)" in text and "not for diagnostic use" in text
    assert "CODMAN CERTAS Plus" not in text  # the fake's top class is never named
    with Image.open(window.exports.png(tmp_path / "none.png")) as image:
        assert image.text["Verdict"] == "No valve found"  # type: ignore[attr-defined]
