"""Logging to a rotating file in the user's log folder, with patient identifiers scrubbed.

Every identifier the loader has seen (patient name and its components, id, birth date) is
registered with :func:`remember_identifiers`; the filter replaces them with "[redacted]" in
every record, including file paths that happen to contain a name.
"""

from __future__ import annotations

import logging
import logging.handlers
import re
import threading
from pathlib import Path

from .radiograph import RadiographMeta

_lock = threading.Lock()
_identifiers: set[str] = set()
_pattern: re.Pattern[str] | None = None


def remember_identifiers(meta: RadiographMeta) -> None:
    """Register ``meta``'s patient identifiers so that no log line ever shows them."""
    global _pattern
    found = set()
    for value in (meta.patient_name, meta.patient_id, meta.patient_birth_date):
        if not value:
            continue
        text = str(value).strip()
        found.add(text)
        found.update(part for part in re.split(r"[\^\s,]+", text) if len(part) >= 3)
    found = {f for f in found if len(f) >= 3}
    with _lock:
        if found - _identifiers:
            _identifiers.update(found)
            alternatives = sorted(_identifiers, key=len, reverse=True)
            _pattern = re.compile("|".join(re.escape(a) for a in alternatives), re.IGNORECASE)


def redact(text: str) -> str:
    pattern = _pattern
    return pattern.sub("[redacted]", text) if pattern else text


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if _pattern is not None:
            record.msg = redact(record.getMessage())
            record.args = ()
        return True


def setup_logging(level: int = logging.INFO, folder: Path | None = None) -> Path:
    """Log ``valvereader.*`` to <log dir>/valvereader.log (rotating, 3 × 2 MB). Returns the path."""
    from .settings import log_dir

    folder = Path(folder or log_dir()).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "valvereader.log"
    logger = logging.getLogger("valvereader")
    logger.setLevel(level)
    for old in [h for h in logger.handlers if getattr(h, "_valvereader", False)]:
        if Path(getattr(old, "baseFilename", "")) != path.resolve():
            logger.removeHandler(old)
            old.close()
    if not any(getattr(h, "_valvereader", False) for h in logger.handlers):
        handler = logging.handlers.RotatingFileHandler(path, maxBytes=2_000_000, backupCount=3, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler.addFilter(RedactingFilter())
        handler._valvereader = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    return path
