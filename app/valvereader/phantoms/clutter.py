"""What real skull films carry besides the skull: lead markers, burned-in text, collimation,
and metal that is not a valve (dental fillings, clips, EEG electrodes, earrings, hearing aid)."""

from __future__ import annotations

import cv2
import numpy as np

from ..geometry import Box
from .canvas import Canvas
from .skull import Anatomy

FONTS = (cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_PLAIN)


def collimation_field(shape: tuple[int, int], rng: np.random.Generator) -> Box:
    """The exposed rectangle; outside it the console shows black."""
    h, w = shape
    if rng.random() < 0.3:
        return Box(0, 0, w, h)
    margins = rng.uniform(0.0, 0.08, 4) * np.array([w, h, w, h])
    margins[rng.random(4) < 0.35] = 0
    return Box(int(margins[0]), int(margins[1]), w - int(margins[2]), h - int(margins[3]))


def collimate(display: np.ndarray, field: Box, rng: np.random.Generator) -> None:
    """Black outside ``field`` (a faint residual level, as shutters leave)."""
    level = float(rng.uniform(0.0, 0.015))
    display[: field.y0, :] = level
    display[field.y1 :, :] = level
    display[:, : field.x0] = level
    display[:, field.x1 :] = level


def _text_layer(
    shape: tuple[int, int],
    text: str,
    origin: tuple[int, int],
    scale: float,
    font: int,
    thickness: int,
) -> np.ndarray:
    layer = np.zeros(shape, np.uint8)
    cv2.putText(layer, text, origin, font, scale, 255, thickness, cv2.LINE_AA)
    return layer


def lead_marker(
    mu: np.ndarray, field: Box, letter: str, px_per_mm: float, rng: np.random.Generator
) -> None:
    """A lead letter in a square frame near a corner of the field, part of the exposure."""
    size = int(rng.uniform(9, 14) * px_per_mm)
    margin = int(rng.uniform(4, 15) * px_per_mm)
    right, bottom = rng.random() < 0.5, rng.random() < 0.5
    x0 = field.x1 - margin - size if right else field.x0 + margin
    y0 = field.y1 - margin - size if bottom else field.y0 + margin
    layer = np.zeros(mu.shape, np.uint8)
    cv2.rectangle(layer, (x0, y0), (x0 + size, y0 + size), 255, max(1, size // 12), cv2.LINE_AA)
    scale = size / 30.0
    cv2.putText(
        layer,
        letter,
        (x0 + size // 5, y0 + int(size * 0.82)),
        cv2.FONT_HERSHEY_DUPLEX,
        scale,
        255,
        max(1, size // 10),
        cv2.LINE_AA,
    )
    mu += layer.astype(np.float32) * np.float32(2.5 / 255.0)


def burn_text(display: np.ndarray, field: Box, lines: list[str], rng: np.random.Generator) -> None:
    """White annotation text in one or two corners of the field."""
    h = field.y1 - field.y0
    scale = float(rng.uniform(0.0011, 0.0018) * h)
    font = FONTS[int(rng.integers(len(FONTS)))]
    thickness = max(1, round(scale * 1.5))
    step = int(32 * scale) + 4
    value = float(rng.uniform(0.85, 1.0))
    corners = rng.choice(4, size=2, replace=False)
    halves = (lines[: len(lines) // 2 + 1], lines[len(lines) // 2 + 1 :])
    for corner, block in zip(corners, halves):
        for i, text in enumerate(block):
            (tw, _), _ = cv2.getTextSize(text, font, scale, thickness)
            x = field.x0 + 12 if corner in (0, 2) else field.x1 - tw - 12
            y = (
                field.y0 + step * (i + 1)
                if corner in (0, 1)
                else field.y1 - step * (len(block) - i) + step // 2
            )
            layer = _text_layer(display.shape, text, (int(x), int(y)), scale, font, thickness)
            np.maximum(display, layer.astype(np.float32) * np.float32(value / 255.0), out=display)


def distractors(canvas: Canvas, anatomy: Anatomy, view: str, rng: np.random.Generator) -> list[str]:
    """Add metal that is not a valve; returns what was added, for the record."""
    added: list[str] = []
    a, b = anatomy.vault
    if anatomy.teeth and rng.random() < 0.5:
        for i in rng.choice(
            len(anatomy.teeth), size=min(len(anatomy.teeth), int(rng.integers(1, 5))), replace=False
        ):
            x, y = anatomy.teeth[int(i)]
            pts = [(x + rng.uniform(-2.5, 2.5), y + rng.uniform(-1.5, 1.5)) for _ in range(5)]
            canvas.polygon(
                cv2.convexHull(np.asarray(pts, np.float32)).reshape(-1, 2).tolist(),
                3.0,
                blur_mm=0.2,
            )
        added.append("fillings")
    if rng.random() < 0.12:  # aneurysm clip: a short bent blade with a coil
        x, y = rng.uniform(-0.4 * a, 0.4 * a), rng.uniform(0, 0.5 * b)
        ang = rng.uniform(0, 2 * np.pi)
        d = np.array([np.cos(ang), np.sin(ang)])
        canvas.polyline(
            [(x, y), (x + 6 * d[0], y + 6 * d[1]), (x + 9 * d[0] + 2, y + 9 * d[1])],
            1.2,
            2.0,
            blur_mm=0.2,
        )
        canvas.ellipse((x - 2 * d[0], y - 2 * d[1]), (2.0, 2.0), 1.5, thickness_mm=0.8)
        added.append("clip")
    if rng.random() < 0.1:  # EEG electrodes: cups with leads
        for _ in range(int(rng.integers(4, 12))):
            t = rng.uniform(-np.pi, 0.2)
            r = rng.uniform(0.5, 1.02)
            x, y = r * a * np.cos(t), r * b * np.sin(t)
            canvas.ellipse((x, y), (4.5, 4.5), 0.9, thickness_mm=1.2, blur_mm=0.2)
            canvas.polyline(
                [(x, y), (x + rng.uniform(-40, 40), y + rng.uniform(30, 120))],
                0.7,
                0.4,
                blur_mm=0.2,
            )
        added.append("eeg_electrodes")
    if rng.random() < 0.15:
        ex, ey = anatomy.ear
        canvas.ellipse(
            (ex + rng.uniform(-3, 3), ey + rng.uniform(18, 26)),
            (4.0, 5.0),
            1.8,
            thickness_mm=0.9,
            blur_mm=0.1,
        )
        added.append("earring")
    if rng.random() < 0.08:  # behind-the-ear hearing aid: case, battery, tube
        ex, ey = anatomy.ear
        side = -1 if view == "lateral" else 1
        canvas.ellipse((ex + side * 14, ey - 8), (6, 16), 0.5, angle_deg=20 * side, blur_mm=0.5)
        canvas.ellipse((ex + side * 14, ey - 4), (4, 4), 2.0, blur_mm=0.3)
        canvas.polyline(
            [(ex + side * 14, ey - 24), (ex + side * 4, ey - 22), (ex, ey - 4)], 1.5, 0.4
        )
        added.append("hearing_aid")
    return added
