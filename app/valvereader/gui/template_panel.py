"""The pressure-reading template beside the zoomed valve: diagram (QtSvg), reading steps and
facts (unverified [U] facts marked), a picker for another valve's template (recorded as a
correction) and the setting the reader settles on (goes into the report)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, QObject, QSize, Qt, Signal
from PySide6.QtSvgWidgets import QSvgWidget
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from ..catalogue import UNKNOWN_VALVE_ID, VALVE_IDS
from .models.dial import dial_settings, setting_text
from .models.valves import (
    diagram_path,
    load_template,
    sections_html,
    template_sections,
    valve_label,
)

log = logging.getLogger(__name__)
class Diagram(QSvgWidget):
    """The template's SVG; a click opens it large in its own window, which then shows the
    template of whichever study is on screen and closes with the main window."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.path: Path | None = None
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setToolTip("Click to see the template diagram large")
        self.large: QSvgWidget | None = None

    def show_file(self, path: Path | None) -> None:
        self.path = path
        self.load(str(path) if path is not None else b"")
        renderer = self.renderer()
        renderer.setAspectRatioMode(Qt.AspectRatioMode.KeepAspectRatio)
        if self.large is not None and self.large.isVisible():
            self._fill_large()

    def _fill_large(self) -> None:
        assert self.large is not None
        self.large.load(str(self.path) if self.path is not None else b"")
        self.large.renderer().setAspectRatioMode(Qt.AspectRatioMode.KeepAspectRatio)
        self.large.setWindowTitle(f"Template – {self.path.parent.name}" if self.path is not None
                                  else "Template – no valve identified")

    def mousePressEvent(self, event: object) -> None:
        if self.path is None:
            return
        if self.large is None:
            main = self.window()
            self.large = QSvgWidget(main)  # a window of its own, owned by the main window
            self.large.setWindowFlag(Qt.WindowType.Window)
            self.large.setStyleSheet("background: white;")
            self.large.resize(900, 680)
            main.installEventFilter(self)  # closes with it
        self._fill_large()
        self.large.show()
        self.large.raise_()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.window() and event.type() == QEvent.Type.Close and self.large is not None:
            self.large.close()
        return False


class TemplatePanel(QWidget):
    correction_requested = Signal(str)  # valve id the reader picked instead of the model's
    reading_chosen = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.valve_id: str | None = None
        self.template: Any = None
        self._updating = False
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        row = QHBoxLayout()
        row.addWidget(QLabel("Template:"))
        self.picker = QComboBox()
        self.picker.setToolTip("Show another valve's template; this records a correction (C)")
        # Names from the ids for now: parsing every template's YAML would delay start-up by
        # a second or more; refresh_names() puts the catalogue's names in once it is loaded.
        for valve_id in (*VALVE_IDS, UNKNOWN_VALVE_ID):
            self.picker.addItem(valve_id.replace("_", " ").title() if valve_id != UNKNOWN_VALVE_ID
                                else "Unknown valve", valve_id)
        self.picker.activated.connect(self._picked)
        row.addWidget(self.picker, 1)
        layout.addLayout(row)
        # The diagram lives in its own box so the window can set it beside the zoomed valve.
        self.diagram_box = QWidget()
        box_layout = QVBoxLayout(self.diagram_box)
        box_layout.setContentsMargins(0, 0, 0, 0)
        self.diagram = Diagram()
        self.diagram.setMinimumSize(QSize(160, 160))
        self.diagram.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.no_diagram = QLabel("No diagram for this valve")
        self.no_diagram.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.no_diagram.setObjectName("dim")
        box_layout.addWidget(self.diagram, 1)
        box_layout.addWidget(self.no_diagram, 1)
        reading_row = QHBoxLayout()
        reading_row.addWidget(QLabel("Reading:"))
        self.reading = QComboBox()
        self.reading.setToolTip("The setting you read; set by the dial or chosen here; goes into the report")
        self.reading.activated.connect(lambda _: self.reading_chosen.emit(self.current_reading()))
        reading_row.addWidget(self.reading, 1)
        layout.addLayout(reading_row)
        self.sections = QTextBrowser()
        self.sections.setOpenExternalLinks(False)
        layout.addWidget(self.sections, 3)
        self.show_valve(None)

    def refresh_names(self, *_: object) -> None:
        for index in range(self.picker.count()):
            valve_id = self.picker.itemData(index)
            if valve_id != UNKNOWN_VALVE_ID:
                self.picker.setItemText(index, valve_label(valve_id)[0])

    def show_valve(self, valve_id: str | None, empty_html: str | None = None) -> None:
        """The template of ``valve_id``; None shows none, the pane then saying ``empty_html`` (by
        default that the template appears once a valve is identified)."""
        self.valve_id = valve_id
        self.template = load_template(valve_id) if valve_id else None
        index = self.picker.findData(valve_id) if valve_id else -1
        self.picker.setCurrentIndex(index)
        path = getattr(self.template, "diagram", None) or (diagram_path(valve_id) if valve_id else None)
        self.diagram.show_file(Path(path) if path is not None else None)
        self.diagram.setVisible(path is not None)
        self.no_diagram.setVisible(path is None)
        self.no_diagram.setText("No diagram for this valve" if valve_id else
                                "No valve to read: no template" if empty_html else "Template diagram")
        self.reading.clear()
        self.reading.addItem("— not read —", "")
        for setting in dial_settings(self.template):
            text = setting_text(setting)
            self.reading.addItem(text, text)
        self.sections.setHtml(sections_html(self.template) if valve_id else
                              empty_html or "<p><i>The template appears when a valve is identified.</i></p>")

    def set_reading(self, text: str) -> None:
        index = self.reading.findData(text) if text else 0
        self.reading.setCurrentIndex(max(index, 0))

    def current_reading(self) -> str:
        return str(self.reading.currentData() or "")

    def _picked(self, index: int) -> None:
        valve_id = self.picker.itemData(index)
        if valve_id and valve_id != self.valve_id:
            self.show_valve(valve_id)
            self.correction_requested.emit(valve_id)

    def template_sections(self) -> list[tuple[str, list[str]]]:
        return template_sections(self.template)
