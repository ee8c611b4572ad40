"""A negative image file that the model read inverted is shown as it was read, and the reader can
turn it back."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from viewer_fakes import FakePredictor, skull_image, write_png

TIMEOUT = 30_000


class ReadsInverted(FakePredictor):
    """Says every file named negative*.png was read inverted."""

    def predict(self, radiograph, with_heatmap: bool = True, **options):
        found = super().predict(radiograph, with_heatmap, **options)
        return replace(found, inverted=Path(radiograph.meta.source).name.startswith("negative"))


def test_a_negative_is_shown_bone_white_once_and_the_reader_can_turn_it_back(qtbot, make_window, tmp_path: Path) -> None:
    from valvereader.prediction import INVERTED_NOTE

    window = make_window(ReadsInverted())
    films = [write_png(tmp_path / "film.png", skull_image()), write_png(tmp_path / "negative.png", 1.0 - skull_image())]
    window.open_paths(films)
    qtbot.waitUntil(window.is_settled, timeout=TIMEOUT)
    names = [study.path.name for study in window.worklist.studies]
    plain, negative = names.index("film.png"), names.index("negative.png")
    window.go_to(plain)
    qtbot.waitUntil(lambda: window.worklist.current_study.prediction is not None and window._shown_index == plain, timeout=TIMEOUT)
    window.show_result()
    assert not window.view.invert  # a film as it is stays as it is
    window.go_to(negative)
    qtbot.waitUntil(lambda: window._shown_index == negative and window.view.invert, timeout=TIMEOUT)
    assert INVERTED_NOTE in window.result_panel.meaning.text()
    window.view.invert = False  # the reader turns it back (Invert, I) ...
    window.show_result()  # ... and a result shown again (a correction, a region) leaves it so
    assert not window.view.invert
    window.go_to(plain)
    qtbot.waitUntil(lambda: window._shown_index == plain, timeout=TIMEOUT)
    assert not window.view.invert
