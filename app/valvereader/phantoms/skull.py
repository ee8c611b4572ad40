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


def _shell(
    canvas: Canvas,
    rng: np.random.Generator,
    a: float,
    b: float,
    c: float,
    keep: np.ndarray | None,
    texture_cell_mm: float,
    soft_keep: np.ndarray | None = None,
) -> None:
    """Add the vault: scalp, outer table, diploe, inner table and brain of a deformed ellipsoid."""
    x, y = canvas.grid_mm()
    theta = np.arctan2(y, x)
    wobble = 1.0 + sum(
        rng.uniform(-0.035, 0.035) * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
        for k in (1, 2, 3)
    )
    rho2 = ((x / a) ** 2 + (y / b) ** 2) * wobble.astype(np.float32) ** 2

    def path(k: float) -> np.ndarray:  # chord through the ellipsoid scaled by k
        return 2.0 * c * np.sqrt(np.maximum(k * k - rho2, 0.0))

    outer, table1, diploe, table2 = (
        1.0,
        rng.uniform(1.4, 2.2),
        rng.uniform(2.0, 5.0),
        rng.uniform(1.0, 1.6),
    )
    r = (a + b) / 2.0
    k1 = outer - table1 / r
    k2 = k1 - diploe / r
    k3 = k2 - table2 / r
    scalp = path(1.0 + rng.uniform(5.0, 8.0) / r) - path(outer)
    texture = 1.0 + 0.18 * fractal_noise(
        canvas.shape, rng, texture_cell_mm * canvas.px_per_mm, octaves=3
    )
    bone = CORTEX * (path(outer) - path(k1) + path(k2) - path(k3)) + DIPLOE * texture * (
        path(k1) - path(k2)
    )
    if keep is not None:
        bone *= keep
    soft = WATER * (scalp + path(k3))
    if soft_keep is not None:
        soft *= soft_keep
    canvas.mu += soft + bone


def _suture(
    canvas: Canvas,
    rng: np.random.Generator,
    points: list[tuple[float, float]],
    density: float = -0.3,
) -> None:
    """A serrated dark line through the bone (it only subtracts where bone is)."""
    pts = np.asarray(points, float)
    t = np.linspace(0, 1, 120)
    line = np.stack([np.interp(t, np.linspace(0, 1, len(pts)), pts[:, i]) for i in (0, 1)], 1)
    tangent = np.gradient(line, axis=0)
    normal = np.stack([-tangent[:, 1], tangent[:, 0]], 1)
    normal /= np.linalg.norm(normal, axis=1, keepdims=True) + 1e-9
    zig = 1.1 * np.sign(np.sin(np.arange(120) * rng.uniform(2.0, 2.8))) * rng.uniform(0.4, 1.0, 120)
    canvas.polyline(
        line + normal * zig[:, None],
        rng.uniform(0.5, 0.9),
        density * rng.uniform(0.6, 1.0),
        blur_mm=0.2,
    )


def _teeth(canvas: Canvas, rng: np.random.Generator, x0: float, x1: float, occlusal: float, n: int,
           copies: int, density: float = 1.0) -> list[tuple[float, float]]:
    """Upper and lower teeth meeting at ``occlusal``; ``copies`` > 1 superimposes both sides.

    Teeth widen from front (x1) to back (x0), as incisors give way to molars; crowns
    overlap and front teeth lean forward.
    """
    crowns = []
    xs = np.linspace(x0, x1, n)
    spacing = (x1 - x0) / max(n - 1, 1)
    for copy in range(copies):
        shift = copy * rng.uniform(2.0, 5.0)
        for sign in (-1, 1):  # upper (roots up), lower (roots down)
            for i, x in enumerate(xs + shift):
                if rng.random() < 0.07:
                    continue  # a missing tooth
                front = i / max(n - 1, 1)  # 0 at the back, 1 at the front
                width = spacing * rng.uniform(1.1, 1.4) * (1.3 - 0.5 * front)
                crown_h, root_h = rng.uniform(6.5, 8.5), rng.uniform(10, 15)
                lean = (front * rng.uniform(3, 7)) if copies > 1 else 0.0
                top = occlusal + sign * rng.uniform(0.3, 1.5)
                crown_y = top + sign * crown_h / 2
                root_end = top + sign * (crown_h + root_h)
                canvas.polygon([(x - width * 0.4, crown_y), (x + width * 0.4, crown_y),
                                (x + width * 0.1 - lean, root_end), (x - width * 0.1 - lean, root_end)],
                               0.4 * density, blur_mm=0.8)
                canvas.ellipse((x, crown_y), (width / 2, crown_h / 2), 0.5 * density, blur_mm=0.7)
                crowns.append((float(x), float(crown_y)))
    return crowns


