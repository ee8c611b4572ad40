"""Preprocessing as in Vach et al. 2025: crop the black border, squish-resize, scale to 0..1.

One transform object serves training and inference (MONAI style: parameters in __init__,
work in __call__), so the two can never drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from . import noise
from .geometry import Box
from .halves import split


@dataclass(frozen=True)
class PreparedImage:
    """Model input plus what is needed to map model coordinates back to the original image."""

    pixels: np.ndarray  # float32 (size, size) in 0..1
    crop: Box  # region of the source image that was resized, in source pixel coordinates
    source_shape: tuple[int, int]
    smoothed: bool = False  # the region was noisier than the training images and blurred first (.noise)


def border_crop_box(pixels: np.ndarray, threshold: float = 0.02) -> Box:
    """Smallest box holding every row and column that has a pixel above ``threshold``.

    Returns the whole image when nothing exceeds the threshold. Exact (the same box as
    :func:`border_crop_box_reference`) but reads only a strided sample of the image plus the
    border strips outside what the sample found: every row and column of the sample's box is
    known to hold image, so only what lies outside it has to be searched pixel by pixel.
    """
    if pixels.ndim != 2:
        raise ValueError(f"expected a 2-D grey image, got shape {pixels.shape}")
    h, w = pixels.shape
    step = _SAMPLE_STEP
    if h < 4 * step or w < 4 * step:
        return border_crop_box_reference(pixels, threshold)
    sample = pixels[::step, ::step] > threshold
    rows = np.flatnonzero(sample.any(axis=1))
    if rows.size == 0:  # maybe a few bright pixels between the samples: look at all of them
        return border_crop_box_reference(pixels, threshold)
    cols = np.flatnonzero(sample.any(axis=0))
    # Rows/columns of the full image known to hold a pixel above the threshold.
    top, bottom = int(rows[0]) * step, int(rows[-1]) * step
    left, right = int(cols[0]) * step, int(cols[-1]) * step
    above = np.flatnonzero((pixels[:top] > threshold).any(axis=1))
    y0 = int(above[0]) if above.size else top
    below = np.flatnonzero((pixels[bottom + 1 :] > threshold).any(axis=1))
    y1 = bottom + 1 + (int(below[-1]) + 1 if below.size else 0)
    # Columns: only the rows that hold image can hold an image column.
    band = pixels[y0:y1]
    before = np.flatnonzero((band[:, :left] > threshold).any(axis=0))
    x0 = int(before[0]) if before.size else left
    after = np.flatnonzero((band[:, right + 1 :] > threshold).any(axis=0))
    x1 = right + 1 + (int(after[-1]) + 1 if after.size else 0)
    return Box(x0, y0, x1, y1)


_SAMPLE_STEP = 8  # border_crop_box's sampling stride, in pixels


def border_crop_box_reference(pixels: np.ndarray, threshold: float = 0.02) -> Box:
    """The straightforward border crop over every pixel (the definition; tests compare)."""
    mask = pixels > threshold
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0 or cols.size == 0:
        return Box(0, 0, pixels.shape[1], pixels.shape[0])
    return Box(int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)


def _as_pil(pixels: np.ndarray) -> Image.Image:
    """A mode-F PIL image of a 2-D array, copied once.

    A crop (a view into a larger float32 image) is read by PIL straight from the parent's
    memory with the parent's row stride, instead of numpy first making a contiguous copy that
    PIL then copies again.
    """
    height, width = pixels.shape
    if pixels.dtype == np.float32 and pixels.dtype.isnative and height > 0 and width > 0:
        if pixels.flags.c_contiguous:
            return Image.frombuffer("F", (width, height), pixels, "raw", "F", 0, 1)
        span = _row_span(pixels)
        if span is not None:
            # Rows ``strides[0]`` bytes apart in one run of memory, read by PIL's raw decoder.
            run = np.lib.stride_tricks.as_strided(pixels, shape=(span // 4,), strides=(4,))
            return Image.frombuffer("F", (width, height), run, "raw", "F", pixels.strides[0], 1)
    return Image.fromarray(np.ascontiguousarray(pixels, dtype=np.float32), mode="F")


def _row_span(view: np.ndarray) -> int | None:
    """Bytes from a 2-D float32 view's first pixel to its last, if its rows are contiguous and
    evenly spaced within one owning array (a crop of an image); else None."""
    row_stride, column_stride = view.strides
    height, width = view.shape
    if column_stride != 4 or row_stride < 4 * width or row_stride % 4:
        return None
    owner = view
    while isinstance(owner.base, np.ndarray):
        owner = owner.base
    if owner is view:
        return None
    start = view.__array_interface__["data"][0]
    span = (height - 1) * row_stride + 4 * width
    low, high = _byte_bounds(owner)
    return span if low <= start and start + span <= high else None


def _byte_bounds(array: np.ndarray) -> tuple[int, int]:
    try:
        from numpy.lib.array_utils import byte_bounds  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.26
        byte_bounds = np.byte_bounds  # type: ignore[attr-defined]
    return byte_bounds(array)


def _reduce(view: np.ndarray, fx: int, fy: int) -> np.ndarray:
    """PIL's ``Image.reduce((fx, fy))``: the mean of each fx × fy block (the blocks of the last
    column and row hold what is left), computed from the view in place in float32 (PIL needs
    a copy of the whole region first). Equal to PIL's within float rounding (≤ 2e-7 on 0..1).
    A large view is reduced in two bands of whole block rows at once (:mod:`.halves`): the
    same numbers, bit for bit."""
    height, width = view.shape
    out = np.empty((-(-height // fy), -(-width // fx)), dtype=np.float32)
    # By output rows (whole blocks; the second band also takes a partial block row at the bottom).
    split(out.shape[0], view.size, lambda a, b: _reduce_into(out[a:b], view[a * fy : b * fy], fx, fy))
    return out


def _reduce_into(out: np.ndarray, view: np.ndarray, fx: int, fy: int) -> None:
    height, width = view.shape
    rows, cols = height // fy, width // fx
    if rows:
        # (rows, width): sums of fy rows. A float32 view: the first sum written straight from
        # two rows (one pass fewer than copying the first row; the same numbers), a single row
        # read in place.
        if view.dtype != np.float32:
            acc = np.array(view[0 : rows * fy : fy], dtype=np.float32)
            for k in range(1, fy):
                acc += view[k : rows * fy : fy]
        elif fy == 1:
            acc = view[:rows]
        else:
            acc = np.add(view[0 : rows * fy : fy], view[1 : rows * fy : fy])
            for k in range(2, fy):
                acc += view[k : rows * fy : fy]
        if cols:
            body = out[:rows, :cols]
            scale = np.float32(1.0 / (fx * fy))
            if fx == 1:
                np.multiply(acc[:, :cols], scale, out=body)
            else:
                np.add(acc[:, 0 : cols * fx : fx], acc[:, 1 : cols * fx : fx], out=body)
                for j in range(2, fx):
                    body += acc[:, j : cols * fx : fx]
                body *= scale
        if width > cols * fx:
            out[:rows, cols] = acc[:, cols * fx :].sum(axis=1, dtype=np.float64) / ((width - cols * fx) * fy)
    if height > rows * fy:
        tail = np.asarray(view[rows * fy :], dtype=np.float32).sum(axis=0, dtype=np.float64)
        left = height - rows * fy
        if cols:
            out[rows, :cols] = tail[: cols * fx].reshape(cols, fx).sum(axis=1) / (fx * left)
        if width > cols * fx:
            out[rows, cols] = tail[cols * fx :].sum() / ((width - cols * fx) * left)


# PIL's resize reduces by whole factors (block means) while the rest of the way stays at least
# this many times; the identifier's inputs and every model's training used 2.0.
REDUCING_GAP = 2.0


def _reduction(shape: tuple[int, int], size: tuple[int, int], gap: float = REDUCING_GAP) -> tuple[int, int]:
    """PIL's reduce factors for resize(..., reducing_gap=gap): (factor_x, factor_y)."""
    (height, width), (out_height, out_width) = shape, size
    return int(width / out_width / gap) or 1, int(height / out_height / gap) or 1


