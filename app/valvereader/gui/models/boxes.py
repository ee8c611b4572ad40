"""Boxes on the film, in image pixels: the valve-sized square a double-click puts around a
point, the region a drag draws, which box the viewport shows, and the square the zoomed valve
(the loupe) first shows around a box."""

from __future__ import annotations

import math
from collections.abc import Iterable

from ...geometry import Box
from ...prediction import Prediction, Verdict
from ...radiograph import PixelSpacing

# A double-click puts a valve-sized square around the point: shunt valves are 15-45 mm across;
# without a pixel spacing, a share of the image's longer side (a film of 1000-3000 px at
# 0.1-0.2 mm a pixel gives 150-450 px, about 30-45 mm).
VALVE_SQUARE_MM = 40.0
VALVE_SQUARE_SHARE = 0.15
VALVE_SQUARE_MIN_PX = 48
# A drag shorter than this (screen pixels) is a click, not a region.
MIN_DRAG_PX = 6
# The zoomed valve first shows a square this many times the box's size.
ZOOM_SCALE = 1.6
ZOOM_MIN_PX = 32


def valve_square(x: float, y: float, shape: tuple[int, ...], spacing: PixelSpacing | None) -> Box:
    """A valve-sized square (VALVE_SQUARE_MM at the film's pixel spacing, else a share of the
    longer side) centred on image point (x, y), clipped to the image."""
    rows, cols = int(shape[0]), int(shape[1])
    if spacing is not None and spacing.column_mm > 0 and spacing.row_mm > 0:
        half_w, half_h = VALVE_SQUARE_MM / spacing.column_mm / 2, VALVE_SQUARE_MM / spacing.row_mm / 2
    else:
        half_w = half_h = max(VALVE_SQUARE_MIN_PX, VALVE_SQUARE_SHARE * max(rows, cols)) / 2
    x, y = float(x), float(y)
    return Box(round(x - half_w), round(y - half_h), round(x + half_w), round(y + half_h)).clip(shape)


def is_drag(dx: float, dy: float) -> bool:
    """Whether a pointer move of (dx, dy) screen pixels draws a region (else it was a click)."""
    return abs(dx) >= MIN_DRAG_PX and abs(dy) >= MIN_DRAG_PX


def region_box(corners: Iterable[tuple[float, float]], shape: tuple[int, ...]) -> Box | None:
    """The box holding a drawn rectangle's corners (image pixels, whole pixels outwards),
    clipped to the image; None when less than 2 pixels remain either way."""
    points = list(corners)
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    box = Box(math.floor(min(xs)), math.floor(min(ys)), math.ceil(max(xs)), math.ceil(max(ys))).clip(shape)
    return box if box.width >= 2 and box.height >= 2 else None


def shown_box(prediction: Prediction | None, shape: tuple[int, ...]) -> Box | None:
    """The model's box when it marks a valve-sized region; a box over most of the image
    (whole-image model without a located valve) would claim a location it does not know.
    A region the reader chose is always shown, whatever its size (it is the reader's mark, also
    where no valve was found in it); "No valve found" shows no box of the model's."""
    box = prediction.box if prediction is not None else None
    if box is None or prediction is None:
        return None
    if prediction.box_source == "reader":
        return box
    if prediction.verdict is Verdict.NO_VALVE:  # a CT or MR file keeps its box: it marks no valve
        return None
    return box if box.width * box.height <= 0.25 * shape[0] * shape[1] else None


def zoom_region(box: Box, shape: tuple[int, ...]) -> tuple[tuple[float, float], float]:
    """Centre (x, y) and span of the square the zoomed valve first shows around ``box``."""
    region = box.square(scale=ZOOM_SCALE, minimum=ZOOM_MIN_PX).clip(shape)
    return ((region.x0 + region.x1) / 2.0, (region.y0 + region.y1) / 2.0), max(region.x1 - region.x0,
                                                                                region.y1 - region.y0)
