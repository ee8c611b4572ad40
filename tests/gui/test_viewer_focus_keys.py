"""Single-key commands work wherever the focus is in the window (panels, pickers, text)."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

pytestmark = pytest.mark.gui


def test_single_keys_reach_the_window_from_the_template_picker_and_text(qtbot, make_window) -> None:
    window = make_window()
    for widget in (window.template_panel.picker, window.template_panel.sections, window.worklist_panel.filter):
        widget.setFocus()
        before = window.view.invert
        qtbot.keyClick(widget, Qt.Key.Key_I)
        assert window.view.invert is not before, type(widget).__name__
