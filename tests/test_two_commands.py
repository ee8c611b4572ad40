"""The README's two commands: what CI runs, and the system libraries command 1 installs."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _two_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Two commands", 1)[1].split("\n## ", 1)[0]
    block = section.split("```bash", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip() and not line.startswith("#")]


def _window_packages() -> set[str]:
    script = (ROOT / "scripts" / "install-system-deps.sh").read_text(encoding="utf-8")
    return set(re.search(r"^WINDOW=\((.*?)\)", script, flags=re.MULTILINE | re.DOTALL).group(1).split())


def test_ci_runs_exactly_the_readmes_test_command() -> None:
    install_and_run, test = _two_commands()
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert test in ci
    assert test.startswith("bash scripts/install-system-deps.sh &&") and test.endswith(".venv/bin/python -m pytest")
    assert install_and_run.startswith("bash scripts/install-system-deps.sh window &&")
    assert install_and_run.endswith(".venv/bin/valvereader resources/samples")


def test_command_1_installs_every_x11_library_of_qts_window() -> None:
    from valvereader.gui.display_check import _plugin_path, package_for

    plugin = _plugin_path("xcb")
    if plugin is None or shutil.which("ldd") is None:
        pytest.skip("no PySide6 xcb plugin or no ldd here")
    listing = subprocess.run(["ldd", str(plugin)], check=False, capture_output=True, text=True, timeout=30).stdout
    sonames = set(re.findall(r"^\s*(lib(?:xcb|X11|xkbcommon|EGL|GL\.|fontconfig|freetype|dbus)\S*)", listing,
                             flags=re.MULTILINE)) | {"libxcb-cursor.so.0"}
    assert len(sonames) > 10, listing
    assert {package_for(s) for s in sonames} - _window_packages() == set()
