"""User settings: one typed object with defaults, persisted as JSON in the config folder.

    settings = Settings.load()        # never fails: defaults if missing or corrupt
    settings.heatmap_opacity = 0.6
    settings.add_recent_file(path)
    settings.save()                   # atomic (temp file + rename)

Config folder: ``$VALVEREADER_CONFIG_DIR``, else ``$XDG_CONFIG_HOME/valvereader``, else
``~/.config/valvereader``. A settings file that cannot be parsed is renamed aside to
``settings.json.corrupt-<UTC timestamp>`` with a logged warning and defaults are used; a
field of the wrong type falls back to its default (warning), unknown fields are ignored, so
an older program reads a newer file. Nothing here imports Qt: window geometry and state
are the base64 text of ``QWidget.saveGeometry()`` / ``QMainWindow.saveState()``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar

from . import atomic

__all__ = ["DEFAULT_WINDOW_PRESETS", "Settings", "WindowPreset", "config_dir", "log_dir", "settings_path"]

log = logging.getLogger(__name__)

SETTINGS_FILE = "settings.json"
MAX_RECENT_FILES = 10


def user_dir(override: str, xdg: str, home_default: str) -> Path:
    """A per-user folder of the program (not created here): ``$override`` if set, else
    ``$xdg/valvereader``, else ``~/home_default/valvereader`` (the XDG base-directory rules)."""
    chosen = os.environ.get(override)
    if chosen:
        return Path(chosen).expanduser()
    base = os.environ.get(xdg)
    return (Path(base).expanduser() if base else Path.home() / home_default) / "valvereader"


def config_dir() -> Path:
    """The folder for settings and logs (not created here)."""
    return user_dir("VALVEREADER_CONFIG_DIR", "XDG_CONFIG_HOME", ".config")


def log_dir() -> Path:
    """Where log files go: ``<config dir>/logs``, created on demand."""
    path = config_dir() / "logs"
    path.mkdir(parents=True, exist_ok=True)
    return path


def settings_path() -> Path:
    return config_dir() / SETTINGS_FILE


@dataclass(frozen=True)
class WindowPreset:
    """A window/level preset for keys 1-4, in display grey units (0 = black, 1 = white) of
    the loaded radiograph, i.e. applied on top of the file's own VOI window (key 0)."""

    name: str
    center: float
    width: float


DEFAULT_WINDOW_PRESETS: tuple[WindowPreset, ...] = (
    WindowPreset("Full range", 0.5, 1.0),
    WindowPreset("Bone / hardware", 0.65, 0.6),
    WindowPreset("Soft tissue", 0.35, 0.5),
    WindowPreset("High contrast", 0.5, 0.35),
)


def _default_presets() -> list[WindowPreset]:
    return list(DEFAULT_WINDOW_PRESETS)


