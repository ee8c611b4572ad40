"""Results kept beside the batch (.valvereader-results.jsonl): a second opening of the folder
shows them without reading the files again, unless a file or the model changed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from viewer_fakes import FakePredictor

from valvereader.gui.models import services
from valvereader.review import RESULTS_FILE

pytestmark = pytest.mark.gui
TIMEOUT = 15000


class Loads:
    """Counts the radiographs the window decodes, by file name."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.names: list[str] = []
        real = services.load_radiograph

        def counted(path: Path):
            self.names.append(Path(path).name)
            return real(path)

        monkeypatch.setattr(services, "load_radiograph", counted)


def opened(qtbot, make_window, folder: Path, predictor: FakePredictor):
    window = make_window(predictor)
    window.open_paths([folder])
    qtbot.waitUntil(lambda: bool(window.worklist.studies) and all(s.analysed for s in window.worklist.studies)
                    and window.is_idle(), timeout=TIMEOUT)
    return window


def test_a_second_opening_reads_no_file_whose_size_and_time_are_unchanged(qtbot, make_window, batch_folder: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    first = FakePredictor()
    window = opened(qtbot, make_window, batch_folder, first)
    assert sorted(first.calls) == sorted(p.name for p in batch_folder.glob("*.png"))
    assert (batch_folder / RESULTS_FILE).is_file()
    before = {s.path.name: (s.prediction.predicted, s.prediction.verdict, s.prediction.box) for s in window.worklist.studies}
    window.close()

    loads = Loads(monkeypatch)
    second = FakePredictor()
    window = opened(qtbot, make_window, batch_folder, second)
    assert second.calls == []  # nothing analysed again
    shown = window.worklist.current_study.path.name
    assert set(loads.names) <= {shown}  # only the study on screen is decoded, to be shown
    after = {s.path.name: (s.prediction.predicted, s.prediction.verdict, s.prediction.box) for s in window.worklist.studies}
    assert after == before
    for study in window.worklist.studies:
        assert study.thumbnail is not None and study.thumbnail.size > 0  # the worklist keeps its pictures
        assert study.prediction.heatmap is not None  # and the "model attention" overlay
    qtbot.waitUntil(window.is_settled, timeout=TIMEOUT)
    assert window.valve_view.has_valve()


def test_a_changed_file_or_another_model_is_read_again(qtbot, make_window, batch_folder: Path) -> None:
    window = opened(qtbot, make_window, batch_folder, FakePredictor())
    window.close()
    changed = batch_folder / "study2.png"
    stat = changed.stat()
    os.utime(changed, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    again = FakePredictor()
    window = opened(qtbot, make_window, batch_folder, again)
    assert again.calls == ["study2.png"]
    window.close()

    class OtherModel(FakePredictor):
        model_name = "fake-model 0.1"

    other = OtherModel()
    opened(qtbot, make_window, batch_folder, other)
    assert len(other.calls) == 4


def test_results_of_other_weights_under_the_same_identifier_are_read_again(qtbot, make_window, batch_folder: Path) -> None:
    """A new locator or verification keeps the identifier's name; the results it would change
    must not be shown from the kept file."""

    class Shipped(FakePredictor):
        weights_key = "identifier 0.0, locator 1.0, cards aaaa"

    class Updated(FakePredictor):
        weights_key = "identifier 0.0, locator 1.1, cards bbbb"

    opened(qtbot, make_window, batch_folder, Shipped()).close()
    same = Shipped()
    opened(qtbot, make_window, batch_folder, same).close()
    assert same.calls == []  # same weights: kept
    updated = Updated()
    opened(qtbot, make_window, batch_folder, updated).close()
    assert sorted(updated.calls) == sorted(p.name for p in batch_folder.glob("*.png"))  # other weights: read again


def test_a_batch_opened_by_a_relative_path_keys_its_results_by_file_name(qtbot, make_window, batch_folder: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """`valvereader resources/samples` opens a folder relative to the working directory: its
    results are kept under the files' names (as for the same folder opened by its absolute
    path), and a file changed since is read again."""
    import json

    monkeypatch.chdir(batch_folder.parent)
    window = opened(qtbot, make_window, Path(batch_folder.name), FakePredictor())
    assert all(study.path.is_absolute() for study in window.worklist.studies)
    window.close()
    keys = {json.loads(line)["image"] for line in (batch_folder / RESULTS_FILE).read_text().splitlines()}
    assert keys == {p.name for p in batch_folder.glob("*.png")}
    changed = batch_folder / "study1.png"
    stat = changed.stat()
    os.utime(changed, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    again = FakePredictor()
    opened(qtbot, make_window, Path(batch_folder.name), again).close()
    assert again.calls == ["study1.png"]
    absolute = FakePredictor()  # the same folder by its absolute path: nothing read again
    opened(qtbot, make_window, batch_folder, absolute).close()
    assert absolute.calls == []
