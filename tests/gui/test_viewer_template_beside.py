"""The template beside the image at the default window size, and its large window following
the study on screen and closing with the main window."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt
from viewer_fakes import FakePredictor, skull_image, write_png

pytestmark = pytest.mark.gui
TIMEOUT = 15000


class TwoValves(FakePredictor):
    """study0 reads as the second valve of the catalogue, study1 as the third."""

    def predict(self, radiograph, with_heatmap: bool = True, **options):
        prediction = super().predict(radiograph, with_heatmap, **options)
        if "study1" in Path(radiograph.meta.source).name:
            prediction.probabilities = np.roll(prediction.probabilities, 1)
        return prediction


def test_the_diagram_is_readable_beside_the_image_at_the_default_size(qtbot, make_window, batch_folder: Path) -> None:
    window = make_window()
    window.resize(1600, 1000)  # the window's size at first start (window_settings.restore_window)
    window.open_paths([batch_folder])
    qtbot.waitUntil(lambda: window.is_settled() and window.template_panel.diagram.path is not None, timeout=TIMEOUT)
    qtbot.wait(100)
    diagram = window.template_panel.diagram
    assert diagram.isVisible() and window.canvas.isVisible() and window.worklist_dock.isVisible()
    # the diagrams are drawn 640 × 470 and their labels stay legible from about 420 px wide
    shown = diagram.renderer().viewBoxF().size().scaled(diagram.size().toSizeF(), Qt.AspectRatioMode.KeepAspectRatio)
    assert shown.width() >= 420, shown
    assert window.canvas.width() >= 400  # the image keeps the middle
    canvas_right = window.canvas.mapTo(window, QPoint(window.canvas.width(), 0)).x()
    assert diagram.mapTo(window, QPoint(0, 0)).x() >= canvas_right  # beside it, not over it


def test_the_large_diagram_follows_the_study_and_closes_with_the_window(qtbot, make_window, tmp_path: Path) -> None:
    for i in range(2):
        write_png(tmp_path / f"study{i}.png", skull_image(valve_at=(150 + 30 * i, 110), seed=i))
    window = make_window(TwoValves())
    window.open_paths([tmp_path / "study0.png", tmp_path / "study1.png"])
    qtbot.waitUntil(lambda: all(s.analysed for s in window.worklist.studies) and window.is_settled(), timeout=TIMEOUT)
    diagram = window.template_panel.diagram
    first = diagram.path
    qtbot.mouseClick(diagram, Qt.MouseButton.LeftButton)
    large = diagram.large
    assert large is not None and large.isVisible() and first.parent.name in large.windowTitle()
    window.go_to(1)
    qtbot.waitUntil(lambda: window.is_settled() and diagram.path not in (None, first), timeout=TIMEOUT)
    assert large.isVisible() and diagram.path.parent.name in large.windowTitle()
    assert first.parent.name not in large.windowTitle()
    window.close()
    assert not large.isVisible()
