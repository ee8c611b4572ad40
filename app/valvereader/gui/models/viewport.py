"""The viewport's numbers and words, apart from its painting: the zoom that fits the film, the
zoom's limits, a measured distance with the calibration it rests on, and the PACS-style corner
text (who, what, window/level, zoom and pixel spacing)."""

from __future__ import annotations

import math

from ...radiograph import PixelSpacing, RadiographMeta
from .state import ViewState

MIN_ZOOM, MAX_ZOOM = 0.02, 32.0  # screen pixels per film pixel
FIT_MARGIN = 16  # viewport pixels left around a fitted film


def fit_zoom(image_size: tuple[int, int], rotation: int, viewport: tuple[int, int]) -> float:
    """The zoom that fits an image of ``image_size`` (width, height), turned by ``rotation``
    degrees, into a ``viewport`` (width, height) with a margin."""
    w, h = image_size
    if rotation in (90, 270):
        w, h = h, w
    return max(1e-3, min((viewport[0] - FIT_MARGIN) / w, (viewport[1] - FIT_MARGIN) / h))


def clamp_zoom(zoom: float) -> float:
    return float(min(max(zoom, MIN_ZOOM), MAX_ZOOM))


def distance_text(dx: float, dy: float, spacing: PixelSpacing | None) -> str:
    """Length of an image vector with the calibration it rests on, never passed off as
    anatomical size."""
    if spacing is None:
        return f"{math.hypot(dx, dy):.0f} px\nuncalibrated (pixels)"
    mm = math.hypot(dx * spacing.column_mm, dy * spacing.row_mm)
    return f"{mm:.1f} mm\n{spacing.describe()}"


def format_date(value: str | None) -> str:
    """A DICOM date (YYYYMMDD) as YYYY-MM-DD; anything else as it is."""
    if value and len(value) == 8 and value.isdigit():
        return f"{value[:4]}-{value[4:6]}-{value[6:]}"
    return value or ""


def corner_texts(meta: RadiographMeta, shape: tuple[int, int], view: ViewState,
                 zoom: float) -> tuple[str, str, str, str]:
    """The four corners' text: top left, top right, bottom left, bottom right."""
    top_left = "\n".join(filter(None, [
        meta.patient_name or "", f"ID {meta.patient_id}" if meta.patient_id else "",
        f"Acc {meta.accession_number}" if meta.accession_number else ""]))
    top_right = "\n".join(filter(None, [
        " ".join(filter(None, [meta.modality, meta.body_part])),
        meta.view_position or "", format_date(meta.study_date)]))
    v = view
    bottom_left = (f"W {v.window_width * 100:.0f} % L {v.window_center * 100:.0f} %"
                   f"{'  inverted' if v.invert else ''}\n"
                   f"Zoom {zoom * 100:.0f} %  Rot {v.rotation}°"
                   f"{'  flip H' if v.flip_horizontal else ''}{'  flip V' if v.flip_vertical else ''}")
    spacing = meta.pixel_spacing
    bottom_right = ("uncalibrated (pixels)" if spacing is None else
                    f"{spacing.column_mm:.3f} mm/px {spacing.describe()}")
    bottom_right = f"{shape[1]}×{shape[0]}\n{bottom_right}"
    return top_left, top_right, bottom_left, bottom_right
