"""Dark, low-glare theme: reading rooms are dim and the radiograph must be the brightest thing
on screen. Neutral greys, one muted accent, no pure white text."""

from __future__ import annotations

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

STYLE = """
QWidget { font-size: 10pt; }
QMainWindow, QDockWidget, QWidget { background: #1b1d21; color: #c9ccd1; }
QDockWidget::title { background: #23262b; padding: 4px 6px; color: #9aa0a8; }
QToolBar { background: #202328; border: none; spacing: 2px; padding: 2px; }
QToolButton { color: #c9ccd1; padding: 3px 6px; border-radius: 3px; }
QToolButton:hover { background: #2d3137; }
QToolButton:checked { background: #33465a; color: #e4e7eb; }
QStatusBar { background: #17191c; color: #9aa0a8; }
QTableView { background: #16181b; alternate-background-color: #1a1c20; gridline-color: #26292e;
             selection-background-color: #2e4a63; selection-color: #e4e7eb; border: none; }
QHeaderView::section { background: #23262b; color: #9aa0a8; border: none; padding: 3px; }
QTextBrowser { background: #16181b; border: 1px solid #26292e; color: #c0c4ca; }
QComboBox, QPushButton { background: #262a30; border: 1px solid #333840; padding: 3px 8px;
                         border-radius: 3px; color: #c9ccd1; }
QComboBox QAbstractItemView { background: #262a30; selection-background-color: #2e4a63; }
QPushButton:checked { background: #33465a; }
QProgressBar { background: #262a30; border: 1px solid #333840; border-radius: 3px; text-align: center;
               color: #c9ccd1; max-height: 14px; }
QProgressBar::chunk { background: #3f6e96; }
QMenuBar, QMenu { background: #202328; color: #c9ccd1; }
QMenu::item:selected, QMenuBar::item:selected { background: #2e4a63; }
QLabel#valveName { font-size: 12pt; color: #e0e3e7; }
QLabel#dim { color: #8d939b; }
QLabel#disclaimer { color: #e0b070; font-weight: bold; padding: 0 8px; }
QSlider::groove:horizontal { height: 4px; background: #333840; }
QSlider::handle:horizontal { background: #8d939b; width: 10px; margin: -5px 0; border-radius: 5px; }
QSplitter::handle { background: #23262b; }
"""


def apply_theme(app: QApplication) -> None:
    app.setStyle("Fusion")
    palette = QPalette()
    colours = {
        QPalette.ColorRole.Window: "#1b1d21", QPalette.ColorRole.WindowText: "#c9ccd1",
        QPalette.ColorRole.Base: "#16181b", QPalette.ColorRole.AlternateBase: "#1a1c20",
        QPalette.ColorRole.Text: "#c9ccd1", QPalette.ColorRole.Button: "#262a30",
        QPalette.ColorRole.ButtonText: "#c9ccd1", QPalette.ColorRole.Highlight: "#2e4a63",
        QPalette.ColorRole.HighlightedText: "#e4e7eb", QPalette.ColorRole.ToolTipBase: "#262a30",
        QPalette.ColorRole.ToolTipText: "#c9ccd1", QPalette.ColorRole.Link: "#7fb2e0",
    }
    for role, colour in colours.items():
        palette.setColor(role, QColor(colour))
    app.setPalette(palette)
    app.setStyleSheet(STYLE)
