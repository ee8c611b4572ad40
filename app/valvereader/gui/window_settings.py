"""The window's layout and toggles to and from ``valvereader.settings.Settings``."""

from __future__ import annotations

from PySide6.QtCore import QByteArray

from .window_api import Window


def restore_window(w: Window) -> None:
    s = w.settings
    w.view.heatmap_opacity = s.heatmap_opacity
    w.view.show_heatmap = s.show_heatmap
    w.view.show_box = s.show_box
    w.view.show_corner_text = s.show_corner_text
    w.resize(1600, 1000)
    if s.window_geometry:
        w.restoreGeometry(QByteArray.fromBase64(s.window_geometry.encode()))
    if s.window_state:
        w.restoreState(QByteArray.fromBase64(s.window_state.encode()))
    w.worklist_dock.setVisible(s.worklist_visible)
    w.right_dock.setVisible(s.result_panel_visible)
    w.worklist_panel.set_filter(s.worklist_filter)


def save_window(w: Window) -> None:
    """Layout, toggles and filter into the settings file; a failure is a note, not a crash."""
    s = w.settings
    s.window_geometry = bytes(w.saveGeometry().toBase64().data()).decode()
    s.window_state = bytes(w.saveState().toBase64().data()).decode()
    s.worklist_visible = w.worklist_dock.isVisible()
    s.result_panel_visible = w.right_dock.isVisible()
    s.heatmap_opacity = float(w.view.heatmap_opacity)
    s.show_heatmap, s.show_box = bool(w.view.show_heatmap), bool(w.view.show_box)
    s.show_corner_text = bool(w.view.show_corner_text)
    s.worklist_filter = w.worklist_panel.proxy.mode
    try:
        s.save()
    except OSError as exc:
        w.notifier.warning(f"Settings could not be saved: {exc}")
