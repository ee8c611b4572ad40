"""From attenuation to a processed radiograph: heel effect, scatter, quantum noise, log, window.

The detector sees ``I0(x) * exp(-mu)`` plus scatter (a wide blur of the primary); photon
counts carry Poisson noise (Gaussian approximation, exact enough above ~20 photons); the
reader takes the log and applies a window, a gamma and unsharp masking, as CR/DX consoles do.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Exposure:
    photons: float = 8000.0  # per pixel in the open field
    scatter_fraction: float = 0.3
    heel: float = 0.12  # relative intensity change across the field
    heel_angle_deg: float = 0.0
    gamma: float = 1.0
    unsharp: float = 0.5
    unsharp_mm: float = 3.0
    range_compression: float = 0.5  # share of the large-scale log signal removed, as consoles do

    @classmethod
    def random(cls, rng: np.random.Generator) -> Exposure:
        return cls(
            photons=float(np.exp(rng.uniform(np.log(2500), np.log(30000)))),
            scatter_fraction=rng.uniform(0.1, 0.5),
            heel=rng.uniform(0.04, 0.2),
            heel_angle_deg=rng.uniform(0, 360),
            gamma=rng.uniform(0.75, 1.35),
            unsharp=rng.uniform(0.1, 0.9),
            unsharp_mm=rng.uniform(1.5, 5.0),
            range_compression=rng.uniform(0.3, 0.7),
        )


def _small_blur(image: np.ndarray, sigma_px: float) -> np.ndarray:
    """A wide Gaussian blur computed at reduced size (scatter and unsharp kernels are smooth)."""
    h, w = image.shape
    factor = max(1, int(sigma_px / 4))
    small = cv2.resize(
        image, (max(1, w // factor), max(1, h // factor)), interpolation=cv2.INTER_AREA
    )
    small = cv2.GaussianBlur(small, (0, 0), sigma_px / factor)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def expose(
    mu: np.ndarray, exposure: Exposure, px_per_mm: float, rng: np.random.Generator
) -> np.ndarray:
    """Processed image, float32 0..1 (1 = most attenuation, displayed white in MONOCHROME2)."""
    h, w = mu.shape
    a = np.deg2rad(exposure.heel_angle_deg)
    ramp = np.cos(a) * (np.arange(w, dtype=np.float32)[None, :] / w - 0.5) + np.sin(a) * (
        np.arange(h, dtype=np.float32)[:, None] / h - 0.5
    )
    primary = (1.0 + exposure.heel * ramp) * np.exp(-mu)
    signal = primary + exposure.scatter_fraction * _small_blur(primary, 25.0 * px_per_mm)
    counts = signal * np.float32(exposure.photons)
    counts += np.sqrt(counts) * rng.standard_normal(counts.shape, dtype=np.float32)
    # Light spread in the phosphor comes after the quanta are absorbed: it blurs signal and
    # noise alike, so the noise is correlated as on real CR/DX images.
    counts = cv2.GaussianBlur(counts, (0, 0), 0.8)
    log_signal = -np.log(np.maximum(counts, 0.5) / np.float32(exposure.photons))
    if exposure.range_compression > 0:
        # Dynamic range compression: the face and neck no longer outshine the vault.
        body = log_signal > 0.3
        low_pass = _small_blur(np.where(body, log_signal, 0.0).astype(np.float32), 12.0 * px_per_mm)
        weight = _small_blur(body.astype(np.float32), 12.0 * px_per_mm)
        low_pass = low_pass / np.maximum(weight, 1e-3)
        log_signal = log_signal - exposure.range_compression * body * (
            low_pass - float(np.median(low_pass[body])) if body.any() else 0.0
        )
    sample = log_signal[::4, ::4]
    low, high = np.percentile(sample, [1.0, 99.8])
    display = np.clip((log_signal - low) / max(high - low, 1e-3), 0.0, 1.0)
    if exposure.unsharp > 0:
        display += exposure.unsharp * (
            display - _small_blur(display, exposure.unsharp_mm * px_per_mm)
        )
    display = np.clip(display, 0.0, 1.0) ** np.float32(exposure.gamma)
    return display.astype(np.float32)
