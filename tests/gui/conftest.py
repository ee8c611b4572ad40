"""Fixtures for the viewer tests: a batch folder of synthetic skull radiographs and a shown
window with a fake predictor, so the tests run offscreen in seconds without model weights."""

from __future__ import annotations

from pathlib import Path

import pytest
from viewer_fakes import FakePredictor, skull_image, write_png


@pytest.fixture
def batch_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "batch"
    folder.mkdir()
    for i in range(4):
        write_png(folder / f"study{i}.png", skull_image(valve_at=(150 + 20 * i, 100 + 10 * i), seed=i))
    return folder


@pytest.fixture
def make_window(qtbot):
    """``make_window(predictor=FakePredictor())`` → a shown MainWindow with isolated settings."""
    from valvereader.gui.main_window import MainWindow
    from valvereader.gui.models.analysis import ModelStatus
    from valvereader.settings import Settings

    def make(predictor: object | None = None, message: str = "fake"):
        predictor = FakePredictor() if predictor is None else predictor
        status = ModelStatus(predictor if predictor is not False else None,
                             "No valve model installed: put weights in /nowhere" if predictor is False else message)
        window = MainWindow(settings=Settings.load(), model_loader=lambda: status)
        qtbot.addWidget(window)
        window.resize(1400, 900)
        window.show()
        window.activateWindow()
        qtbot.waitUntil(window.isActiveWindow, timeout=5000)  # single-key shortcuts need an active window
        return window

    return make
