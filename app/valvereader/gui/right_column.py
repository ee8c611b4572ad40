"""The right-hand column of the window: the result beside the zoomed valve, the template's
diagram under them across the column's whole width (readable at the default window size:
about 520 × 380 px, where a 170 px thumbnail was not), the template's picker, reading and notes
below. Splitters let the reader give any part more room; the window keeps their sizes."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QSplitter, QVBoxLayout, QWidget

from .loupe import LoupeBar

COLUMN_WIDTH = 540  # px at the start: the diagram's text stays legible from about 420 px wide
DIAGRAM_TITLE = "Template · click the diagram to open it large"


def titled(title: str, widget: QWidget, under: QWidget | None = None) -> QWidget:
    box = QWidget()
    layout = QVBoxLayout(box)
    layout.setContentsMargins(4, 0, 4, 0)
    label = QLabel(title)
    label.setObjectName("dim")
    layout.addWidget(label)
    layout.addWidget(widget, 1)
    if under is not None:
        layout.addWidget(under)
    return box


def result_and_template(result_panel: QWidget, valve_view: Any, diagram_box: QWidget,
                        template_panel: QWidget) -> QSplitter:
    """The column as one vertical splitter (its parts keep their object names for settings)."""
    top = QSplitter(Qt.Orientation.Horizontal)
    top.setObjectName("resultAndValve")
    top.addWidget(result_panel)
    top.addWidget(titled("Valve (zoomed) · reading dial · loupe", valve_view, LoupeBar(valve_view)))
    top.setStretchFactor(0, 1)
    top.setStretchFactor(1, 1)
    top.setSizes([COLUMN_WIDTH // 2, COLUMN_WIDTH // 2])
    column = QSplitter(Qt.Orientation.Vertical)
    column.setObjectName("resultAndTemplate")
    column.addWidget(top)
    column.addWidget(titled(DIAGRAM_TITLE, diagram_box))
    column.addWidget(template_panel)
    column.setStretchFactor(1, 1)
    column.setSizes([390, 390, 140])
    return column
