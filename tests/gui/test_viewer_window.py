"""The window end to end with a fake predictor: open, drop, navigate, review, export, errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent
from viewer_fakes import FakePredictor, skull_image, write_png

from valvereader.gui.models.state import ReviewDecision
from valvereader.review import ReviewStore

pytestmark = pytest.mark.gui
TIMEOUT = 15000


def wait_settled(qtbot, window) -> None:
    qtbot.waitUntil(window.is_settled, timeout=TIMEOUT)


def wait_batch_done(qtbot, window) -> None:
    qtbot.waitUntil(lambda: bool(window.worklist.studies) and all(s.analysed for s in window.worklist.studies),
                    timeout=TIMEOUT)


def drop(window, paths: list[Path]) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    event = QDropEvent(QPointF(50, 50), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    window.dropEvent(event)


def test_opening_one_file_shows_image_verdict_and_template(qtbot, make_window, tmp_path: Path) -> None:
    path = write_png(tmp_path / "skull.png", skull_image())
    window = make_window()
    window.open_paths([path])
    wait_settled(qtbot, window)
    assert window.canvas.radiograph is not None
    assert window.canvas.radiograph.shape == (400, 320)
    assert window.result_panel.badge.text() == "Confident"
    assert "CERTAS" in window.result_panel.valve.text()
    assert window.template_panel.valve_id == "codman_certas_plus"
    assert window.canvas.prediction is not None and window.canvas.prediction.box is not None
    assert not window.worklist_dock.isVisible()  # one image needs no worklist
    assert str(path.resolve()) in window.settings.recent_files


def test_dropping_several_files_makes_a_batch(qtbot, make_window, batch_folder: Path) -> None:
    window = make_window()
    files = sorted(batch_folder.glob("*.png"))[:3]
    drop(window, files)
    wait_batch_done(qtbot, window)
    assert [s.path for s in window.worklist.studies] == files
    assert window.worklist_dock.isVisible()
    assert window.worklist_panel.proxy.rowCount() == 3
    # Wide enough for every column: the stretching valve column keeps its width (it shrank to
    # an ellipsis when the dock came up at 380 px).
    from valvereader.gui.worklist import COLUMN_WIDTHS, PANEL_WIDTH

    qtbot.waitUntil(lambda: window.worklist_dock.width() >= PANEL_WIDTH, timeout=TIMEOUT)
    assert window.worklist_panel.table.columnWidth(2) >= COLUMN_WIDTHS[2]


def test_dropping_a_folder_makes_a_batch_of_its_images(qtbot, make_window, batch_folder: Path) -> None:
    (batch_folder / "notes.txt").write_text("not an image")
    window = make_window()
    drop(window, [batch_folder])
    wait_batch_done(qtbot, window)
    assert sorted(s.path.name for s in window.worklist.studies) == [f"study{i}.png" for i in range(4)]
    assert window.worklist.folder == batch_folder


def test_down_and_up_keys_move_through_the_batch(qtbot, make_window, batch_folder: Path) -> None:
    window = make_window()
    window.open_paths([batch_folder])
    wait_batch_done(qtbot, window)
    assert window.worklist.current == 0
    qtbot.keyClick(window, Qt.Key.Key_Down)
    qtbot.keyClick(window, Qt.Key.Key_Down)
    assert window.worklist.current == 2
    wait_settled(qtbot, window)
    assert window.canvas.radiograph.meta.source.endswith("study2.png")
    qtbot.keyClick(window, Qt.Key.Key_Up)
    assert window.worklist.current == 1


def test_accept_reject_and_correct_keys_are_saved_next_to_the_batch(qtbot, make_window, batch_folder: Path) -> None:
    window = make_window()
    window.open_paths([batch_folder])
    wait_batch_done(qtbot, window)
    wait_settled(qtbot, window)
    qtbot.keyClick(window, Qt.Key.Key_A)  # accept study0, moves on to study1
    assert window.worklist.current == 1
    qtbot.keyClick(window, Qt.Key.Key_X)  # reject study1, on to study2
    wait_settled(qtbot, window)
    picker = window.template_panel.picker
    index = picker.findData("integra_dp")
    picker.setCurrentIndex(index)
    picker.activated.emit(index)  # what choosing in the popup opened by C does
    store = ReviewStore(batch_folder)  # a fresh reader of the file: what survives a crash
    assert store.get(batch_folder / "study0.png").decision == "accepted"
    assert store.get(batch_folder / "study1.png").decision == "rejected"
    corrected = store.get(batch_folder / "study2.png")
    assert corrected.decision == "corrected" and corrected.corrected_valve_id == "integra_dp"
    assert window.worklist.studies[2].decision is ReviewDecision.CORRECTED


def test_review_decisions_come_back_when_the_batch_is_reopened(qtbot, make_window, batch_folder: Path) -> None:
    ReviewStore(batch_folder).record(batch_folder / "study3.png", "rejected")
    window = make_window()
    window.open_paths([batch_folder])
    wait_batch_done(qtbot, window)
    assert window.worklist.studies[3].decision is ReviewDecision.REJECTED


def test_needs_review_filter_hides_confident_studies(qtbot, make_window, batch_folder: Path) -> None:
    window = make_window(FakePredictor(confidences={"study1.png": 0.7, "study3.png": 0.3}))
    window.open_paths([batch_folder])
    wait_batch_done(qtbot, window)
    window.worklist_panel.set_filter("needs review")
    assert window.worklist_panel.visible_rows() == [1, 3]
    # The verdict cell tells why on hover: here an unsure model, not an unusual image.
    model = window.worklist_panel.proxy.sourceModel()
    assert "not sure (70 %" in model.data(model.index(1, 4), Qt.ItemDataRole.ToolTipRole)
    window.go_to(1)
    qtbot.keyClick(window, Qt.Key.Key_Down)  # Down follows the filtered list
    assert window.worklist.current == 3


def test_a_failing_file_becomes_a_message_and_the_batch_goes_on(qtbot, make_window, batch_folder: Path) -> None:
    window = make_window(FakePredictor(fail_on=("study1",)))
    window.open_paths([batch_folder])
    wait_batch_done(qtbot, window)
    studies = window.worklist.studies
    assert "model exploded on study1.png" in studies[1].error
    assert all(studies[i].prediction is not None for i in (0, 2, 3))
    assert any("study1.png" in m.text and m.level == "error" for m in window.notifier.messages)
    window.go_to(1)
    wait_settled(qtbot, window)
    assert window.result_panel.badge.text() == "Analysis failed"
    assert window.canvas.radiograph is not None  # the image is still shown
    assert window.isVisible()


def test_an_unreadable_file_is_reported_without_stopping_the_window(qtbot, make_window, tmp_path: Path) -> None:
    bad = tmp_path / "broken.dcm"
    bad.write_bytes(b"not a dicom file at all" * 10)
    good = write_png(tmp_path / "good.png", skull_image())
    window = make_window()
    window.open_paths([bad, good])
    wait_batch_done(qtbot, window)
    assert window.worklist.studies[0].error
    assert window.worklist.studies[1].prediction is not None


def test_without_a_model_the_window_says_where_to_put_weights(qtbot, make_window, tmp_path: Path) -> None:
    path = write_png(tmp_path / "skull.png", skull_image())
    window = make_window(False)
    window.open_paths([path])
    wait_settled(qtbot, window)
    qtbot.waitUntil(lambda: window.result_panel.badge.text() == "No model installed", timeout=TIMEOUT)
    assert "put weights" in window.result_panel.meaning.text()
    assert window.canvas.radiograph is not None  # the image is still shown


def test_export_png_and_pdf_write_what_is_on_screen(qtbot, make_window, tmp_path: Path) -> None:
    path = write_png(tmp_path / "skull.png", skull_image())
    window = make_window()
    window.open_paths([path])
    wait_settled(qtbot, window)
    png = window.exports.png(tmp_path / "out" / "view.png")
    pdf = window.exports.pdf(tmp_path / "out" / "report.pdf")
    assert png is not None and png.stat().st_size > 1000
    from PIL import Image

    with Image.open(png) as image:
        # the viewport's framing, drawn at the film's own resolution or 2000 px at least
        scale = image.width / window.canvas.width()
        assert max(image.width, image.height) >= 2000
        assert scale >= min(1 / window.canvas.current_zoom(), 5000 / max(window.canvas.width(), window.canvas.height())) - 0.01
        assert image.height > window.canvas.height() * scale  # plus a footer below
    assert pdf is not None and pdf.read_bytes().startswith(b"%PDF")


def test_worklist_csv_export_lists_every_study(qtbot, make_window, batch_folder: Path, tmp_path: Path) -> None:
    window = make_window()
    window.open_paths([batch_folder])
    wait_batch_done(qtbot, window)
    csv_path = window.exports.worklist_csv(tmp_path / "worklist.csv")
    rows = [line for line in csv_path.read_text(encoding="utf-8").splitlines() if line and not line.startswith("#")]
    assert len(rows) == 1 + 4
    assert "codman_certas_plus" in rows[1]


def test_cancel_stops_the_analysis_and_analyse_resumes_it(qtbot, make_window, batch_folder: Path) -> None:
    import threading

    release = threading.Event()

    class GatedPredictor(FakePredictor):
        """The first study passes; the next waits until the test lets it go."""

        def predict(self, radiograph, with_heatmap: bool = True, **_options):
            if self.calls:
                release.wait(10)
            return super().predict(radiograph, with_heatmap)

    window = make_window(GatedPredictor())
    window.open_paths([batch_folder])
    qtbot.waitUntil(lambda: bool(window.worklist.studies) and window.worklist.studies[0].analysed, timeout=TIMEOUT)
    window.cancel_analysis()
    release.set()
    qtbot.waitUntil(lambda: window._analysis is None, timeout=TIMEOUT)
    assert sum(s.analysed for s in window.worklist.studies) == 2  # the first, and the one under way
    window.resume_analysis()
    wait_batch_done(qtbot, window)


def test_view_keys_change_what_is_shown(qtbot, make_window, tmp_path: Path) -> None:
    window = make_window()
    window.open_paths([write_png(tmp_path / "skull.png", skull_image())])
    wait_settled(qtbot, window)
    view = window.view
    for key in (Qt.Key.Key_I, Qt.Key.Key_R, Qt.Key.Key_H, Qt.Key.Key_T):
        qtbot.keyClick(window, key)
    assert view.invert and view.rotation == 90 and not view.show_heatmap and not view.show_corner_text
    qtbot.keyClick(window, Qt.Key.Key_H, Qt.KeyboardModifier.ShiftModifier)
    assert view.flip_horizontal
    qtbot.keyClick(window, Qt.Key.Key_2)
    assert view.window_width == window.settings.window_presets[1].width
    qtbot.keyClick(window, Qt.Key.Key_Equal)
    assert view.zoom is not None and view.zoom > window.canvas.fit_zoom()
    qtbot.keyClick(window, Qt.Key.Key_F)
    assert view.zoom is None


def test_left_drag_changes_window_and_level(qtbot, make_window, tmp_path: Path) -> None:
    window = make_window()
    window.open_paths([write_png(tmp_path / "skull.png", skull_image())])
    wait_settled(qtbot, window)
    canvas = window.canvas
    start = canvas.rect().center()
    qtbot.mousePress(canvas, Qt.MouseButton.LeftButton, pos=start)
    qtbot.mouseMove(canvas, start + QPoint(60, 40))
    qtbot.mouseRelease(canvas, Qt.MouseButton.LeftButton, pos=start + QPoint(60, 40))
    assert window.view.window_width > 1.0 and window.view.window_center > 0.5


def test_distance_tool_names_its_calibration(qtbot, make_window, tmp_path: Path) -> None:
    window = make_window()
    window.open_paths([write_png(tmp_path / "skull.png", skull_image())])
    wait_settled(qtbot, window)
    text = window.canvas.describe_distance(QPointF(0, 0), QPointF(30, 40))
    assert text == "50 px\nuncalibrated (pixels)"
    from valvereader.radiograph import PixelSpacing

    window.canvas.radiograph.meta.pixel_spacing = PixelSpacing(0.2, 0.1, "ImagerPixelSpacing")
    text = window.canvas.describe_distance(QPointF(0, 0), QPointF(30, 40))
    assert text == f"{(3.0 ** 2 + 8.0 ** 2) ** 0.5:.1f} mm\nat detector (ImagerPixelSpacing)"


def test_settings_persist_when_the_window_closes(qtbot, make_window, tmp_path: Path) -> None:
    from valvereader.settings import Settings

    window = make_window()
    window.opacity_slider.setValue(80)
    qtbot.keyClick(window, Qt.Key.Key_T)
    window.close()
    saved = Settings.load()
    assert saved.heatmap_opacity == pytest.approx(0.8)
    assert saved.show_corner_text is False
    assert saved.window_geometry


def test_distance_tool_measures_a_drag_and_esc_leaves_it(qtbot, make_window, tmp_path: Path) -> None:
    window = make_window()
    window.open_paths([write_png(tmp_path / "skull.png", skull_image())])
    wait_settled(qtbot, window)
    qtbot.keyClick(window, Qt.Key.Key_D)
    canvas = window.canvas
    assert canvas.measure_mode
    start = canvas.rect().center()
    with qtbot.waitSignal(canvas.measured) as measured:
        qtbot.mousePress(canvas, Qt.MouseButton.LeftButton, pos=start)
        qtbot.mouseMove(canvas, start + QPoint(100, 0))
        qtbot.mouseRelease(canvas, Qt.MouseButton.LeftButton, pos=start + QPoint(100, 0))
    pixels = 100 / canvas.current_zoom()
    assert measured.args[0] == f"{pixels:.0f} px uncalibrated (pixels)"
    assert window.view.window_width == 1.0  # measuring does not change the window
    qtbot.keyClick(window, Qt.Key.Key_Escape)
    assert not canvas.measure_mode and not canvas.measurements


def test_damaged_weights_are_named_and_the_image_still_shows(qtbot, tmp_path: Path) -> None:
    from valvereader.gui.main_window import MainWindow
    from valvereader.gui.models.analysis import load_model
    from valvereader.settings import Settings

    weights = tmp_path / "weights"
    weights.mkdir()
    (weights / "identifier.json").write_text("{not json")
    window = MainWindow(settings=Settings.load(), model_loader=lambda: load_model(weights, "cpu"))
    qtbot.addWidget(window)
    window.show()
    window.open_paths([write_png(tmp_path / "skull.png", skull_image())])
    qtbot.waitUntil(lambda: window.result_panel.badge.text() == "Model cannot be used", timeout=TIMEOUT)
    assert "identifier.json" in window.result_panel.meaning.text()
    assert window.canvas.radiograph is not None


def test_opening_a_new_batch_during_analysis_replaces_the_old_one(qtbot, make_window, batch_folder: Path,
                                                                   tmp_path: Path) -> None:
    import time

    class SlowPredictor(FakePredictor):
        def predict(self, radiograph, with_heatmap: bool = True, **_options):
            time.sleep(0.2)
            return super().predict(radiograph, with_heatmap)

    window = make_window(SlowPredictor())
    window.open_paths([batch_folder])
    qtbot.waitUntil(lambda: bool(window.worklist.studies) and window.worklist.studies[0].analysed, timeout=TIMEOUT)
    other = tmp_path / "other"
    other.mkdir()
    write_png(other / "new.png", skull_image(seed=9))
    window.open_paths([other])
    qtbot.waitUntil(lambda: [s.path.name for s in window.worklist.studies] == ["new.png"], timeout=TIMEOUT)
    wait_settled(qtbot, window)
    qtbot.waitUntil(lambda: window._analysis is None, timeout=TIMEOUT)
    qtbot.wait(500)  # the old worker's last signals arrive and must change nothing
    assert window.worklist.studies[0].prediction is not None
    assert len(window.worklist.studies) == 1
    assert window.canvas.radiograph.meta.source.endswith("new.png")


def test_what_the_loader_did_to_an_image_is_told_to_the_reader(qtbot, make_window, tmp_path: Path) -> None:
    """A loader note (here: a 16-bit PNG holding a 12-bit detector's values, stretched) reaches
    the status line and View ▸ Messages when the study is shown; a plain image posts none."""
    import numpy as np
    from PIL import Image

    plain = write_png(tmp_path / "plain.png", skull_image())
    twelve_bit = tmp_path / "twelve_bit.png"
    Image.fromarray(np.rint(skull_image() * 4095).astype(np.uint16)).save(twelve_bit)
    window = make_window()
    window.open_paths([plain])
    wait_settled(qtbot, window)
    assert not [m for m in window.notifier.messages if "plain.png" in m.text]
    assert window.image_notes.isHidden() and window.image_notes.text() == ""
    window.open_paths([twelve_bit])

    def noted() -> list:
        return [m for m in window.notifier.messages if m.text.startswith("twelve_bit.png: ")]

    qtbot.waitUntil(lambda: bool(noted()), timeout=TIMEOUT)
    assert "stretched" in noted()[-1].text and noted()[-1].level == "warning"
    # ... and stays in the status line while the study is shown, beside the passing messages.
    qtbot.waitUntil(window.is_settled, timeout=TIMEOUT)
    assert not window.image_notes.isHidden() and window.image_notes.text().startswith("Image: 16-bit image")
    assert "stretched" in window.image_notes.toolTip()
