"""Every command of the window as a QAction: menu entry, toolbar button, shortcut (shown in
its tooltip) and a line on the shortcut sheet, all from one table."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QFileDialog, QLabel, QMenu, QSlider, QToolBar

from .about import TextDialog, about_html, shortcuts_html
from .exporting import ExportController
from .window_api import Window

SHEET: list[tuple[str, str, str]] = []  # (group, keys, what) for the sheet, filled by build_actions


def build_actions(w: Window) -> dict[str, QAction]:
    actions: dict[str, QAction] = {}
    SHEET.clear()
    w.exports = ExportController(w)
    v = w.view

    def add(name: str, text: str, group: str, slot: Callable[..., object] | None, keys: tuple[str, ...] = (),
            checkable: bool = False, checked: bool = False) -> QAction:
        action = QAction(text, w.window())
        if keys:
            action.setShortcuts([QKeySequence(k) for k in keys])
            action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            action.setToolTip(f"{text} ({' / '.join(keys)})")
            SHEET.append((group, " / ".join(keys), text))
        if checkable:
            action.setCheckable(True)
            action.setChecked(checked)
            if slot is not None:
                action.toggled.connect(slot)
        elif slot is not None:
            action.triggered.connect(lambda _=False: slot())
        w.addAction(action)
        actions[name] = action
        return action

    # File
    add("open_file", "Open file…", "File", partial(open_file_dialog, w), ("Ctrl+O",))
    add("open_folder", "Open folder…", "File", partial(open_folder_dialog, w), ("Ctrl+Shift+O",))
    e = w.exports
    add("export_png", "Export view as PNG…", "Export", e.png, ("Ctrl+E",))
    add("export_pdf", "Export PDF report…", "Export", e.pdf, ("Ctrl+P",))
    add("export_sc", "Export DICOM Secondary Capture…", "Export", e.secondary_capture)
    add("export_csv", "Export worklist as CSV…", "Export", e.worklist_csv)
    add("export_worklist_pdf", "Export worklist as PDF…", "Export", e.worklist_pdf)
    add("deidentify", "De-identify exports (no name, id, dates; corner text off)", "Export",
        lambda on: setattr(w.settings, "deidentify_exports", bool(on)), checkable=True,
        checked=w.settings.deidentify_exports)
    add("quit", "Quit", "File", w.close, ("Ctrl+Q",))
    # View
    add("fit", "Fit to window", "View", lambda: _set_zoom(w, None), ("F",))
    add("one_to_one", "Zoom 1:1", "View", lambda: _set_zoom(w, 1.0), ("Ctrl+0",))
    add("zoom_in", "Zoom in", "View", lambda: w.canvas.zoom_by(1.25), ("=", "+"))
    add("zoom_out", "Zoom out", "View", lambda: w.canvas.zoom_by(0.8), ("-",))
    add("rotate_right", "Rotate right", "View", lambda: v.rotate(90), ("R",))
    add("rotate_left", "Rotate left", "View", lambda: v.rotate(-90), ("L",))
    add("flip_h", "Flip horizontally", "View", lambda: setattr(v, "flip_horizontal", not v.flip_horizontal), ("Shift+H",))
    add("flip_v", "Flip vertically", "View", lambda: setattr(v, "flip_vertical", not v.flip_vertical), ("Shift+V",))
    add("invert", "Invert grey scale", "View", lambda: setattr(v, "invert", not v.invert), ("I",))
    add("preset_0", "Window: as stored in the file", "Window/level", lambda: v.set_window(0.5, 1.0), ("0",))
    for number, preset in enumerate(w.settings.window_presets[:4], start=1):
        add(f"preset_{number}", f"Window: {preset.name}", "Window/level",
            partial(v.set_window, preset.center, preset.width), (str(number),))
    SHEET.append(("Window/level", "Left-drag", "Window (horizontal) and level (vertical); Shift: fine"))
    SHEET.append(("View", "Wheel / Middle-drag / Space+drag", "Zoom at the cursor / pan"))
    add("heatmap", "Model attention overlay", "Overlay", lambda on: setattr(v, "show_heatmap", bool(on)), ("H",),
        checkable=True, checked=v.show_heatmap)
    add("box", "Valve box", "Overlay", lambda on: setattr(v, "show_box", bool(on)), ("B",),
        checkable=True, checked=v.show_box)
    add("corner_text", "Corner text", "View", lambda on: setattr(v, "show_corner_text", bool(on)), ("T",),
        checkable=True, checked=v.show_corner_text)
    add("measure", "Distance tool", "View", lambda on: _measure(w, on, actions), ("D",), checkable=True)
    add("leave_tool", "Leave the distance or region tool, clear measurements", "View", lambda: _leave_tool(w, actions),
        ("Esc",))
    # Analysis and review
    add("analyse", "Analyse (resume)", "Analysis", w.resume_analysis, ("Ctrl+Return",))
    add("cancel", "Cancel analysis", "Analysis", w.cancel_analysis, ("Ctrl+.",))
    add("next", "Next study", "Review", lambda: w.step(+1), ("Down", "PgDown"))
    add("previous", "Previous study", "Review", lambda: w.step(-1), ("Up", "PgUp"))
    add("accept", "Accept result", "Review", w.review.accept, ("A",))
    add("reject", "Reject result", "Review", w.review.reject, ("X",))
    add("correct", "Correct: pick the right valve", "Review", w.review.ask_correction, ("C",))
    add("clear", "Clear decision", "Review", w.review.clear, ("Backspace",))
    add("region", "Valve region tool: drag a rectangle on the valve for the model to read", "Review",
        lambda on: _region(w, on, actions), ("V",), checkable=True)
    SHEET.append(("Review", "Double-click", "Read a valve-sized square around the point (the reader's region)"))
    add("back_to_located", "Back to the located box", "Review", w.regions.back_to_located, ("Shift+Backspace",))
    add("compare_prior", "Compare with a prior film…", "Review", lambda: _compare_prior(w), ("Ctrl+Shift+P",))
    add("only_review", "Show only studies that need review", "Review",
        lambda on: w.worklist_panel.set_filter("needs review" if on else "all"), ("Ctrl+R",), checkable=True)
    # Reading dial
    add("dial_left", "Turn dial anticlockwise", "Reading dial", lambda: w.valve_view.turn(-5), ("[",))
    add("dial_right", "Turn dial clockwise", "Reading dial", lambda: w.valve_view.turn(5), ("]",))
    add("dial_left_fine", "Turn dial 1° anticlockwise", "Reading dial", lambda: w.valve_view.turn(-1), ("{",))
    add("dial_right_fine", "Turn dial 1° clockwise", "Reading dial", lambda: w.valve_view.turn(1), ("}",))
    add("dial_mirror", "Mirror dial (valve seen through its base)", "Reading dial", w.valve_view.mirror, ("M",))
    add("dial_show", "Show reading dial", "Reading dial", lambda on: setattr(w.dial, "visible", bool(on)), ("G",),
        checkable=True, checked=True)
    SHEET.append(("Reading dial", "Drag / Wheel / Right-click", "Move dial / turn it / mark where the indicator points"))
    # Help
    sheet = add("shortcuts", "Keyboard shortcuts", "Help",
                lambda: _dialog(w, "Keyboard shortcuts", shortcuts_html(SHEET)), ("?", "F1"))
    # "?" arrives as Shift+? on most keyboard layouts
    sheet.setShortcuts([*sheet.shortcuts(), QKeySequence("Shift+?")])
    add("about", "About Shunt Valve Reader", "Help", lambda: _dialog(w, "About", _about(w)))
    _menus(w, actions)
    _toolbar(w, actions)
    v.changed.connect(lambda name: _sync(actions, v, name))
    return actions


def _sync(actions: dict[str, QAction], v: object, name: str) -> None:
    pairs = {"show_heatmap": "heatmap", "show_box": "box", "show_corner_text": "corner_text"}
    if name in pairs:
        actions[pairs[name]].setChecked(bool(getattr(v, name)))


def _set_zoom(w: Window, zoom: float | None) -> None:
    w.view.zoom = zoom
    w.view.pan = (0.0, 0.0)


def _measure(w: Window, on: bool, actions: dict[str, QAction]) -> None:
    if on:
        actions["region"].setChecked(False)
    w.canvas.measure_mode = bool(on)
    w.canvas.setCursor(Qt.CursorShape.CrossCursor if on or w.canvas.region_mode else Qt.CursorShape.ArrowCursor)


def _region(w: Window, on: bool, actions: dict[str, QAction]) -> None:
    """The region tool: a rectangle dragged on the image is read instead of the located box."""
    if on:
        actions["measure"].setChecked(False)
        w.statusBar().showMessage("Region tool: drag a rectangle around the valve (double-click: a valve-sized "
                                  "square); Esc leaves the tool", 8000)
    w.canvas.region_mode = bool(on)
    w.canvas.setCursor(Qt.CursorShape.CrossCursor if on or w.canvas.measure_mode else Qt.CursorShape.ArrowCursor)


def _leave_tool(w: Window, actions: dict[str, QAction]) -> None:
    actions["measure"].setChecked(False)
    actions["region"].setChecked(False)
    w.canvas.measurements.clear()
    w.canvas.update()


def _about(w: Window) -> str:
    predictor = w.model_status.predictor if w.model_status is not None else None
    return about_html(getattr(predictor, "card", None), getattr(predictor, "model_name", None))


def _dialog(w: Window, title: str, body: str) -> TextDialog:
    dialog = TextDialog(title, body, w.window())
    dialog.show()  # not modal: the window keeps working behind it
    return dialog


def open_file_dialog(w: Window) -> None:
    from ..io.sniff import X_RAY_SUFFIXES

    patterns = " ".join(f"*{suffix}" for suffix in sorted(X_RAY_SUFFIXES))
    files, _ = QFileDialog.getOpenFileNames(w.window(), "Open radiographs", w.settings.last_folder or str(Path.home()),
                                            f"Radiographs ({patterns});;All files (*)")
    if files:
        w.open_paths(files)


def open_folder_dialog(w: Window) -> None:
    folder = QFileDialog.getExistingDirectory(w.window(), "Open a folder of radiographs", w.settings.last_folder or str(Path.home()))
    if folder:
        w.open_paths([folder])


def _menus(w: Window, a: dict[str, QAction]) -> None:
    bar = w.menuBar()
    file = bar.addMenu("&File")
    file.addActions([a["open_file"], a["open_folder"]])
    recent = file.addMenu("Recent files")
    recent.aboutToShow.connect(lambda: _fill_recent(w, recent))
    a["recent"] = recent.menuAction()
    file.addSeparator()
    export = file.addMenu("Export")
    export.addActions([a["export_png"], a["export_pdf"], a["export_sc"]])
    export.addSeparator()
    export.addActions([a["export_csv"], a["export_worklist_pdf"]])
    export.addSeparator()
    export.addAction(a["deidentify"])
    file.addSeparator()
    file.addAction(a["quit"])
    view = bar.addMenu("&View")
    view.addActions([a[n] for n in ("fit", "one_to_one", "zoom_in", "zoom_out", "rotate_right", "rotate_left",
                                    "flip_h", "flip_v", "invert")])
    presets = view.addMenu("Window presets")
    presets.addActions([a[n] for n in a if n.startswith("preset_")])
    view.addSeparator()
    view.addActions([a["heatmap"], a["box"], a["corner_text"], a["measure"]])
    view.addSeparator()
    view.addAction(w.worklist_dock.toggleViewAction())
    view.addAction(w.right_dock.toggleViewAction())
    messages = QAction("Messages…", w.window())
    messages.triggered.connect(lambda: _dialog(w, "Messages", "<br>".join(
        f"{m.time:%H:%M:%S} <b>{m.level}</b> {m.text}" for m in reversed(w.notifier.messages)) or "No messages"))
    view.addAction(messages)
    analysis = bar.addMenu("&Review")
    analysis.addActions([a[n] for n in ("analyse", "cancel")])
    analysis.addSeparator()
    analysis.addActions([a[n] for n in ("next", "previous", "accept", "reject", "correct", "clear", "only_review")])
    analysis.addSeparator()
    analysis.addActions([a["region"], a["back_to_located"]])
    analysis.addSeparator()
    analysis.addAction(a["compare_prior"])
    dial = bar.addMenu("Reading &dial")
    dial.addActions([a[n] for n in ("dial_show", "dial_left", "dial_right", "dial_left_fine", "dial_right_fine",
                                    "dial_mirror")])
    reset = QAction("Reset dial", w.window())
    reset.triggered.connect(w.dial.reset)
    dial.addAction(reset)
    help_menu = bar.addMenu("&Help")
    help_menu.addActions([a["shortcuts"], a["about"]])


def _compare_prior(w: Window) -> None:
    from .prior import open_prior

    open_prior(w)


def _fill_recent(w: Window, menu: QMenu) -> None:
    menu.clear()
    w.settings.prune_recent_files()
    for path in w.settings.recent_files:
        action = menu.addAction(Path(path).name)
        action.setToolTip(path)
        action.triggered.connect(partial(w.open_paths, [path]))
    if not w.settings.recent_files:
        menu.addAction("(none)").setEnabled(False)


def _toolbar(w: Window, a: dict[str, QAction]) -> None:
    bar = QToolBar("Tools")
    bar.setObjectName("tools")
    bar.setMovable(False)
    w.addToolBar(bar)
    short = {"open_file": "Open", "open_folder": "Folder", "fit": "Fit", "one_to_one": "1:1", "invert": "Invert",
             "rotate_left": "⟲", "rotate_right": "⟳", "flip_h": "⇋", "heatmap": "Attention", "box": "Box",
             "measure": "Distance", "region": "Region", "corner_text": "Text", "accept": "Accept", "reject": "Reject",
             "correct": "Correct", "export_png": "PNG", "export_pdf": "PDF"}
    groups = (("open_file", "open_folder"), ("fit", "one_to_one", "invert", "rotate_left", "rotate_right", "flip_h"),
              ("heatmap",), ("box", "measure", "region", "corner_text"), ("accept", "reject", "correct"),
              ("export_png", "export_pdf"))
    for i, group in enumerate(groups):
        if i:
            bar.addSeparator()
        for name in group:
            bar.addAction(a[name])
            a[name].setIconText(short[name])
        if group == ("heatmap",):
            bar.addWidget(QLabel(" opacity "))
            bar.addWidget(_opacity_slider(w))


def _opacity_slider(w: Window) -> QSlider:
    slider = QSlider(Qt.Orientation.Horizontal)
    slider.setRange(0, 100)
    slider.setFixedWidth(90)
    slider.setValue(round(w.view.heatmap_opacity * 100))
    slider.setToolTip("Opacity of the model attention overlay")
    slider.valueChanged.connect(lambda value: setattr(w.view, "heatmap_opacity", value / 100.0))
    w.view.changed.connect(lambda name: slider.setValue(round(w.view.heatmap_opacity * 100))
                           if name == "heatmap_opacity" else None)
    w.opacity_slider = slider
    return slider
