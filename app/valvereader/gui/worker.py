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
        self._signals.progress.emit(done, total, what)

    def emit(self, value: object) -> None:
        self._signals.yielded.emit(value)


class Worker(QRunnable):
    """Runs ``function(context, *args)``. Keep a reference (the window does) until finished."""

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
        try:
            signals.started.emit()
            result = self._function(WorkerContext(signals, self._cancel), *self._args)
        except Cancelled:
            pass
        except BaseException as exc:  # noqa: BLE001 - every failure must reach the user
            exc.__traceback_text__ = traceback.format_exc()  # type: ignore[attr-defined]
            signals.errored.emit(exc)
        else:
            if not self._cancel.is_set():
                signals.returned.emit(result)
        finally:
            self.done.set()
            signals.finished.emit()

    def start(self, pool: QThreadPool | None = None) -> Worker:
        (pool or QThreadPool.globalInstance()).start(self)
        return self
