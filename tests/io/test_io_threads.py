"""The loaders imported from two threads at once (the window's start-up beside the first file)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
from PIL import Image

RACE = textwrap.dedent("""
    import sys, threading
    from valvereader.gui import main_window
    from valvereader.io import load
    assert "pydicom" not in sys.modules, "the window's module imported pydicom: the race is not tested"
    barrier, errors = threading.Barrier(2), []
    def start_up():  # what the window's background start-up runs first
        barrier.wait()
        try:
            main_window._import_loaders()
        except Exception as exc:
            errors.append(repr(exc))
    def first_file():
        barrier.wait()
        try:
            load(sys.argv[1])
        except Exception as exc:
            errors.append(repr(exc))
    threads = [threading.Thread(target=start_up), threading.Thread(target=first_file)]
    for t in threads: t.start()
    for t in threads: t.join()
    print(errors or "ok")
""")


def test_a_png_opened_while_the_window_imports_the_dicom_loader_loads(tmp_path: Path) -> None:
    # Before io.loaders this failed every time: "cannot import name 'Dataset' from partially
    # initialized module 'pydicom.dataset'", for the PNG or for the start-up.
    png = tmp_path / "crop.png"
    Image.fromarray((np.arange(64 * 64).reshape(64, 64) % 251).astype(np.uint8)).save(png)
    for _ in range(3):  # a fresh interpreter each time: nothing imported yet
        run = subprocess.run([sys.executable, "-c", RACE, str(png)], check=False, capture_output=True, text=True,
                             timeout=120, env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
        assert run.returncode == 0, run.stderr[-2000:]
        assert run.stdout.strip() == "ok", run.stdout
