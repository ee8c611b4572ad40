"""Project a valve design into the image: pose, setting, antialiased attenuation and masks."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..geometry import Box
from .designs import ValveDesign


@dataclass(frozen=True)
class Pose:
    """How the valve lies relative to the detector.

    rotation_deg: in-plane turn of the inlet direction, clockwise from image up.
    tilt_deg: angle between the valve plane and the detector (0 = face on), about an axis at
    ``tilt_axis_deg``; foreshortens the valve by cos(tilt) across that axis.
    mirrored: seen through its base (the side marker appears on the left).
    magnification: geometric magnification of the valve on the detector.
    """

    rotation_deg: float = 0.0
    tilt_deg: float = 0.0
    tilt_axis_deg: float = 0.0
    mirrored: bool = False
    magnification: float = 1.0

    def matrix(self, px_per_mm: float) -> np.ndarray:
        """2x2 map from canonical millimetres to image pixel offsets."""

        def rot(deg: float) -> np.ndarray:
            a = np.deg2rad(deg)
            return np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])

        tilt = (
            rot(self.tilt_axis_deg)
            @ np.diag([np.cos(np.deg2rad(self.tilt_deg)), 1.0])
            @ rot(-self.tilt_axis_deg)
        )
        mirror = np.diag([-1.0, 1.0]) if self.mirrored else np.eye(2)
        return px_per_mm * self.magnification * rot(self.rotation_deg) @ tilt @ mirror


@dataclass
class ValveLayer:
    """A rendered valve: attenuation and masks on a patch whose top-left pixel is (x0, y0)."""

    attenuation: np.ndarray  # float32, to be added to the image's attenuation
    mask: np.ndarray  # float32 coverage 0..1 of the radiopaque valve parts (no tubing)
    role_masks: dict[str, np.ndarray]  # "indicator", "hub", "marker" coverage
    x0: int
    y0: int
    inlet_xy: tuple[float, float]
    outlet_xy: tuple[float, float]
    hub_xy: tuple[float, float]

    def box(self, threshold: float = 0.1) -> Box | None:
        """Bounding box of the radiopaque parts in image pixels (not clipped), or None."""
        rows = np.flatnonzero((self.mask > threshold).any(axis=1))
        cols = np.flatnonzero((self.mask > threshold).any(axis=0))
        if rows.size == 0:
            return None
        return Box(
            self.x0 + int(cols[0]),
            self.y0 + int(rows[0]),
            self.x0 + int(cols[-1]) + 1,
            self.y0 + int(rows[-1]) + 1,
        )


def _turn(u: np.ndarray, v: np.ndarray, angle_deg: float) -> tuple[np.ndarray, np.ndarray]:
    # Coordinates at which a part drawn at angle 0 must be sampled to appear turned
    # clockwise (y down) by angle_deg: the inverse rotation.
    a = np.deg2rad(angle_deg)
    c, s = np.cos(a), np.sin(a)
    return c * u + s * v, -s * u + c * v


def render_valve(
    design: ValveDesign,
    indicator_deg: float | None,
    pose: Pose,
    px_per_mm: float,
    center_xy: tuple[float, float],
) -> ValveLayer:
    """Draw ``design`` with its hub at image point ``center_xy`` (pixels, continuous coordinates,
    pixel (row i, column j) covers [j, j+1) x [i, i+1)).

    ``indicator_deg`` turns the parts marked ``turns`` (None: drawn at 0, for fixed valves).
    Path length through the tilted valve grows by 1/cos(tilt), capped at 2.
    """
    forward = pose.matrix(px_per_mm)
    inverse = np.linalg.inv(forward)
    half = int(np.ceil(design.extent() * px_per_mm * pose.magnification)) + 3
    cx, cy = center_xy
    x0, y0 = int(np.floor(cx)) - half, int(np.floor(cy)) - half
    size = 2 * half + 1
    xs = np.arange(x0, x0 + size, dtype=np.float64) + 0.5 - cx
    ys = np.arange(y0, y0 + size, dtype=np.float64) + 0.5 - cy
    gx, gy = np.meshgrid(xs, ys)
    u = inverse[0, 0] * gx + inverse[0, 1] * gy
    v = inverse[1, 0] * gx + inverse[1, 1] * gy
    pixel_mm = float(np.sqrt(abs(np.linalg.det(inverse))))
    tu, tv = _turn(u, v, indicator_deg or 0.0)
    path = min(2.0, 1.0 / max(np.cos(np.deg2rad(pose.tilt_deg)), 1e-3))

    attenuation = np.zeros((size, size), np.float64)
    mask = np.zeros((size, size), np.float64)
    role_masks: dict[str, np.ndarray] = {}
    stretch = float(np.linalg.norm(forward, 2))  # px per mm along the most magnified direction
    a = np.deg2rad(indicator_deg or 0.0)
    for part in design.parts:
        # Evaluate each part only in a window around it.
        bx, by, br = part.shape.bound()
        if part.turns:
            bx, by = np.cos(a) * bx - np.sin(a) * by, np.sin(a) * bx + np.cos(a) * by
        px, py = forward @ np.array([bx, by]) + np.array([cx - x0 - 0.5, cy - y0 - 0.5])
        reach = br * stretch + 2.0
        r0, r1 = max(0, int(py - reach)), min(size, int(np.ceil(py + reach)) + 1)
        c0, c1 = max(0, int(px - reach)), min(size, int(np.ceil(px + reach)) + 1)
        if r1 <= r0 or c1 <= c0:
            continue
        window = (slice(r0, r1), slice(c0, c1))
        pu, pv = (tu, tv) if part.turns else (u, v)
        coverage = np.clip(0.5 - part.shape.sdf(pu[window], pv[window]) / pixel_mm, 0.0, 1.0)
        attenuation[window] += part.density * coverage
        if part.density > 0:
            mask[window] = np.maximum(mask[window], coverage)
        if part.role != "body":
            role = role_masks.setdefault(part.role, np.zeros((size, size), np.float64))
            role[window] = np.maximum(role[window], coverage)
    attenuation = np.clip(attenuation, 0.0, None) * path

    def to_image(point: tuple[float, float]) -> tuple[float, float]:
        x, y = forward @ np.asarray(point, dtype=np.float64)
        return (float(cx + x), float(cy + y))

    return ValveLayer(
        attenuation.astype(np.float32),
        mask.astype(np.float32),
        {k: np.asarray(m, np.float32) for k, m in role_masks.items()},
        x0,
        y0,
        to_image(design.inlet),
        to_image(design.outlet),
        (float(cx), float(cy)),
    )


def add_patch(image: np.ndarray, patch: np.ndarray, x0: int, y0: int) -> None:
    """image[y0:, x0:] += patch, clipped to the image."""
    h, w = image.shape
    ys, xs = max(0, y0), max(0, x0)
    ye, xe = min(h, y0 + patch.shape[0]), min(w, x0 + patch.shape[1])
    if ye <= ys or xe <= xs:
        return
    image[ys:ye, xs:xe] += patch[ys - y0 : ye - y0, xs - x0 : xe - x0]
