"""The desktop viewer (PySide6). Nothing outside this package imports Qt.

Qt-free, testable without a display: ``models/`` (see its docstring) holds the state, the
maths and the words of the viewer: window/level, boxes and regions, the loupe, the dial, the
worklist's texts and filters, the result's words, prior films, the batch analysis and exports.

Qt, bound to the models above:
    worker.py     QThreadPool workers with started/progress/yielded/returned/errored/finished
    notify.py     the one place worker errors and notes reach the reader
    canvas.py     the viewport; result_panel.py, template_panel.py, valve_view.py (dial),
    worklist.py   the panels; actions.py every command, key and menu; exporting.py,
    review.py     File ▸ Export and accept/reject/correct; main_window.py wires them;
    launch.py     `valvereader view` (imports Qt only when run);
    right_column.py  result beside the zoomed valve, the template's diagram under them;
    loupe.py      the controls under the zoomed valve's loupe; dial_labels.py the dial's
                  labels drawn on plates; prior.py the comparison with a prior film;
    region.py, review.py  the reader's region and decisions (controllers on ``window_api``).
"""
