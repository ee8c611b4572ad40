"""Boxes in image pixel coordinates (x to the right, y down, end-exclusive)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Box:
    x0: int
    y0: int
    x1: int
    y1: int

    @classmethod
    def full(cls, shape: tuple[int, ...]) -> Box:
        return cls(0, 0, int(shape[1]), int(shape[0]))

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    @property
    def center(self) -> tuple[float, float]:
        return ((self.x0 + self.x1) / 2.0, (self.y0 + self.y1) / 2.0)

    def shifted(self, dx: int, dy: int) -> Box:
        return Box(self.x0 + dx, self.y0 + dy, self.x1 + dx, self.y1 + dy)

    def clip(self, shape: tuple[int, ...]) -> Box:
        h, w = int(shape[0]), int(shape[1])
        x0, y0 = min(max(self.x0, 0), w), min(max(self.y0, 0), h)
        return Box(x0, y0, max(x0, min(self.x1, w)), max(y0, min(self.y1, h)))

    def square(self, scale: float = 1.0, minimum: int = 1) -> Box:
        """A square box around the same centre, side = scale × the longer side."""
        cx, cy = self.center
        # int(round(...)): numpy 1.x rounds its scalars to numpy floats, not ints.
        half = max(minimum, int(round(max(self.width, self.height) * scale))) / 2.0  # noqa: RUF046
        return Box(int(round(cx - half)), int(round(cy - half)), int(round(cx + half)), int(round(cy + half)))  # noqa: RUF046

    def contains(self, other: Box) -> bool:
        return self.x0 <= other.x0 and self.y0 <= other.y0 and self.x1 >= other.x1 and self.y1 >= other.y1

    def iou(self, other: Box) -> float:
        ix = max(0, min(self.x1, other.x1) - max(self.x0, other.x0))
        iy = max(0, min(self.y1, other.y1) - max(self.y0, other.y0))
        inter = ix * iy
        union = self.width * self.height + other.width * other.height - inter
        return inter / union if union > 0 else 0.0

    def as_tuple(self) -> tuple[int, int, int, int]:
        return (self.x0, self.y0, self.x1, self.y1)
