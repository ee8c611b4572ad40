"""The loaders' imports (pydicom, its pixel handlers, the DICOM and image loaders), made once and
by one thread at a time.

Two threads importing them at once meet Python's guard against import deadlocks: the window's
background start-up imported the DICOM loader (which imports ``.display``, then pydicom) while
the first file, a PNG, was being loaded (``.images`` imports ``.display``, which imports
pydicom). Each thread held a module the other waited for, and Python broke the cycle by
handing one of them a half-initialised pydicom: "cannot import name 'Dataset' from partially
initialized module 'pydicom.dataset'", so a good file was reported unreadable, or the model
did not load. Everything that imports them from a thread calls :func:`import_loaders` first.
Never call it while a module is being imported (only from functions that run afterwards).
"""

from __future__ import annotations

import threading

_lock = threading.Lock()
_done = False


def import_loaders() -> None:
    """Import the DICOM and image loaders with everything they import; at once on later calls."""
    global _done
    if _done:
        return
    with _lock:
        if not _done:
            from . import dicom, images  # noqa: F401 - imported for their (and pydicom's) modules

            _done = True
