"""The window's batch analysis goes through Predictor.predict_many (two files at once, as
`valvereader classify` does): the same results as one by one, errors per study, the study on
screen still first, and a cancel that stops it."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from viewer_fakes import skull_image, write_png

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "model"))
from tiny_model import write_tiny_weights

TIMEOUT = 30000


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("weights")
    write_tiny_weights(folder, size=48)
    return folder


def _folder(tmp_path: Path, count: int = 6, broken: bool = True) -> list[Path]:
    folder = tmp_path / "batch"
    folder.mkdir()
    paths = [write_png(folder / f"s{i}.png", skull_image(valve_at=(120 + 15 * i, 90 + 10 * i), seed=i)) for i in range(count)]
    if broken:
        bad = folder / "s3_broken.png"
        bad.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
        paths.insert(3, bad)
    return paths


class _Context:
    def __init__(self, cancel_after: int | None = None):
        self.events: list[object] = []
        self.progress_calls: list[tuple[int, int, str]] = []
        self.cancel_after = cancel_after

    def check(self) -> None:
        from valvereader.gui.models.analysis import StudyResult
        from valvereader.gui.worker import Cancelled

        if self.cancel_after is not None and sum(isinstance(e, StudyResult) for e in self.events) >= self.cancel_after:
            raise Cancelled()

    def progress(self, done: int, total: int, what: str = "") -> None:
        self.progress_calls.append((done, total, what))

    def emit(self, value: object) -> None:
        self.events.append(value)


def test_a_batch_through_the_streams_equals_one_by_one(tiny_weights: Path, tmp_path: Path) -> None:
    from valvereader.gui.models.analysis import (
        AnalysisQueue,
        StudyResult,
        analyse_batch,
        load_model,
    )
    from valvereader.gui.models.services import RadiographCache, load_radiograph

    status = load_model(tiny_weights, "cpu")
    assert status.predictor is not None and hasattr(status.predictor, "predict_many")
    paths = _folder(tmp_path)
    context = _Context()
    count = analyse_batch(context, 1, paths, AnalysisQueue(list(range(len(paths)))), RadiographCache(), lambda: status)
    results = {e.index: e for e in context.events if isinstance(e, StudyResult)}
    assert count == len(paths) == len(results)
    # the first study (the one on screen) is read alone, before the streams start
    assert next(e for e in context.events if isinstance(e, StudyResult)).index == 0
    broken = paths.index(next(p for p in paths if "broken" in p.name))
    assert results[broken].error and results[broken].prediction is None and results[broken].thumbnail is None
    for index, path in enumerate(paths):
        if index == broken:
            continue
        got = results[index]
        assert got.error is None and got.thumbnail is not None and got.meta is not None
        expected = status.predictor.predict(load_radiograph(path), with_heatmap=True, heatmap_max_side=1024)
        np.testing.assert_allclose(got.prediction.probabilities, expected.probabilities, rtol=1e-5, atol=1e-6)
        assert got.prediction.verdict == expected.verdict and got.prediction.box == expected.box
        assert got.prediction.heatmap is not None and max(got.prediction.heatmap.shape) <= 1024
    if status.predictor._default_streams() > 1:
        assert status.predictor._streams_twin is not None  # it went through the two streams
    assert context.progress_calls[-1] == (len(paths), len(paths), "")
    assert {name for _, _, name in context.progress_calls if name} == {p.name for p in paths}


def test_the_study_moved_to_the_front_comes_after_the_few_in_flight(tiny_weights: Path, tmp_path: Path) -> None:
    from valvereader.gui.models.analysis import (
        AnalysisQueue,
        StudyResult,
        analyse_batch,
        load_model,
    )
    from valvereader.gui.models.services import RadiographCache

    status = load_model(tiny_weights, "cpu")
    paths = _folder(tmp_path, count=12, broken=False)
    queue = AnalysisQueue(list(range(len(paths))))
    cache = RadiographCache()
    original = cache.get
    first_load = threading.Event()

    def slow_get(path: Path):
        first_load.set()
        time.sleep(0.05)
        return original(path)

    cache.get = slow_get  # type: ignore[method-assign]
    context = _Context()
    worker = threading.Thread(target=lambda: analyse_batch(context, 1, paths, queue, cache, lambda: status))
    worker.start()
    assert first_load.wait(10)
    queue.prioritise(11)  # the reader clicked the last study
    worker.join(60)
    order = [e.index for e in context.events if isinstance(e, StudyResult)]
    assert sorted(order) == list(range(12))
    assert order.index(11) <= 5  # behind at most the files already in flight, not behind all eleven


def test_a_cancel_stops_the_batch(tiny_weights: Path, tmp_path: Path) -> None:
    from valvereader.gui.models.analysis import (
        AnalysisQueue,
        StudyResult,
        analyse_batch,
        load_model,
    )
    from valvereader.gui.models.services import RadiographCache
    from valvereader.gui.worker import Cancelled

    status = load_model(tiny_weights, "cpu")
    paths = _folder(tmp_path, count=20, broken=False)
    queue = AnalysisQueue(list(range(len(paths))))
    context = _Context(cancel_after=2)
    with pytest.raises(Cancelled):
        analyse_batch(context, 1, paths, queue, RadiographCache(), lambda: status)
    assert 2 <= sum(isinstance(e, StudyResult) for e in context.events) < 20
    assert queue.remaining > 0  # the rest was never taken from the queue


def test_the_window_analyses_a_folder_through_the_streams(qtbot, tiny_weights: Path, tmp_path: Path) -> None:
    from valvereader.gui.main_window import MainWindow
    from valvereader.gui.models.analysis import load_model
    from valvereader.settings import Settings

    paths = _folder(tmp_path)
    window = MainWindow(settings=Settings.load(), model_loader=lambda: load_model(tiny_weights, "cpu"))
    qtbot.addWidget(window)
    window.show()
    window.open_paths([paths[0].parent])
    qtbot.waitUntil(lambda: len(window.worklist.studies) == len(paths) and all(s.analysed or s.error for s in window.worklist.studies),
                    timeout=TIMEOUT)
    studies = window.worklist.studies
    assert sum(s.prediction is not None for s in studies) == len(paths) - 1
    assert sum(bool(s.error) for s in studies) == 1
    qtbot.waitUntil(lambda: window._analysis is None, timeout=TIMEOUT)
