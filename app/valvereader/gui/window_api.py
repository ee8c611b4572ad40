"""What the main window's parts (actions and menus, review, region, exports, prior film, window
geometry) use of the window: a Protocol, so that they take the window without importing the
module that builds them from it (gui/main_window imports them; they import only this).

Qt-free when run: the Qt and widget types below are for type checking only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from PySide6.QtCore import QByteArray, QObject
    from PySide6.QtGui import QAction
    from PySide6.QtWidgets import QDockWidget, QMenuBar, QSlider, QStatusBar, QToolBar, QWidget

    from ..review import ReviewStore
    from ..settings import Settings
    from .canvas import ImageCanvas
    from .models.analysis import ModelStatus, SharedModel
    from .models.services import RadiographCache
    from .models.state import DialState, ViewState, Worklist
    from .notify import Notifier
    from .result_panel import ResultPanel
    from .template_panel import TemplatePanel
    from .valve_view import ValveView
    from .worker import Worker
    from .worklist import WorklistPanel


class Review(Protocol):
    """The reader's decisions on the study shown (gui.review.ReviewController)."""

    store: ReviewStore | None

    def accept(self) -> None: ...

    def reject(self) -> None: ...

    def ask_correction(self) -> None: ...

    def clear(self) -> None: ...


class Regions(Protocol):
    """The valve region chosen by the reader (gui.region.RegionController)."""

    def back_to_located(self) -> None: ...

    def reading(self, index: int) -> bool: ...


class Exports(Protocol):
    """The export menu's actions (gui.exporting.ExportController)."""

    def png(self, path: Path | None = None) -> Path | None: ...

    def pdf(self, path: Path | None = None) -> Path | None: ...

    def secondary_capture(self, path: Path | None = None) -> Path | None: ...

    def worklist_csv(self, path: Path | None = None) -> Path | None: ...

    def worklist_pdf(self, path: Path | None = None) -> None: ...


class PriorFilm(Protocol):
    """The open prior-film window, as the PDF export asks it (gui.prior.PriorWindow)."""

    def prior_content(self, deidentify: bool, model_name: str) -> Any: ...


class Window(Protocol):
    """The main window (gui.main_window.MainWindow) as its parts see it."""

    settings: Settings
    model_status: ModelStatus | None
    exports: Exports
    prior_window: PriorFilm | None
    opacity_slider: QSlider | None

    @property
    def model(self) -> SharedModel: ...

    @property
    def view(self) -> ViewState: ...

    @property
    def dial(self) -> DialState: ...

    @property
    def worklist(self) -> Worklist: ...

    @property
    def cache(self) -> RadiographCache: ...

    @property
    def batch(self) -> int: ...

    @property
    def notifier(self) -> Notifier: ...

    @property
    def review(self) -> Review: ...

    @property
    def regions(self) -> Regions: ...

    @property
    def actions_by_name(self) -> dict[str, QAction]: ...

    @property
    def canvas(self) -> ImageCanvas: ...

    @property
    def valve_view(self) -> ValveView: ...

    @property
    def result_panel(self) -> ResultPanel: ...

    @property
    def template_panel(self) -> TemplatePanel: ...

    @property
    def worklist_panel(self) -> WorklistPanel: ...

    @property
    def worklist_dock(self) -> QDockWidget: ...

    @property
    def right_dock(self) -> QDockWidget: ...

    def start_worker(self, function: Callable[..., Any], *args: Any, returned: Callable[[Any], None] | None = None,
                     yielded: Callable[[Any], None] | None = None, what: str = "",
                     errored: Callable[[BaseException], None] | None = None,
                     finished: Callable[[], None] | None = None,
                     progress: Callable[..., None] | None = None) -> Worker: ...

    def open_paths(self, paths: Iterable[str | Path]) -> None: ...

    def go_to(self, index: int) -> None: ...

    def step(self, delta: int) -> None: ...

    def show_result(self) -> None: ...

    def cancel_analysis(self) -> None: ...

    def resume_analysis(self) -> None: ...

    # the QMainWindow calls the parts make
    def window(self) -> QWidget:
        """The window as a QWidget (QWidget.window() of a top-level window is the window itself):
        the parent of the dialogs, actions and windows the parts make."""
        ...

    def statusBar(self) -> QStatusBar: ...

    def menuBar(self) -> QMenuBar: ...

    def addToolBar(self, toolbar: QToolBar, /) -> None: ...

    def addAction(self, action: QAction, /) -> None: ...

    def installEventFilter(self, watcher: QObject, /) -> None: ...

    def close(self) -> bool: ...

    def resize(self, w: int, h: int, /) -> None: ...

    def saveGeometry(self) -> QByteArray: ...

    def restoreGeometry(self, geometry: QByteArray, /) -> bool: ...

    def saveState(self, version: int = 0) -> QByteArray: ...

    def restoreState(self, state: QByteArray, version: int = 0) -> bool: ...
