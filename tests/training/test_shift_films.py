"""tools/shift_films.py: a changed film keeps its format, its photometric interpretation and
its truth (boxes follow resampling and padding, the pixel spacing follows resampling)."""
from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from valvereader.io import load
from valvereader.phantoms.dicom_out import DicomSpec, write_dicom

SCRIPT = Path(__file__).resolve().parents[2] / "tools" / "shift_films.py"


def _tool():
    spec = importlib.util.spec_from_file_location("shift_films", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _films(folder: Path) -> np.ndarray:
    folder.mkdir()
    display = np.tile(np.linspace(0.1, 0.9, 120, dtype=np.float32), (100, 1))
    display[40:60, 50:70] = 1.0  # the "valve"
    spec = DicomSpec(patient_id="P", patient_name="A^B", patient_sex="O", birth_date="19700101",
                     study_date="20260101", study_seed="s", instance=1, view="lateral",
                     photometric="MONOCHROME1", pixel_spacing_mm=0.2)
    write_dicom(folder / "a.dcm", display, spec)
    Image.fromarray(np.rint(display * 255).astype(np.uint8)).save(folder / "b.png")
    with (folder / "ground_truth.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "kind", "box_x0", "box_y0", "box_x1", "box_y1"])
        writer.writerow(["a.dcm", "valve", 50, 40, 70, 60])
        writer.writerow(["b.png", "none", "", "", "", ""])
    return display


def test_rewrite_alone_changes_nothing(tmp_path):
    display = _films(tmp_path / "films")
    _tool().make(tmp_path / "films", tmp_path / "out", ["none"])
    again = load(tmp_path / "out" / "none" / "a.dcm")
    assert again.meta.photometric == "MONOCHROME1"
    assert np.abs(again.pixels - display).max() < 2 / 4095  # shown right side up, as before
    assert np.array_equal(np.asarray(Image.open(tmp_path / "out" / "none" / "b.png")),
                          np.asarray(Image.open(tmp_path / "films" / "b.png")))


@pytest.mark.parametrize("shift, zoom, pad", [("finer", 1.5, 0), ("coarser", 0.7, 0), ("wider_field", 1.0, 24)])
def test_boxes_and_spacing_follow_the_pixels(tmp_path, shift, zoom, pad):
    _films(tmp_path / "films")
    _tool().make(tmp_path / "films", tmp_path / "out", [shift])
    folder = tmp_path / "out" / shift
    film = load(folder / "a.dcm")
    assert film.shape == (round(100 * zoom) + 2 * pad, round(120 * zoom) + 2 * pad)
    assert float(film.meta.pixel_spacing.row_mm) == pytest.approx(0.2 / zoom, rel=1e-4)
    rows = list(csv.DictReader((folder / "ground_truth.csv").open()))
    x0, y0, x1, y1 = (int(rows[0][k]) for k in ("box_x0", "box_y0", "box_x1", "box_y1"))
    assert (x0, y0, x1, y1) == (round(50 * zoom) + pad, round(40 * zoom) + pad, round(70 * zoom) + pad, round(60 * zoom) + pad)
    assert film.pixels[(y0 + y1) // 2, (x0 + x1) // 2] > 0.95  # the valve is still inside its box
    assert rows[1]["box_x0"] == ""
    assert Image.open(folder / "b.png").size == (round(120 * zoom) + 2 * pad, round(100 * zoom) + 2 * pad)


def test_tone_changes_keep_bone_white(tmp_path):
    display = _films(tmp_path / "films")
    _tool().make(tmp_path / "films", tmp_path / "out", ["gamma_dark", "flat"])
    for shift in ("gamma_dark", "flat"):
        film = load(tmp_path / "out" / shift / "a.dcm").pixels
        assert film[50, 60] > film[50, 5]  # the valve stays brighter than the dark end
        assert not np.allclose(film, display, atol=0.01)