def _squish(pixels: np.ndarray, size: int | tuple[int, int], reduced: dict | None = None,
            reducing_gap: float = REDUCING_GAP) -> np.ndarray:
    """What ``PIL.Image.resize(size, BILINEAR, reducing_gap=reducing_gap)`` gives on ``pixels`` as a
    mode-F image, as a writable float32 array. PIL first reduces by whole factors (block
    means), then resamples bilinearly; the reduction is done here from ``pixels`` in place, so
    the region is never copied whole. ``reduced``: a cache of reductions of these pixels by
    factor, for several output sizes from one region."""
    height, width = (size, size) if isinstance(size, int) else size
    fx, fy = _reduction(pixels.shape, (height, width), reducing_gap)
    if fx == 1 and fy == 1:
        resized = _as_pil(pixels).resize((width, height), Image.Resampling.BILINEAR)
    else:
        image = reduced.get((fx, fy)) if reduced is not None else None
        if image is None:
            image = Image.frombuffer("F", (-(-pixels.shape[1] // fx), -(-pixels.shape[0] // fy)),
                                     _reduce(pixels, fx, fy), "raw", "F", 0, 1)
            if reduced is not None:
                reduced[(fx, fy)] = image
        # The box PIL resamples after its own reduction: the region in reduced pixels.
        box = (0.0, 0.0, pixels.shape[1] / fx, pixels.shape[0] / fy)
        resized = image.resize((width, height), Image.Resampling.BILINEAR, box=box)
    return np.array(resized, dtype=np.float32)  # writable (asarray of PIL is not)


def squish_resize(pixels: np.ndarray, size: int | tuple[int, int], reducing_gap: float = REDUCING_GAP) -> np.ndarray:
    """Resize to ``size`` (square int or (height, width)) ignoring aspect ratio, bilinear,
    with antialiasing when shrinking (PIL reduces first, as fastai's squish does)."""
    return _squish(pixels, size, reducing_gap=reducing_gap)


class Preprocess:
    """Crop border → squish-resize to ``size`` → clip to 0..1.

    Args:
        size: model input side in pixels.
        threshold: grey level (0..1) a row or column must exceed to count as image, not border.
        crop_border: turn off for inputs that are already crops.
        reducing_gap: PIL's ``reducing_gap`` for the resize: block means by whole factors while
            the bilinear resample left still shrinks at least this many times. 1.0 leaves less
            to the resample, which is the slower step (a 2000 × 2500 film to 320 px: about
            2.9 against 5.1 ms on one core here), for slightly different numbers.
        noise_limit: inference only (training leaves it None): a region whose pixel noise at
            the input's scale (:mod:`.noise`) is above this is blurred before it is resized.
    """

    def __init__(self, size: int = 512, threshold: float = 0.02, crop_border: bool = True,
                 reducing_gap: float = REDUCING_GAP, noise_limit: float | None = None):
        self.size = int(size)
        self.threshold = float(threshold)
        self.crop_border = crop_border
        if noise_limit is not None and not (isinstance(noise_limit, (int, float)) and not isinstance(noise_limit, bool)
                                            and np.isfinite(noise_limit) and noise_limit > 0):
            raise ValueError(f"noise_limit must be a positive number or None, not {noise_limit!r}")
        self.noise_limit = None if noise_limit is None else float(noise_limit)
        try:
            self.reducing_gap = float(reducing_gap)
        except (TypeError, ValueError):
            self.reducing_gap = float("nan")
        if not (np.isfinite(self.reducing_gap) and self.reducing_gap >= 1.0):
            raise ValueError(f"reducing_gap must be a number >= 1, not {reducing_gap!r}")

    def __call__(self, pixels: np.ndarray, region: Box | None = None) -> PreparedImage:
        """Prepare ``pixels`` (2-D, 0..1), optionally only ``region`` of it."""
        return self.resize(pixels, self.crop_box(pixels, region))

    def crop_box(self, pixels: np.ndarray, region: Box | None = None) -> Box:
        """The part of ``pixels`` (of ``region``, if given) that is resized, in source pixel
        coordinates: ``region`` (or the whole image) less its black border."""
        if pixels.ndim != 2:
            raise ValueError(f"expected a 2-D grey image, got shape {pixels.shape}")
        base = region.clip(pixels.shape) if region is not None else Box.full(pixels.shape)
        if not self.crop_border:
            return base
        view = pixels[base.y0 : base.y1, base.x0 : base.x1]
        return border_crop_box(view, self.threshold).shifted(base.x0, base.y0)

    def resize(self, pixels: np.ndarray, crop: Box, reduced: dict | None = None) -> PreparedImage:
        """Squish-resize ``crop`` of ``pixels`` to the model input. ``reduced``: a cache shared
        by the inputs of several sizes made from the same crop."""
        if pixels.ndim != 2:
            raise ValueError(f"expected a 2-D grey image, got shape {pixels.shape}")
        region = pixels[crop.y0 : crop.y1, crop.x0 : crop.x1]
        smoothed = False
        if self.noise_limit is not None:
            scale = noise.network_scale(crop, self.size)
            if noise.noise_sigma(region) / scale > self.noise_limit:
                region, reduced, smoothed = noise.smooth(region, noise.SMOOTHING_PX * scale), None, True
        out = _squish(region, self.size, reduced, self.reducing_gap)
        np.clip(out, 0.0, 1.0, out=out)
        return PreparedImage(out, crop, (pixels.shape[0], pixels.shape[1]), smoothed)

    def config(self) -> dict[str, object]:
        config: dict[str, object] = {"size": self.size, "threshold": self.threshold, "crop_border": self.crop_border}
        if self.reducing_gap != REDUCING_GAP:  # (the default stays out: cache digests of older runs hold)
            config["reducing_gap"] = self.reducing_gap
        if self.noise_limit is not None:
            config["noise_limit"] = self.noise_limit
        return config
