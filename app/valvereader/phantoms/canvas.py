"""Drawing in millimetres onto an attenuation map in pixels (a similarity transform apart)."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

Point = tuple[float, float]
Points = Sequence[Point] | Sequence[Sequence[float]] | np.ndarray


class Canvas:
    """Attenuation map plus the head's frame: ``px = centre + scale * R(angle) * (flip * x, y)``.

    ``mu`` is float32 (rows, columns); drawing adds ``density`` times the coverage of a shape.
    """

    def __init__(
        self,
        shape: tuple[int, int],
        px_per_mm: float,
        centre: Point,
        angle_deg: float = 0.0,
        flip: bool = False,
    ):
        self.mu = np.zeros(shape, np.float32)
        self.shape = shape
        self.px_per_mm = float(px_per_mm)
        self.centre = centre
        a = np.deg2rad(angle_deg)
        self._rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]) * self.px_per_mm
        self._flip = -1.0 if flip else 1.0
        self._grid: tuple[np.ndarray, np.ndarray] | None = None

    # --- frames -----------------------------------------------------------------------------
    def to_px(self, points: Points) -> np.ndarray:
        p = np.asarray(points, dtype=np.float64).reshape(-1, 2) * np.array([self._flip, 1.0])
        return p @ self._rot.T + np.asarray(self.centre)

    def grid_mm(self) -> tuple[np.ndarray, np.ndarray]:
        """Head-frame millimetre coordinates of every pixel centre (computed once)."""
        if self._grid is None:
            h, w = self.shape
            xs = np.arange(w, dtype=np.float32)[None, :] + np.float32(0.5 - self.centre[0])
            ys = np.arange(h, dtype=np.float32)[:, None] + np.float32(0.5 - self.centre[1])
            inv = np.linalg.inv(self._rot).astype(np.float32)
            x = (inv[0, 0] * xs + inv[0, 1] * ys) * np.float32(self._flip)
            y = inv[1, 0] * xs + inv[1, 1] * ys
            self._grid = (x, y)
        return self._grid

    # --- primitives -------------------------------------------------------------------------
    def _layer(self, pts: np.ndarray, margin: float):
        h, w = self.shape
        x0 = int(max(0, np.floor(pts[:, 0].min() - margin)))
        y0 = int(max(0, np.floor(pts[:, 1].min() - margin)))
        x1 = int(min(w, np.ceil(pts[:, 0].max() + margin) + 1))
        y1 = int(min(h, np.ceil(pts[:, 1].max() + margin) + 1))
        if x1 <= x0 or y1 <= y0:
            return None
        return x0, y0, np.zeros((y1 - y0, x1 - x0), np.uint8)

    def _commit(
        self,
        x0: int,
        y0: int,
        layer: np.ndarray,
        density: float,
        blur_mm: float,
        texture: np.ndarray | None,
    ) -> None:
        values: np.ndarray = layer.astype(np.float32) * np.float32(density / 255.0)
        if blur_mm > 0:
            values = np.asarray(cv2.GaussianBlur(values, (0, 0), blur_mm * self.px_per_mm))
        region = self.mu[y0 : y0 + layer.shape[0], x0 : x0 + layer.shape[1]]
        if texture is not None:
            values *= texture[y0 : y0 + layer.shape[0], x0 : x0 + layer.shape[1]]
        region += values

    def polyline(
        self,
        points: Points,
        thickness_mm: float,
        density: float,
        closed: bool = False,
        blur_mm: float = 0.0,
        texture: np.ndarray | None = None,
    ) -> None:
        pts = self.to_px(points)
        thick = max(1, round(thickness_mm * self.px_per_mm))
        got = self._layer(pts, thick + 3 * blur_mm * self.px_per_mm + 2)
        if got is None:
            return
        x0, y0, layer = got
        shifted = np.round((pts - [x0, y0]) * 16).astype(np.int32)
        cv2.polylines(layer, [shifted], closed, 255, thick, cv2.LINE_AA, shift=4)
        self._commit(x0, y0, layer, density, blur_mm, texture)

    def polygon(
        self,
        points: Points,
        density: float,
        blur_mm: float = 0.0,
        texture: np.ndarray | None = None,
    ) -> None:
        pts = self.to_px(points)
        got = self._layer(pts, 3 * blur_mm * self.px_per_mm + 2)
        if got is None:
            return
        x0, y0, layer = got
        shifted = np.round((pts - [x0, y0]) * 16).astype(np.int32)
        cv2.fillPoly(layer, [shifted], 255, cv2.LINE_AA, shift=4)
        self._commit(x0, y0, layer, density, blur_mm, texture)

    def ellipse(
        self,
        centre: Point,
        radii: tuple[float, float],
        density: float,
        angle_deg: float = 0.0,
        blur_mm: float = 0.0,
        thickness_mm: float | None = None,
        texture: np.ndarray | None = None,
        arc: tuple[float, float] = (0.0, 360.0),
    ) -> None:
        t = np.deg2rad(np.linspace(arc[0], arc[1], 72))
        a = np.deg2rad(angle_deg)
        ex, ey = radii[0] * np.cos(t), radii[1] * np.sin(t)
        pts = np.stack(
            [
                centre[0] + ex * np.cos(a) - ey * np.sin(a),
                centre[1] + ex * np.sin(a) + ey * np.cos(a),
            ],
            1,
        )
        if thickness_mm is None:
            self.polygon(pts, density, blur_mm, texture)
        else:
            self.polyline(
                pts,
                thickness_mm,
                density,
                closed=arc == (0.0, 360.0),
                blur_mm=blur_mm,
                texture=texture,
            )


def fractal_noise(
    shape: tuple[int, int],
    rng: np.random.Generator,
    cell_px: float,
    octaves: int = 4,
    persistence: float = 0.55,
) -> np.ndarray:
    """Smooth random texture, zero mean, about unit standard deviation, float32."""
    h, w = shape
    total = np.zeros(shape, np.float32)
    amplitude, norm = 1.0, 0.0
    cell = max(cell_px, 2.0)
    for _ in range(octaves):
        gh, gw = max(2, int(h / cell) + 2), max(2, int(w / cell) + 2)
        small = rng.standard_normal((gh, gw)).astype(np.float32)
        total += amplitude * cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
        norm += amplitude**2
        amplitude *= persistence
        cell /= 2.0
        if cell < 1.5:
            break
    return total / np.float32(np.sqrt(norm))
