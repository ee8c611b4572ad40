"""Shared fixtures. Tests that read ../shared skip cleanly when it is absent."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

# Qt tests run offscreen and never touch the developer's real settings.
if not os.environ.get("QT_QPA_PLATFORM"):  # unset or empty: no display is assumed
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
# Tests that import onnxruntime before valvereader: no usage events to Microsoft either
# (valvereader/__init__.py sets the same for the program; docs/packaging.md, "Network").
os.environ["ORT_DISABLE_TELEMETRY"] = "1"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    from valvereader.paths import shared_dir as find

    found = find()
    if found is None:
        pytest.skip("../shared is not present (fresh clone): skipped")
    return found


@pytest.fixture(scope="session")
def crops_dir(shared_dir: Path) -> Path:
    path = shared_dir / "data" / "csf-shuntvalves"
    if not path.is_dir():
        pytest.skip("csf-shuntvalves data not present")
    return path


@pytest.fixture(scope="session")
def dicom_zoo(shared_dir: Path) -> Path:
    path = shared_dir / "data" / "dicom-zoo"
    if not path.is_dir():
        pytest.skip("dicom-zoo not present")
    return path


@pytest.fixture(scope="session")
def valve_facts(shared_dir: Path) -> Path:
    path = shared_dir / "valves"
    if not (path / "valve-facts.yaml").exists():
        pytest.skip("valve facts not present")
    return path


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Keep tests from writing the developer's real settings, review files, logs or caches.
    The folder goes when the test ends: a test that loads the shipped identifier writes its
    derived arrays (28 MB) there, and hundreds of them would fill a small disk."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("VALVEREADER_CONFIG_DIR", str(home / "config"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "xdg"))
    monkeypatch.setenv("VALVEREADER_CACHE_DIR", str(home / "cache"))  # derived arrays (model.derived)
    yield
    shutil.rmtree(home, ignore_errors=True)
