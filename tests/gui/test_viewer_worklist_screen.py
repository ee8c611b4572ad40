"""What the worklist and the panels beside it show: file names shortened where batches differ,
whole in the tooltip; an error that fits its panel; an empty folder clears the screen."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QStyleOptionViewItem
from viewer_fakes import skull_image, write_png

from valvereader.gui.models.text import ZERO_WIDTH_SPACE, breakable

pytestmark = pytest.mark.gui
TIMEOUT = 15000


def batch_done(window) -> bool:
    return bool(window.worklist.studies) and all(s.analysed for s in window.worklist.studies) and window.is_idle()


def shown_name(panel, row: int) -> str:
    index = panel.proxy.index(row, 1)
    option = QStyleOptionViewItem()
    option.rect = panel.table.visualRect(index)
    option.widget = panel.table
    option.fontMetrics = panel.table.fontMetrics()
    panel.names.initStyleOption(option, index)
    return option.text.replace("\u2028", "\n")


def test_worklist_names_keep_the_part_that_differs_and_the_tooltip_the_whole_name(qtbot, make_window,
                                                                                   tmp_path: Path) -> None:
    folder = tmp_path / "exported"
    folder.mkdir()
    names = [f"composite_patient_{i:04d}_lateral_skull_view.dcm.png" for i in (7, 12, 31)]
    for i, name in enumerate(names):
        write_png(folder / name, skull_image(seed=i))
    window = make_window()
    window.open_paths([folder])
    qtbot.waitUntil(lambda: batch_done(window), timeout=TIMEOUT)
    panel = window.worklist_panel
    shown = [shown_name(panel, row) for row in range(3)]
    width = panel.table.columnWidth(1)
    for text, number in zip(shown, ("0007", "0012", "0031"), strict=True):
        assert number in text  # the part that tells them apart
        assert "…" in text and text.endswith(".png")  # shortened in the middle, the end kept
        assert panel.table.fontMetrics().horizontalAdvance(text) <= width
    assert len(set(shown)) == 3
    model = panel.model
    tip = model.data(model.index(1, 1), Qt.ItemDataRole.ToolTipRole)
    assert names[1] in tip and str(folder) in tip
    window.worklist.update(1, patient_id="PAT-0012")  # the patient on a line of its own, under the name
    name, patient = shown_name(panel, 1).split("\n")
    assert "0012" in name and name.endswith(".png") and patient == "PAT-0012"


def test_a_short_name_is_shown_whole(qtbot, make_window, tmp_path: Path) -> None:
    window = make_window()
    window.open_paths([write_png(tmp_path / "a.png", skull_image()), write_png(tmp_path / "b.png", skull_image())])
    qtbot.waitUntil(lambda: batch_done(window), timeout=TIMEOUT)
    assert [shown_name(window.worklist_panel, row) for row in range(2)] == ["a.png", "b.png"]


def test_a_long_error_wraps_inside_the_result_panel_beside_the_worklist(qtbot, make_window, tmp_path: Path) -> None:
    folder = tmp_path / "batch"
    folder.mkdir()
    write_png(folder / "good.png", skull_image())
    broken = folder / "broken_film_with_a_long_name_from_the_pacs_export_of_the_radiology_department_0001.dcm"
    broken.write_bytes(b"DICM" * 40)
    window = make_window()
    window.resize(1100, 800)
    window.open_paths([folder])
    qtbot.waitUntil(lambda: batch_done(window), timeout=TIMEOUT)
    window.go_to([s.path for s in window.worklist.studies].index(broken))
    qtbot.waitUntil(lambda: window.result_panel.badge.text() == "Cannot read", timeout=TIMEOUT)
    assert window.worklist_dock.isVisible()
    panel = window.result_panel
    assert panel.meaning.text().replace(ZERO_WIDTH_SPACE, "").startswith(broken.name)
    # The name breaks: the panel asks for no more width than a short message would (a label
    # holding it whole would ask for 600 px and more, and be clipped where the window has none).
    assert panel.meaning.minimumSizeHint().width() < 250
    assert panel.minimumSizeHint().width() <= panel.width()


def test_breakable_gives_long_names_places_to_break_and_leaves_words_alone() -> None:
    assert breakable("a short sentence.") == "a short sentence."
    text = breakable("see /data/films/patient_0001_lateral_view.dcm now")
    assert text.replace(ZERO_WIDTH_SPACE, "") == "see /data/films/patient_0001_lateral_view.dcm now"
    assert max(len(part) for part in text.replace(" ", ZERO_WIDTH_SPACE).split(ZERO_WIDTH_SPACE)) <= 12


def test_an_empty_folder_clears_the_previous_study(qtbot, make_window, tmp_path: Path) -> None:
    window = make_window()
    window.open_paths([write_png(tmp_path / "skull.png", skull_image())])
    qtbot.waitUntil(window.is_settled, timeout=TIMEOUT)
    assert window.canvas.radiograph is not None
    empty = tmp_path / "empty"
    empty.mkdir()
    window.open_paths([empty])
    qtbot.waitUntil(lambda: window.canvas.radiograph is None, timeout=TIMEOUT)
    assert window.worklist.studies == [] and window.worklist.current_study is None
    assert str(empty) in window.canvas.placeholder
    assert window.result_panel.badge.text() == "No radiographs"
    assert not window.valve_view.has_valve()
    assert "skull.png" not in window.windowTitle()


def test_a_study_with_no_valve_found_names_no_valve_in_the_worklist(qtbot) -> None:
    import numpy as np

    from valvereader.catalogue import VALVE_IDS
    from valvereader.gui.models.state import Study, Worklist
    from valvereader.gui.worklist import WorklistModel
    from valvereader.prediction import Prediction, Verdict

    worklist = Worklist()
    model = WorklistModel(worklist)
    probabilities = np.full(len(VALVE_IDS), 0.02, dtype=np.float32)
    probabilities[3] = 0.86
    found_none = Prediction(VALVE_IDS, probabilities, Verdict.NO_VALVE, box_source="attention")
    worklist.replace([Study(Path("film.dcm"), prediction=found_none)], Path("."))
    shown = [model.data(model.index(0, column)) for column in range(2, 5)]
    del model, worklist  # the Qt model goes now, while the application still exists
    import gc

    gc.collect()
    assert shown == ["no valve found", "", "No valve found"]


def test_an_unknown_valve_is_listed_as_a_hint_not_as_the_valve(qtbot) -> None:
    import numpy as np

    from valvereader.catalogue import VALVE_IDS
    from valvereader.gui.models.state import Study, Worklist
    from valvereader.gui.models.valves import short_name
    from valvereader.gui.worklist import HINT_COLOUR, WorklistModel
    from valvereader.prediction import Prediction, Verdict

    worklist = Worklist()
    model = WorklistModel(worklist)
    probabilities = np.full(len(VALVE_IDS), 0.001, dtype=np.float32)
    probabilities[2] = 0.99
    unknown = Prediction(VALVE_IDS, probabilities, Verdict.UNKNOWN)
    confident = Prediction(VALVE_IDS, probabilities, Verdict.CONFIDENT)
    worklist.replace([Study(Path("a.dcm"), prediction=unknown), Study(Path("b.dcm"), prediction=confident)], Path("."))
    shown = [[model.data(model.index(row, column)) for column in range(2, 5)] for row in range(2)]
    tip = model.data(model.index(0, 3), Qt.ItemDataRole.ToolTipRole)
    colour = model.data(model.index(0, 3), Qt.ItemDataRole.ForegroundRole)
    plain = model.data(model.index(1, 3), Qt.ItemDataRole.ForegroundRole)
    del model, worklist
    import gc

    gc.collect()
    name = short_name(VALVE_IDS[2])
    assert shown[0] == [f"closest: {name}", "(99\u00a0%)", "Unknown valve"]
    assert shown[1] == [name, "99 %", "Confident"]
    assert "do not apply" in tip and name in tip
    assert colour == HINT_COLOUR and plain is None
