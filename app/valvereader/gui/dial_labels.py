"""Labels of the reading dial that never overlap and read on any background: each sits on
its setting's ray, moved in or out along it until clear of the labels already placed, on a
dark rounded plate under light text (a white rotor or a black hole behind it alike)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFontMetricsF, QPainter

# Radii tried for a label, in fractions of the dial's radius: just inside the ticks first,
# then further in, then outside the ring.
RADII = (0.72, 0.58, 1.16, 1.32, 0.46, 1.48)
PLATE = QColor(0, 0, 0, 185)
PAD = 2.0


def place_labels(centre: QPointF, radius: float, labels: Sequence[tuple[float, str]],
                 metrics: QFontMetricsF, taken: Sequence[QRectF] = ()) -> list[tuple[QRectF, str]]:
    """(rect, text) for each of ``labels`` ((angle in degrees clockwise from 12 o'clock, text)),
    none overlapping another or ``taken``; a label that finds no clear place at any of
    ``RADII`` is left out (its tick on the ring still marks the setting)."""
    placed: list[QRectF] = [QRectF(r) for r in taken]
    out: list[tuple[QRectF, str]] = []
    for angle, text in labels:
        if not text:
            continue
        width = metrics.horizontalAdvance(text) + 2 * PAD + 2
        height = metrics.height() + PAD
        rad = math.radians(angle)
        for fraction in RADII:
            at = QPointF(centre.x() + radius * fraction * math.sin(rad), centre.y() - radius * fraction * math.cos(rad))
            rect = QRectF(at.x() - width / 2, at.y() - height / 2, width, height)
            if not any(rect.adjusted(-1, -1, 1, 1).intersects(other) for other in placed):
                placed.append(rect)
                out.append((rect, text))
                break
    return out


def draw_labels(painter: QPainter, labels: Sequence[tuple[QRectF, str]], colour: QColor) -> None:
    painter.save()
    painter.setPen(Qt.PenStyle.NoPen)
    for rect, _ in labels:
        painter.setBrush(PLATE)
        painter.drawRoundedRect(rect, 3, 3)
    painter.setPen(colour)
    for rect, text in labels:
        painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, text)
    painter.restore()
