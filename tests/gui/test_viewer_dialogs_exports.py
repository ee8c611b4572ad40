"""Help dialogs, de-identified exports, the worklist PDF, and the Qt-free display models."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication
from viewer_fakes import skull_image, write_png

from valvereader import __version__
from valvereader.gui.about import TextDialog
from valvereader.gui.models import render
from valvereader.gui.models.state import ViewState

pytestmark = pytest.mark.gui


def open_dialogs() -> list[TextDialog]:
    return [w for w in QApplication.topLevelWidgets() if isinstance(w, TextDialog) and w.isVisible()]


def test_about_shows_version_model_card_licences_and_attribution(qtbot, make_window, tmp_path: Path) -> None:
    window = make_window()
    window.open_paths([write_png(tmp_path / "skull.png", skull_image())])
    qtbot.waitUntil(window.is_settled, timeout=15000)
    window.actions_by_name["about"].trigger()
    text = open_dialogs()[-1].text.toPlainText()
    for expected in (__version__, "fake-model", "CC BY 4.0", "Rhomberg", "LGPL", "not for diagnostic use"):
        assert expected in text


def test_question_mark_opens_the_shortcut_sheet_listing_every_key(qtbot, make_window) -> None:
    window = make_window()
    qtbot.keyClick(window, Qt.Key.Key_Question, Qt.KeyboardModifier.ShiftModifier)
    qtbot.waitUntil(lambda: bool(open_dialogs()), timeout=5000)
    text = open_dialogs()[-1].text.toPlainText()
    for key in ("Shift+H", "Shift+V", "Accept result", "Reject result", "Model attention overlay", "Ctrl+0"):
        assert key in text


def test_deidentified_export_leaves_out_the_corner_text(qtbot, make_window, tmp_path: Path) -> None:
    window = make_window()
    window.open_paths([write_png(tmp_path / "skull.png", skull_image())])
    qtbot.waitUntil(window.is_settled, timeout=15000)
    window.canvas.radiograph.meta.patient_name = "Doe^Jane"
    window.settings.deidentify_exports = False
    with_text = window.exports.view_rgb()
    window.settings.deidentify_exports = True
    without = window.exports.view_rgb()
    corner = (slice(0, 40), slice(0, 200))
    assert with_text[corner].max() > without[corner].max()
    assert window.view.show_corner_text  # the screen itself is unchanged


def test_worklist_pdf_has_a_page_per_analysed_study(qtbot, make_window, batch_folder: Path, tmp_path: Path) -> None:
    window = make_window()
    window.open_paths([batch_folder])
    qtbot.waitUntil(lambda: bool(window.worklist.studies) and all(s.analysed for s in window.worklist.studies),
                    timeout=15000)
    out = tmp_path / "worklist.pdf"
    window.exports.worklist_pdf(out)
    qtbot.waitUntil(out.exists, timeout=30000)
    data = out.read_bytes()
    assert data.startswith(b"%PDF")
    assert len(re.findall(rb"/Type\s*/Page(?!s)", data)) == 4


def test_window_lookup_table_maps_the_window_to_black_and_white() -> None:
    lut = render.window_lut(0.5, 0.5)
    assert lut[0] == 0 and lut[-1] == 255
    assert lut[len(lut) // 2] in (127, 128)
    assert render.window_lut(0.5, 0.5, invert=True)[0] == 255


def test_attention_overlay_is_transparent_where_attention_is_low() -> None:
    heatmap = np.zeros((10, 10), dtype=np.float32)
    heatmap[5, 5] = 1.0
    rgba = render.attention_rgba(heatmap, opacity=0.5)
    assert rgba[0, 0, 3] == 0
    assert rgba[5, 5, 3] == round(0.5 * 255)


def test_view_state_reports_each_change_once() -> None:
    view = ViewState()
    seen: list[str] = []
    view.changed.connect(seen.append)
    view.invert = True
    view.invert = True
    view.rotate(-90)
    assert seen == ["invert", "rotation"]
    assert view.rotation == 270


def test_zoomed_view_falls_back_to_the_attention_peak_when_the_box_is_not_valve_sized() -> None:
    heatmap = np.zeros((50, 50), dtype=np.float32)
    heatmap[10, 40] = 1.0
    assert render.zoom_box((10, 10, 30, 30), heatmap, (1000, 1000)) == (10, 10, 30, 30)
    x0, y0, x1, y1 = render.zoom_box((0, 0, 1000, 900), heatmap, (1000, 1000))
    assert (x0 + x1) / 2 == pytest.approx(810, abs=1) and (y0 + y1) / 2 == pytest.approx(210, abs=1)
    assert render.zoom_box(None, None, (100, 100)) is None


def test_zoomed_view_moves_to_the_attended_part_of_a_loose_box() -> None:
    # A located box three times the valve (a pasted crop's rectangle): the zoom, and with it
    # the reading dial drawn on its centre, goes to the part the model attends to.
    heatmap = np.zeros((100, 100), dtype=np.float32)  # the image at step 10
    heatmap[40:45, 40:45] = 1.0  # image pixels 400-450
    heatmap[20, 90] = 5.0  # a stronger peak outside the box does not count
    x0, y0, x1, y1 = render.zoom_box((100, 100, 500, 500), heatmap, (1000, 1000))
    assert (x0 + x1) / 2 == pytest.approx(425, abs=1) and (y0 + y1) / 2 == pytest.approx(425, abs=1)
    assert x1 - x0 == pytest.approx(1.25 * 50, abs=2)
    # Attention over most of the box: the box stays (a tight box around a valve).
    heatmap[10:50, 10:50] = 1.0
    assert render.zoom_box((100, 100, 500, 500), heatmap, (1000, 1000)) == (100, 100, 500, 500)
    # No attention inside the box, or no heatmap: the box.
    empty = np.zeros((100, 100), dtype=np.float32)
    assert render.zoom_box((100, 100, 500, 500), empty, (1000, 1000)) == (100, 100, 500, 500)
    assert render.zoom_box((100, 100, 500, 500), None, (1000, 1000)) == (100, 100, 500, 500)


def test_secondary_capture_export_writes_a_dicom_file_of_the_view(qtbot, make_window, tmp_path: Path) -> None:
    import pydicom

    window = make_window()
    window.open_paths([write_png(tmp_path / "skull.png", skull_image())])
    qtbot.waitUntil(window.is_settled, timeout=15000)
    out = window.exports.secondary_capture(tmp_path / "sc.dcm")
    assert out is not None
    dataset = pydicom.dcmread(out)
    assert dataset.SOPClassUID == "1.2.840.10008.5.1.4.1.1.7"  # Secondary Capture Image Storage
    assert dataset.Columns >= window.canvas.width()


def test_about_says_first_what_the_shipped_card_measured(tmp_path: Path) -> None:
    """Help ▸ About opens with the card's figures in plain words: held-out accuracy, the
    cross-validation, and the honest unseen-valve AUROC with what it means; a card without
    them gets no such paragraph (nothing invented)."""
    import json

    from valvereader.gui.about import about_html, card_summary
    from valvereader.paths import weights_dir

    shipped = weights_dir() / "identifier.json"
    if not shipped.exists():
        pytest.skip("no shipped identifier card")
    card = json.loads(shipped.read_text())
    summary = card_summary(card)
    honest = card["openset"]["auroc_loco_honest"]
    assert f"{card['metrics']['accuracy']:.1%}" in summary and f"{card['metrics']['test_n']} held-out" in summary
    assert f"AUROC of {honest['mean']:.2f} ± {honest['sd']:.2f}" in summary and "hint, not a guarantee" in summary
    assert summary in about_html(card, "identifier")
    assert card_summary({"name": "x", "metrics": {"accuracy": None}}) == ""
    without_honest = {**card, "openset": {}}
    assert "AUROC" not in card_summary(without_honest) and "held-out" in card_summary(without_honest)
