"""Where bundled resources and weights live, in a checkout and in an installed wheel."""

from __future__ import annotations

import os
import sys
from importlib import resources
from pathlib import Path


def _package_dir(name: str, fallback: str) -> Path:
    # A PyInstaller bundle unpacks data under sys._MEIPASS.
    frozen = getattr(sys, "_MEIPASS", None)
    if frozen:
        candidate = Path(frozen) / "valvereader" / fallback
        if candidate.exists():
            return candidate
    try:
        return Path(str(resources.files(name)))
    except (ModuleNotFoundError, TypeError):
        return Path(__file__).resolve().parents[2] / fallback


def resources_dir() -> Path:
    return _package_dir("valvereader.resources", "resources")


def templates_dir() -> Path:
    return resources_dir() / "templates"


def samples_dir() -> Path:
    return resources_dir() / "samples"


def weights_dir() -> Path:
    """VALVEREADER_WEIGHTS overrides the bundled weights folder."""
    override = os.environ.get("VALVEREADER_WEIGHTS")
    return Path(override) if override else _package_dir("valvereader.weights", "weights")


def shared_dir() -> Path | None:
    """../shared beside the checkout, if present (development and CI only)."""
    override = os.environ.get("VALVEREADER_SHARED")
    candidates = [Path(override)] if override else []
    here = Path(__file__).resolve().parents[3]
    candidates += [here / "shared", Path.cwd().parent / "shared"]
    for candidate in candidates:
        if (candidate / "data").is_dir():
            return candidate
    return None
