"""Preprocessing as in Vach et al. 2025: crop the black border, squish-resize, scale to 0..1.

One transform object serves training and inference (MONAI style: parameters in __init__,
work in __call__), so the two can never drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from .geometry import Box


@dataclass(frozen=True)
class PreparedImage:
    """Model input plus what is needed to map model coordinates back to the original image."""

    pixels: np.ndarray  # float32 (size, size) in 0..1
    crop: Box  # region of the source image that was resized, in source pixel coordinates
    source_shape: tuple[int, int]


def border_crop_box(pixels: np.ndarray, threshold: float = 0.02) -> Box:
    """Smallest box holding every row and column that has a pixel above ``threshold``.

    Returns the whole image when nothing exceeds the threshold.
    """
    mask = pixels > threshold
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0 or cols.size == 0:
        return Box(0, 0, pixels.shape[1], pixels.shape[0])
    return Box(int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)


def squish_resize(pixels: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """Resize to ``size`` (square int or (height, width)) ignoring aspect ratio, bilinear,
    with antialiasing when shrinking (PIL reduces first, as fastai's squish does)."""
    height, width = (size, size) if isinstance(size, int) else size
    image = Image.fromarray(np.ascontiguousarray(pixels, dtype=np.float32), mode="F")
    resized = image.resize((width, height), Image.Resampling.BILINEAR, reducing_gap=2.0)
    return np.asarray(resized, dtype=np.float32)


class Preprocess:
    """Crop border → squish-resize to ``size`` → clip to 0..1.

    Args:
        size: model input side in pixels.
        threshold: grey level (0..1) a row or column must exceed to count as image, not border.
        crop_border: turn off for inputs that are already crops.
    """

    def __init__(self, size: int = 512, threshold: float = 0.02, crop_border: bool = True):
        self.size = int(size)
        self.threshold = float(threshold)
        self.crop_border = crop_border

    def __call__(self, pixels: np.ndarray, region: Box | None = None) -> PreparedImage:
        """Prepare ``pixels`` (2-D, 0..1), optionally only ``region`` of it."""
        if pixels.ndim != 2:
            raise ValueError(f"expected a 2-D grey image, got shape {pixels.shape}")
        base = region.clip(pixels.shape) if region is not None else Box.full(pixels.shape)
        view = pixels[base.y0 : base.y1, base.x0 : base.x1]
        crop = border_crop_box(view, self.threshold) if self.crop_border else Box.full(view.shape)
        view = view[crop.y0 : crop.y1, crop.x0 : crop.x1]
        out = np.clip(squish_resize(view, self.size), 0.0, 1.0)
        return PreparedImage(out, crop.shifted(base.x0, base.y0), (pixels.shape[0], pixels.shape[1]))

    def config(self) -> dict[str, object]:
        return {"size": self.size, "threshold": self.threshold, "crop_border": self.crop_border}
