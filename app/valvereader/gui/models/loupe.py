"""The loupe of the zoomed valve: magnify it far past the film's own pixels (up to 32 screen
pixels per film pixel, bicubic, so a Hakim or proGAV rotor's marks can be read), pan it, and
give it a window/level of its own, apart from the main image's: the state and the pixels
(``LoupeState``, ``loupe_pixels``, ``auto_window``); the row of controls under the view is
``gui.loupe.LoupeBar``.

Mouse on the zoomed valve: Ctrl+wheel magnifies at the cursor, middle-drag or Alt+drag pans,
Shift+drag sets the loupe's own window (horizontal) and level (vertical), double-click fits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_MAGNIFICATION = 32.0  # screen pixels per film pixel at most
MIN_SPAN = 4.0  # film pixels across the view at least
CONTEXT = 3.0  # the view may be zoomed out to this many times the valve region


@dataclass
class LoupeState:
    """What the zoomed view shows: ``center`` (x, y) and ``span`` (film pixels across the
    square view) in film coordinates; ``window`` (centre, width) in display grey units, or
    None to follow the main image's window. ``region_span``: the span that fits the valve region
    (magnification 1 of the zoomed view, as the model's crop is first shown)."""

    center: tuple[float, float] = (0.0, 0.0)
    span: float = 64.0
    region_span: float = 64.0
    window: tuple[float, float] | None = None

    def fit(self, center: tuple[float, float], span: float) -> None:
        self.center = (float(center[0]), float(center[1]))
        self.span = self.region_span = max(float(span), MIN_SPAN)

    def magnification(self, side_px: float) -> float:
        """Screen pixels per film pixel in a square view ``side_px`` wide."""
        return side_px / max(self.span, 1e-6)

    def zoom(self, factor: float, side_px: float, anchor: tuple[float, float] = (0.5, 0.5)) -> None:
        """Magnify by ``factor`` keeping the film point under ``anchor`` (view fractions) still."""
        smallest = max(MIN_SPAN, side_px / MAX_MAGNIFICATION)
        span = float(min(max(self.span / factor, smallest), self.region_span * CONTEXT))
        ax, ay = anchor[0] - 0.5, anchor[1] - 0.5
        fixed = (self.center[0] + ax * self.span, self.center[1] + ay * self.span)
        self.center = (fixed[0] - ax * span, fixed[1] - ay * span)
        self.span = span

    def set_magnification(self, magnification: float, side_px: float) -> None:
        self.zoom(self.span / max(side_px / max(magnification, 1e-6), 1e-6), side_px)

    def pan(self, dx_fraction: float, dy_fraction: float) -> None:
        """Move the film by a drag of (dx, dy) view fractions."""
        self.center = (self.center[0] - dx_fraction * self.span, self.center[1] - dy_fraction * self.span)


def loupe_pixels(pixels: np.ndarray, state: LoupeState, side: int, window: tuple[float, float],
                 invert: bool = False) -> np.ndarray:
    """The square view, ``side`` × ``side`` uint8: the film around ``state.center``, ``state.span``
    film pixels across (black beyond the film's edge), resampled bicubically from the film's
    own grey values and then windowed, so the grey steps stay smooth at any magnification."""
    from PIL import Image

    side = max(1, int(side))
    rows, cols = pixels.shape[:2]
    half = state.span / 2.0
    x0, y0 = state.center[0] - half, state.center[1] - half
    # the film pixels the view touches, plus one for the bicubic kernel's reach
    c0, r0 = max(0, int(np.floor(x0)) - 2), max(0, int(np.floor(y0)) - 2)
    c1, r1 = min(cols, int(np.ceil(x0 + state.span)) + 2), min(rows, int(np.ceil(y0 + state.span)) + 2)
    out = np.zeros((side, side), dtype=np.float32)
    if c1 > c0 and r1 > r0:
        patch = np.ascontiguousarray(pixels[r0:r1, c0:c1], dtype=np.float32)
        scale = side / state.span
        # where the patch lands in the view, in view pixels
        left, top = (c0 - x0) * scale, (r0 - y0) * scale
        width, height = (c1 - c0) * scale, (r1 - r0) * scale
        vx0, vy0 = max(0, int(np.floor(left))), max(0, int(np.floor(top)))
        vx1, vy1 = min(side, int(np.ceil(left + width))), min(side, int(np.ceil(top + height)))
        if vx1 > vx0 and vy1 > vy0:
            # (clamped to the patch: a view edge a fraction of a pixel outside it must not reach
            # PIL as a negative offset, which it refuses)
            pw, ph = float(c1 - c0), float(r1 - r0)
            box = (min(pw, max(0.0, (vx0 - left) / scale)), min(ph, max(0.0, (vy0 - top) / scale)),
                   min(pw, max(0.0, (vx1 - left) / scale)), min(ph, max(0.0, (vy1 - top) / scale)))
            resized = Image.fromarray(patch, mode="F").resize((vx1 - vx0, vy1 - vy0), Image.Resampling.BICUBIC,
                                                              box=box)
            out[vy0:vy1, vx0:vx1] = np.asarray(resized)
    centre, width = window
    grey = np.clip((out - (centre - width / 2.0)) / max(width, 1e-6), 0.0, 1.0)
    if invert:
        grey = 1.0 - grey
    return np.ascontiguousarray(np.rint(grey * 255.0).astype(np.uint8))


def auto_window(pixels: np.ndarray, state: LoupeState) -> tuple[float, float]:
    """A window spanning the 1st to 99th percentile of the grey values the view shows: the
    metal of a rotor against its housing, whatever the main image's window."""
    rows, cols = pixels.shape[:2]
    half = state.span / 2.0
    c0, r0 = max(0, int(state.center[0] - half)), max(0, int(state.center[1] - half))
    c1, r1 = min(cols, int(np.ceil(state.center[0] + half))), min(rows, int(np.ceil(state.center[1] + half)))
    patch = pixels[r0:r1, c0:c1]
    if patch.size < 4:
        return 0.5, 1.0
    low, high = np.percentile(patch, [1, 99])
    width = max(float(high - low), 0.02)
    return float((low + high) / 2.0), width
