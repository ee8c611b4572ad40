"""Pixel arithmetic for display, without Qt: window/level lookup, attention colours,
thumbnails. Everything returns contiguous uint8 arrays ready to wrap in a QImage."""

from __future__ import annotations

import numpy as np

LUT_SIZE = 4096


def quantize(pixels: np.ndarray) -> np.ndarray:
    """Grey 0..1 float → uint16 indices into a window/level lookup table (done once per image,
    so dragging the window only costs one table lookup per pixel)."""
    return np.clip(np.rint(pixels * (LUT_SIZE - 1)), 0, LUT_SIZE - 1).astype(np.uint16)


def window_lut(center: float, width: float, invert: bool = False) -> np.ndarray:
    """uint8 lookup table for a linear window over grey 0..1."""
    grey = np.linspace(0.0, 1.0, LUT_SIZE, dtype=np.float32)
    out = np.clip((grey - (center - width / 2.0)) / max(width, 1e-6), 0.0, 1.0)
    if invert:
        out = 1.0 - out
    return np.rint(out * 255.0).astype(np.uint8)


def apply_window(indices: np.ndarray, center: float, width: float, invert: bool = False) -> np.ndarray:
    return np.ascontiguousarray(window_lut(center, width, invert)[indices])


# Perceptually ordered "inferno"-like ramp, sampled at 9 stops (dark purple → yellow).
_STOPS = np.array(
    [
        [0, 0, 4], [40, 11, 84], [101, 21, 110], [159, 42, 99], [212, 72, 66],
        [245, 125, 21], [250, 193, 39], [245, 240, 120], [252, 255, 164],
    ],
    dtype=np.float32,
)


def attention_colours(n: int = 256) -> np.ndarray:
    """(n, 3) uint8 colour ramp for "model attention" from low to high."""
    positions = np.linspace(0, len(_STOPS) - 1, n)
    low = np.floor(positions).astype(int)
    high = np.minimum(low + 1, len(_STOPS) - 1)
    frac = (positions - low)[:, None]
    return np.rint(_STOPS[low] * (1 - frac) + _STOPS[high] * frac).astype(np.uint8)


def attention_rgba(heatmap: np.ndarray, opacity: float, max_side: int = 768) -> np.ndarray:
    """(h, w, 4) uint8 premultiplied-free RGBA overlay; low attention fades to transparent so the
    anatomy stays readable. The map is subsampled to ``max_side`` (it is smooth anyway)."""
    step = max(1, int(np.ceil(max(heatmap.shape) / max_side)))
    values = np.clip(np.nan_to_num(heatmap[::step, ::step].astype(np.float32)), 0.0, 1.0)
    index = np.rint(values * 255).astype(np.uint8)
    rgba = np.empty((*values.shape, 4), dtype=np.uint8)
    rgba[..., :3] = attention_colours()[index]
    alpha = np.clip((values - 0.15) / 0.85, 0.0, 1.0) ** 0.8 * float(opacity) * 255.0
    rgba[..., 3] = np.rint(alpha).astype(np.uint8)
    return np.ascontiguousarray(rgba)


def thumbnail(pixels: np.ndarray, side: int = 64) -> np.ndarray:
    """uint8 grey thumbnail whose longer side is ``side`` (nearest-neighbour striding)."""
    step = max(1, int(np.ceil(max(pixels.shape) / side)))
    small = pixels[::step, ::step]
    return np.ascontiguousarray(np.clip(np.rint(small * 255.0), 0, 255).astype(np.uint8))


def auto_window(pixels: np.ndarray) -> tuple[float, float]:
    """Centre and width spanning the 1st–99th percentile of the grey values (key 0 keeps the
    file's own window; this is for images whose stored window is missing)."""
    sample = pixels[::4, ::4]
    low, high = np.percentile(sample, [1, 99]) if sample.size else (0.0, 1.0)
    width = max(float(high - low), 0.05)
    return float((low + high) / 2.0), width


