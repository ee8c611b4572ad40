"""Procedural skull anatomy as attenuation line integrals, lateral and AP views.

Everything is in millimetres in the head's frame (lateral: x toward the face, y down;
AP: x toward the patient's left as seen, y down), origin at the centre of the cranial vault.
Attenuation uses effective coefficients at about 60 keV: soft tissue 0.02/mm, cortical
bone 0.05/mm, diploe ~0.03/mm; air spaces subtract tissue.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .canvas import Canvas, fractal_noise

WATER, CORTEX, DIPLOE = 0.02, 0.05, 0.03


@dataclass
class Anatomy:
    """Where things are, for placing valves and distractors (head-frame mm)."""

    vault: tuple[float, float]  # half length / half width, half height of the vault
    ear: tuple[float, float]
    teeth: list[tuple[float, float]] = field(default_factory=list)
    sites: dict[str, tuple[float, float]] = field(default_factory=dict)


def _shell(canvas: Canvas, rng: np.random.Generator, a: float, b: float, c: float,
           keep: np.ndarray | None, texture_cell_mm: float) -> None:
    """Add the vault: scalp, outer table, diploe, inner table and brain of a deformed ellipsoid."""
    x, y = canvas.grid_mm()
    theta = np.arctan2(y, x)
    wobble = 1.0 + sum(rng.uniform(-0.035, 0.035) * np.cos(k * theta + rng.uniform(0, 2 * np.pi)) for k in (1, 2, 3))
    rho2 = ((x / a) ** 2 + (y / b) ** 2) * wobble.astype(np.float32) ** 2

    def path(k: float) -> np.ndarray:  # chord through the ellipsoid scaled by k
        return 2.0 * c * np.sqrt(np.maximum(k * k - rho2, 0.0))

    outer, table1, diploe, table2 = 1.0, rng.uniform(1.4, 2.2), rng.uniform(2.0, 5.0), rng.uniform(1.0, 1.6)
    r = (a + b) / 2.0
    k1 = outer - table1 / r
    k2 = k1 - diploe / r
    k3 = k2 - table2 / r
    scalp = path(1.0 + rng.uniform(5.0, 8.0) / r) - path(outer)
    texture = 1.0 + 0.45 * fractal_noise(canvas.shape, rng, texture_cell_mm * canvas.px_per_mm, octaves=4)
    bone = CORTEX * (path(outer) - path(k1) + path(k2) - path(k3)) + DIPLOE * texture * (path(k1) - path(k2))
    if keep is not None:
        bone *= keep
    canvas.mu += WATER * (scalp + path(k3)) + bone


def _suture(canvas: Canvas, rng: np.random.Generator, points: list[tuple[float, float]]) -> None:
    """A serrated dark line through the bone (it only subtracts where bone is)."""
    pts = np.asarray(points, float)
    t = np.linspace(0, 1, 120)
    line = np.stack([np.interp(t, np.linspace(0, 1, len(pts)), pts[:, i]) for i in (0, 1)], 1)
    tangent = np.gradient(line, axis=0)
    normal = np.stack([-tangent[:, 1], tangent[:, 0]], 1)
    normal /= np.linalg.norm(normal, axis=1, keepdims=True) + 1e-9
    zig = 1.1 * np.sign(np.sin(np.arange(120) * rng.uniform(2.0, 2.8))) * rng.uniform(0.4, 1.0, 120)
    canvas.polyline(line + normal * zig[:, None], rng.uniform(0.5, 0.9), -0.35, blur_mm=0.15)


def _teeth(canvas: Canvas, rng: np.random.Generator, x0: float, x1: float, y_upper: float, y_lower: float,
           n: int, ap: bool) -> list[tuple[float, float]]:
    crowns = []
    xs = np.linspace(x0, x1, n)
    width = (x1 - x0) / n * 0.95
    for row, y in ((0, y_upper), (1, y_lower)):
        for i, x in enumerate(xs):
            if rng.random() < 0.08:
                continue  # a missing tooth
            root = -1 if row == 0 else 1
            crown_y = y + root * -3.0
            density = 1.0 if ap else 0.8
            canvas.polygon([(x - width / 2, crown_y), (x + width / 2, crown_y), (x + width * 0.3, y + root * 11),
                            (x - width * 0.3, y + root * 11)], density * 0.7, blur_mm=0.3)
            canvas.ellipse((x, crown_y), (width / 2, 3.5), density, blur_mm=0.3)  # enamel
            crowns.append((float(x), float(crown_y)))
    return crowns


def lateral(canvas: Canvas, rng: np.random.Generator) -> Anatomy:
    a, b, c = rng.uniform(86, 98), rng.uniform(68, 78), rng.uniform(68, 76)
    x, y = canvas.grid_mm()
    base_x = np.array([-a - 10, -70, -45, -20, 0, 15, 30, 70, a + 10])
    base_y = np.array([35, 58, 62, 34, 38, 42, 20, 16, 28]) + rng.normal(0, 2, 9)
    keep = 1.0 / (1.0 + np.exp((y - np.interp(x, base_x, base_y) - 6.0) / 3.0))
    # Face and neck soft tissue first: the vault's shell adds on top.
    face = [(40, 20), (a + 6, 5), (a + 12, 35), (a + 30, 70), (a + 16, 80), (a + 14, 102), (a + 8, 126),
            (a + 2, 145), (60, 150), (20, 125), (40, 60)]
    canvas.polygon(face, WATER * 120, blur_mm=4)
    canvas.polygon([(-a + 15, 40), (30, 60), (60, 150), (70, 260), (-a + 5, 260), (-a - 5, 80)], WATER * 115, blur_mm=6)
    _shell(canvas, rng, a, b, c, keep, texture_cell_mm=rng.uniform(3, 6))
    bone_tex = 1.0 + 0.35 * fractal_noise(canvas.shape, rng, 2.5 * canvas.px_per_mm, octaves=3)
    # Skull base: dense floor, sphenoid ridge, petrous pyramid, sella, clivus, mastoid.
    canvas.polyline(list(zip(base_x[1:-1], base_y[1:-1] + 2)), 6.0, 0.9, blur_mm=1.5, texture=bone_tex)
    canvas.polygon([(-45, 30), (-5, 30), (5, 46), (-25, 58), (-50, 50)], 1.6, blur_mm=2.5, texture=bone_tex)
    canvas.ellipse((8, 36), (6.0, 5.0), 0.7, thickness_mm=1.6, arc=(0, 180), blur_mm=0.4)
    canvas.polyline([(2, 42), (-6, 60), (-14, 76)], 5.0, 0.9, blur_mm=1.5)
    canvas.ellipse((-38, 55), (10, 9), 0.5, blur_mm=2, texture=bone_tex)
    ear = (-15.0, 45.0)
    canvas.ellipse(ear, (4.5, 4.0), -0.5, blur_mm=1.0)
    # Face: orbit, frontal sinus, nasal bone, zygoma, maxilla with sinus, palate.
    canvas.ellipse((a - 25, 40), (17, 16), 0.55, thickness_mm=2.5, blur_mm=0.8)
    canvas.ellipse((a - 10, 14), (7, 11), -0.45, blur_mm=1.5)
    canvas.polyline([(a - 2, 30), (a + 12, 56)], 2.0, 0.4, blur_mm=0.4)
    canvas.polyline([(5, 52), (35, 56), (60, 58)], 6.0, 0.7, blur_mm=1.2, texture=bone_tex)
    canvas.polygon([(40, 52), (a + 2, 55), (a + 8, 92), (a - 40, 100), (30, 88)], 0.9, blur_mm=1.5, texture=bone_tex)
    canvas.ellipse((a - 25, 72), (16, 13), -0.7, blur_mm=2.0)
    canvas.polyline([(30, 92), (a + 8, 92)], 3.5, 0.8, blur_mm=0.6)
    teeth = _teeth(canvas, rng, a - 45, a + 6, 97, 112, int(rng.integers(7, 10)), ap=False)
    # Mandible: ramus and body with a cortical rim.
    open_mm = rng.uniform(0, 6)
    mandible = [(5, 48), (14, 80), (12, 112 + open_mm), (40, 132 + open_mm), (a + 2, 142 + open_mm),
                (a + 10, 128 + open_mm), (a - 5, 116 + open_mm), (45, 118), (28, 100), (38, 62), (22, 70)]
    canvas.polygon(mandible, 0.6, blur_mm=1.0, texture=bone_tex)
    canvas.polyline(mandible[:6], 3.0, 0.7, blur_mm=0.6)
    # Cervical spine below the skull base, airway in front of it.
    canvas.polyline([(40, 70), (34, 110), (30, 170), (30, 260)], rng.uniform(10, 15), -1.1, blur_mm=3)
    sx, tilt = rng.uniform(-10, 5), rng.uniform(-0.25, 0.05)
    canvas.polyline([(sx + 4, 62), (sx + 2, 80)], 8, 0.9, blur_mm=1.0)  # dens
    for i in range(7):
        cy = 88 + 21 * i
        cx = sx + tilt * (cy - 88)
        canvas.ellipse((cx, cy), (9, 8), 1.0, blur_mm=1.0, texture=bone_tex)
        canvas.ellipse((cx, cy), (9, 8), 0.6, thickness_mm=1.6, blur_mm=0.4)
        canvas.polyline([(cx - 12, cy - 2), (cx - 36 - 2 * i, cy + 6)], 6, 0.8, blur_mm=1.5)
    canvas.polyline([(-25, 72), (-50, 82)], 7, 0.8, blur_mm=1.5)  # C1 posterior arch
    # Sutures: coronal, lambdoid, squamosal.
    _suture(canvas, rng, [(rng.uniform(0, 25), -b - 2), (30, -30), (40, 10), (45, 32)])
    _suture(canvas, rng, [(-a * 0.55, -b * 0.85), (-a * 0.8, -20), (-a * 0.85, 10), (-a * 0.6, 45)])
    _suture(canvas, rng, [(-40, 25), (-20, 12), (5, 15), (20, 30)])
    sites = {"parietal": (rng.uniform(-60, -30), rng.uniform(-50, -25)),
             "occipital": (rng.uniform(-a + 4, -a + 18), rng.uniform(-20, 15)),
             "frontal": (rng.uniform(30, 55), rng.uniform(-b + 8, -b + 22))}
    return Anatomy((a, b), ear, teeth, sites)


def anteroposterior(canvas: Canvas, rng: np.random.Generator) -> Anatomy:
    a, b, c = rng.uniform(66, 76), rng.uniform(70, 80), rng.uniform(86, 96)
    x, y = canvas.grid_mm()
    keep = 1.0 / (1.0 + np.exp((y - 48.0 - 0.25 * np.abs(x)) / 4.0))
    canvas.polygon([(-a + 6, 30), (a - 6, 30), (a - 8, 110), (55, 135), (0, 152), (-55, 135), (-a + 8, 110)],
                   WATER * 140, blur_mm=5)
    canvas.polygon([(-60, 110), (60, 110), (58, 260), (-58, 260)], WATER * 110, blur_mm=8)
    _shell(canvas, rng, a, b, c, keep, texture_cell_mm=rng.uniform(3, 6))
    bone_tex = 1.0 + 0.35 * fractal_noise(canvas.shape, rng, 2.5 * canvas.px_per_mm, octaves=3)
    # Petrous ridges cross the orbits; mastoids laterally.
    for side in (-1, 1):
        canvas.polygon([(side * 12, 38), (side * (a - 6), 42), (side * (a - 10), 62), (side * 20, 52)], 1.3,
                       blur_mm=2.5, texture=bone_tex)
        canvas.ellipse((side * (a - 10), 68), (7, 11), 0.9, blur_mm=2, texture=bone_tex)
        canvas.ellipse((side * 31, 36), (17, 16), 0.55, thickness_mm=2.6, blur_mm=0.8)  # orbit rim
        canvas.ellipse((side * 31, 36), (14, 13), -0.25, blur_mm=2)
        canvas.ellipse((side * 30, 74), (13, 16), -0.6, blur_mm=2.5)  # maxillary sinus
        canvas.polyline([(side * 45, 52), (side * (a - 2), 62)], 4, 0.6, blur_mm=1)  # zygomatic arch
    canvas.ellipse((0, 14), (16, 9), -0.5, blur_mm=2)  # frontal sinus
    canvas.polygon([(0, 45), (14, 92), (-14, 92)], -0.5, blur_mm=1.5)  # nasal cavity
    canvas.polyline([(0, 48), (0, 92)], 2.0, 0.5, blur_mm=0.5)  # septum
    canvas.polyline([(-40, 92), (40, 92)], 4, 0.9, blur_mm=1.0)  # palate / maxilla floor
    teeth = _teeth(canvas, rng, -32, 32, 100, 115, int(rng.integers(8, 12)), ap=True)
    mandible = [(-a + 12, 62), (-a + 16, 112), (-30, 138), (0, 148), (30, 138), (a - 16, 112), (a - 12, 62)]
    canvas.polyline(mandible, 7, 1.0, blur_mm=1.5, texture=bone_tex)
    canvas.polyline(mandible, 3, 0.6, blur_mm=0.6)
    for i in range(5):  # cervical spine below the mandible, dens behind the teeth
        cy = 120 + 22 * i
        canvas.ellipse((0, cy), (13, 8), 1.0, blur_mm=1.2, texture=bone_tex)
    canvas.polyline([(0, 90), (0, 112)], 9, 0.7, blur_mm=1.5)
    _suture(canvas, rng, [(rng.normal(0, 2), -b - 2), (rng.normal(0, 2), -b * 0.5), (rng.normal(0, 3), -10)])
    for side in (-1, 1):  # lambdoid seen through the vault
        _suture(canvas, rng, [(0, -b * 0.55), (side * a * 0.5, -15), (side * a * 0.85, 25)])
    sites = {"parietal": (rng.choice([-1, 1]) * rng.uniform(a * 0.55, a * 0.8), rng.uniform(-30, 5)),
             "occipital": (rng.choice([-1, 1]) * rng.uniform(10, 40), rng.uniform(-20, 20)),
             "frontal": (rng.choice([-1, 1]) * rng.uniform(15, 35), rng.uniform(-b + 10, -b + 25))}
    return Anatomy((a, b), (a - 4, 55), teeth, sites)
