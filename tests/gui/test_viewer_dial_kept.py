"""The dial's position is saved with the reading and comes back with it: on the study when the
reader returns to it, and when the batch is opened again."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from PySide6.QtCore import QPointF, Qt
from viewer_fakes import skull_image, write_png

from valvereader.review import ReviewStore, _dial

pytestmark = pytest.mark.gui
TIMEOUT = 15000


def point_at(view, angle_deg: float) -> QPointF:
    centre = view._dial_centre()
    r = view._radius() * 0.8
    return QPointF(centre.x() + r * math.sin(math.radians(angle_deg)), centre.y() - r * math.cos(math.radians(angle_deg)))


def test_the_dial_comes_back_where_it_stood_for_the_reading(qtbot, make_window, tmp_path: Path) -> None:
    folder = tmp_path / "batch"
    folder.mkdir()
    for i in range(2):
        write_png(folder / f"study{i}.png", skull_image(valve_at=(150 + 30 * i, 110), seed=i))
    window = make_window()
    window.open_paths([folder])
    qtbot.waitUntil(lambda: all(s.analysed for s in window.worklist.studies) and window.is_settled(), timeout=TIMEOUT)
    view, dial = window.valve_view, window.dial
    view.magnify(3.0)  # read under the loupe
    view.loupe.pan(0.1, 0.0)
    magnified, film_centre = view.magnification(), view.loupe.center
    dial.center = (0.42, 0.58)
    view.turn(30)
    view.mirror()
    view.mark_indicator(point_at(view, 200.0))
    reading = view.reading()
    assert reading
    placed = dial.position()
    qtbot.keyClick(window, Qt.Key.Key_A)  # accepted, saved with the reading; the next study comes up
    qtbot.waitUntil(lambda: window.worklist.current == 1 and window.is_settled(), timeout=TIMEOUT)
    assert dial.position() != placed  # a fresh dial on the next study
    record = ReviewStore(folder).get(folder / "study0.png")
    assert record.reading == reading
    assert record.dial["center"] == pytest.approx([0.42, 0.58]) and record.dial["mirrored"]
    assert record.dial["indicator_deg"] == pytest.approx(placed["indicator_deg"])
    window.go_to(0)
    qtbot.waitUntil(lambda: window.worklist.current == 0 and window.is_settled(), timeout=TIMEOUT)
    assert dial.position()["center"] == pytest.approx([0.42, 0.58])
    assert dial.position()["indicator_deg"] == pytest.approx(placed["indicator_deg"])
    window.close()

    again = make_window()
    again.open_paths([folder])
    qtbot.waitUntil(lambda: all(s.analysed for s in again.worklist.studies) and again.is_settled(), timeout=TIMEOUT)
    position = again.dial.position()
    assert position["center"] == pytest.approx([0.42, 0.58])
    assert position["rotation"] == pytest.approx(30.0) and position["mirrored"]
    assert position["indicator_deg"] == pytest.approx(placed["indicator_deg"])
    assert again.valve_view.reading() == reading
    # the dial over the same part of the film, at the same magnification
    assert again.valve_view.magnification() == pytest.approx(magnified)
    assert again.valve_view.loupe.center == pytest.approx(film_centre)


def test_a_damaged_dial_in_the_review_file_is_ignored() -> None:
    good = {"center": [0.5, 0.4], "rotation": 370.0, "mirrored": False, "indicator_deg": None, "scale": 0.7}
    assert _dial(good) == {**good, "rotation": 10.0}
    assert _dial({**good, "view": [120.0, 80.5, 32.0]})["view"] == [120.0, 80.5, 32.0]
    assert "view" not in _dial({**good, "view": [120.0, 80.5, -1]})
    for bad in (None, "dial", {**good, "center": [0.5]}, {**good, "mirrored": "yes"}, {**good, "scale": 50.0},
                {**good, "indicator_deg": "up"}, {**good, "rotation": float("nan")}):
        assert _dial(bad) is None
