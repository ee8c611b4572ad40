"""Labels of the reading dial that never overlap and read on any background: placed by
``models.dial.place_labels`` (each on its setting's ray, moved in or out along it until clear
of the labels already placed), drawn on a dark rounded plate under light text (a white rotor
or a black hole behind it alike)."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFontMetricsF, QPainter

from .models import dial

PLATE = QColor(0, 0, 0, 185)


def place_labels(centre: QPointF, radius: float, labels: Sequence[tuple[float, str]],
                 metrics: QFontMetricsF, taken: Sequence[QRectF] = ()) -> list[tuple[QRectF, str]]:
    """``models.dial.place_labels`` in the painter's terms: the font's metrics measure the text."""
    placed = dial.place_labels((centre.x(), centre.y()), radius, labels, metrics.horizontalAdvance, metrics.height(),
                               [(r.x(), r.y(), r.width(), r.height()) for r in taken])
    return [(QRectF(*rect), text) for rect, text in placed]


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