@dataclass
class Settings:
    """Everything the viewer remembers between sessions. Edit fields, then ``save()``."""

    # window layout (base64 of Qt's saveGeometry/saveState; "" = let Qt decide)
    window_geometry: str = ""
    window_state: str = ""
    worklist_visible: bool = True
    result_panel_visible: bool = True
    # files
    last_folder: str = ""
    last_export_folder: str = ""
    recent_files: list[str] = field(default_factory=list)
    # viewing
    heatmap_opacity: float = 0.45
    show_heatmap: bool = True
    show_box: bool = True
    show_corner_text: bool = True
    window_presets: list[WindowPreset] = field(default_factory=_default_presets)
    # export
    deidentify_exports: bool = True
    # inference
    device: str = "cpu"  # "cpu", "cuda" or "auto"
    weights_dir: str = ""  # "" = bundled weights (or $VALVEREADER_WEIGHTS)
    model_name: str = ""  # "" = the default model of the weights folder
    # batch review
    worklist_filter: str = "all"  # "all", "needs review", "unreviewed", ...
    version: int = 1

    _path: Path | None = field(default=None, repr=False, compare=False)

    FILE_VERSION: ClassVar[int] = 1

    # --- persistence -------------------------------------------------------------------------
    @classmethod
    def load(cls, path: Path | None = None) -> Settings:
        """Read settings from ``path`` (default: ``settings_path()``); never raises.

        Missing file: defaults. Unparseable file: renamed aside, defaults, warning logged.
        """
        path = Path(path) if path is not None else settings_path()
        settings = cls()
        settings._path = path
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return settings
        except OSError as exc:
            log.warning("Settings file %s cannot be read (%s); using defaults", path, exc)
            return settings
        try:
            data = json.loads(raw.decode("utf-8"))
            if not isinstance(data, dict):
                raise TypeError("top level is not a JSON object")
        except (UnicodeDecodeError, ValueError, TypeError) as exc:
            aside = set_aside(path)
            log.warning(
                "Settings file %s is corrupt (%s); it was moved to %s and defaults are used",
                path, exc, aside,
            )
            return settings
        settings._apply(data)
        return settings

    def save(self, path: Path | None = None) -> Path:
        """Write the settings atomically; returns the file written.

        Raises:
            OSError: the config folder cannot be written.
        """
        target = Path(path) if path is not None else (self._path or settings_path())
        self._path = target
        return atomic.write_json(target, self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self) if not f.name.startswith("_")}
        data["window_presets"] = [asdict(p) for p in self.window_presets]
        data["version"] = self.FILE_VERSION
        return data

    def _apply(self, data: dict[str, Any]) -> None:
        defaults = Settings()
        for f in fields(self):
            # "version" is the file format this object is in, always the current one once read.
            if f.name.startswith("_") or f.name == "version" or f.name not in data:
                continue
            value = data[f.name]
            try:
                setattr(self, f.name, _coerce(f.name, value, getattr(defaults, f.name)))
            except (TypeError, ValueError, OverflowError) as exc:
                log.warning("Setting '%s' has an invalid value (%s); using the default", f.name, exc)

    # --- helpers the viewer needs ------------------------------------------------------------
    def add_recent_file(self, path: str | os.PathLike[str]) -> None:
        """Put ``path`` first in ``recent_files`` (no duplicates, at most 10)."""
        text = str(Path(path).expanduser().resolve())
        self.recent_files = [text, *[p for p in self.recent_files if p != text]][:MAX_RECENT_FILES]

    def prune_recent_files(self) -> None:
        """Forget recent files that no longer exist."""
        self.recent_files = [p for p in self.recent_files if Path(p).exists()]


def set_aside(path: Path) -> Path:
    """Rename a damaged file to ``<name>.corrupt-<UTC timestamp>`` and return the new path.

    If even the rename fails the file is left as it is (the next save replaces it).
    """
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    aside = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while aside.exists():
        aside = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
        n += 1
    try:
        os.replace(path, aside)
    except OSError as exc:
        log.warning("Could not move %s aside (%s)", path, exc)
        return path
    return aside


def _finite(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise TypeError("expected a finite number")
    return float(value)


def _coerce(name: str, value: Any, default: Any) -> Any:
    if name == "window_presets":
        if not isinstance(value, list):
            raise TypeError("expected a list of presets")
        presets = []
        for item in value:
            if not isinstance(item, dict) or not {"name", "center", "width"} <= item.keys():
                raise TypeError("a preset must be an object with name, center and width")
            center, width = _finite(item["center"]), _finite(item["width"])
            if not width > 0:
                raise ValueError("a preset's width must be positive")
            presets.append(WindowPreset(str(item["name"]), center, width))
        return presets
    if name == "recent_files":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise TypeError("expected a list of paths")
        return value[:MAX_RECENT_FILES]
    if name == "heatmap_opacity":
        return min(1.0, max(0.0, _finite(value)))
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise TypeError("expected true or false")
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError("expected an integer")
        return value
    if isinstance(default, str):
        if not isinstance(value, str):
            raise TypeError("expected text")
        return value
    return value