def lateral(canvas: Canvas, rng: np.random.Generator) -> Anatomy:
    a, b, c = rng.uniform(86, 98), rng.uniform(68, 78), rng.uniform(68, 76)
    x, y = canvas.grid_mm()
    base_x = np.array([-a - 10, -70, -45, -20, 0, 15, 30, 70, a + 10])
    base_y = np.array([35, 58, 62, 34, 38, 42, 20, 16, 28]) + rng.normal(0, 2, 9)
    base = np.interp(x, base_x, base_y)
    keep = 1.0 / (1.0 + np.exp((y - base - 6.0) / 3.0))
    soft_keep = 1.0 / (1.0 + np.exp((y - base - 14.0) / 7.0))
    # Face and neck soft tissue below the vault; the vault's shell adds on top.
    face = [
        (0.85 * a, 24),
        (a + 6, 30),
        (a + 14, 48),
        (a + 28, 68),
        (a + 14, 80),
        (a + 15, 100),
        (a + 8, 128),
        (a, 146),
        (40, 152),
        (18, 112),
        (22, 52),
    ]
    canvas.polygon(face, WATER * 110, blur_mm=5)
    canvas.polygon(
        [(-a + 10, 62), (20, 66), (55, 150), (70, 260), (-a + 5, 260), (-a - 5, 90)],
        WATER * 85,
        blur_mm=10,
    )
    _shell(canvas, rng, a, b, c, keep, texture_cell_mm=rng.uniform(3, 6), soft_keep=soft_keep)
    bone_tex = 1.0 + 0.15 * fractal_noise(canvas.shape, rng, 4.0 * canvas.px_per_mm, octaves=3)
    # Skull base: orbital roofs and floor lines, petrous pyramid, sella, clivus, mastoid cells.
    canvas.polyline(
        list(zip(base_x[1:-1], base_y[1:-1] + 2)), 4.0, 0.6, blur_mm=1.5, texture=bone_tex
    )
    canvas.polyline([(18, 24), (45, 19), (a - 12, 18)], 1.5, 0.5, blur_mm=0.5)  # orbital roof
    canvas.polygon(
        [(-48, 32), (-8, 30), (4, 44), (-22, 58), (-52, 52)], 1.2, blur_mm=3.0, texture=bone_tex
    )
    canvas.ellipse((8, 36), (6.0, 5.0), 0.7, thickness_mm=1.6, arc=(0, 180), blur_mm=0.4)  # sella
    canvas.polyline([(2, 42), (-6, 60), (-12, 74)], 5.0, 0.7, blur_mm=1.5)  # clivus
    cells = 1.0 + 0.5 * fractal_noise(canvas.shape, rng, 1.5 * canvas.px_per_mm, octaves=2)
    canvas.ellipse((-36, 56), (10, 9), 0.45, blur_mm=2, texture=cells)
    ear = (-15.0, 45.0)
    canvas.ellipse(ear, (4.5, 4.0), -0.4, blur_mm=1.0)
    # Face: lateral orbital rim, frontal sinus, nasal bone, zygoma, maxilla with sinus, palate.
    canvas.ellipse((a - 25, 40), (16, 15), 0.35, thickness_mm=2.0, arc=(100, 260), blur_mm=0.8)
    canvas.ellipse((a - 10, 14), (7, 11), -0.45, blur_mm=1.5)
    canvas.polyline([(a - 2, 30), (a + 12, 56)], 2.0, 0.4, blur_mm=0.4)
    canvas.polyline([(5, 54), (35, 57), (58, 60)], 5.0, 0.45, blur_mm=1.5, texture=bone_tex)
    canvas.polygon(
        [(45, 56), (a - 2, 58), (a + 6, 90), (a - 36, 97), (36, 86)],
        0.5,
        blur_mm=3.0,
        texture=bone_tex,
    )
    canvas.ellipse((a - 24, 72), (15, 12), -0.5, blur_mm=2.5)
    canvas.polyline([(32, 93), (a + 8, 92)], 3.0, 0.6, blur_mm=0.6)  # hard palate
    occlusal = 106 + rng.uniform(-3, 3)
    teeth = _teeth(canvas, rng, a - 45, a + 4, occlusal, int(rng.integers(7, 10)), copies=2)
    # Mandible (both halves superimposed): ramus, angle, body, chin.
    o = rng.uniform(0, 6)
    outline = [
        (8, 52),
        (4, 80),
        (6, 108 + o),
        (14, 118 + o),
        (40, 132 + o),
        (a - 8, 142 + o),
        (a + 4, 136 + o),
        (a + 6, 120 + o),
        (a - 2, 112 + o),
        (50, 114 + o),
        (32, 104),
        (34, 66),
        (24, 72),
        (14, 58),
    ]
    canvas.polygon(outline, 0.35, blur_mm=1.5, texture=bone_tex)
    canvas.polyline(outline[1:8], 3.0, 0.5, blur_mm=0.8)  # posterior and lower cortical border
    canvas.polyline(
        [(18, 80), (40, 116 + o), (a - 12, 128 + o)], 1.5, -0.15, blur_mm=1.0
    )  # mandibular canal
    # Cervical spine below the skull base, airway in front of it.
    canvas.polyline(
        [(42, 72), (36, 110), (32, 170), (32, 260)], rng.uniform(9, 14), -1.0, blur_mm=3
    )
    sx, tilt = rng.uniform(-10, 4), rng.uniform(-0.25, 0.0)
    canvas.polyline([(sx + 4, 64), (sx + 2, 82)], 7, 0.7, blur_mm=1.2)  # dens
    canvas.polyline([(sx + 14, 74), (sx + 14, 80)], 5, 0.6, blur_mm=1.0)  # C1 anterior arch
    for i in range(7):
        cy = 90 + 20 * i
        cx = sx + tilt * (cy - 90)
        body = [(cx - 8, cy - 7), (cx + 8, cy - 7.5), (cx + 8.5, cy + 7), (cx - 8, cy + 7.5)]
        canvas.polygon(body, 0.7, blur_mm=1.2, texture=bone_tex)
        canvas.polyline(body, 1.4, 0.35, closed=True, blur_mm=0.6)
        canvas.polygon(
            [
                (cx - 12, cy - 6),
                (cx - 22, cy - 4),
                (cx - 34 - 2 * i, cy + 4),
                (cx - 22, cy + 6),
                (cx - 12, cy + 5),
            ],
            0.45,
            blur_mm=2.0,
            texture=bone_tex,
        )  # lamina, spinous process
    canvas.polyline([(-25, 74), (-48, 82)], 6, 0.5, blur_mm=2.0)  # C1 posterior arch
    # Middle meningeal grooves: faint dark branches up from the pterion.
    for _ in range(int(rng.integers(2, 4))):
        pts = [(40 + rng.normal(0, 4), 28.0)]
        for _ in range(5):
            px, py = pts[-1]
            pts.append((px - rng.uniform(3, 12), py - rng.uniform(8, 16)))
        canvas.polyline(pts, 1.0, -0.06, blur_mm=0.6)
    # Sutures: coronal, lambdoid, squamosal.
    _suture(canvas, rng, [(rng.uniform(0, 25), -b - 2), (30, -30), (40, 10), (45, 32)])
    _suture(canvas, rng, [(-a * 0.55, -b * 0.85), (-a * 0.8, -20), (-a * 0.85, 10), (-a * 0.6, 45)])
    sites = {
        "parietal": (rng.uniform(-60, -30), rng.uniform(-50, -25)),
        "occipital": (rng.uniform(-a + 4, -a + 18), rng.uniform(-20, 15)),
        "frontal": (rng.uniform(30, 55), rng.uniform(-b + 8, -b + 22)),
    }
    return Anatomy((a, b), ear, teeth, sites)


