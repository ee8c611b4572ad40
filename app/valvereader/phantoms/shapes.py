"""Signed-distance primitives (millimetres, negative inside) for drawing valve parts.

A part's coverage of a pixel is ``clip(0.5 - sdf / pixel_mm, 0, 1)``: antialiased edges
without supersampling, and the same formula gives the ground-truth masks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

Array = np.ndarray


class Shape(Protocol):
    def sdf(self, u: Array, v: Array) -> Array: ...

    def extent(self) -> float: ...  # largest distance of the shape from the origin, mm

    def bound(self) -> tuple[float, float, float]: ...  # a circle (x, y, r) holding the shape


@dataclass(frozen=True)
class Circle:
    cx: float
    cy: float
    r: float

    def sdf(self, u: Array, v: Array) -> Array:
        return np.hypot(u - self.cx, v - self.cy) - self.r

    def extent(self) -> float:
        return float(np.hypot(self.cx, self.cy) + self.r)

    def bound(self) -> tuple[float, float, float]:
        return (self.cx, self.cy, self.r)


@dataclass(frozen=True)
class Ring:
    cx: float
    cy: float
    r_in: float
    r_out: float

    def sdf(self, u: Array, v: Array) -> Array:
        mid, half = (self.r_in + self.r_out) / 2.0, (self.r_out - self.r_in) / 2.0
        return np.abs(np.hypot(u - self.cx, v - self.cy) - mid) - half

    def extent(self) -> float:
        return float(np.hypot(self.cx, self.cy) + self.r_out)

    def bound(self) -> tuple[float, float, float]:
        return (self.cx, self.cy, self.r_out)


@dataclass(frozen=True)
class Ellipse:
    cx: float
    cy: float
    rx: float
    ry: float

    def sdf(self, u: Array, v: Array) -> Array:
        # Not exact away from the edge, exact enough for a one-pixel antialiasing ramp.
        k = np.hypot((u - self.cx) / self.rx, (v - self.cy) / self.ry)
        return (k - 1.0) * min(self.rx, self.ry)

    def extent(self) -> float:
        return float(np.hypot(self.cx, self.cy) + max(self.rx, self.ry))

    def bound(self) -> tuple[float, float, float]:
        return (self.cx, self.cy, max(self.rx, self.ry))


@dataclass(frozen=True)
class RoundedBox:
    cx: float
    cy: float
    w: float
    h: float
    angle_deg: float = 0.0
    radius: float = 0.0

    def sdf(self, u: Array, v: Array) -> Array:
        a = np.deg2rad(self.angle_deg)
        du, dv = u - self.cx, v - self.cy
        x = np.cos(a) * du + np.sin(a) * dv
        y = -np.sin(a) * du + np.cos(a) * dv
        qx = np.abs(x) - (self.w / 2.0 - self.radius)
        qy = np.abs(y) - (self.h / 2.0 - self.radius)
        outside = np.hypot(np.maximum(qx, 0.0), np.maximum(qy, 0.0))
        return outside + np.minimum(np.maximum(qx, qy), 0.0) - self.radius

    def extent(self) -> float:
        return float(np.hypot(self.cx, self.cy) + np.hypot(self.w, self.h) / 2.0)

    def bound(self) -> tuple[float, float, float]:
        return (self.cx, self.cy, float(np.hypot(self.w, self.h)) / 2.0)


@dataclass(frozen=True)
class Capsule:
    x0: float
    y0: float
    x1: float
    y1: float
    r: float

    def sdf(self, u: Array, v: Array) -> Array:
        dx, dy = self.x1 - self.x0, self.y1 - self.y0
        t = np.clip(((u - self.x0) * dx + (v - self.y0) * dy) / max(dx * dx + dy * dy, 1e-9), 0, 1)
        return np.hypot(u - (self.x0 + t * dx), v - (self.y0 + t * dy)) - self.r

    def extent(self) -> float:
        return float(max(np.hypot(self.x0, self.y0), np.hypot(self.x1, self.y1)) + self.r)

    def bound(self) -> tuple[float, float, float]:
        half = float(np.hypot(self.x1 - self.x0, self.y1 - self.y0)) / 2.0
        return ((self.x0 + self.x1) / 2.0, (self.y0 + self.y1) / 2.0, half + self.r)


@dataclass(frozen=True)
class Polygon:
    """Convex polygon, vertices in either winding."""

    points: tuple[tuple[float, float], ...]

    def sdf(self, u: Array, v: Array) -> Array:
        pts = np.asarray(self.points, dtype=np.float64)
        cx, cy = pts.mean(axis=0)
        result = np.full(np.broadcast(u, v).shape, -np.inf)
        for (ax, ay), (bx, by) in zip(pts, np.roll(pts, -1, axis=0)):
            nx, ny = by - ay, -(bx - ax)
            norm = np.hypot(nx, ny)
            nx, ny = nx / norm, ny / norm
            if (cx - ax) * nx + (cy - ay) * ny > 0:  # make the normal point outwards
                nx, ny = -nx, -ny
            result = np.maximum(result, (u - ax) * nx + (v - ay) * ny)
        return result

    def extent(self) -> float:
        return float(max(np.hypot(x, y) for x, y in self.points))

    def bound(self) -> tuple[float, float, float]:
        pts = np.asarray(self.points, dtype=np.float64)
        cx, cy = pts.mean(axis=0)
        return (float(cx), float(cy), float(np.hypot(pts[:, 0] - cx, pts[:, 1] - cy).max()))


def triangle(cx: float, cy: float, size: float, pointing_deg: float) -> Polygon:
    """An arrowhead of side ``size`` centred at (cx, cy) pointing ``pointing_deg`` clockwise from up."""
    pts = []
    for offset in (0.0, 140.0, 220.0):
        a = np.deg2rad(pointing_deg + offset)
        r = size * (0.6 if offset == 0.0 else 0.5)
        pts.append((cx + r * np.sin(a), cy - r * np.cos(a)))
    return Polygon(tuple(pts))
