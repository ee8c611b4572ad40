"""One place where messages for the reader go: errors from workers, warnings, notes. They
appear in the status line (never as a blocking dialog that could stall a batch), are kept in
View ▸ Messages, and go to the log with their traceback."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QStatusBar

log = logging.getLogger("valvereader.gui")


@dataclass(frozen=True)
class Message:
    level: str  # "error", "warning", "info"
    text: str
    time: datetime


class Notifier(QObject):
    posted = Signal(object)  # Message

    def __init__(self, status_bar: QStatusBar, parent: QObject | None = None):
        super().__init__(parent)
        self.status_bar = status_bar
        self.messages: list[Message] = []

    def _post(self, level: str, text: str, timeout_ms: int) -> None:
        message = Message(level, text, datetime.now())
        self.messages.append(message)
        del self.messages[:-500]
        prefix = {"error": "⚠ ", "warning": "Note: ", "info": ""}[level]
        self.status_bar.showMessage(prefix + text, timeout_ms)
        self.posted.emit(message)

    def error(self, text: str, exc: BaseException | None = None) -> None:
        details = getattr(exc, "__traceback_text__", "") if exc is not None else ""
        log.error("%s%s", text, f"\n{details}" if details else "")
        self._post("error", text, 15000)

    def warning(self, text: str) -> None:
        log.warning("%s", text)
        self._post("warning", text, 12000)

    def info(self, text: str) -> None:
        log.info("%s", text)
        self._post("info", text, 5000)
