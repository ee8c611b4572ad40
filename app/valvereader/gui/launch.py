"""`valvereader view [PATH...] [--screenshot OUT.png] [--weights DIR] [--device D]`.

Only argparse at import time: Qt is imported in ``run`` so `valvereader --help` stays fast.
With ``--screenshot`` the window opens offscreen (unless a display is set, e.g. under Xvfb),
processes PATH (every study of a batch), waits for the result, saves the window's picture and
exits 0.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

SCREENSHOT_TIMEOUT_S = 600.0
WINDOW_CLASS = "ShuntValveReader"  # packaging/valvereader.desktop: StartupWMClass


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="*", type=Path, metavar="PATH",
                        help="radiographs or folders to open (several files or a folder = a batch)")
    parser.add_argument("--screenshot", type=Path, metavar="OUT.png",
                        help="process PATH, save the window as OUT.png and exit")
    parser.add_argument("--weights", type=Path, metavar="DIR", help="folder with the model weights and cards")
    parser.add_argument("--device", metavar="D", help="inference device: cpu, cuda or auto")
    parser.add_argument("--size", default="1600x1000", metavar="WxH", help="window size for --screenshot")


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    if args.screenshot is not None and not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from .main_window import MainWindow
    from .theme import apply_theme

    existing = QApplication.instance()
    # argv[0] names the X11 window class instance (WM_CLASS "ShuntValveReader", the desktop
    # file's StartupWMClass), however the program was started; the desktop file name is the
    # Wayland app id (packaging/valvereader.desktop).
    app = existing if isinstance(existing, QApplication) else QApplication([WINDOW_CLASS])
    app.setApplicationName("Shunt Valve Reader")
    app.setDesktopFileName("valvereader")
    app.setOrganizationName("valvereader")
    apply_theme(app)
    window = MainWindow(weights_dir=args.weights, device=args.device)
    if args.screenshot is not None:
        width, _, height = str(args.size).partition("x")
        window.resize(int(width), int(height))
    window.show()
    window.preload_model()  # ready by the time a file is chosen (in the background)
    if os.environ.get("VALVEREADER_TIMING"):
        print(f"window shown after {time.perf_counter() - started:.2f} s "
              f"(cpu {time.process_time():.2f} s since the process began)", file=sys.stderr)
    paths = [p for p in args.paths]
    if paths:
        if os.environ.get("VALVEREADER_TIMING"):
            _report_first_result(window, started)
        QTimer.singleShot(0, lambda: window.open_paths(paths))
    if args.screenshot is None:
        return int(app.exec())
    return _screenshot(app, window, args.screenshot, bool(paths))


def _report_first_result(window: object, started: float) -> None:
    """With VALVEREADER_TIMING set: print when the first study on screen shows its result."""
    opened = time.perf_counter()
    shown: list[bool] = []

    def settled() -> None:
        if not shown:
            shown.append(True)
            now = time.perf_counter()
            print(f"first result shown after {now - started:.2f} s ({now - opened:.2f} s after the file was opened)",
                  file=sys.stderr)

    window.settled.connect(settled)  # type: ignore[attr-defined]


def _screenshot(app: object, window: object, out: Path, has_paths: bool) -> int:
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    if has_paths:
        # wait for the whole batch, so the worklist shows every verdict
        poll = QTimer()
        poll.timeout.connect(lambda: loop.quit() if window.is_idle() else None)  # type: ignore[attr-defined]
        poll.start(100)
        QTimer.singleShot(int(SCREENSHOT_TIMEOUT_S * 1000), loop.quit)
        loop.exec()
        poll.stop()
    # let the last repaint land
    deadline = time.perf_counter() + 0.3
    while time.perf_counter() < deadline:
        app.processEvents()  # type: ignore[attr-defined]
        time.sleep(0.02)
    image = window.grab().toImage()  # type: ignore[attr-defined]
    out.parent.mkdir(parents=True, exist_ok=True)
    ok = image.save(str(out))
    window.cancel_analysis()  # type: ignore[attr-defined]
    window.close()  # type: ignore[attr-defined]  # waits for running workers
    # let the workers' last queued signals land while every receiver still exists
    app.processEvents()  # type: ignore[attr-defined]
    window.workers.clear()  # type: ignore[attr-defined]
    if not ok:
        print(f"could not write {out}", file=sys.stderr)
        return 1
    print(f"saved {out} ({image.width()}×{image.height()})")
    return 0
