"""Review ▸ Compare with a prior film: the study on screen beside a prior film of the same
patient (another study of the batch with the same patient ID, or any file picked), each with
its zoomed valve, valve, reading and date, and whether the readings agree, so a reader can
check that a setting did not change (after an MRI, for example). The window follows the study
shown; the PDF report carries the comparison as a second page while a prior is chosen."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from .. import DISCLAIMER
from ..report.compare import comparison, interval_text, side_lines
from .models import export
from .models.prior import PANE_SIDE, PriorFilm, choice_text, load_prior, same_patient
from .models.state import Study
from .window_api import Window

OUTCOME_STYLE = {"same": "background:#1f4d33; color:#d8f5e3;", "different setting": "background:#6b1f28; color:#ffdce1;",
                 "different valve": "background:#6b1f28; color:#ffdce1;", "not read": "background:#2b2f36; color:#c9ccd1;"}


class Pane(QWidget):
    def __init__(self, title: str, parent: QWidget | None = None):
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        heading = QLabel(title)
        heading.setObjectName("dim")
        layout.addWidget(heading)
        self.picture = QLabel()
        self.picture.setFixedSize(PANE_SIDE, PANE_SIDE)
        self.picture.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.picture.setStyleSheet("background:#000; color:#8d939b;")
        layout.addWidget(self.picture)
        self.lines = QLabel()
        self.lines.setWordWrap(True)
        self.lines.setTextFormat(Qt.TextFormat.RichText)
        self.lines.setMinimumHeight(110)
        self.lines.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        layout.addWidget(self.lines)

    def show_film(self, crop: np.ndarray | None, lines: list[tuple[str, str]], empty: str = "") -> None:
        if crop is None:
            self.picture.setPixmap(QPixmap())
            self.picture.setText(empty or "no valve region")
        else:
            rgb = np.ascontiguousarray(crop)
            image = QImage(rgb.data, rgb.shape[1], rgb.shape[0], rgb.strides[0], QImage.Format.Format_RGB888).copy()
            self.picture.setPixmap(QPixmap.fromImage(image).scaled(
                PANE_SIDE, PANE_SIDE, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation))
        self.lines.setText("<br>".join(f"<span style='color:#8d939b'>{label}</span>&nbsp; <b>{value}</b>"
                                       if label in ("Valve", "Reading") else
                                       f"<span style='color:#8d939b'>{label}</span>&nbsp; {value}"
                                       for label, value in lines))


class PriorWindow(QWidget):
    """The comparison, a window of its own owned by the main window (it closes with it)."""

    def __init__(self, window: Window):
        super().__init__(window.window(), Qt.WindowType.Window)
        self.window_ = window
        self.prior: PriorFilm | None = None
        self._loading: Path | None = None
        self.setWindowTitle("Compare with a prior film – Shunt Valve Reader")
        layout = QVBoxLayout(self)
        row = QHBoxLayout()
        row.addWidget(QLabel("Prior:"))
        self.choice = QComboBox()
        self.choice.setToolTip("Other films of this patient in the batch (same patient ID), most recent first")
        self.choice.activated.connect(lambda _: self._chosen())
        row.addWidget(self.choice, 1)
        self.other = QPushButton("Other file…")
        self.other.setToolTip("Compare with any film: it is read with the model now")
        self.other.clicked.connect(self.pick_file)
        row.addWidget(self.other)
        layout.addLayout(row)
        panes = QGridLayout()
        self.this_pane, self.prior_pane = Pane("This film (on screen)"), Pane("Prior film")
        panes.addWidget(self.this_pane, 0, 0)
        panes.addWidget(self.prior_pane, 0, 1)
        layout.addLayout(panes)
        self.interval = QLabel()
        self.interval.setObjectName("dim")
        layout.addWidget(self.interval)
        self.outcome = QLabel()
        self.outcome.setWordWrap(True)
        layout.addWidget(self.outcome)
        disclaimer = QLabel(DISCLAIMER)
        disclaimer.setObjectName("disclaimer")
        layout.addWidget(disclaimer)
        window.worklist.changed.connect(lambda name: self.follow() if name == "current" else None)
        window.worklist.study_changed.connect(self._study_changed)
        window.worklist.reset.connect(lambda: self.clear())
        window.installEventFilter(self)  # closes with the main window

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.window_ and event.type() == QEvent.Type.Close:
            self.close()
        return False

    # --- choosing ------------------------------------------------------------------------------
    def follow(self) -> None:
        """The study on screen changed: offer its patient's other films; a prior still among
        them (or a file from outside the batch) stays chosen, else the most recent is."""
        if not self.isVisible():
            return
        w = self.window_
        studies = w.worklist.studies
        self.choice.blockSignals(True)
        self.choice.clear()
        for index in same_patient(studies, w.worklist.current):
            self.choice.addItem(choice_text(studies[index]), index)
        if not self.choice.count():
            self.choice.addItem("No other film of this patient in the batch: pick one with Other file…", None)
        self.choice.blockSignals(False)
        kept = self.prior.path if self.prior is not None else self._loading
        offered = [studies[i].path if i is not None else None for i in map(self.choice.itemData, range(self.choice.count()))]
        if kept is not None and kept in offered:
            self.choice.setCurrentIndex(offered.index(kept))
            self._show()
        elif kept is not None and kept not in [s.path for s in studies]:
            self._show()  # a file picked from elsewhere stays the prior
        else:
            self.prior = None
            self._chosen()

    def _study_changed(self, index: int) -> None:
        """A study learnt something (result, reading, decision): show it if it is on either side."""
        if not self.isVisible():
            return
        studies = self.window_.worklist.studies
        if self.prior is not None and 0 <= index < len(studies) and studies[index].path == self.prior.path:
            self._start(self.prior.path, studies[index])
        elif index == self.window_.worklist.current:
            self._show()

    def _chosen(self) -> None:
        index = self.choice.currentData()
        if index is None:
            self.prior = None
            self._show()
            return
        study = self.window_.worklist.studies[index]
        self._start(study.path, study)

    def pick_file(self, path: str | Path | None = None) -> None:
        if path is None:
            folder = self.window_.settings.last_folder or str(Path.home())
            chosen, _ = QFileDialog.getOpenFileName(self, "Prior film", folder, "Radiographs (*.dcm *.dicom *.png "
                                                    "*.jpg *.jpeg *.tif *.tiff *.bmp);;All files (*)")
            if not chosen:
                return
            path = chosen
        path = Path(path)
        studies = self.window_.worklist.studies
        study = next((s for s in studies if s.path == path and s.prediction is not None), None)
        self._start(path, study)

    def _start(self, path: Path, study: Study | None) -> None:
        w = self.window_
        self._loading = path
        self.prior_pane.show_film(None, [], f"Reading {path.name}…")
        w.start_worker(lambda ctx: load_prior(path, study, w.cache, w.model), returned=self._loaded,
                       what=f"Prior {path.name}")

    def _loaded(self, prior: PriorFilm) -> None:
        if prior.path != self._loading:
            return  # another prior was chosen meanwhile
        self.prior = prior
        self._show()

    def clear(self) -> None:
        self.prior = None
        self._loading = None
        if self.isVisible():
            self.follow()

    # --- showing -------------------------------------------------------------------------------
    def current_content(self) -> Any | None:
        w = self.window_
        study = w.worklist.current_study
        if study is None or study.prediction is None or w.canvas.radiograph is None:
            return None
        crop = export.valve_crop_rgb(w.canvas.radiograph.pixels, study.prediction, side=PANE_SIDE)
        return export.report_content(study, crop if crop is not None else np.zeros((8, 8, 3), np.uint8), crop,
                                     "", deidentify=False, heatmap_shown=False,
                                     meta=w.canvas.radiograph.meta)

    def _show(self) -> None:
        current = self.current_content()
        if current is None:
            self.this_pane.show_film(None, [], "No result on screen yet")
        else:
            self.this_pane.show_film(current.valve_crop_rgb, side_lines(current))
        if self.prior is None:
            if self._loading is None:
                self.prior_pane.show_film(None, [], "Choose a prior film")
            self.outcome.setText("")
            self.interval.setText("")
            return
        prior = self.prior.content(False, "")
        self.prior_pane.show_film(self.prior.crop, side_lines(prior))
        if current is None:
            return
        outcome, sentence = comparison(current, prior)
        self.outcome.setText(sentence)
        self.outcome.setStyleSheet(OUTCOME_STYLE[outcome] + "padding:8px; border-radius:4px; font-weight:bold;")
        self.interval.setText(interval_text(current, prior) or "")

    def prior_content(self, deidentify: bool, model_name: str) -> Any | None:
        """The prior for the PDF report, while this window is open with one chosen."""
        if not self.isVisible() or self.prior is None:
            return None
        return self.prior.content(deidentify, model_name)


def open_prior(w: Window) -> PriorWindow:
    """Review ▸ Compare with a prior film: show the comparison window (one per main window)."""
    window = w.prior_window
    if not isinstance(window, PriorWindow):
        window = PriorWindow(w)
        w.prior_window = window
        window.resize(700, 620)
    window.show()
    window.raise_()
    window.follow()
    return window
