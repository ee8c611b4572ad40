"""The row of controls under the zoomed valve's loupe: magnify −/+, the magnification, fit, the
loupe's own window or the image's. The loupe's state and pixels are ``models.loupe``.

Mouse on the zoomed valve: Ctrl+wheel magnifies at the cursor, middle-drag or Alt+drag pans,
Shift+drag sets the loupe's own window (horizontal) and level (vertical), double-click fits.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QWidget


class LoupeBar(QWidget):
    """Under the zoomed valve: magnify −/+, the magnification, fit, the loupe's own window
    (auto from what it shows) or the image's."""

    def __init__(self, valve_view: Any, parent: QWidget | None = None):
        super().__init__(parent)
        self.valve_view = valve_view
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 2, 0, 0)
        row.setSpacing(3)
        self.setStyleSheet("QPushButton { padding: 2px 6px; }")

        def button(text: str, tip: str, action: Callable[[], object]) -> QPushButton:
            b = QPushButton(text)
            b.setToolTip(tip)
            b.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # keys stay with the window
            b.clicked.connect(lambda: action())
            row.addWidget(b)
            return b

        self.smaller = button("−", "Magnify less (Ctrl+wheel on the valve)", lambda: valve_view.magnify(1 / 1.5))
        self.label = QLabel("")
        self.label.setObjectName("dim")
        self.label.setMinimumWidth(44)
        self.label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        row.addWidget(self.label)
        self.larger = button("+", "Magnify more, up to 32 × the film's pixels (Ctrl+wheel)",
                             lambda: valve_view.magnify(1.5))
        self.fit = button("Fit", "The valve region as first shown (double-click)", valve_view.fit_loupe)
        self.auto = button("Auto", "The loupe's own window and level, from the grey values it shows "
                           "(Shift+drag on the valve: by hand)", valve_view.auto_window)
        self.follow = button("Image", "The main image's window and level again", valve_view.follow_window)
        row.addStretch(1)
        valve_view.loupe_changed.connect(self.refresh)
        self.refresh()

    def refresh(self) -> None:
        view = self.valve_view
        self.label.setText(view.loupe_text())
        self.follow.setEnabled(view.has_valve() and view.loupe.window is not None)
        for b in (self.smaller, self.larger, self.fit, self.auto):
            b.setEnabled(view.has_valve())
