"""Pixel noise the identifier never saw, measured and smoothed away before it reads an image.

The public crops it was trained on are smooth: their noise, estimated as below, is at most
0.028 of the grey range (median 0.001, over the 1090 training crops). Gaussian noise of 0.03
added to the validation crops dropped the program from 0.987 to 0.885 and made four results
"confident" and wrong (docs/evaluation/shift-study.md). So an input whose noise, at the scale
the network sees it, is above everything in training is smoothed before it is resized (such
crops then read 0.942); any other input is left exactly as it was. A large, very noisy region
costs a few milliseconds to smooth (the blur widens with the region's shrink factor).
"""

from __future__ import annotations

import math

import numpy as np

from .geometry import Box

# Noise (grey levels of 0..1, at the network's scale) above which an input is smoothed. Chosen
# on the training crops (docs/evaluation/shift-study.md); the card may set its own.
DEFAULT_LIMIT = 0.03
# The smoothing's standard deviation in the network's pixels.
SMOOTHING_PX = 1.5
_SAMPLES = 1 << 14  # responses the estimate averages (about 0.15 ms on a film's square)


def noise_sigma(region: np.ndarray) -> float:
    """Immerkær's estimate of the standard deviation of white noise in a 2-D image (Computer
    Vision and Image Understanding 64, 1996): the mean absolute response to the difference of
    two Laplacians, scaled. Reads evenly spaced triplets of rows, enough for about
    ``_SAMPLES`` responses (at least 8 triplets, at most 96). Returns 0 for an image too small
    to tell (under 3 × 3)."""
    height, width = region.shape
    if height < 3 or width < 3:
        return 0.0
    triplets = min(height - 2, max(8, min(96, _SAMPLES // (width - 2))))
    starts = np.unique(np.linspace(0, height - 3, triplets).astype(np.intp))
    rows = [np.asarray(region[starts + k], dtype=np.float32) for k in range(3)]
    # The 3 × 3 mask [[1, -2, 1], [-2, 4, -2], [1, -2, 1]] is a second difference across the
    # columns of a second difference down the rows.
    down = rows[0] - 2.0 * rows[1] + rows[2]
    response = down[:, :-2] - 2.0 * down[:, 1:-1] + down[:, 2:]
    return float(math.sqrt(math.pi / 2.0) / 6.0 * np.abs(response).mean(dtype=np.float64))


def network_scale(crop: Box, size: int) -> float:
    """How many source pixels one network pixel averages along a side (at least 1): shrinking
    averages the noise of ``scale``² pixels, enlarging averages none."""
    return max(1.0, math.sqrt((crop.width / size) * (crop.height / size)))


def smooth(region: np.ndarray, sigma: float) -> np.ndarray:
    """``region`` blurred by a Gaussian of ``sigma`` pixels (separable, edges repeated), float32."""
    radius = max(1, math.ceil(3.0 * sigma))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps = (taps / taps.sum()).astype(np.float32)
    out = np.asarray(region, dtype=np.float32)
    for axis in (0, 1):
        padded = np.pad(out, [(radius, radius) if a == axis else (0, 0) for a in (0, 1)], mode="edge")
        length = out.shape[axis]
        acc = np.zeros_like(out)
        for k, weight in enumerate(taps):
            acc += weight * (padded[k : k + length] if axis == 0 else padded[:, k : k + length])
        out = acc
    return out
