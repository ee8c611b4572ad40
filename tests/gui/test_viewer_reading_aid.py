"""The reading dial over the zoomed valve names the setting the indicator points to, follows
turning and mirroring, and the chosen setting is saved with the review decision."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from PySide6.QtCore import QPointF, Qt
from viewer_fakes import skull_image, write_png

from valvereader.review import ReviewStore

pytestmark = pytest.mark.gui
templates = pytest.importorskip("valvereader.catalogue.templates")


def point_at(view, angle_deg: float) -> QPointF:
    centre = view._dial_centre()
    r = view._radius() * 0.8
    return QPointF(centre.x() + r * math.sin(math.radians(angle_deg)), centre.y() - r * math.cos(math.radians(angle_deg)))


def test_dial_names_the_setting_under_the_indicator_and_follows_turn_and_mirror(qtbot, make_window, tmp_path: Path) -> None:
    window = make_window()
    window.open_paths([write_png(tmp_path / "skull.png", skull_image())])
    qtbot.waitUntil(window.is_settled, timeout=15000)
    template = templates.load_template("codman_certas_plus")
    dial = template.dial
    angled = [s for s in dial.settings if s.angle_deg is not None]
    target = angled[0]
    view = window.valve_view
    view.mark_indicator(point_at(view, target.angle_deg))
    assert view.reading() == target.reading_text()
    assert window.template_panel.current_reading() == target.reading_text()
    qtbot.keyClick(window, Qt.Key.Key_BracketRight)  # dial turned 5° clockwise: still the same sector
    assert window.dial.rotation == 5
    view.turn(85)  # a quarter turn: the indicator now lies 90° earlier on the dial
    assert view.reading() == dial.setting_at((target.angle_deg - 90) % 360).reading_text()
    qtbot.keyClick(window, Qt.Key.Key_M)
    assert window.dial.mirrored
    assert view.reading() == dial.setting_at((target.angle_deg - 90) % 360, mirrored=True).reading_text()


def test_the_chosen_reading_is_saved_with_the_decision(qtbot, make_window, tmp_path: Path) -> None:
    path = write_png(tmp_path / "skull.png", skull_image())
    window = make_window()
    window.open_paths([path])
    qtbot.waitUntil(window.is_settled, timeout=15000)
    reading = window.template_panel.reading
    assert reading.count() > 1  # the valve's settings are offered
    reading.setCurrentIndex(2)
    reading.activated.emit(2)
    qtbot.keyClick(window, Qt.Key.Key_A)
    record = ReviewStore(tmp_path).get(path)
    assert record.decision == "accepted"
    assert record.reading == reading.itemData(2)


def test_a_reading_chosen_after_the_decision_is_saved_too(qtbot, make_window, tmp_path: Path) -> None:
    path = write_png(tmp_path / "skull.png", skull_image())
    window = make_window()
    window.open_paths([path])
    qtbot.waitUntil(window.is_settled, timeout=15000)
    qtbot.keyClick(window, Qt.Key.Key_A)
    reading = window.template_panel.reading
    reading.setCurrentIndex(3)
    reading.activated.emit(3)
    record = ReviewStore(tmp_path).get(path)
    assert record.decision == "accepted" and record.reading == reading.itemData(3)


def test_a_dial_with_unverified_angles_reads_no_pressure_in_the_window(qtbot, make_window, tmp_path: Path) -> None:
    window = make_window()
    window.open_paths([write_png(tmp_path / "skull.png", skull_image())])
    qtbot.waitUntil(window.is_settled, timeout=15000)
    panel = window.template_panel
    panel._picked(panel.picker.findData("miethke_progav_2"))
    view = window.valve_view
    assert view.template is panel.template and view.template.valve_id == "miethke_progav_2"
    view.mark_indicator(point_at(view, 121.0))
    assert "[U]" in view.reading() and "cmH2O" not in view.reading() and "4:02" in view.reading()
    assert panel.current_reading() == view.reading()
    offered = [panel.reading.itemText(i) for i in range(1, panel.reading.count())]
    assert len(offered) == 21 and not any("cmH2O" in text for text in offered)
