"""Exports of what the reader sees: PNG, one-page PDF report, worklist CSV and PDF, and a
DICOM Secondary Capture. Every file is written atomically and repeats the decision-support
line with the model's name and version; with ``deidentify`` none names the patient.

    from valvereader.report import ReportContent, export_pdf
    export_pdf(ReportContent(view_rgb=..., prediction=..., meta=..., model_name=...), "report.pdf")

Public API:
    ReportContent                                   what one page/image shows (content.py)
    export_png(content, path, footer=True) -> Path
    export_pdf(content, path) -> Path
    export_worklist_pdf(contents, path) -> Path     one page per study
    WorklistRow, worklist_row(...), export_worklist_csv(rows, path, deidentify=True) -> Path
    export_secondary_capture(content, source_path, path) -> Path

reportlab, svglib, highdicom and Pillow are imported when an export runs, not on import.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from .content import ReportContent
from .worklist import WorklistRow, export_worklist_csv, worklist_row

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "ReportContent",
    "WorklistRow",
    "export_pdf",
    "export_png",
    "export_secondary_capture",
    "export_worklist_csv",
    "export_worklist_pdf",
    "worklist_row",
]


def export_png(content: ReportContent, path: str | Path, footer: bool = True) -> Path:
    """The view as PNG with a footer (verdict, disclaimer, model); see ``report.png``."""
    from .png import export_png as run

    return run(content, path, footer=footer)


def export_pdf(content: ReportContent, path: str | Path) -> Path:
    """One-page A4 PDF report; see ``report.pdf``."""
    from .pdf import export_pdf as run

    return run(content, path)


def export_worklist_pdf(contents: Sequence[ReportContent], path: str | Path) -> Path:
    """Multi-page PDF, one report page per study; see ``report.pdf``."""
    from .pdf import export_worklist_pdf as run

    return run(contents, path)


def export_secondary_capture(content: ReportContent, source_path: str | Path | None, path: str | Path,
                             **kwargs: Any) -> Path:
    """DICOM Secondary Capture of the view; see ``report.dicom_sc``."""
    from .dicom_sc import export_secondary_capture as run

    return run(content, source_path, path, **kwargs)
