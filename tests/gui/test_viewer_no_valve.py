""""No valve found" on screen: the result panel shows no probability bars and no numbers but the
plain words why; the film carries no attention map and no box; the zoomed-valve pane (with its
dial) and the template pane say there is no valve to read and what to do next. The same on the
worklist PDF's pages: no overlay, no valve crop."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from viewer_fakes import FakePredictor, skull_image, write_png

from valvereader.prediction import REASON_NO_VALVE, REASON_NOT_RADIOGRAPH, Verdict

pytestmark = pytest.mark.gui
TIMEOUT = 30000
needs_poppler = pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils not installed")


class FindsNone(FakePredictor):
    """The fake's result turned into "no valve": the attention map stays (as the predictor's
    does), the box goes for ``no_valve`` and stays for ``not_radiograph`` (as cap_for_modality
    leaves it)."""

    def __init__(self, reason: str = REASON_NO_VALVE) -> None:
        super().__init__()
        self.reason = reason

    def predict(self, radiograph, with_heatmap: bool = True, **options):
        found = super().predict(radiograph, with_heatmap, **options)
        box = found.box if self.reason == REASON_NOT_RADIOGRAPH else None
        return replace(found, verdict=Verdict.NO_VALVE, verdict_reason=self.reason, box=box)


def shown_none(qtbot, make_window, tmp_path: Path, reason: str = REASON_NO_VALVE):
    window = make_window(FindsNone(reason))
    window.open_paths([write_png(tmp_path / "film.png", skull_image())])
    qtbot.waitUntil(lambda: window.is_settled() and window.worklist.current_study.prediction is not None,
                    timeout=TIMEOUT)
    return window


@pytest.mark.parametrize("reason", [REASON_NO_VALVE, REASON_NOT_RADIOGRAPH])
def test_no_valve_found_shows_no_bars_no_numbers_but_why(qtbot, make_window, tmp_path: Path, reason: str) -> None:
    window = shown_none(qtbot, make_window, tmp_path, reason)
    panel = window.result_panel
    assert panel.badge.text() == "No valve found"
    assert "No valve found" in panel.valve.text()
    assert panel._bar_widgets == [] and panel.bars.count() == 0  # no probability bars
    assert panel.details_button.isHidden() and panel.numbers.isHidden() and panel.numbers.text() == ""
    assert panel.why.isVisible()
    why = panel.why.text()
    assert ("not a radiograph of the kind the model reads" if reason == REASON_NOT_RADIOGRAPH
            else "nothing on the film was valve-like enough") in why
    assert "%" not in why and "%" not in panel.valve.text()


@pytest.mark.parametrize("reason", [REASON_NO_VALVE, REASON_NOT_RADIOGRAPH])
def test_no_valve_found_draws_no_attention_map_and_no_box(qtbot, make_window, tmp_path: Path, reason: str) -> None:
    window = shown_none(qtbot, make_window, tmp_path, reason)
    prediction = window.worklist.current_study.prediction
    assert prediction.heatmap is not None  # the model looked somewhere ...
    assert window.view.show_heatmap and window.view.show_box
    assert window.canvas._overlay is None  # ... but nothing of it is drawn
    assert window.canvas.valve_box() is None
    view = window.exports.view_rgb()
    colour = (view[..., 0].astype(int) - view[..., 2].astype(int))
    assert np.abs(colour).max() < 60 or _only_text_colours(view)  # a grey film: no overlay, no cyan box


def _only_text_colours(view: np.ndarray) -> bool:
    """The viewport's own text (the orange decision-support line) is the only colour left: no
    cyan of the valve box and no purple of the attention ramp."""
    r, g, b = (view[..., i].astype(int) for i in range(3))
    cyan = (b > 200) & (g > 180) & (r < 120)
    purple = (b > r + 40) & (g < 60)
    return not cyan.any() and not purple.any()


def test_zoomed_valve_dial_and_template_say_there_is_no_valve_to_read(qtbot, make_window, tmp_path: Path) -> None:
    window = shown_none(qtbot, make_window, tmp_path)
    assert not window.valve_view.has_valve()  # no zoomed "valve", so no dial on one
    assert "No valve to read" in window.valve_view.empty_text and "(V)" in window.valve_view.empty_text
    assert window.template_panel.valve_id is None
    text = window.template_panel.sections.toPlainText()
    assert "No valve to read" in text and "valve-region tool (V)" in text
    assert window.template_panel.no_diagram.text() == "No valve to read: no template"


def test_a_valve_found_on_the_next_film_brings_bars_box_and_zoom_back(qtbot, make_window, tmp_path: Path) -> None:
    class NoneOnFirst(FakePredictor):
        def predict(self, radiograph, with_heatmap: bool = True, **options):
            found = super().predict(radiograph, with_heatmap, **options)
            if Path(radiograph.meta.source).name == "a.png":
                return replace(found, verdict=Verdict.NO_VALVE, verdict_reason=REASON_NO_VALVE, box=None)
            return found

    window = make_window(NoneOnFirst())
    paths = [write_png(tmp_path / "a.png", skull_image()), write_png(tmp_path / "b.png", skull_image(seed=1))]
    window.open_paths(paths)
    qtbot.waitUntil(lambda: all(s.analysed for s in window.worklist.studies) and window.is_settled(), timeout=TIMEOUT)
    index = {s.path.name: i for i, s in enumerate(window.worklist.studies)}
    window.go_to(index["a.png"])
    qtbot.waitUntil(lambda: window.is_settled() and window.worklist.current == index["a.png"], timeout=TIMEOUT)
    panel = window.result_panel
    assert not panel._bar_widgets and panel.why.isVisible() and window.canvas.valve_box() is None
    window.go_to(index["b.png"])
    qtbot.waitUntil(lambda: window.is_settled() and window.worklist.current == index["b.png"], timeout=TIMEOUT)
    assert panel._bar_widgets and not panel.why.isVisible() and panel.details_button.isVisible()
    assert window.canvas._overlay is not None and window.canvas.valve_box() is not None
    assert window.valve_view.has_valve()
    assert not _only_text_colours(window.exports.view_rgb())  # the overlay and the box are drawn again


@needs_poppler
def test_worklist_pdf_page_of_a_no_valve_film_has_no_overlay_crop_or_probabilities(qtbot, make_window,
                                                                                   tmp_path: Path) -> None:
    window = shown_none(qtbot, make_window, tmp_path)
    out = tmp_path / "worklist.pdf"
    window.exports.worklist_pdf(out)
    qtbot.waitUntil(out.exists, timeout=TIMEOUT)
    text = " ".join(subprocess.run(["pdftotext", str(out), "-"], capture_output=True, check=True).stdout.decode().split())
    assert "No valve found" in text and "not for diagnostic use" in text
    assert "model attention" not in text and "%" not in text
    images = subprocess.run(["pdfimages", "-list", str(out)], capture_output=True, check=True).stdout.decode()
    assert len([line for line in images.splitlines()[2:] if line.strip()]) == 1  # the film only, no valve crop


def test_off_screen_pages_draw_no_overlay_box_or_crop_for_no_valve() -> None:
    from valvereader.catalogue import VALVE_IDS
    from valvereader.geometry import Box
    from valvereader.gui.models.export import valve_crop_rgb, view_overlays
    from valvereader.prediction import Prediction

    p = np.full(len(VALVE_IDS), 1 / len(VALVE_IDS), dtype=np.float32)
    heatmap = np.ones((40, 50), dtype=np.float32)
    named = Prediction(VALVE_IDS, p, Verdict.REVIEW, box=Box(5, 5, 15, 15), heatmap=heatmap)
    none = replace(named, verdict=Verdict.NO_VALVE, verdict_reason=REASON_NOT_RADIOGRAPH)
    pixels = np.zeros((40, 50), dtype=np.float32)
    assert view_overlays(named)[0] is heatmap and view_overlays(named)[1] == (5, 5, 15, 15)
    assert view_overlays(none) == (None, None) and valve_crop_rgb(pixels, none) is None
    mine = replace(none, box_source="reader")  # the reader's own region stays marked
    assert view_overlays(mine) == (None, (5, 5, 15, 15))
