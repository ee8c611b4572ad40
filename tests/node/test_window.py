"""The window opening the node's OUT/ folder: its films as a worklist with the node's results,
nothing read again."""

from __future__ import annotations

import csv

import pytest
from node_helpers import non_image_dataset, sample_dataset, send

pytestmark = pytest.mark.gui


class Counting:
    """The real model, counting the films it is asked to read."""

    def __init__(self, predictor):
        self._predictor, self.calls = predictor, 0

    def __getattr__(self, name):
        return getattr(self._predictor, name)

    def predict(self, radiograph, **kwargs):
        self.calls += 1
        return self._predictor.predict(radiograph, **kwargs)

    def predict_many(self, items, **kwargs):
        for item in items:
            self.calls += 1
            yield from self._predictor.predict_many([item], **kwargs)


def test_the_window_shows_the_nodes_results_without_reading_again(qtbot, start_node, predictor, tmp_path):
    from valvereader.gui.main_window import MainWindow
    from valvereader.gui.models.analysis import ModelStatus
    from valvereader.settings import Settings

    out = tmp_path / "out"
    node = start_node(out=out)
    sent = sample_dataset()
    assert send(node.port, [sent, non_image_dataset()]) == [0x0000, 0x0000]
    assert node.wait_idle(30)
    node.stop()
    with open(out / "results.csv", newline="", encoding="utf-8") as handle:
        [row] = [r for r in csv.DictReader(handle) if r["status"] == "ok"]

    counting = Counting(predictor)
    window = MainWindow(settings=Settings.load(), model_loader=lambda: ModelStatus(counting, "node model"))
    qtbot.addWidget(window)
    window.resize(1400, 900)
    window.show()
    window.open_paths([out])
    qtbot.waitUntil(lambda: bool(window.worklist.studies) and all(s.analysed for s in window.worklist.studies)
                    and window.is_idle(), timeout=30000)

    assert counting.calls == 0  # the node's result, not a new reading
    [study] = window.worklist.studies  # the film; the SR and the non-image object hold no picture
    assert study.path.resolve() == (out / "in" / f"{sent.SOPInstanceUID}.dcm").resolve()
    assert study.prediction.predicted == row["predicted"]
    assert study.prediction.verdict.value == row["verdict"]
    assert study.thumbnail is not None and max(study.thumbnail.shape) == 64
    assert study.prediction.heatmap is not None  # the "model attention" overlay is there too
