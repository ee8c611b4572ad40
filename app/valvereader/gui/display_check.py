"""Can the window open here? Asked before Qt is imported, without importing it.

Qt ends the whole process (SIGABRT, exit 134) when its platform plugin cannot start: no
display at all, a display that does not answer, or a system library of the xcb plugin
missing (Qt then names libxcb-cursor0 whichever library it was). ``problem`` finds these
cases first and returns one line saying what to do, so that ``valvereader`` can print it
and exit 2 instead.

Only Linux is checked (Windows and macOS have no platform plugin to miss); a platform the
user chose that needs no screen (``QT_QPA_PLATFORM=offscreen`` ...) is not checked further
than its libraries.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

# Platforms that draw without a display server.
SCREENLESS_PLATFORMS = frozenset({"offscreen", "minimal", "minimalegl", "vnc", "linuxfb", "eglfs", "vkkhrdisplay"})
# Qt 6.5 and later open this one at run time (dlopen), so the plugin's link list lacks it.
RUNTIME_LIBRARIES = ("libxcb-cursor.so.0",)
# Debian/Ubuntu package names that do not follow the library's soname.
PACKAGE_OF = {"libglib-2.0.so.0": "libglib2.0-0", "libgthread-2.0.so.0": "libglib2.0-0",
              "libpcre2-8.so.0": "libpcre2-8-0", "libpng16.so.16": "libpng16-16"}


def problem(environ: Mapping[str, str] | None = None, *, screenless_ok: bool = False,
            system: str = sys.platform) -> str | None:
    """None if the window can open; otherwise one line naming the cause and what to run.

    ``screenless_ok``: without a display the caller draws offscreen (``view --screenshot``).
    """
    env = os.environ if environ is None else environ
    if not system.startswith("linux"):
        return None
    chosen = [name.split(":")[0].strip().lower() for name in env.get("QT_QPA_PLATFORM", "").split(";") if name.strip()]
    if any(name in SCREENLESS_PLATFORMS for name in chosen):
        return _libraries_problem(next(n for n in chosen if n in SCREENLESS_PLATFORMS))
    if env.get("WAYLAND_DISPLAY") and (not chosen or any(name.startswith("wayland") for name in chosen)):
        return None  # a Wayland session: Qt's Wayland plugin finds its own way
    if not env.get("DISPLAY"):
        if screenless_ok:
            return _libraries_problem("offscreen")
        return no_display_message()
    return _libraries_problem("xcb") or _connection_problem(env["DISPLAY"])


def no_display_message() -> str:
    xvfb = "" if shutil.which("xvfb-run") else " (sudo apt-get install -y xvfb xauth)"
    return ("valvereader: no display to open the window on (DISPLAY and WAYLAND_DISPLAY are not set): "
            "run it in a desktop session, over `ssh -X`, or under `xvfb-run -a valvereader ...`"
            f"{xvfb}; `valvereader classify` and `valvereader view PATH --screenshot OUT.png` need no display")


def package_for(soname: str) -> str:
    """The Debian/Ubuntu package that ships ``soname`` (libxcb-icccm.so.4 -> libxcb-icccm4)."""
    if soname in PACKAGE_OF:
        return PACKAGE_OF[soname]
    match = re.fullmatch(r"(lib.+?)\.so\.(\d+)(?:\..*)?", soname)
    if not match:
        return soname
    name, version = match.group(1).lower(), match.group(2)
    return f"{name}-{version}" if name[-1].isdigit() else f"{name}{version}"


def install_command(sonames: list[str]) -> str:
    packages = sorted({package_for(s) for s in sonames})
    return f"sudo apt-get update && sudo apt-get install -y --no-install-recommends {' '.join(packages)}"


def missing_libraries(platform: str) -> list[str]:
    """Shared libraries that Qt's ``platform`` plugin needs and the system lacks (sonames)."""
    plugin = _plugin_path(platform)
    if plugin is None:
        return []
    missing: list[str] = []
    ldd = shutil.which("ldd")
    if ldd is not None:
        try:
            listing = subprocess.run([ldd, str(plugin)], check=False, capture_output=True, text=True, timeout=20).stdout
        except (OSError, subprocess.SubprocessError):
            listing = ""
        missing += re.findall(r"^\s*(\S+)\s+=>\s+not found", listing, flags=re.MULTILINE)
    if platform == "xcb":
        for soname in RUNTIME_LIBRARIES:
            try:
                ctypes.CDLL(soname)
            except OSError:
                missing.append(soname)
    return sorted(set(missing))


def _libraries_problem(platform: str) -> str | None:
    missing = missing_libraries(platform)
    if not missing:
        return None
    return (f"valvereader: the window needs system libraries that are missing ({', '.join(missing)}); "
            f"install them with: {install_command(missing)}")


def _connection_problem(display: str) -> str | None:
    """A line if the X server at ``display`` refuses or does not answer (Qt would abort)."""
    try:
        xcb = ctypes.CDLL("libxcb.so.1")
    except OSError:
        return None  # reported by the library check
    xcb.xcb_connect.restype = ctypes.c_void_p
    xcb.xcb_connect.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
    xcb.xcb_connection_has_error.argtypes = [ctypes.c_void_p]
    xcb.xcb_disconnect.argtypes = [ctypes.c_void_p]
    connection = xcb.xcb_connect(display.encode(), None)
    if not connection:
        failed = True
    else:
        failed = xcb.xcb_connection_has_error(connection) != 0
        xcb.xcb_disconnect(connection)
    if not failed:
        return None
    return (f"valvereader: cannot connect to the display {display!r} (no X server there, or it refused the "
            "connection): start the desktop session or Xvfb it belongs to, set DISPLAY to one that runs, "
            "or use `xvfb-run -a valvereader ...`")


def _plugin_path(platform: str) -> Path | None:
    spec = importlib.util.find_spec("PySide6")
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        candidate = Path(root) / "Qt" / "plugins" / "platforms" / f"libq{platform}.so"
        if candidate.is_file():
            return candidate
    return None
