"""Geometry of the reading aid: a valve's dial laid over the radiograph, moved, rotated, flipped.

The user places the dial on the zoomed valve (``DialPose``: centre, rotation, mirror, size),
turns its needle onto the valve's indicator (notch, magnet, rotor tip), and the aid names the
setting the needle points to. All angles are degrees clockwise from "up"; image coordinates
are pixels with y downward. The GUI draws with the same numbers:
``QTransform().translate(cx, cy).rotate(rotation_deg).scale(-s if mirrored else s, s)`` maps
dial coordinates (canonical view, radius 1, y down) to image pixels, with ``s = radius_px``.
No Qt here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from .templates import Dial, DialSetting, Template, clock_position


def angle_of(dx: float, dy: float) -> float:
    """Direction of the vector (dx, dy) in image coordinates (y down), degrees clockwise from up."""
    return math.degrees(math.atan2(dx, -dy)) % 360.0


@dataclass(frozen=True)
class DialPose:
    """Where the dial lies on the image.

    center_x, center_y: dial centre in image pixels.
    rotation_deg: where the dial's inlet direction (12 o'clock) points in the image,
        clockwise from image-up; 0 when the valve's inlet points straight up.
    mirrored: the image shows the valve from its base (the side marker is on the wrong
        side), so the dial is drawn flipped and its scale runs anticlockwise.
    radius_px: dial radius in image pixels.
    """

    center_x: float = 0.0
    center_y: float = 0.0
    rotation_deg: float = 0.0
    mirrored: bool = False
    radius_px: float = 50.0

    def moved(self, dx: float, dy: float) -> DialPose:
        return replace(self, center_x=self.center_x + dx, center_y=self.center_y + dy)

    def rotated(self, delta_deg: float) -> DialPose:
        return replace(self, rotation_deg=(self.rotation_deg + delta_deg) % 360.0)

    def flipped(self) -> DialPose:
        return replace(self, mirrored=not self.mirrored)

    def scaled(self, factor: float) -> DialPose:
        if not factor > 0:
            raise ValueError(f"dial scale factor must be positive, got {factor}")
        return replace(self, radius_px=self.radius_px * factor)

    def canonical_angle(self, image_angle_deg: float) -> float:
        """An image direction as the canonical angle on the valve's dial."""
        relative = image_angle_deg - self.rotation_deg
        return (-relative if self.mirrored else relative) % 360.0

    def image_angle(self, canonical_deg: float) -> float:
        """A canonical dial angle as a direction in the image."""
        return ((-canonical_deg if self.mirrored else canonical_deg) + self.rotation_deg) % 360.0

    def to_image(self, x: float, y: float) -> tuple[float, float]:
        """Dial coordinates (canonical view, radius 1, y down) to image pixels."""
        x = -x if self.mirrored else x
        a = math.radians(self.rotation_deg)
        rx, ry = x * math.cos(a) - y * math.sin(a), x * math.sin(a) + y * math.cos(a)
        return self.center_x + rx * self.radius_px, self.center_y + ry * self.radius_px

    def to_dial(self, px: float, py: float) -> tuple[float, float]:
        """Image pixels to dial coordinates (inverse of :meth:`to_image`)."""
        dx, dy = (px - self.center_x) / self.radius_px, (py - self.center_y) / self.radius_px
        a = math.radians(-self.rotation_deg)
        x, y = dx * math.cos(a) - dy * math.sin(a), dx * math.sin(a) + dy * math.cos(a)
        return (-x if self.mirrored else x), y

    def tick_position(self, setting: DialSetting, radius: float = 1.0) -> tuple[float, float] | None:
        """Image position of a setting's tick at ``radius`` (dial units); None if its angle is unknown."""
        if setting.angle_deg is None:
            return None
        a = math.radians(setting.angle_deg)
        return self.to_image(radius * math.sin(a), -radius * math.cos(a))


@dataclass(frozen=True)
class DialReading:
    """What the reading aid shows and what goes into the report."""

    valve_id: str
    valve_name: str
    setting: DialSetting | None
    needle_deg: float  # canonical angle of the needle on the dial
    pose: DialPose

    def as_text(self) -> str:
        """One report line, e.g. 'Reading aid (...): 100 mmH2O [M], may be 90 mmH2O or 110 mmH2O
        (needle at 190 deg, 6:20); user-aligned, check'. The setting's reading text carries the
        tag of the facts it rests on; a dial with unverified angles names no pressure."""
        where = f"needle at {self.needle_deg:.0f} deg, {clock_position(self.needle_deg)}"
        if self.pose.mirrored:
            where += "; image read as mirrored"
        if self.setting is None:
            return f"Reading aid ({self.valve_name}): no setting at the needle ({where})"
        return f"Reading aid ({self.valve_name}): {self.setting.reading_text()} ({where}); user-aligned, check"

    @property
    def basis(self) -> str:
        """The facts the reading rests on, weakest tag first; '' without a setting."""
        return self.setting.basis if self.setting is not None else ""


class ReadingAid:
    """The state of one reading: a template's dial, its pose on the image, and the needle."""

    def __init__(self, template: Template, pose: DialPose | None = None) -> None:
        if template.dial is None:
            raise ValueError(f"{template.name} has no dial to lay over the image ({template.kind} valve)")
        self.template = template
        self.dial: Dial = template.dial
        self.pose = pose or DialPose()
        self.needle_deg = 0.0  # canonical

    def point_needle_at(self, px: float, py: float) -> None:
        """Turn the needle toward an image point (e.g. where the user clicked the notch)."""
        x, y = self.pose.to_dial(px, py)
        if x or y:
            self.needle_deg = angle_of(x, y)

    def set_needle(self, canonical_deg: float) -> None:
        self.needle_deg = canonical_deg % 360.0

    def snap_needle(self) -> None:
        """Move the needle onto the nearest setting's angle, if one matches."""
        setting = self.dial.setting_at(self.needle_deg)
        if setting is not None and setting.angle_deg is not None:
            self.needle_deg = setting.angle_deg

    def step(self, direction: int) -> None:
        """Move the needle to the next (+1) or previous (-1) setting with a known angle (keys)."""
        known = [s for s in self.dial.settings if s.angle_deg is not None]
        if not known:
            return
        current = self.dial.setting_at(self.needle_deg)
        index = known.index(current) if current in known else 0
        self.needle_deg = float(known[(index + direction) % len(known)].angle_deg or 0.0)

    def reading(self) -> DialReading:
        # the needle angle is already canonical: the pose's mirror was applied in to_dial
        setting = self.dial.setting_at(self.needle_deg)
        return DialReading(self.template.valve_id, self.template.name, setting, self.needle_deg, self.pose)
