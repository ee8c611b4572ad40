"""What the model says, in words first: verdict badge, valve and maker, a bar per class;
numbers (probabilities, confidence, entropy, top-2 gap, open-set score) one click deeper.
"No valve found" shows no bars and no numbers: a plain line says why none applies."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from ..prediction import Prediction, verdict_meaning
from .models.result import (
    READER_REGION_TEXT,
    VERDICT_COLOURS,
    no_valve_why,
    numbers_text,
    shows_valve,
    valve_html,
)
from .models.valves import short_name, valve_label


class ProbabilityBar(QWidget):
    """A horizontal bar; the number is drawn only when asked for."""

    def __init__(self, value: float, highlight: bool, parent: QWidget | None = None):
        super().__init__(parent)
        self.value = value
        self.highlight = highlight
        self.show_number = False
        self.setMinimumHeight(14)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def paintEvent(self, event: object) -> None:
        painter = QPainter(self)
        rect = self.rect().adjusted(0, 2, -1, -2)
        painter.fillRect(rect, QColor(45, 48, 54))
        filled = rect.adjusted(0, 0, int(-(1 - self.value) * rect.width()), 0)
        painter.fillRect(filled, QColor(90, 170, 230) if self.highlight else QColor(110, 118, 130))
        if self.show_number:
            painter.setPen(QColor(235, 235, 235))
            painter.drawText(rect.adjusted(4, 0, -4, 0), Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                             f"{self.value * 100:.1f} %")


class ResultPanel(QWidget):
    back_requested = Signal()  # "Back to the located box"

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        # In a scroll area: a long result (an unsure verdict's words, the reader's region) scrolls
        # instead of squeezing the bars' names over each other in a short column.
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        inner = QWidget()
        scroll.setWidget(inner)
        outer.addWidget(scroll)
        layout = QVBoxLayout(inner)
        layout.setContentsMargins(6, 6, 6, 6)
        self.badge = QLabel("No result yet")
        self.badge.setObjectName("verdictBadge")
        self.badge.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.valve = QLabel("")
        self.valve.setObjectName("valveName")
        self.valve.setWordWrap(True)
        self.meaning = QLabel("")
        self.meaning.setWordWrap(True)
        self.meaning.setObjectName("dim")
        self.region = QLabel("")  # where the region read came from, when the reader chose it
        self.region.setObjectName("readerRegion")
        self.region.setWordWrap(True)
        self.region.setStyleSheet("color:#ffa03c;")
        self.region.setToolTip("The model read the region you drew or double-clicked, not the box it located")
        self.back_button = QPushButton("Back to the located box")
        self.back_button.setToolTip("Forget the region you chose; the model reads the box it located (Shift+Backspace)")
        self.back_button.clicked.connect(self.back_requested.emit)
        self.details_button = QPushButton("Show numbers")
        self.details_button.setCheckable(True)
        self.details_button.setToolTip("Probabilities, confidence, entropy and top-2 gap")
        self.details_button.toggled.connect(self._show_numbers)
        self.why = QLabel("")  # "No valve found": why no probability is shown, in place of the bars
        self.why.setObjectName("noValveWhy")
        self.why.setWordWrap(True)
        self.why.setVisible(False)
        self.bars = QGridLayout()
        self.bars.setColumnStretch(1, 1)
        self.numbers = QLabel("")
        self.numbers.setObjectName("dim")
        self.numbers.setVisible(False)
        self.numbers.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        for widget in (self.badge, self.valve, self.region, self.back_button, self.meaning, self.why):
            layout.addWidget(widget)
        layout.addLayout(self.bars)
        layout.addWidget(self.details_button)
        layout.addWidget(self.numbers)
        layout.addStretch(1)
        self._bar_widgets: list[ProbabilityBar] = []
        self.show_message("No result yet", "Open an image to analyse it.")

    def _set_badge(self, text: str, fg: str, bg: str) -> None:
        self.badge.setText(text)
        self.badge.setStyleSheet(f"background:{bg}; color:{fg}; border-radius:4px; padding:6px;"
                                 "font-size:15pt; font-weight:bold;")

    def _clear_bars(self) -> None:
        while self.bars.count():
            item = self.bars.takeAt(0)
            widget = item.widget() if item is not None else None
            if widget is not None:
                widget.deleteLater()
        self._bar_widgets = []

    def show_message(self, headline: str, text: str, busy: bool = False) -> None:
        """No prediction (busy, no model, error): say so plainly."""
        self._set_badge(headline, "#d0d4da", "#2b2f36")
        self.valve.setText("")
        self._show_region(False)
        self.meaning.setText(text)
        self.why.setVisible(False)
        self._clear_bars()
        self.numbers.setText("")
        self.numbers.setVisible(False)
        self.details_button.setVisible(False)

    def show_prediction(self, prediction: Prediction, corrected_valve_id: str | None = None) -> None:
        fg, bg = VERDICT_COLOURS[prediction.verdict]
        self._set_badge(prediction.verdict.label, fg, bg)
        self.valve.setText(valve_html(prediction, corrected_valve_id))
        self._show_region(prediction.box_source == "reader")
        self.meaning.setText(verdict_meaning(prediction))
        self._clear_bars()
        if not shows_valve(prediction):  # the valves' probabilities would name one
            self.why.setText(no_valve_why(prediction))
            self.why.setVisible(True)
            self.numbers.setText("")
            self.numbers.setVisible(False)
            self.details_button.setVisible(False)
            return
        self.why.setVisible(False)
        for row, (valve_id, p) in enumerate(prediction.ranked()):
            label = QLabel(short_name(valve_id))
            label.setToolTip(f"{valve_label(valve_id)[0]} ({valve_id})")
            label.setMaximumWidth(190)
            bar = ProbabilityBar(p, row == 0)
            bar.show_number = self.details_button.isChecked()
            self.bars.addWidget(label, row, 0)
            self.bars.addWidget(bar, row, 1)
            self._bar_widgets.append(bar)
        self.numbers.setText(numbers_text(prediction))
        self.details_button.setVisible(True)
        self.numbers.setVisible(self.details_button.isChecked())

    def _show_region(self, by_reader: bool) -> None:
        self.region.setText(READER_REGION_TEXT if by_reader else "")
        self.region.setVisible(by_reader)
        self.back_button.setVisible(by_reader)

    def _show_numbers(self, shown: bool) -> None:
        self.details_button.setText("Hide numbers" if shown else "Show numbers")
        self.numbers.setVisible(shown)
        for bar in self._bar_widgets:
            bar.show_number = shown
            bar.update()
