"""The loupe on the zoomed valve (magnified past 8 × the film's pixels, bicubic, its own
window/level, panned) and the dial's labels (never overlapping, on plates)."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QFont, QFontMetricsF
from viewer_fakes import skull_image, write_png

from valvereader.gui.dial_labels import place_labels
from valvereader.gui.models.loupe import MAX_MAGNIFICATION, LoupeState, auto_window, loupe_pixels

pytestmark = pytest.mark.gui
TIMEOUT = 15000


def shown(qtbot, make_window, tmp_path: Path):
    window = make_window()
    window.open_paths([write_png(tmp_path / "skull.png", skull_image(size=(800, 640), valve_at=(300, 200)))])
    qtbot.waitUntil(lambda: window.is_settled() and window.valve_view.has_valve(), timeout=TIMEOUT)
    return window


def test_the_loupe_magnifies_past_eight_times_the_film_pixels_smoothly() -> None:
    film = np.zeros((40, 40), dtype=np.float32)
    film[::2, ::2] = film[1::2, 1::2] = 1.0  # a one-pixel checkerboard: the hardest case
    state = LoupeState()
    state.fit((20.0, 20.0), 32.0)
    state.set_magnification(16.0, 320)
    assert state.magnification(320) == pytest.approx(16.0)
    view = loupe_pixels(film, state, 320, (0.5, 1.0))
    # bicubic: grey steps between the film's black and white pixels, not 16 × 16 blocks
    assert len(np.unique(view)) > 20
    assert np.abs(np.diff(view[160].astype(int))).max() < 128
    state.zoom(1000.0, 320)
    assert state.magnification(320) == pytest.approx(MAX_MAGNIFICATION)


def test_auto_window_spans_what_the_loupe_shows() -> None:
    film = np.full((100, 100), 0.2, dtype=np.float32)
    film[40:60, 40:60] = 0.3  # a faint rotor in its housing
    state = LoupeState()
    state.fit((50.0, 50.0), 40.0)
    centre, width = auto_window(film, state)
    assert 0.2 <= centre - width / 2 and centre + width / 2 <= 0.31 and width < 0.15


def test_the_zoomed_valve_magnifies_pans_and_keeps_its_own_window(qtbot, make_window, tmp_path: Path) -> None:
    window = shown(qtbot, make_window, tmp_path)
    valve = window.valve_view
    first = valve.magnification()
    for _ in range(12):
        valve.magnify(1.5)
    assert valve.magnification() >= 8.0 > first
    centre = valve.loupe.center
    qtbot.mousePress(valve, Qt.MouseButton.MiddleButton, pos=QPoint(100, 100))
    qtbot.mouseMove(valve, QPoint(140, 100))
    qtbot.mouseRelease(valve, Qt.MouseButton.MiddleButton, pos=QPoint(140, 100))
    assert valve.loupe.center[0] < centre[0] and valve.loupe.center[1] == pytest.approx(centre[1])  # film follows the hand
    main = (window.view.window_center, window.view.window_width)
    qtbot.mousePress(valve, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ShiftModifier, QPoint(100, 100))
    qtbot.mouseMove(valve, QPoint(60, 140))
    qtbot.mouseRelease(valve, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ShiftModifier, QPoint(60, 140))
    assert valve.loupe.window is not None and valve.loupe.window != main
    assert (window.view.window_center, window.view.window_width) == main  # the image's window is its own
    assert window.dial.center == (0.5, 0.5)  # Shift+drag is not a dial move
    valve.follow_window()
    assert valve.loupe.window is None
    valve.fit_loupe()
    assert valve.magnification() == pytest.approx(first)


def test_dial_labels_never_overlap_even_when_crowded() -> None:
    metrics = QFontMetricsF(QFont("DejaVu Sans", 9))
    centre = QPointF(100, 100)
    for count, radius in ((8, 80.0), (18, 60.0), (24, 40.0)):
        labels = [(360.0 * i / count, f"{40 + 10 * i}") for i in range(count)]
        placed = place_labels(centre, radius, [(0.0, "inlet"), *labels], metrics)
        rects = [rect for rect, _ in placed]
        for a, b in itertools.combinations(rects, 2):
            assert not a.intersects(b)
        if count == 8:
            assert len(placed) == 9  # room for all: none left out
        for rect, text in placed:
            assert rect.width() >= metrics.horizontalAdvance(text)  # the plate holds its text


def test_a_label_stays_on_its_settings_ray() -> None:
    metrics = QFontMetricsF(QFont("DejaVu Sans", 9))
    (rect, _), = place_labels(QPointF(0, 0), 100.0, [(90.0, "3")], metrics)
    angle = math.degrees(math.atan2(rect.center().x(), -rect.center().y()))
    assert angle == pytest.approx(90.0, abs=1.0)


def test_ctrl_wheel_magnifies_at_the_cursor_and_a_plain_wheel_still_turns_the_dial(qtbot, make_window,
                                                                                 tmp_path: Path) -> None:
    from PySide6.QtCore import QPointF as Point
    from PySide6.QtGui import QWheelEvent

    window = shown(qtbot, make_window, tmp_path)
    valve = window.valve_view

    def wheel(modifiers: Qt.KeyboardModifier) -> None:
        at = Point(valve.width() / 2, valve.height() / 2)
        event = QWheelEvent(at, valve.mapToGlobal(at), QPoint(0, 0), QPoint(0, 120), Qt.MouseButton.NoButton,
                            modifiers, Qt.ScrollPhase.NoScrollPhase, False)
        valve.wheelEvent(event)

    first = valve.magnification()
    wheel(Qt.KeyboardModifier.ControlModifier)
    assert valve.magnification() == pytest.approx(first * 1.25)
    assert window.dial.rotation == 0
    wheel(Qt.KeyboardModifier.NoModifier)
    assert window.dial.rotation == 5 and valve.magnification() == pytest.approx(first * 1.25)


def test_the_loupe_view_is_drawn_wherever_it_stands_over_the_film():
    """A view edge a fraction of a pixel off the film's pixel grid (any centre, any span) is
    drawn, not refused (PIL refuses a negative resampling offset)."""
    from valvereader.gui.models.loupe import LoupeState, loupe_pixels

    film = np.random.default_rng(0).random((200, 300)).astype(np.float32)
    for cx, span in itertools.product(np.linspace(-20, 320, 37), (7.3, 33.1, 150.7)):
        state = LoupeState()
        state.center, state.span = (float(cx), 100.37), span
        view = loupe_pixels(film, state, 173, (0.5, 1.0))
        assert view.shape == (173, 173)
