"""Crash-safe file writes: nothing half-written ever replaces a good file.

Whole files (``write_bytes``, ``write_text``, ``write_json``) go to a temporary file in the
same folder, are flushed and fsynced, then ``os.replace``d over the target, so a reader sees
either the old file or the new one, never a torn mix. Logs that grow line by line
(``append_line``) are flushed and fsynced after every line, so a crash loses at most the
line being written; readers must tolerate a torn last line.

Every function creates missing parent folders and raises ``OSError`` if the disk refuses.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["append_line", "write_bytes", "write_json", "write_text"]


def _fsync_dir(folder: Path) -> None:
    # The rename itself must reach the disk too; not every platform can open a folder.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; returns the path written.

    Raises:
        OSError: the folder cannot be created or written.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if target.exists():
            # Keep the permissions a user gave the old file.
            os.chmod(tmp, target.stat().st_mode & 0o7777)
        else:
            os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)
    return target


def write_text(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically (UTF-8 by default)."""
    return write_bytes(path, text.encode(encoding))


def write_json(path: str | os.PathLike[str], obj: Any, indent: int | None = 2) -> Path:
    """Write ``obj`` as JSON to ``path`` atomically.

    Raises:
        TypeError: ``obj`` holds something JSON cannot represent.
    """
    text = json.dumps(obj, indent=indent, ensure_ascii=False, sort_keys=False)
    return write_text(path, text + "\n")


def append_line(path: str | os.PathLike[str], line: str) -> Path:
    """Append one line (a newline is added) to ``path`` and fsync it before returning.

    Raises:
        ValueError: ``line`` itself contains a newline (it would split the record).
    """
    if "\n" in line or "\r" in line:
        raise ValueError("append_line takes a single line; it contains a line break")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    created = not target.exists()
    with open(target, "ab") as handle:
        # A torn line from an earlier crash must not swallow this record.
        if not created and handle.tell() > 0:
            with open(target, "rb") as reader:
                reader.seek(-1, os.SEEK_END)
                if reader.read(1) != b"\n":
                    handle.write(b"\n")
        handle.write(line.encode("utf-8") + b"\n")
        handle.flush()
        os.fsync(handle.fileno())
    if created:
        _fsync_dir(target.parent)
    return target
