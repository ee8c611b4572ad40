"""The desktop viewer (PySide6). Nothing outside this package imports Qt.

Qt-free, testable without a display:
    state.py      ViewState, DialState, Worklist/Study: what is shown; emit ``changed``
    render.py     window/level lookup, attention colours, thumbnails (numpy only)
    services.py   paths → batch, loading radiographs (cache shared by workers)
    analysis.py   the batch loop a worker runs: load, predict, one result per study
    export.py     studies → report contents and files (through valvereader.report)
    valves.py     valve names, templates and diagrams for display
    text.py       long names given places to break in wrapping labels

Qt, bound to the models above:
    worker.py     QThreadPool workers with started/progress/yielded/returned/errored/finished
    notify.py     the one place worker errors and notes reach the reader
    canvas.py     the viewport; result_panel.py, template_panel.py, valve_view.py (dial),
    worklist.py   the panels; actions.py every command, key and menu; exporting.py,
    review.py     File ▸ Export and accept/reject/correct; main_window.py wires them;
    launch.py     `valvereader view` (imports Qt only when run);
    right_column.py  result beside the zoomed valve, the template's diagram under them;
    loupe.py      the zoomed valve's magnification, pan and own window; dial_labels.py the
                  dial's labels placed clear of each other; prior.py the comparison with a
                  prior film.
"""
