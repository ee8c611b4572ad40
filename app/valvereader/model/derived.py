"""Arrays derived from a model's files, kept on disk between runs.

The open-set score's whitener (a Cholesky factor of a 2560 × 2560 precision matrix, and its
triangle cut into float32 blocks) took 0.3–0.45 s at every start of the program on the 2-core
machines it is written for, twice when the view choice has statistics of its own: most of a
model's load. It depends only on the statistics file, so it is computed once and kept.

A cache file is named after the sha256 of the file it was derived from (which the model card
has checked before) and holds, in its metadata, that sha256, the derivation's version and a
sha256 of its own arrays. A file that fails any of these checks (damaged, cut short, written
by another version, or not ours) is ignored, recomputed and replaced: a cached array is used
only when it is exactly what the computation would give. Nothing here is needed: where the
cache folder cannot be written, the arrays are computed every time, as before.

Folder: ``$VALVEREADER_CACHE_DIR``, else ``$XDG_CACHE_HOME/valvereader``, else
``~/.cache/valvereader``.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .. import atomic
from ..settings import user_dir

log = logging.getLogger(__name__)

# Bump when what a cached array holds changes (the derivation, the block width...): files of
# another version are recomputed.
VERSION = "1"
# Statistics smaller than this many features are quick to derive: not cached (the tests' tiny
# models, for one).
MIN_FEATURES = 1024
# Files kept per kind, the most recently used (about 14 MB each for 2560 features): a shipped
# identifier needs two; evaluating candidates must not fill the disk.
KEEP = 6


def cache_dir() -> Path:
    """The folder for derived arrays (not created here)."""
    return user_dir("VALVEREADER_CACHE_DIR", "XDG_CACHE_HOME", ".cache")


def digest(arrays: dict[str, np.ndarray]) -> str:
    """sha256 over the arrays' names, dtypes, shapes and bytes, in name order."""
    hasher = hashlib.sha256()
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        hasher.update(f"{name}|{array.dtype.str}|{array.shape}|".encode())
        hasher.update(array.data.cast("B"))
    return hasher.hexdigest()


def cached(kind: str, source_sha256: str, features: int,
           build: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """``build()``'s arrays, from the cache when a valid file for ``source_sha256`` is there,
    else computed now (and stored for the next run, where the folder can be written)."""
    source = source_sha256.strip().lower()
    if features < MIN_FEATURES or len(source) != 64 or any(c not in "0123456789abcdef" for c in source):
        return build()
    path = cache_dir() / f"{kind}-{source}.safetensors"
    arrays = _read(path, source)
    if arrays is not None:
        _touch(path)
        return arrays
    arrays = build()
    _write(path, arrays, source)
    _prune(path.parent, kind)
    return arrays


def _touch(path: Path) -> None:
    """Mark a file used now (the pruning keeps the most recently used)."""
    try:
        os.utime(path)
    except OSError:
        pass


def _prune(folder: Path, kind: str) -> None:
    """Delete all but the ``KEEP`` most recently used files of ``kind``."""
    try:
        files = sorted(folder.glob(f"{kind}-*.safetensors"), key=lambda f: f.stat().st_mtime, reverse=True)
        for old in files[KEEP:]:
            old.unlink()
    except OSError as exc:
        log.info("derived-array cache not pruned: %s", exc)


def _read(path: Path, source: str) -> dict[str, np.ndarray] | None:
    if not path.is_file():
        return None
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="np") as handle:
            meta = handle.metadata() or {}
            arrays = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118 - not a dict
    except Exception as exc:  # noqa: BLE001 - a damaged cache file is recomputed, never fatal
        log.info("derived-array cache %s unreadable (%s); recomputing", path.name, exc)
        return None
    if meta.get("version") != VERSION or meta.get("source") != source or meta.get("digest") != digest(arrays):
        log.info("derived-array cache %s does not match its source or its checksum; recomputing", path.name)
        return None
    return arrays


def _write(path: Path, arrays: dict[str, np.ndarray], source: str) -> None:
    try:
        from safetensors.numpy import save

        data = save({name: np.ascontiguousarray(a) for name, a in arrays.items()},
                    metadata={"version": VERSION, "source": source, "digest": digest(arrays)})
        atomic.write_bytes(path, data)
    except Exception as exc:  # noqa: BLE001 - without a cache the arrays are computed each time
        log.info("derived-array cache %s not written: %s", path, exc)
