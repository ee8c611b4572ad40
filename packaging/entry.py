"""Entry point of the frozen ShuntValveReader bundle (PyInstaller runs this file).

It is ``valvereader.cli:main`` with two additions that only matter in the bundle:
a clear message when a subcommand needs torch (training and evaluation are left out of the
bundle on purpose: inference runs on ONNX Runtime) and Qt plugin paths that point inside
the bundle, never at a Qt installed on the workstation.
"""

from __future__ import annotations

import multiprocessing
import os
import sys


def _frozen_environment() -> None:
    base = getattr(sys, "_MEIPASS", None)
    if not base:
        return
    # No usage events to Microsoft from ONNX Runtime (also set by packaging/rthook_offline.py
    # and valvereader/__init__.py; it counts only before onnxruntime loads).
    os.environ["ORT_DISABLE_TELEMETRY"] = "1"
    # A system Qt's plugins must not be mixed with the bundled Qt.
    for name in ("QT_PLUGIN_PATH", "QML2_IMPORT_PATH"):
        os.environ.pop(name, None)


def main() -> int:
    multiprocessing.freeze_support()
    _frozen_environment()
    if len(sys.argv) >= 3 and sys.argv[1] == "--bundle-selftest":
        from pathlib import Path

        from bundle_selftest import run  # packaging/bundle_selftest.py, frozen in with this file

        return run(Path(sys.argv[2]), Path(sys.argv[3]) if len(sys.argv) > 3 else None)
    from valvereader.cli import main as cli_main

    try:
        return cli_main()
    except ModuleNotFoundError as exc:
        missing = (exc.name or "").split(".")[0]
        if missing in {"torch", "torchvision", "onnx", "pytorch_grad_cam", "cv2", "sklearn", "scipy"}:
            print(
                f"ShuntValveReader: this command needs '{missing}', which the desktop bundle "
                "leaves out (inference runs on ONNX Runtime). Use the Python install with the "
                "'train' extra for training, evaluation and GPU inference.",
                file=sys.stderr,
            )
            return 3
        raise


if __name__ == "__main__":
    sys.exit(main())
