"""Long work off the GUI thread (the shape of superqt's ``create_worker``, without the
dependency): a function runs on ``QThreadPool``; ``started / progress / yielded / returned /
errored / finished`` arrive as queued signals on the GUI thread. A worker never raises into
Qt: its exception becomes ``errored(exc)``, which the window hands to the notifier."""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal


class Cancelled(Exception):
    """Raised inside a worker function by ``WorkerContext.check()`` after ``cancel()``."""


class WorkerSignals(QObject):
    started = Signal()
    progress = Signal(int, int, str)  # done, total, what
    yielded = Signal(object)
    returned = Signal(object)
    errored = Signal(object)  # the exception, with ``__traceback_text__`` attached
    finished = Signal()


class WorkerContext:
    """Handed to the worker function: report progress, emit partial results, honour cancel."""

    def __init__(self, signals: WorkerSignals, cancel_event: threading.Event):
        self._signals = signals
        self._cancel = cancel_event

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def check(self) -> None:
        if self._cancel.is_set():
            raise Cancelled()

    def progress(self, done: int, total: int, what: str = "") -> None:
        if not Worker.shutting_down:
            self._signals.progress.emit(done, total, what)

    def emit(self, value: object) -> None:
        if not Worker.shutting_down:
            self._signals.yielded.emit(value)


class Worker(QRunnable):
    """Runs ``function(context, *args)``. Keep a reference (the window does) until finished.

    ``Worker.shutting_down`` is set when the application quits while a worker still runs:
    from then on workers emit nothing, since their receivers may already be gone.
    """

    shutting_down = False

    def __init__(self, function: Callable[..., Any], *args: Any):
        super().__init__()
        self.setAutoDelete(False)
        self.signals = WorkerSignals()
        self._function = function
        self._args = args
        self._cancel = threading.Event()
        self.done = threading.Event()

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def run(self) -> None:  # runs on a pool thread
        signals = self.signals

        def emit(signal: Any, *args: Any) -> None:
            if not Worker.shutting_down:
                signal.emit(*args)

        try:
            emit(signals.started)
            result = self._function(WorkerContext(signals, self._cancel), *self._args)
        except Cancelled:
            pass
        except BaseException as exc:  # noqa: BLE001 - every failure must reach the user
            exc.__traceback_text__ = traceback.format_exc()  # type: ignore[attr-defined]
            emit(signals.errored, exc)
        else:
            if not self._cancel.is_set():
                emit(signals.returned, result)
        finally:
            self.done.set()
            emit(signals.finished)

    def start(self, pool: QThreadPool | None = None) -> Worker:
        (pool or QThreadPool.globalInstance()).start(self)
        return self