def compose_rgb(pixels: np.ndarray, heatmap: np.ndarray | None, opacity: float,
                box: tuple[int, int, int, int] | None, max_side: int = 1600) -> np.ndarray:
    """The default view of a study (file window, attention overlay, valve box) as (h, w, 3)
    uint8, for pages of studies that are not on screen (worklist PDF)."""
    step = max(1, int(np.ceil(max(pixels.shape) / max_side)))
    grey = np.clip(pixels[::step, ::step], 0.0, 1.0)
    rgb = np.repeat(grey[..., None], 3, axis=2).astype(np.float32)
    if heatmap is not None and opacity > 0:
        rows = (np.arange(grey.shape[0]) * heatmap.shape[0] // grey.shape[0])
        cols = (np.arange(grey.shape[1]) * heatmap.shape[1] // grey.shape[1])
        overlay = attention_rgba(heatmap, opacity, max_side=max(heatmap.shape))[rows][:, cols]
        alpha = overlay[..., 3:4].astype(np.float32) / 255.0
        rgb = rgb * (1 - alpha) + overlay[..., :3].astype(np.float32) / 255.0 * alpha
    out = np.rint(rgb * 255.0).astype(np.uint8)
    if box is not None:
        x0, y0, x1, y1 = (max(0, v // step) for v in box)
        x1, y1 = min(x1, out.shape[1] - 1), min(y1, out.shape[0] - 1)
        colour = np.array([80, 220, 255], dtype=np.uint8)
        for t in range(max(1, 2 // step + 1)):
            out[min(y0 + t, y1), x0:x1 + 1] = colour
            out[max(y1 - t, y0), x0:x1 + 1] = colour
            out[y0:y1 + 1, min(x0 + t, x1)] = colour
            out[y0:y1 + 1, max(x1 - t, x0)] = colour
    return np.ascontiguousarray(out)


def zoom_box(box: tuple[int, int, int, int] | None, heatmap: np.ndarray | None,
             shape: tuple[int, int], max_fraction: float = 0.25) -> tuple[int, int, int, int] | None:
    """Region for the zoomed valve view: the model's box when it is valve-sized; otherwise a
    square around the attention peak (an eighth of the shorter side); None without either.

    A valve-sized box that the attention fills only in part (the located box of a pasted crop,
    or a loose box around a small valve) gives way to the part it attends to: the square
    around the heatmap's cells at ≥ half its peak inside the box, ×1.25, when that spans at
    most ``ATTENDED_PART`` of the box's longer side. The reading dial, drawn on the zoomed
    view's centre, then starts on the valve instead of on the box's middle."""
    rows, cols = shape
    if box is not None:
        x0, y0, x1, y1 = box
        if (x1 - x0) * (y1 - y0) <= max_fraction * rows * cols:
            return _attended_part(box, heatmap, shape) or box
    if heatmap is None or heatmap.size == 0:
        return None
    y, x = np.unravel_index(int(np.argmax(heatmap)), heatmap.shape)
    cy, cx = (y + 0.5) * rows / heatmap.shape[0], (x + 0.5) * cols / heatmap.shape[1]
    half = max(16, min(rows, cols) // 16)
    return (int(cx - half), int(cy - half), int(cx + half), int(cy + half))


# The attended part of a box replaces it in the zoomed view when its side is at most this share
# of the box's longer side.
ATTENDED_PART = 0.6


def _attended_part(box: tuple[int, int, int, int], heatmap: np.ndarray | None,
                   shape: tuple[int, int]) -> tuple[int, int, int, int] | None:
    """The square around what the attention marks inside ``box`` (explain.attention_box: cells
    at ≥ half the peak there), ×1.25, if it is clearly smaller than the box; else None.
    ``heatmap`` covers the image at a coarser step (Prediction.heatmap)."""
    if heatmap is None or heatmap.size == 0:
        return None
    from ...explain import attention_box
    from ...geometry import Box

    rows, cols = shape
    sy, sx = heatmap.shape[0] / rows, heatmap.shape[1] / cols
    x0, y0, x1, y1 = box
    r0, r1 = max(0, int(y0 * sy)), min(heatmap.shape[0], int(np.ceil(y1 * sy)))
    c0, c1 = max(0, int(x0 * sx)), min(heatmap.shape[1], int(np.ceil(x1 * sx)))
    inside = heatmap[r0:r1, c0:c1]
    if inside.size == 0 or not float(inside.max()) > 0.0:
        return None
    part = attention_box(inside, Box(round(c0 / sx), round(r0 / sy), round(c1 / sx), round(r1 / sy)))
    side = max(part.width, part.height) * 1.25
    if side > ATTENDED_PART * max(x1 - x0, y1 - y0):
        return None
    (cx, cy), half = part.center, max(16.0, side / 2)
    return (round(cx - half), round(cy - half), round(cx + half), round(cy + half))