def anteroposterior(canvas: Canvas, rng: np.random.Generator) -> Anatomy:
    a, b, c = rng.uniform(66, 76), rng.uniform(70, 80), rng.uniform(86, 96)
    x, y = canvas.grid_mm()
    keep = 1.0 / (1.0 + np.exp((y - 66.0 - 0.1 * np.abs(x)) / 5.0))
    soft_keep = 1.0 / (1.0 + np.exp((y - 74.0) / 8.0))
    canvas.polygon(
        [
            (-a + 6, 50),
            (a - 6, 50),
            (a - 8, 95),
            (a - 20, 125),
            (32, 146),
            (0, 152),
            (-32, 146),
            (-a + 20, 125),
            (-a + 8, 95),
        ],
        WATER * 90,
        blur_mm=8,
    )
    canvas.polygon([(-48, 125), (48, 125), (52, 260), (-52, 260)], WATER * 80, blur_mm=12)
    _shell(canvas, rng, a, b, c, keep, texture_cell_mm=rng.uniform(3, 6), soft_keep=soft_keep)
    bone_tex = 1.0 + 0.15 * fractal_noise(canvas.shape, rng, 4.0 * canvas.px_per_mm, octaves=3)
    eye_y = rng.uniform(26, 34)
    for side in (-1, 1):
        # Petrous ridge across the lower orbit, mastoid, orbit rim, sphenoid wing, sinus, zygoma.
        canvas.polygon(
            [
                (side * 12, eye_y + 6),
                (side * (a - 8), eye_y + 12),
                (side * (a - 10), eye_y + 24),
                (side * 16, eye_y + 14),
            ],
            0.7,
            blur_mm=3.0,
            texture=bone_tex,
        )
        canvas.ellipse((side * (a - 8), eye_y + 36), (7, 11), 0.6, blur_mm=2.5, texture=bone_tex)
        cx = side * 31
        t = np.linspace(0, 2 * np.pi, 48, endpoint=False)
        # A rounded square (superellipse) tilted down laterally, as orbits are.
        ex = np.sign(np.cos(t)) * np.abs(np.cos(t)) ** 0.6 * rng.uniform(16, 18)
        ey = np.sign(np.sin(t)) * np.abs(np.sin(t)) ** 0.6 * rng.uniform(14, 16)
        tilt = np.deg2rad(side * rng.uniform(4, 12))
        rim = list(
            zip(
                cx + ex * np.cos(tilt) - ey * np.sin(tilt),
                eye_y + ex * np.sin(tilt) + ey * np.cos(tilt),
            )
        )
        canvas.polyline(rim, 2.2, 0.5, closed=True, blur_mm=1.2)
        canvas.polygon(rim, -0.35, blur_mm=3.0)
        canvas.polyline([(side * 14, eye_y - 8), (side * 40, eye_y + 10)], 1.2, 0.25, blur_mm=0.8)
        canvas.ellipse((side * 30, eye_y + 42), (12, 14), -0.45, blur_mm=3.0)
        canvas.polyline(
            [(side * 48, eye_y + 22), (side * (a - 2), eye_y + 30)], 4, 0.4, blur_mm=1.5
        )
    canvas.ellipse((0, eye_y - 20), (15, 8), -0.4, blur_mm=2.5)  # frontal sinus
    canvas.polygon(
        [(0, eye_y + 10), (13, eye_y + 58), (-13, eye_y + 58)], -0.4, blur_mm=2.0
    )  # nasal cavity
    canvas.polyline([(0, eye_y + 12), (0, eye_y + 58)], 2.0, 0.35, blur_mm=0.6)  # septum
    canvas.polyline([(-38, eye_y + 62), (38, eye_y + 62)], 3, 0.5, blur_mm=1.5)  # palate
    occlusal = eye_y + 76 + rng.uniform(-2, 2)
    teeth = _teeth(canvas, rng, -26, 26, occlusal, int(rng.integers(9, 12)), copies=1, density=0.6)
    o = rng.uniform(0, 5)
    mandible = [
        (-a + 8, eye_y + 30),
        (-a + 12, occlusal + 8 + o),
        (-30, occlusal + 30 + o),
        (0, occlusal + 36 + o),
        (30, occlusal + 30 + o),
        (a - 12, occlusal + 8 + o),
        (a - 8, eye_y + 30),
    ]
    canvas.polyline(mandible, 8, 0.6, blur_mm=2.0, texture=bone_tex)
    canvas.polyline(mandible, 2.5, 0.5, blur_mm=0.8)
    canvas.polyline(
        [(0, eye_y + 50), (0, eye_y + 66)], 9, 0.5, blur_mm=2.0
    )  # dens behind the palate
    for i in range(5):  # cervical bodies below and behind the mandible
        cy = occlusal + 22 + 20 * i
        canvas.polygon(
            [(-12, cy - 7), (12, cy - 7), (13, cy + 7), (-13, cy + 7)],
            0.6,
            blur_mm=1.5,
            texture=bone_tex,
        )
    _suture(
        canvas,
        rng,
        [(rng.normal(0, 2), -b - 2), (rng.normal(0, 2), -b * 0.5), (rng.normal(0, 3), -10)],
    )
    for side in (-1, 1):  # lambdoid seen through the vault
        _suture(
            canvas,
            rng,
            [(0, -b * 0.55), (side * a * 0.5, -15), (side * a * 0.85, 25)],
            density=-0.15,
        )
    sites = {
        "parietal": (rng.choice([-1, 1]) * rng.uniform(a * 0.55, a * 0.8), rng.uniform(-30, 5)),
        "occipital": (rng.choice([-1, 1]) * rng.uniform(10, 40), rng.uniform(-20, 20)),
        "frontal": (rng.choice([-1, 1]) * rng.uniform(15, 35), rng.uniform(-b + 10, -b + 25)),
    }
    return Anatomy((a, b), (a - 4, eye_y + 30), teeth, sites)
