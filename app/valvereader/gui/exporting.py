"""File ▸ Export: asks where (unless told), renders what is on screen, writes through
``gui.export``. De-identification is the ``deidentify_exports`` setting (a checkable menu
item): corner text off in the picture, no identifiers in the text."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtWidgets import QFileDialog

from . import export, render
from .services import describe_error
from .valve_view import qimage_to_rgb

if TYPE_CHECKING:
    from .main_window import MainWindow


class ExportController:
    def __init__(self, window: MainWindow):
        self.window = window

    @property
    def deidentify(self) -> bool:
        return bool(self.window.settings.deidentify_exports)

    def _ask(self, title: str, suffix: str, name: str) -> Path | None:
        folder = self.window.settings.last_export_folder or self.window.settings.last_folder or str(Path.home())
        chosen, _ = QFileDialog.getSaveFileName(self.window, title, str(Path(folder) / name),
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

    def view_rgb(self) -> np.ndarray:
        """The viewport exactly as shown; with de-identification the corner text is left out."""
        canvas = self.window.canvas
        hide = self.deidentify and self.window.view.show_corner_text
        if hide:
            canvas.view.show_corner_text = False
        try:
            return qimage_to_rgb(canvas.grab().toImage())
        finally:
            if hide:
                canvas.view.show_corner_text = True

    def _model_name(self) -> str:
        status = self.window.model_status
        predictor = status.predictor if status is not None else None
        return str(getattr(predictor, "model_name", "") or "")

    def content(self) -> Any | None:
        study = self.window.worklist.current_study
        if study is None or study.prediction is None:
            return None
        crop = self.window.valve_view.render_rgb() if study.prediction.box is not None else None
        return export.report_content(study, self.view_rgb(), crop, self._model_name(), self.deidentify,
                                     self.window.view.show_heatmap)

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
        if self.content() is None:
            self.window.notifier.warning("A PDF report needs a model result for the study on screen.")
            return None
        path = path or self._ask("Export PDF report", "pdf", self._default_name("pdf"))
        if path is None:
            return None
        return self._run("PDF report", lambda: export.save_pdf(self.content(), path))

    def secondary_capture(self, path: Path | None = None) -> Path | None:
        study = self.window.worklist.current_study
        if study is None or self.content() is None:
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
        studies = [s for s in self.window.worklist.studies if s.prediction is not None]
        if not studies:
            self.window.notifier.warning("No analysed study to export yet.")
            return
        path = path or self._ask("Export worklist as PDF", "pdf", "worklist.pdf")
        if path is None:
            return
        opacity = self.window.view.heatmap_opacity if self.window.view.show_heatmap else 0.0
        model, deidentify, cache = self._model_name(), self.deidentify, self.window.cache

        def work(context: Any) -> Path:
            contents = []
            for number, study in enumerate(studies):
                context.check()
                context.progress(number, len(studies), study.path.name)
                radiograph = cache.get(study.path)
                p = study.prediction
                assert p is not None  # only analysed studies were chosen
                rgb = render.compose_rgb(radiograph.pixels, p.heatmap, opacity, p.box.as_tuple() if p.box else None)
                contents.append(export.report_content(study, rgb, None, model, deidentify, opacity > 0))
            return export.save_worklist_pdf(contents, path)

        self.window.statusBar().showMessage(f"Writing {len(studies)} pages to {path.name}…")
        self.window.start_worker(work, returned=lambda p: self.window.notifier.info(f"Worklist PDF saved: {p}"),
                                 what="Worklist PDF")
