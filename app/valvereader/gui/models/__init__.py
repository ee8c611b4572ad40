"""The viewer's models: everything the desktop viewer knows and computes without Qt, testable
without a display (nothing here imports PySide6; tests/test_package_layout.py checks).

    state.py      ViewState, DialState, Worklist/Study: what is shown; emit ``changed``
    render.py     window/level lookup, attention colours, thumbnails (numpy only)
    viewport.py   the zoom that fits, measured distances, the corner text
    boxes.py      the reader's region: valve-sized square, drawn box, box shown, loupe square
    loupe.py      the zoomed valve's magnification, pan, own window and pixels
    dial.py       the reading dial: settings, the setting read, ticks, label placement, caption
    worklist.py   the worklist's cell texts, sort keys, filters, shared name starts, summary
    result.py     the result panel's words: verdict colours, valve named, numbers
    prior.py      a prior film of the same patient: matching studies, loading one to compare
    services.py   paths → batch, loading radiographs (cache shared by workers)
    analysis.py   the batch loop a worker runs: load, predict, one result per study
    export.py     studies → report contents and files (through valvereader.report)
    valves.py     valve names, templates, diagrams and template text for display
    text.py       long names given places to break in wrapping labels
"""
