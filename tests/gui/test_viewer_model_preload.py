"""The model is loaded once, in the background from the program's start, and the templates are
warmed with the catalogue: the first result does not wait for either."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import yaml
from viewer_fakes import FakePredictor, skull_image, write_png

TIMEOUT = 20000


def _status(predictor: object | None):
    from valvereader.gui.models.analysis import ModelStatus

    return ModelStatus(predictor, "fake" if predictor is not None else "No valve model installed")


def test_two_threads_asking_at_once_share_one_load() -> None:
    from valvereader.gui.models.analysis import SharedModel

    calls: list[int] = []

    def slow_loader():
        calls.append(1)
        time.sleep(0.3)
        return _status(FakePredictor())

    model = SharedModel(slow_loader)
    preload = model.preload()
    time.sleep(0.05)  # the preload is loading
    got = []
    asker = threading.Thread(target=lambda: got.append(model()))
    asker.start()
    asker.join(5)
    preload.join(5)
    assert len(calls) == 1 and model.loaded
    assert got[0] is model()  # the same status (and predictor), not a second copy
    assert len(calls) == 1


def test_the_preload_runs_its_first_and_then_steps_around_the_load() -> None:
    from valvereader.gui.models.analysis import SharedModel

    order: list[str] = []
    model = SharedModel(lambda: order.append("load") or _status(FakePredictor()))
    model.preload(first=lambda: order.append("first"), then=lambda status: order.append(f"then {status.message}")).join(5)
    assert order == ["first", "load", "then fake"]
    # a failing first step (an import, say) leaves the load to the analysis
    failing = SharedModel(lambda: _status(FakePredictor()))
    failing.preload(first=lambda: {}["missing"]).join(5)
    assert not failing.loaded and failing().predictor is not None


def test_a_failed_load_is_not_kept_and_a_failing_preload_raises_nothing() -> None:
    from valvereader.gui.models.analysis import SharedModel

    outcomes = [RuntimeError("disk gone"), _status(None), _status(FakePredictor())]

    def loader():
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    model = SharedModel(loader)
    model.preload().join(5)  # raised inside the thread: swallowed, nothing kept
    assert not model.loaded
    assert model().predictor is None and not model.loaded  # "no weights": asked again next time
    assert model().predictor is not None and model.loaded  # weights installed since
    assert not outcomes


def test_the_window_preloads_once_and_its_analysis_uses_that_model(qtbot, tmp_path: Path) -> None:
    from valvereader.gui.main_window import MainWindow
    from valvereader.settings import Settings

    calls: list[int] = []
    warmed: list[int] = []

    class Warmable(FakePredictor):
        def warm_up(self) -> None:
            warmed.append(1)

    def loader():
        calls.append(1)
        return _status(Warmable())

    window = MainWindow(settings=Settings.load(), model_loader=loader)
    qtbot.addWidget(window)
    window.show()
    window.preload_model()
    qtbot.waitUntil(lambda: window.model.loaded and warmed == [1], timeout=TIMEOUT)
    window.preload_model()  # already loaded: no second load
    window.open_paths([write_png(tmp_path / "skull.png", skull_image())])
    qtbot.waitUntil(lambda: bool(window.worklist.studies) and window.worklist.studies[0].analysed, timeout=TIMEOUT)
    assert window.worklist.studies[0].prediction is not None
    assert len(calls) == 1


def test_a_window_that_is_not_told_to_preload_loads_on_its_first_analysis(qtbot, tmp_path: Path) -> None:
    from valvereader.gui.main_window import MainWindow
    from valvereader.settings import Settings

    calls: list[int] = []
    window = MainWindow(settings=Settings.load(), model_loader=lambda: calls.append(1) or _status(FakePredictor()))
    qtbot.addWidget(window)
    window.show()
    qtbot.wait(200)
    assert calls == [] and not window.model.loaded
    window.open_paths([write_png(tmp_path / "skull.png", skull_image())])
    qtbot.waitUntil(lambda: bool(window.worklist.studies) and window.worklist.studies[0].analysed, timeout=TIMEOUT)
    assert calls == [1]


def test_the_fast_yaml_loader_reads_every_template_as_the_python_one_does() -> None:
    from valvereader.catalogue import read_template_yaml
    from valvereader.paths import templates_dir

    files = sorted(templates_dir().glob("*/template.yaml"))
    assert len(files) >= 9
    for path in files:
        assert read_template_yaml(path) == yaml.safe_load(path.read_text(encoding="utf-8")), path.parent.name


def test_a_broken_template_yaml_is_still_a_template_error(tmp_path: Path) -> None:
    from valvereader.catalogue import read_template_yaml
    from valvereader.errors import TemplateError

    path = tmp_path / "template.yaml"
    path.write_text("id: x\nname: [unclosed\n", encoding="utf-8")
    with pytest.raises(TemplateError, match="not valid YAML"):
        read_template_yaml(path)


def test_the_catalogue_worker_warms_every_template(qtbot) -> None:
    from valvereader.catalogue import UNKNOWN_VALVE_ID, VALVE_IDS
    from valvereader.catalogue.templates import _load
    from valvereader.gui.main_window import MainWindow
    from valvereader.settings import Settings

    _load.cache_clear()
    window = MainWindow(settings=Settings.load(), model_loader=lambda: _status(None))
    qtbot.addWidget(window)
    qtbot.waitUntil(lambda: _load.cache_info().currsize >= len(VALVE_IDS) + 1, timeout=TIMEOUT)
    assert _load.cache_info().currsize == len((*VALVE_IDS, UNKNOWN_VALVE_ID))


def test_the_warm_up_waits_for_no_one_but_is_skipped_while_an_analysis_runs(qtbot) -> None:
    from valvereader.gui.main_window import MainWindow
    from valvereader.settings import Settings

    warmed: list[int] = []

    class Warmable(FakePredictor):
        def warm_up(self) -> None:
            warmed.append(1)

    window = MainWindow(settings=Settings.load(), model_loader=lambda: _status(Warmable()))
    qtbot.addWidget(window)
    status = window.model()
    window._analysis = object()  # a file opened before the model was ready: it is being analysed
    window._warm_up_unless_busy(status)
    assert warmed == []
    window._analysis = None
    window._warm_up_unless_busy(status)
    assert warmed == [1]
