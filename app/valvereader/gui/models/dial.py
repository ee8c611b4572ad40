"""The reading dial's geometry and words: the template's settings, the setting an indicator
angle names, where the ticks and labels go (labels clear of each other, each on its setting's
ray, moved in or out along it) and the line under the dial. Angles are degrees clockwise from
12 o'clock; points are (x, y) with y down, as on screen; rectangles are (x, y, width, height)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

Rect = tuple[float, float, float, float]

# Radii tried for a label, in fractions of the dial's radius: just inside the ticks first,
# then further in, then outside the ring.
RADII = (0.72, 0.58, 1.16, 1.32, 0.46, 1.48)
PAD = 2.0


def dial_settings(template: Any) -> list[Any]:
    dial = getattr(template, "dial", None)
    return list(getattr(dial, "settings", []) or []) if dial is not None else []


def setting_at(template: Any, angle_deg: float, mirrored: bool) -> Any | None:
    """The template's setting nearest ``angle_deg`` (canonical frame), or None without a dial."""
    dial = getattr(template, "dial", None)
    if dial is None:
        return None
    if hasattr(dial, "setting_at"):
        return dial.setting_at(angle_deg, mirrored=mirrored)
    angled = [s for s in dial_settings(template) if getattr(s, "angle_deg", None) is not None]
    if not angled:
        return None
    target = (-angle_deg if mirrored else angle_deg) % 360.0
    return min(angled, key=lambda s: abs((s.angle_deg - target + 180.0) % 360.0 - 180.0))


def setting_text(setting: Any) -> str:
    if setting is None:
        return ""
    if callable(getattr(setting, "reading_text", None)):  # carries the tag of what it rests on
        return str(setting.reading_text())
    if callable(getattr(setting, "text", None)):
        return str(setting.text())
    label = getattr(setting, "label", None)
    if label:
        return str(label)
    return f"{getattr(setting, 'value', '')} {getattr(setting, 'unit', '')}".strip()


def reading_text(template: Any, relative_deg: float | None, mirrored: bool) -> str:
    """The setting the indicator names (its angle relative to the dial's inlet), or ""."""
    if relative_deg is None or template is None:
        return ""
    return setting_text(setting_at(template, relative_deg, mirrored))


def ray_point(centre: tuple[float, float], angle_deg: float, radius: float) -> tuple[float, float]:
    """The point ``radius`` from ``centre`` at ``angle_deg``."""
    rad = math.radians(angle_deg)
    return centre[0] + radius * math.sin(rad), centre[1] - radius * math.cos(rad)


def angle_towards(centre: tuple[float, float], point: tuple[float, float]) -> float:
    """The angle (0..360) from ``centre`` towards ``point``: where a click marks the indicator."""
    return math.degrees(math.atan2(point[0] - centre[0], -(point[1] - centre[1]))) % 360.0


def dial_marks(template: Any, rotation: float, mirrored: bool) -> tuple[list[float], list[tuple[float, str]]]:
    """The ticks (angles of the settings with one) and the labels ((angle, text), the inlet's
    first) of the dial turned to ``rotation``: fine scales label every other setting, and a
    setting of unverified geometry ([U]) gets a tick for its position but no pressure beside it."""
    sign = -1.0 if mirrored else 1.0
    labels: list[tuple[float, str]] = [(rotation, "inlet")]
    ticks: list[float] = []
    settings = dial_settings(template)
    every = 2 if len(settings) > 12 else 1
    for index, setting in enumerate(settings):
        angle = getattr(setting, "angle_deg", None)
        if angle is None:
            continue
        a = rotation + sign * float(angle)
        ticks.append(a)
        if getattr(setting, "angle_tag", "") == "U" or index % every:
            continue
        labels.append((a, str(getattr(setting, "label", ""))))
    return ticks, labels


def dial_caption(template: Any, reading: str, mirrored: bool, exporting: bool = False) -> str | None:
    """The line under the dial: the reading with its caveats, or how to get one; None when
    exporting without a reading (the how-to hint belongs on screen, not in a report)."""
    if exporting and not reading:
        return None
    settings = dial_settings(template)
    text = f"Indicator → {reading}" if reading else (
        "Right-click: mark the indicator" if settings else "No dial for this valve")
    if not reading and not any(getattr(s, "angle_deg", None) is not None for s in settings):
        text = "[U] indicator angles not known for this valve: the dial reads no setting"
    elif not reading and any(getattr(s, "angle_tag", "") == "U" for s in settings):
        text += " - [U] dial geometry unverified for this valve: no pressure read"
    if mirrored:
        text += "  (mirrored)"
    return text


def _overlap(a: Rect, b: Rect) -> bool:
    """Whether two rectangles share an area (touching edges do not; an empty one shares none)."""
    ax0, ax1 = sorted((a[0], a[0] + a[2]))
    ay0, ay1 = sorted((a[1], a[1] + a[3]))
    bx0, bx1 = sorted((b[0], b[0] + b[2]))
    by0, by1 = sorted((b[1], b[1] + b[3]))
    if ax0 == ax1 or ay0 == ay1 or bx0 == bx1 or by0 == by1:
        return False
    return ax0 < bx1 and bx0 < ax1 and ay0 < by1 and by0 < ay1


def place_labels(centre: tuple[float, float], radius: float, labels: Sequence[tuple[float, str]],
                 text_width: Callable[[str], float], line_height: float,
                 taken: Sequence[Rect] = ()) -> list[tuple[Rect, str]]:
    """(rect, text) for each of ``labels`` ((angle, text)), none overlapping another or
    ``taken``; a label that finds no clear place at any of ``RADII`` is left out (its tick on
    the ring still marks the setting). ``text_width(text)``: the text's advance in the font."""
    placed: list[Rect] = list(taken)
    out: list[tuple[Rect, str]] = []
    for angle, text in labels:
        if not text:
            continue
        width = text_width(text) + 2 * PAD + 2
        height = line_height + PAD
        for fraction in RADII:
            x, y = ray_point(centre, angle, radius * fraction)
            rect = (x - width / 2, y - height / 2, width, height)
            grown = (rect[0] - 1, rect[1] - 1, rect[2] + 2, rect[3] + 2)
            if not any(_overlap(grown, other) for other in placed):
                placed.append(rect)
                out.append((rect, text))
                break
    return out
