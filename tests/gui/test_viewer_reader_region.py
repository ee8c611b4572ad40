"""The reader in control of the valve region: a rectangle drawn with the region tool (V) or a
double-click is read instead of the located box; everything on screen follows and says so; the
region is saved with the decision, restored on reopening, and undone by "back to the located box"."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, QPointF, QRect, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QStyleOptionViewItem
from viewer_fakes import FakePredictor

from valvereader.catalogue import VALVE_IDS
from valvereader.geometry import Box
from valvereader.gui.models.boxes import VALVE_SQUARE_MM, valve_square
from valvereader.gui.models.result import READER_REGION_TEXT
from valvereader.gui.models.state import ReviewDecision
from valvereader.gui.models.worklist import REGION_MARK
from valvereader.radiograph import PixelSpacing
from valvereader.review import ReviewStore

pytestmark = pytest.mark.gui
TIMEOUT = 15000


def batch_done(qtbot, window) -> None:
    qtbot.waitUntil(lambda: bool(window.worklist.studies) and all(s.analysed for s in window.worklist.studies),
                    timeout=TIMEOUT)
    qtbot.waitUntil(window.is_settled, timeout=TIMEOUT)


def on_widget(window, x: float, y: float) -> QPoint:
    return window.canvas.transform().map(QPointF(x, y)).toPoint()


def drag(window, start: QPoint, end: QPoint) -> None:
    canvas = window.canvas
    QTest.mousePress(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, start)
    QTest.mouseMove(canvas, (start + end) / 2)
    QTest.mouseMove(canvas, end)
    QTest.mouseRelease(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, end)


def read_by_reader(qtbot, window) -> None:
    qtbot.waitUntil(lambda: window.worklist.current_study.region_by_reader and window.is_settled(), timeout=TIMEOUT)


def close_to(box: Box, expected: tuple[int, int, int, int], slack: int = 3) -> bool:
    return all(abs(a - b) <= slack for a, b in zip(box.as_tuple(), expected))


@pytest.fixture
def batch(qtbot, make_window, batch_folder: Path):
    window = make_window()
    window.open_paths([batch_folder])
    batch_done(qtbot, window)
    return window


def test_a_drawn_region_is_read_and_everything_follows(qtbot, batch, batch_folder: Path) -> None:
    window = batch
    study = window.worklist.current_study
    located = study.prediction
    assert located.box_source == "located" and not window.result_panel.region.isVisible()
    qtbot.keyClick(window, Qt.Key.Key_V)
    assert window.actions_by_name["region"].isChecked() and window.canvas.region_mode
    drag(window, on_widget(window, 40, 250), on_widget(window, 120, 330))
    read_by_reader(qtbot, window)
    shown = window.canvas.prediction
    assert shown is study.prediction and shown.box_source == "reader"
    assert close_to(shown.box, (40, 250, 120, 330)), shown.box
    assert window.canvas.valve_box() == shown.box
    # The result panel, template and zoomed valve follow the region's result, and say whose it is.
    from valvereader.gui.models.valves import valve_label

    assert valve_label(VALVE_IDS[3])[0] in window.result_panel.valve.text()
    assert window.template_panel.valve_id == VALVE_IDS[3]
    assert window.result_panel.region.isVisible() and window.result_panel.region.text() == READER_REGION_TEXT
    assert window.result_panel.back_button.isVisible()
    assert window.valve_view.has_valve()
    model = window.worklist_panel.model
    assert model.data(model.index(0, 2)).endswith(REGION_MARK)
    # in a narrow valve cell the name is shortened on its line; the mark keeps its own
    panel = window.worklist_panel
    option = QStyleOptionViewItem()
    option.initFrom(panel.table.viewport())
    option.rect = QRect(0, 0, option.fontMetrics.horizontalAdvance(REGION_MARK) + 12, 44)
    window.worklist.studies[0].corrected_valve_id = "medtronic_ps_medical_strata"  # a long name, as shown
    window.worklist.studies[0].decision = ReviewDecision.CORRECTED
    panel.valves.initStyleOption(option, panel.proxy.mapFromSource(model.index(0, 2)))
    lines = option.text.split("\u2028")
    assert len(lines) == 2 and lines[1] == REGION_MARK and lines[0].endswith("…")
    window.worklist.studies[0].decision = ReviewDecision.NONE
    window.worklist.studies[0].corrected_valve_id = None
    # one region per use of the tool: a left-drag is window/level again
    assert not window.actions_by_name["region"].isChecked() and not window.canvas.region_mode
    # saved at once with the study's decision (none yet)
    assert ReviewStore(batch_folder).region(study.path) == shown.box
    assert study.located_prediction is located


def test_a_click_with_the_tool_is_no_region(qtbot, batch) -> None:
    window = batch
    qtbot.keyClick(window, Qt.Key.Key_V)
    point = on_widget(window, 100, 100)
    drag(window, point, point + QPoint(2, 2))
    qtbot.wait(200)
    assert window.worklist.current_study.prediction.box_source == "located"
    assert window.canvas.region_mode  # still waiting for a rectangle
    qtbot.keyClick(window, Qt.Key.Key_Escape)
    assert not window.canvas.region_mode and not window.actions_by_name["region"].isChecked()


def test_a_double_click_reads_a_valve_sized_square_there(qtbot, batch, batch_folder: Path) -> None:
    window = batch
    QTest.mouseDClick(window.canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                      on_widget(window, 160, 200))
    read_by_reader(qtbot, window)
    box = window.canvas.prediction.box
    # no pixel spacing in a PNG: 15 % of the longer side (400 px) = 60 px
    assert close_to(box, (130, 170, 190, 230), slack=2), box
    assert ReviewStore(batch_folder).region(window.worklist.current_study.path) == box


def test_valve_square_is_40_mm_at_the_film_s_spacing() -> None:
    spacing = PixelSpacing(0.2, 0.1, "ImagerPixelSpacing")  # rows 0.2 mm, columns 0.1 mm
    box = valve_square(1000, 1000, (3000, 2500), spacing)
    assert (box.width, box.height) == (round(VALVE_SQUARE_MM / 0.1), round(VALVE_SQUARE_MM / 0.2))
    assert box.center == (1000, 1000)
    corner = valve_square(5, 5, (3000, 2500), spacing)  # clipped to the image
    assert corner.x0 == 0 and corner.y0 == 0 and corner.x1 == 205
    assert valve_square(50, 50, (100, 80), None).as_tuple() == (26, 26, 74, 74)  # at least 48 px


def test_the_region_is_kept_with_the_decision_and_comes_back(qtbot, make_window, batch_folder: Path) -> None:
    window = make_window()
    window.open_paths([batch_folder])
    batch_done(qtbot, window)
    window.go_to(2)
    qtbot.waitUntil(window.is_settled, timeout=TIMEOUT)
    QTest.mouseDClick(window.canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                      on_widget(window, 100, 120))
    read_by_reader(qtbot, window)
    region = window.canvas.prediction.box
    qtbot.keyClick(window, Qt.Key.Key_A)
    record = ReviewStore(batch_folder).get(batch_folder / "study2.png")
    assert record.decision == "accepted" and record.region == region.as_tuple()
    assert record.predicted == VALVE_IDS[3]  # what was accepted: the region's result
    window.close()

    predictor = FakePredictor()
    again = make_window(predictor)
    again.open_paths([batch_folder])
    batch_done(qtbot, again)
    study = again.worklist.studies[2]
    qtbot.waitUntil(lambda: study.region_by_reader, timeout=TIMEOUT)
    assert study.region == region and study.prediction.box == region
    assert study.decision.value == "accepted"
    assert f"study2.png {region.as_tuple()}" in predictor.calls
    again.go_to(2)
    qtbot.waitUntil(again.is_settled, timeout=TIMEOUT)
    assert again.canvas.prediction.box_source == "reader" and again.result_panel.region.isVisible()


def test_back_to_the_located_box_undoes_the_region_and_keeps_the_decision(qtbot, batch, batch_folder: Path) -> None:
    window = batch
    study = window.worklist.current_study
    located = study.prediction
    QTest.mouseDClick(window.canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                      on_widget(window, 100, 120))
    read_by_reader(qtbot, window)
    picker = window.template_panel.picker
    index = picker.findData("integra_dp")
    picker.setCurrentIndex(index)
    picker.activated.emit(index)  # a correction, on the region's result
    qtbot.mouseClick(window.result_panel.back_button, Qt.MouseButton.LeftButton)
    assert study.prediction is located and study.region is None
    assert window.canvas.prediction is located and not window.result_panel.region.isVisible()
    store = ReviewStore(batch_folder)
    assert store.region(study.path) is None
    assert store.get(study.path).corrected_valve_id == "integra_dp"
    model = window.worklist_panel.model
    assert REGION_MARK not in model.data(model.index(0, 2))


def test_back_to_the_located_box_after_reopening_locates_again(qtbot, make_window, batch_folder: Path) -> None:
    ReviewStore(batch_folder).set_region(batch_folder / "study0.png", Box(10, 10, 90, 90))
    window = make_window()
    window.open_paths([batch_folder])
    batch_done(qtbot, window)
    read_by_reader(qtbot, window)
    assert window.canvas.prediction.box == Box(10, 10, 90, 90)
    qtbot.keyClick(window, Qt.Key.Key_Backspace, Qt.KeyboardModifier.ShiftModifier)
    qtbot.waitUntil(lambda: window.worklist.current_study.prediction.box_source == "located", timeout=TIMEOUT)
    assert ReviewStore(batch_folder).region(batch_folder / "study0.png") is None


def test_an_accepted_valve_the_new_reading_does_not_name_is_kept_and_told(qtbot, batch, batch_folder: Path) -> None:
    window = batch
    qtbot.keyClick(window, Qt.Key.Key_A)  # accepts the located result (VALVE_IDS[1]), moves on
    window.go_to(0)
    qtbot.waitUntil(window.is_settled, timeout=TIMEOUT)
    QTest.mouseDClick(window.canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                      on_widget(window, 100, 120))
    read_by_reader(qtbot, window)  # the region names VALVE_IDS[3]
    record = ReviewStore(batch_folder).get(batch_folder / "study0.png")
    assert record.decision == "accepted" and record.predicted == VALVE_IDS[1]
    assert "stays as recorded" in window.notifier.messages[-1].text
    qtbot.keyClick(window, Qt.Key.Key_A)  # the reader accepts what is shown now
    assert ReviewStore(batch_folder).get(batch_folder / "study0.png").predicted == VALVE_IDS[3]


class GatedPredictor(FakePredictor):
    """Reads a reader's region only once ``gate`` is set (a slow model)."""

    def __init__(self) -> None:
        super().__init__()
        import threading

        self.gate = threading.Event()

    def predict(self, radiograph, with_heatmap: bool = True, region: Box | None = None, **options):
        if region is not None:
            self.gate.wait(10)
        return super().predict(radiograph, with_heatmap, region=region, **options)


def test_no_decision_while_the_region_is_read_and_back_cancels_it(qtbot, make_window, batch_folder: Path) -> None:
    predictor = GatedPredictor()
    window = make_window(predictor)
    window.open_paths([batch_folder])
    batch_done(qtbot, window)
    located = window.worklist.current_study.prediction
    QTest.mouseDClick(window.canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                      on_widget(window, 100, 120))
    assert window.regions.reading(0)
    qtbot.keyClick(window, Qt.Key.Key_A)
    assert window.worklist.studies[0].decision is ReviewDecision.NONE and window.worklist.current == 0
    assert "still reading the region" in window.notifier.messages[-1].text
    qtbot.keyClick(window, Qt.Key.Key_Backspace, Qt.KeyboardModifier.ShiftModifier)
    assert not window.regions.reading(0)
    predictor.gate.set()
    qtbot.waitUntil(lambda: any("(" in call for call in predictor.calls), timeout=TIMEOUT)
    qtbot.wait(300)  # the late result arrives and does not count
    study = window.worklist.studies[0]
    assert study.prediction is located and study.region is None
    assert ReviewStore(batch_folder).region(study.path) is None
