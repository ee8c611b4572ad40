"""`valvereader view`: start-up time, and the headless screenshot mode."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from viewer_fakes import skull_image, write_png

pytestmark = pytest.mark.gui
STARTUP_LIMIT_S = 2.0


def test_window_is_shown_within_two_seconds_of_launch(tmp_path: Path) -> None:
    """Measured from process start (interpreter, Qt, window) to the window being shown; the
    model is not loaded on this path. The machine is shared with training runs, so the limit
    applies to the CPU time the start-up needs (immune to others' load); wall time is
    printed and only bounded loosely."""
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "VALVEREADER_TIMING": "1", "PYTHONFAULTHANDLER": "1"}
    code = ("import sys, time; t0 = time.perf_counter(); import valvereader.gui.launch as l; "
            "import argparse; p = argparse.ArgumentParser(); l.add_arguments(p); "
            f"sys.exit(l.run(p.parse_args(['--screenshot', r'{tmp_path / 'empty.png'}'])))")
    timings, cpu = [], []
    for _ in range(2):
        started = time.perf_counter()
        process = subprocess.Popen([sys.executable, "-c", code], env=env, stderr=subprocess.PIPE, text=True)
        assert process.stderr is not None
        for line in process.stderr:
            if line.startswith("window shown"):
                timings.append(time.perf_counter() - started)
                cpu.append(float(line.split("(cpu ")[1].split(" s")[0]))
                break
        rest = process.stderr.read()
        process.wait(timeout=60)
        assert process.returncode == 0, rest
    print(f"window shown after {min(timings):.2f} s wall, start-up needs {min(cpu):.2f} s cpu")
    assert min(cpu) < STARTUP_LIMIT_S
    assert min(timings) < 5 * STARTUP_LIMIT_S  # loose: other processes share the two cores


def test_screenshot_mode_processes_the_file_saves_the_window_and_exits_0(tmp_path: Path) -> None:
    image = write_png(tmp_path / "skull.png", skull_image())
    out = tmp_path / "shot.png"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "VALVEREADER_WEIGHTS": str(tmp_path / "no-weights"),
           "VALVEREADER_TIMING": "1"}
    result = subprocess.run([sys.executable, "-m", "valvereader", "view", str(image), "--screenshot", str(out),
                             "--size", "1200x800"], env=env, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    # the start-up probe (benchmarks/run.py reads it): the window, then the file's first result
    timings = [line for line in result.stderr.splitlines() if line.startswith(("window shown", "first result shown"))]
    assert [line.split(" after ")[0] for line in timings] == ["window shown", "first result shown"], result.stderr
    assert "after the file was opened" in timings[1]
    from PIL import Image

    with Image.open(out) as shot:
        assert shot.size == (1200, 800)
        # the radiograph is drawn: the viewport is not a blank dark field
        assert max(shot.convert("L").getextrema()) > 150
