"""A decision lands on the study the reader sees, with the worklist filtered and sorted, and never
replaces another decision without saying so."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from viewer_fakes import FakePredictor

from valvereader.gui.models.state import ReviewDecision
from valvereader.review import ReviewStore

pytestmark = pytest.mark.gui
TIMEOUT = 15000
# Sorted by confidence, highest first: study3, study0, study1, study2.
CONFIDENCES = {"study0.png": 0.95, "study1.png": 0.7, "study2.png": 0.6, "study3.png": 0.99}


def highlighted(window) -> list[int]:
    panel = window.worklist_panel
    return [panel.proxy.mapToSource(i).row() for i in panel.table.selectionModel().selectedRows()]


def on_screen(qtbot, window) -> str:
    qtbot.waitUntil(window.is_settled, timeout=TIMEOUT)
    return Path(window.canvas.radiograph.meta.source).name


def correct(window, valve_id: str) -> None:
    picker = window.template_panel.picker
    index = picker.findData(valve_id)
    picker.setCurrentIndex(index)
    picker.activated.emit(index)  # what choosing in the popup opened by C does


@pytest.fixture
def reviewing(qtbot, make_window, batch_folder: Path):
    window = make_window(FakePredictor(confidences=CONFIDENCES))
    window.open_paths([batch_folder])
    qtbot.waitUntil(lambda: bool(window.worklist.studies) and all(s.analysed for s in window.worklist.studies),
                    timeout=TIMEOUT)
    window.worklist_panel.table.sortByColumn(3, Qt.SortOrder.DescendingOrder)
    window.worklist_panel.set_filter("unreviewed")
    return window


def test_a_corrected_study_stays_listed_and_highlighted_while_it_is_on_screen(qtbot, reviewing, batch_folder) -> None:
    window = reviewing
    panel = window.worklist_panel
    assert panel.visible_rows() == [3, 0, 1, 2]
    window.go_to(1)
    assert on_screen(qtbot, window) == "study1.png"
    correct(window, "integra_dp")
    # No longer "not reviewed", but on screen: listed and highlighted, nothing else is.
    assert window.worklist.current == 1 and highlighted(window) == [1]
    assert panel.visible_rows() == [3, 0, 1, 2]
    assert on_screen(qtbot, window) == "study1.png"
    # A on the corrected study asks first: nothing is replaced.
    qtbot.keyClick(window, Qt.Key.Key_A)
    record = ReviewStore(batch_folder).get(batch_folder / "study1.png")
    assert record.decision == "corrected" and record.corrected_valve_id == "integra_dp"
    assert window.worklist.studies[1].decision is ReviewDecision.CORRECTED
    assert "press A again" in window.notifier.messages[-1].text
    assert window.worklist.current == 1 and highlighted(window) == [1]
    # Moving on: the next in the order shown, and the reviewed study leaves the list.
    qtbot.keyClick(window, Qt.Key.Key_Down)
    assert window.worklist.current == 2 and highlighted(window) == [2]
    assert panel.visible_rows() == [3, 0, 2]
    assert on_screen(qtbot, window) == "study2.png"
    # A lands on the study shown, then the one below it in the list comes up (the list's top
    # when it was the last: here it was, so it stays).
    qtbot.keyClick(window, Qt.Key.Key_A)
    store = ReviewStore(batch_folder)
    assert store.get(batch_folder / "study2.png").decision == "accepted"
    assert store.get(batch_folder / "study1.png").corrected_valve_id == "integra_dp"
    assert window.worklist.current == 2 and highlighted(window) == [2]


def test_accepting_goes_to_the_study_below_in_the_filtered_sorted_list(qtbot, reviewing, batch_folder) -> None:
    window = reviewing
    panel = window.worklist_panel
    window.go_to(3)
    assert on_screen(qtbot, window) == "study3.png"
    qtbot.keyClick(window, Qt.Key.Key_A)  # study3 accepted, study0 (below it) comes up
    assert window.worklist.current == 0 and highlighted(window) == [0]
    assert panel.visible_rows() == [0, 1, 2]
    assert on_screen(qtbot, window) == "study0.png"
    qtbot.keyClick(window, Qt.Key.Key_X)  # study0 rejected, study1 comes up
    assert window.worklist.current == 1 and highlighted(window) == [1]
    assert panel.visible_rows() == [1, 2]
    assert on_screen(qtbot, window) == "study1.png"
    decisions = {k: r.decision for k, r in ReviewStore(batch_folder).all().items()}
    assert decisions == {"study3.png": "accepted", "study0.png": "rejected"}


def test_sorted_by_review_the_decided_row_moves_and_stays_highlighted(qtbot, reviewing, batch_folder) -> None:
    window = reviewing
    panel = window.worklist_panel
    panel.set_filter("all")
    panel.table.sortByColumn(5, Qt.SortOrder.AscendingOrder)  # "Accepted" < "Corrected" < "Not reviewed"
    assert panel.visible_rows() == [3, 0, 1, 2]  # ties keep the earlier order
    window.go_to(1)
    assert on_screen(qtbot, window) == "study1.png"
    correct(window, "integra_dp")  # study1's row moves up, before the studies not reviewed
    assert panel.visible_rows() == [1, 3, 0, 2]
    assert window.worklist.current == 1 and highlighted(window) == [1]
    qtbot.keyClick(window, Qt.Key.Key_Down)
    assert window.worklist.current == 3 and highlighted(window) == [3]
    assert on_screen(qtbot, window) == "study3.png"
    qtbot.keyClick(window, Qt.Key.Key_A)  # study3 accepted: first in the list; study0 comes up
    assert panel.visible_rows() == [3, 1, 0, 2]
    assert window.worklist.current == 0 and highlighted(window) == [0]
    store = ReviewStore(batch_folder)
    assert store.get(batch_folder / "study3.png").decision == "accepted"
    assert store.get(batch_folder / "study1.png").decision == "corrected"
    assert store.get(batch_folder / "study0.png") is None


def test_replacing_a_decision_takes_the_key_twice_and_says_so(qtbot, reviewing, batch_folder) -> None:
    window = reviewing
    window.worklist_panel.set_filter("all")
    window.go_to(1)
    assert on_screen(qtbot, window) == "study1.png"
    correct(window, "integra_dp")
    qtbot.keyClick(window, Qt.Key.Key_A)
    qtbot.keyClick(window, Qt.Key.Key_A)
    record = ReviewStore(batch_folder).get(batch_folder / "study1.png")
    assert record.decision == "accepted" and record.corrected_valve_id is None
    from valvereader.gui.models.valves import valve_label

    assert f"replaces 'corrected to {valve_label('integra_dp')[0]}'" in window.notifier.messages[-1].text
    # Moving away forgets the question: A on a decided study asks again.
    window.go_to(3)
    qtbot.keyClick(window, Qt.Key.Key_X)  # study3: rejected (nothing to replace)
    window.go_to(3)
    qtbot.keyClick(window, Qt.Key.Key_A)
    window.go_to(0)
    window.go_to(3)
    qtbot.keyClick(window, Qt.Key.Key_A)
    assert ReviewStore(batch_folder).get(batch_folder / "study3.png").decision == "rejected"
    # A correction picked from the list replaces at once, and says what it replaced.
    correct(window, "integra_dp")
    assert ReviewStore(batch_folder).get(batch_folder / "study3.png").decision == "corrected"
    assert "replaces 'rejected'" in window.notifier.messages[-1].text
