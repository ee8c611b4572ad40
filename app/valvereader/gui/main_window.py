"""The main window: viewport in the middle, worklist left, result + template right, toolbar
on top, status line with progress and the decision-support line at the bottom. It wires the
Qt-free models (ViewState, DialState, Worklist) to widgets and runs long work in workers."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QThreadPool, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QDockWidget,
    QLabel,
    QMainWindow,
    QProgressBar,
    QPushButton,
    QSlider,
    QWidget,
)

from .. import DISCLAIMER, __version__
from ..catalogue import load_catalogue
from ..geometry import Box
from ..settings import Settings
from .actions import build_actions
from .canvas import ImageCanvas
from .models import render
from .models.analysis import (
    AnalysisQueue,
    ModelStatus,
    SharedModel,
    StudyResult,
    analyse_batch,
    load_model,
    open_results,
)
from .models.services import RadiographCache, describe_error, expand_paths
from .models.state import DialState, Study, ViewState, Worklist
from .models.text import breakable
from .notify import Notifier
from .region import RegionController
from .result_panel import ResultPanel
from .review import ReviewController
from .right_column import COLUMN_WIDTH as RIGHT_WIDTH
from .right_column import result_and_template
from .template_panel import TemplatePanel
from .valve_view import ValveView
from .window_api import Exports, PriorFilm
from .window_settings import restore_window, save_window
from .worker import Worker
from .worklist import PANEL_WIDTH as WORKLIST_WIDTH
from .worklist import WorklistPanel

log = logging.getLogger(__name__)
ModelLoader = Callable[[], ModelStatus]


class MainWindow(QMainWindow):
    """The viewer; its parts (actions, review, region, exports, prior film) see it as a
    ``window_api.Window``."""

    settled = Signal()  # the study on screen is shown with its result (or its error)
    exports: Exports  # the export menu's actions, made with the actions
    prior_window: PriorFilm | None = None  # the prior-film window, once opened
    opacity_slider: QSlider | None = None  # the toolbar's heat-map opacity, once built

    def __init__(self, settings: Settings | None = None, model_loader: ModelLoader | None = None,
                 weights_dir: Path | None = None, device: str | None = None):
        super().__init__()
        self.settings = settings if settings is not None else Settings.load()
        weights = weights_dir or (Path(self.settings.weights_dir) if self.settings.weights_dir else None)
        self.model_loader: ModelLoader = model_loader or (
            lambda: load_model(weights, device or self.settings.device or None))
        self.model = SharedModel(self.model_loader)  # what the analysis asks (loaded once)
        self.model_status: ModelStatus | None = None
        self.view, self.dial, self.worklist = ViewState(), DialState(), Worklist()
        self.cache = RadiographCache()
        self.pool = QThreadPool.globalInstance()
        self.workers: set[Worker] = set()
        self._batch = 0
        self._queue: AnalysisQueue | None = None
        self._analysis: Worker | None = None
        self.results: Any = None  # the batch's kept results (review.ResultCache)
        self._shown_index = -1  # study whose radiograph is on the canvas
        self._negative_shown = -1  # study whose negative file was turned to bone white on screen
        self.setWindowTitle(f"Shunt Valve Reader {__version__}")
        self.setAcceptDrops(True)
        self._build_widgets()
        self.notifier = Notifier(self.statusBar(), self)
        self.review = ReviewController(self)
        self.regions = RegionController(self)  # the valve region chosen by the reader
        self.actions_by_name: dict[str, QAction] = build_actions(self)
        self._restore_settings()
        self.worklist.changed.connect(self._on_worklist_changed)
        self.canvas.setFocus()
        # the catalogue parses every template's YAML: warm it in the background, not at start-up,
        # with the templates themselves (their schema check), which the panel shows
        # (the panel's own method, not a lambda: Qt drops the connection when the panel is
        # deleted, so a window closed before the catalogue is warm is never called back)
        self.start_worker(lambda ctx: _warm_catalogue(), returned=self.template_panel.refresh_names,
                          what="Valve catalogue")

    # --- layout --------------------------------------------------------------------------------
    def _build_widgets(self) -> None:
        self.canvas = ImageCanvas(self.view)
        self.setCentralWidget(self.canvas)
        self.worklist_panel = WorklistPanel(self.worklist)
        self.worklist_panel.activated.connect(self.go_to)
        self.worklist_dock = self._dock("Worklist", self.worklist_panel, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.result_panel = ResultPanel()
        self.valve_view = ValveView(self.view, self.dial)
        self.template_panel = TemplatePanel()
        self.valve_view.reading_changed.connect(self._on_dial_reading)
        self.template_panel.reading_chosen.connect(self._on_reading_chosen)
        self.template_panel.correction_requested.connect(lambda v: self.review.correct(v))
        # result beside the zoomed valve, the template's diagram across the column, its notes below
        right = result_and_template(self.result_panel, self.valve_view, self.template_panel.diagram_box,
                                    self.template_panel)
        self.right_dock = self._dock("Result and template", right, Qt.DockWidgetArea.RightDockWidgetArea)
        self.resizeDocks([self.worklist_dock, self.right_dock], [WORKLIST_WIDTH, RIGHT_WIDTH], Qt.Orientation.Horizontal)
        self.progress = QProgressBar()
        self.progress.setFixedWidth(180)
        self.progress.setVisible(False)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the analysis (Esc in the status line)")
        self.cancel_button.setVisible(False)
        self.cancel_button.clicked.connect(self.cancel_analysis)
        disclaimer = QLabel(DISCLAIMER)
        disclaimer.setObjectName("disclaimer")
        # What the loader did to the image on screen (first of N frames, no window in the file,
        # grey scale reversed, ...): kept in the status line while the study is shown, where the
        # batch's passing messages cannot cover it.
        self.image_notes = QLabel()
        self.image_notes.setObjectName("imageNotes")
        self.image_notes.setVisible(False)
        self._noted: set[Path] = set()  # files whose notes went to View ▸ Messages already
        status = self.statusBar()
        status.addPermanentWidget(self.image_notes)
        status.addPermanentWidget(self.progress)
        status.addPermanentWidget(self.cancel_button)
        status.addPermanentWidget(disclaimer)
        self.canvas.measured.connect(lambda text: self.statusBar().showMessage(f"Distance: {text}", 10000))

    def _dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(title.replace(" ", "_"))
        dock.setWidget(widget)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                         | QDockWidget.DockWidgetFeature.DockWidgetClosable)
        self.addDockWidget(area, dock)
        return dock

    def _restore_settings(self) -> None:
        restore_window(self)

    def save_settings(self) -> None:
        save_window(self)

    def closeEvent(self, event: QCloseEvent) -> None:
        self.cancel_analysis()
        self.save_settings()
        super().closeEvent(event)

    @property
    def batch(self) -> int:
        """The number of the batch on screen: results of an earlier one are dropped."""
        return self._batch

    # --- workers -------------------------------------------------------------------------------
    def start_worker(self, function: Callable[..., Any], *args: Any, returned: Callable[[Any], None] | None = None,
                     yielded: Callable[[Any], None] | None = None, what: str = "",
                     errored: Callable[[BaseException], None] | None = None,
                     finished: Callable[[], None] | None = None,
                     progress: Callable[..., None] | None = None) -> Worker:
        """Run ``function`` in the pool; every callback is connected before it starts (a worker
        that finishes at once, such as a batch whose results are all kept, loses none)."""
        worker = Worker(function, *args)
        self.workers.add(worker)
        if progress is not None:
            worker.signals.progress.connect(progress)
        if finished is not None:
            worker.signals.finished.connect(finished)
        if returned is not None:
            worker.signals.returned.connect(returned)
        if yielded is not None:
            worker.signals.yielded.connect(yielded)
        worker.signals.errored.connect(lambda exc: self.notifier.error(f"{what}: {describe_error(exc)}" if what else
                                                                        describe_error(exc), exc))
        if errored is not None:
            worker.signals.errored.connect(errored)
        # Keep the Python object alive a little past ``finished``: the pool thread is still
        # unwinding run() when the signal arrives, and freeing it then can crash the process.
        worker.signals.finished.connect(lambda: QTimer.singleShot(2000, lambda: self.workers.discard(worker)))
        return worker.start(self.pool)

    # --- opening -------------------------------------------------------------------------------
    def open_paths(self, paths: Iterable[str | Path]) -> None:
        """Files and folders → a batch (scanned in the background), then analysed in order."""
        chosen = [Path(p) for p in paths]
        if not chosen:
            return
        for path in chosen:
            if path.is_file():
                self.settings.add_recent_file(path)
        folder = chosen[0] if chosen[0].is_dir() else chosen[0].parent
        self.settings.last_folder = str(folder)
        self.statusBar().showMessage(f"Scanning {len(chosen)} item(s)…")
        self.start_worker(lambda ctx: expand_paths(chosen), returned=self._set_batch, what="Opening")

    def _set_batch(self, result: tuple[list[Study], Path | None]) -> None:
        studies, folder = result
        if not studies:
            where = f" in {folder}" if folder is not None else ""
            self.notifier.warning(f"No radiographs found{where} (DICOM, PNG, JPEG, TIFF or BMP).")
            self._clear_batch(f"No radiographs found{where}.\nOpen another folder or file.")
            return
        self.cancel_analysis()
        self._batch += 1
        self.cache.clear()
        self._shown_index = -1
        self.review.open(folder, studies)
        self.results = open_results(folder)  # results kept from an earlier reading of these files
        self.worklist.replace(studies, folder)
        # one image needs no worklist; a batch always shows it
        self._show_worklist(len(studies) > 1)
        self.start_analysis([i for i, s in enumerate(studies) if s.error is None])
        self.statusBar().showMessage(f"{len(studies)} studies from {folder}", 5000)

    def _clear_batch(self, message: str) -> None:
        """An empty batch: nothing of the previous one stays on screen or in the worklist."""
        self.cancel_analysis()
        self._batch += 1
        self.cache.clear()
        self._shown_index = -1
        self.review.open(None, [])
        self.worklist.replace([], None)
        self.canvas.set_radiograph(None)
        self.canvas.placeholder = message
        self._show_image_notes([])
        self.result_panel.show_message("No radiographs", breakable(message))
        self.valve_view.set_valve(None, None)
        self.template_panel.show_valve(None)
        self.setWindowTitle(f"Shunt Valve Reader {__version__}")

    def _show_worklist(self, show: bool) -> None:
        """Show or hide the worklist. Shown for a new batch, it gets at least the width its
        columns need: laid out before the window had its size it came out at 380 px, and the
        valve column (the one that stretches) shrank to an ellipsis."""
        self.worklist_dock.setVisible(show)
        if show and self.worklist_dock.width() < WORKLIST_WIDTH:
            self.resizeDocks([self.worklist_dock], [WORKLIST_WIDTH], Qt.Orientation.Horizontal)

    def start_analysis(self, indices: list[int]) -> None:
        if not indices:
            self._check_settled()
            return
        self._queue = AnalysisQueue(indices)
        if 0 <= self.worklist.current < len(self.worklist.studies):
            self._queue.prioritise(self.worklist.current)
        paths = [s.path for s in self.worklist.studies]
        self.progress.setRange(0, 0)
        self.progress.setVisible(True)
        self.cancel_button.setVisible(True)
        # a cancelled worker of an earlier batch may still report: only the current one counts
        # (queued signals: they arrive after this method has set ``_analysis``)
        started: list[Worker] = []
        worker = self.start_worker(analyse_batch, self._batch, paths, self._queue, self.cache, self.model,
                                   self.results, yielded=self._on_analysis_event, what="Analysis",
                                   progress=lambda *args: self._on_progress(*args) if self._analysis in started else None,
                                   finished=lambda: self._analysis_finished(started[0]))
        started.append(worker)
        self._analysis = worker

    def preload_model(self) -> None:
        """Load the model in the background now, before any file is opened (the program's
        start does this; tests that build windows do not pay for it)."""
        if not self.model.loaded:
            self.model.preload(first=_import_loaders, then=self._warm_up_unless_busy)

    def _warm_up_unless_busy(self, status: ModelStatus) -> None:
        """On the preload's thread, once the model is loaded: build what a first crop would build,
        unless an analysis already runs (a file opened on the command line, or before the model
        was ready): that one would share the cores with it, and builds it itself if it needs it."""
        warm_up = getattr(status.predictor, "warm_up", None)
        if self._analysis is None and warm_up is not None:
            warm_up()

    def cancel_analysis(self) -> None:
        if self._analysis is not None:
            self._analysis.cancel()
            self.statusBar().showMessage("Analysis cancelled; Analyse (Ctrl+Return) resumes it", 8000)

    def resume_analysis(self) -> None:
        if self._analysis is None:
            self.start_analysis([i for i, s in enumerate(self.worklist.studies) if not s.analysed])

    def _analysis_finished(self, worker: Worker) -> None:
        if worker is not self._analysis:
            return
        self._analysis = None
        done = sum(s.analysed for s in self.worklist.studies)
        self.statusBar().showMessage(f"{done} of {len(self.worklist.studies)} studies analysed", 8000)
        self.progress.setVisible(False)
        self.cancel_button.setVisible(False)
        self._check_settled()

    def _on_progress(self, done: int, total: int, name: str) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)
        self.progress.setFormat(f"{done}/{total} analysed")
        if name:
            self.statusBar().showMessage(f"Analysing {name}…")

    def _on_analysis_event(self, event: Any) -> None:
        if isinstance(event, ModelStatus):
            self.model_status = event
            if event.predictor is None:
                self.notifier.warning(event.message)
            return
        if not isinstance(event, StudyResult) or event.batch != self._batch:
            return
        self.worklist.update(event.index, thumbnail=event.thumbnail, meta=event.meta,
                             prediction=self.regions.arrived(event.index, event.prediction), error=event.error)
        if event.error:
            name = self.worklist.studies[event.index].path.name
            self.notifier.error(f"{name}: {event.error}")
        if event.index == self.worklist.current:
            self.show_result()

    # --- navigation and display ----------------------------------------------------------------
    def go_to(self, index: int) -> None:
        if 0 <= index < len(self.worklist.studies):
            self.worklist.current = index

    def step(self, delta: int) -> None:
        target = self.worklist_panel.neighbour(delta)
        if target is not None:
            self.go_to(target)

    def _on_worklist_changed(self, name: str) -> None:
        if name == "current":
            self.show_study(self.worklist.current)

    def show_study(self, index: int) -> None:
        study = self.worklist.current_study
        if study is None:
            return
        if self._queue is not None:
            self._queue.prioritise(index)
        self.view.set_window(0.5, 1.0)
        self.view.invert = False
        self._negative_shown = -1
        self.view.reset_geometry()
        self.dial.reset()
        self.canvas.set_radiograph(None)
        self._show_image_notes([])
        self._shown_index = -1
        self.canvas.placeholder = f"Loading {study.path.name}…"
        self.result_panel.show_message("Analysing…", f"{study.path.name}")
        self.valve_view.set_valve(None, None)
        self.template_panel.show_valve(None)
        self.setWindowTitle(f"{study.path.name} – Shunt Valve Reader {__version__}")
        if study.error and not study.analysed:
            self._show_error(study)
            return
        batch = self._batch
        self.start_worker(lambda ctx: self.cache.get(study.path),
                          returned=lambda radiograph: self._radiograph_loaded(batch, index, radiograph),
                          errored=lambda exc: self._radiograph_failed(batch, index, exc), what=study.path.name)

    def _radiograph_loaded(self, batch: int, index: int, radiograph: Any) -> None:
        if batch != self._batch or index != self.worklist.current:
            return
        self._shown_index = index
        self.canvas.set_radiograph(radiograph)
        notes = radiograph.meta.notes
        self._show_image_notes(notes)
        path = self.worklist.studies[index].path
        if notes and path not in self._noted:  # and once per file in View ▸ Messages and the log
            self._noted.add(path)
            self.notifier.warning(f"{path.name}: {'; '.join(notes)}")
        self.show_result()

    def _show_image_notes(self, notes: list[str]) -> None:
        """The loader's notes on the study shown, in the status line (shortened; whole in the tooltip)."""
        text = "; ".join(notes)
        self.image_notes.setText(f"Image: {text[:77] + '…' if len(text) > 80 else text}" if text else "")
        self.image_notes.setToolTip(text)
        self.image_notes.setVisible(bool(text))

    def _radiograph_failed(self, batch: int, index: int, exc: BaseException) -> None:
        if batch != self._batch or index != self.worklist.current:
            return
        study = self.worklist.studies[index]
        if not study.error:
            self.worklist.update(index, error=describe_error(exc))
        self._show_error(study)

    def _show_error(self, study: Study) -> None:
        """The image could not be read (nothing on the canvas) or the model failed on it."""
        self._shown_index = self.worklist.current
        if self.canvas.radiograph is None:
            self.canvas.placeholder = f"{study.path.name} cannot be shown:\n{study.error}"
            self.canvas.update()
            self.result_panel.show_message("Cannot read", breakable(study.error or ""))
        else:
            self.result_panel.show_message("Analysis failed",
                                           breakable(f"{study.error}\nThe image is shown without a result."))
        self._check_settled()

    def show_result(self) -> None:
        """Put the current study's model result on the canvas and panels."""
        study = self.worklist.current_study
        if study is None:
            return
        if study.error:
            self._show_error(study)
            return
        if self._shown_index != self.worklist.current:
            return
        if study.prediction is None:
            if self.model_status is not None and self.model_status.predictor is None:
                self.result_panel.show_message(self.model_status.headline, self.model_status.message)
            elif not study.analysed and self._analysis is None:
                self.result_panel.show_message("Not analysed", "Analysis was cancelled. Analyse (Ctrl+Return) resumes it.")
            self._check_settled()
            return
        prediction = study.prediction
        if prediction.inverted and self._negative_shown != self.worklist.current:
            # A negative file the model read inverted is shown as it was read, bone white, once
            # per opening (Invert, I, shows the file as it is).
            self.view.invert = True
            self._negative_shown = self.worklist.current
        self.canvas.set_prediction(prediction)
        self.result_panel.show_prediction(prediction, study.corrected_valve_id)
        from .models.export import shown_valve
        from .models.result import no_valve_template_html, no_valve_zoom_text, shows_valve

        found = shows_valve(prediction)  # "No valve found": nothing zoomed, no template; the panes say why
        region = render.zoom_box(prediction.box.as_tuple() if prediction.box else None, prediction.heatmap,
                                 self.canvas.radiograph.shape) if self.canvas.radiograph is not None and found else None
        self.valve_view.set_valve(self.canvas.radiograph, Box(*region) if region else None,
                                  None if found else no_valve_zoom_text(prediction))
        valve_id = shown_valve(study)
        self.template_panel.show_valve(valve_id, None if found else no_valve_template_html(prediction))
        self.valve_view.set_template(self.template_panel.template)
        if study.reading:
            self.template_panel.set_reading(study.reading)
            if study.dial:  # the dial where it stood for that reading, over the same part of the film
                self.dial.place(study.dial)
                self.valve_view.set_loupe_view(study.dial.get("view"))
        self._check_settled()

    def _on_dial_reading(self, text: str) -> None:
        if text:
            self.template_panel.set_reading(text)
            self._on_reading_chosen(text)

    def _on_reading_chosen(self, text: str) -> None:
        study = self.worklist.current_study
        if study is not None and study.reading != (text or None):
            study.reading = text or None
            study.dial = {**self.dial.position(), "view": self.valve_view.loupe_view()} if text else None
            self.review.update_reading()

    # --- state for headless use ----------------------------------------------------------------
    def is_settled(self) -> bool:
        study = self.worklist.current_study
        if study is None:
            return False
        if self._shown_index != self.worklist.current:
            return False
        return study.analysed or (self.model_status is not None and self.model_status.predictor is None) \
            or self._analysis is None

    def is_idle(self) -> bool:
        """Settled and no analysis running: the whole batch is done (headless screenshots)."""
        return self.is_settled() and self._analysis is None

    def _check_settled(self) -> None:
        if self.is_settled():
            QTimer.singleShot(0, self.settled.emit)

    # --- drag and drop -------------------------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [Path(url.toLocalFile()) for url in event.mimeData().urls() if url.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.open_paths(paths)


def _warm_catalogue() -> None:
    """The catalogue, then every valve's template (each parsed and checked against the schema,
    about 0.4 s in all with the schema library's import): cached, so that the first result does
    not wait for its template in the window's thread. A broken template is left for the
    template panel to report when it is shown."""
    load_catalogue()
    from ..catalogue import UNKNOWN_VALVE_ID, VALVE_IDS
    from ..catalogue.templates import load_template

    for valve_id in (*VALVE_IDS, UNKNOWN_VALVE_ID):
        try:
            load_template(valve_id)
        except Exception as exc:  # noqa: BLE001 - reported where it is shown
            log.debug("template %s not warmed: %s", valve_id, exc)


def _import_loaders() -> None:
    """Import the DICOM loader (pydicom and its pixel handlers: about 0.4 s), so that opening
    the first file does not wait for it; one thread at a time (io.loaders)."""
    from ..io import import_loaders

    import_loaders()
