"""File ▸ Export: asks where (unless told), renders what is on screen, writes through
``gui.export``. De-identification is the ``deidentify_exports`` setting (a checkable menu
item): corner text off in the picture, no identifiers in the text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtWidgets import QFileDialog

from .models import export, render
from .models.services import describe_error
from .valve_view import render_widget
from .window_api import Window

# An exported view carries the film at its own resolution (the view's framing, drawn from the
# film's pixels), at least EXPORT_LONG_SIDE pixels on its longer side and at most EXPORT_MAX_SIDE.
EXPORT_LONG_SIDE = 2000
EXPORT_MAX_SIDE = 5000
PRINT_LONG_SIDE = 1200  # a PDF page prints the view about 3.5 inches tall: 300 dpi and more
WORKLIST_PAGE_SIDE = 1000  # a worklist page's view: 280 dpi, a few MB for 20 studies



class ExportController:
    def __init__(self, window: Window):
        self.window = window

    @property
    def deidentify(self) -> bool:
        return bool(self.window.settings.deidentify_exports)

    def _ask(self, title: str, suffix: str, name: str) -> Path | None:
        folder = self.window.settings.last_export_folder or self.window.settings.last_folder or str(Path.home())
        chosen, _ = QFileDialog.getSaveFileName(self.window.window(), title, str(Path(folder) / name),
                                                f"{suffix.upper()} (*.{suffix})")
        if not chosen:
            return None
        path = Path(chosen)
        if path.suffix.lower() != f".{suffix}":
            path = path.with_name(path.name + f".{suffix}")
        self.window.settings.last_export_folder = str(path.parent)
        return path

    def _default_name(self, suffix: str) -> str:
        study = self.window.worklist.current_study
        if study is None or self.deidentify:
            return f"valvereader-report.{suffix}"
        return f"{study.path.stem}-valvereader.{suffix}"

    def view_rgb(self, long_side: int | None = None) -> np.ndarray:
        """The viewport as shown (its framing, overlays and text), drawn at the film's own
        resolution within EXPORT_LONG_SIDE..EXPORT_MAX_SIDE pixels on the longer side, or at
        ``long_side``; with de-identification the corner text is left out."""
        canvas = self.window.canvas
        hide = self.deidentify and self.window.view.show_corner_text
        if hide:
            canvas.view.show_corner_text = False
        try:
            return render_widget(canvas, export_scale(canvas, long_side))
        finally:
            if hide:
                canvas.view.show_corner_text = True

    def _model_name(self) -> str:
        status = self.window.model_status
        predictor = status.predictor if status is not None else None
        return str(getattr(predictor, "model_name", "") or "")

    def content(self, long_side: int | None = None) -> Any | None:
        study = self.window.worklist.current_study
        if study is None or study.prediction is None:
            return None
        crop = self.window.valve_view.render_rgb() if self.window.valve_view.has_valve() else None
        radiograph = self.window.canvas.radiograph
        return export.report_content(study, self.view_rgb(long_side), crop, self._model_name(), self.deidentify,
                                     self.window.view.show_heatmap,
                                     meta=radiograph.meta if radiograph is not None else None)

    def _run(self, what: str, action: Any) -> Path | None:
        try:
            written = action()
        except Exception as exc:  # noqa: BLE001 - the reader is told, the window goes on
            self.window.notifier.error(f"{what} failed: {describe_error(exc)}", exc)
            return None
        how = "de-identified" if self.deidentify else "with patient details"
        self.window.notifier.info(f"{what} saved ({how}): {written}")
        return Path(written)

    def png(self, path: Path | None = None) -> Path | None:
        path = path or self._ask("Export view as PNG", "png", self._default_name("png"))
        if path is None:
            return None
        return self._run("PNG", lambda: export.save_png(self.view_rgb(), path, self.content()))

    def pdf(self, path: Path | None = None) -> Path | None:
        study = self.window.worklist.current_study
        if study is None or study.prediction is None:
            self.window.notifier.warning("A PDF report needs a model result for the study on screen.")
            return None
        path = path or self._ask("Export PDF report", "pdf", self._default_name("pdf"))
        if path is None:
            return None
        return self._run("PDF report", lambda: export.save_pdf(self._with_prior(self.content(PRINT_LONG_SIDE)), path))

    def _with_prior(self, content: Any) -> Any:
        """The report carries the comparison with a prior film while one is chosen (Review ▸
        Compare with a prior film): a second page with both films' valves, readings and dates."""
        prior_window = self.window.prior_window
        if content is not None and prior_window is not None:
            content.prior = prior_window.prior_content(self.deidentify, self._model_name())
        return content

    def secondary_capture(self, path: Path | None = None) -> Path | None:
        study = self.window.worklist.current_study
        if study is None or study.prediction is None:
            self.window.notifier.warning("A Secondary Capture needs a model result for the study on screen.")
            return None
        path = path or self._ask("Export DICOM Secondary Capture", "dcm", self._default_name("dcm"))
        if path is None:
            return None
        return self._run("DICOM Secondary Capture",
                         lambda: export.save_secondary_capture(self.content(), study.path, path))

    def worklist_csv(self, path: Path | None = None) -> Path | None:
        studies = self.window.worklist.studies
        if not studies:
            return None
        path = path or self._ask("Export worklist as CSV", "csv", "worklist.csv")
        if path is None:
            return None
        store = self.window.review.store
        return self._run("Worklist CSV", lambda: export.save_worklist_csv(studies, path, self.deidentify, store))

    def worklist_pdf(self, path: Path | None = None) -> None:
        """Each analysed study as one page, rendered off screen in a worker (it loads every file)."""
        everything = self.window.worklist.studies
        # Numbered as in the worklist CSV (every study, in the worklist's order).
        studies = [(number, s) for number, s in enumerate(everything, start=1) if s.prediction is not None]
        if not studies:
            self.window.notifier.warning("No analysed study to export yet.")
            return
        path = path or self._ask("Export worklist as PDF", "pdf", "worklist.pdf")
        if path is None:
            return
        opacity = self.window.view.heatmap_opacity if self.window.view.show_heatmap else 0.0
        model, deidentify, cache, total = self._model_name(), self.deidentify, self.window.cache, len(everything)

        def work(context: Any) -> Path:
            contents = []
            for done, (number, study) in enumerate(studies):
                context.check()
                context.progress(done, len(studies), study.path.name)
                radiograph = cache.get(study.path)
                p = study.prediction
                assert p is not None  # only analysed studies were chosen
                heatmap, box = export.view_overlays(p)  # "No valve found": no attention map, no box
                rgb = render.compose_rgb(radiograph.pixels, heatmap, opacity, box, max_side=WORKLIST_PAGE_SIDE)
                crop = export.valve_crop_rgb(radiograph.pixels, p)
                contents.append(export.report_content(study, rgb, crop, model, deidentify, opacity > 0,
                                                      study_number=number, study_total=total,
                                                      meta=radiograph.meta))
            return export.save_worklist_pdf(contents, path)

        self.window.statusBar().showMessage(f"Writing {len(studies)} pages to {path.name}…")
        self.window.start_worker(work, returned=lambda p: self.window.notifier.info(f"Worklist PDF saved: {p}"),
                                 what="Worklist PDF")


def export_scale(canvas: Any, long_side: int | None = None) -> float:
    """How many times its on-screen size the viewport is drawn for an export: ``long_side``
    pixels on its longer side when given; else enough for the film's own pixels (1 / zoom),
    at least EXPORT_LONG_SIDE and at most EXPORT_MAX_SIDE pixels on the longer side."""
    side = max(1, canvas.width(), canvas.height())
    if long_side is not None:
        return max(1.0, long_side / side)
    wanted = EXPORT_LONG_SIDE / side
    if canvas.radiograph is not None:
        wanted = max(wanted, 1.0 / max(canvas.current_zoom(), 1e-3))
    return max(1.0, min(wanted, EXPORT_MAX_SIDE / side))
