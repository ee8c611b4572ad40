"""Radiopaque parts of each valve design, in the canonical view of the facts file.

Coordinates are millimetres, origin at the hub the setting turns about, x to the valve's
right, y toward the outlet (the inlet is at 12 o'clock, negative y). Parts marked ``turns``
are drawn at setting angle 0 (pointing to the inlet) and turned clockwise by the indicator
angle of the chosen setting. Dimensions follow ``valve-facts.yaml`` where it gives them
([C]/[M]); the rest is drawn from the dataset's appearance notes and is approximate.
Densities are attenuation line integrals at normal incidence (titanium plate ~0.4,
magnet ~1.7, tantalum ball ~2.5, barium silicone ~0.05).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .shapes import Capsule, Circle, Ellipse, Ring, RoundedBox, Shape, triangle

TI, MAGNET, TANTALUM, STEEL, SILICONE = 0.4, 1.7, 2.5, 0.6, 0.05


@dataclass(frozen=True)
class Part:
    shape: Shape
    density: float
    role: str = "body"  # body | indicator | hub | marker
    turns: bool = False


@dataclass(frozen=True)
class ValveDesign:
    valve_id: str
    parts: tuple[Part, ...]
    inlet: tuple[float, float]
    outlet: tuple[float, float]
    notes: dict[str, object] = field(default_factory=dict)

    def extent(self) -> float:
        """Radius (mm) around the hub that holds every part."""
        return max(p.shape.extent() for p in self.parts)


def _polar(radius: float, angle_deg: float) -> tuple[float, float]:
    a = np.deg2rad(angle_deg)
    return float(radius * np.sin(a)), float(-radius * np.cos(a))


def _connectors(top: float, bottom: float, length: float = 4.0, density: float = 0.3) -> list[Part]:
    return [
        Part(Capsule(0, top, 0, top - length, 1.0), density),
        Part(Capsule(0, bottom, 0, bottom + length, 1.0), density),
    ]


def _gravity_unit(y0: float, rings: int) -> list[Part]:
    """Miethke gravitational unit (SA 2.0 / GAV) below the valve, ring-coded [C]."""
    parts = [Part(Capsule(0, y0, 0, y0 + 10, 2.1), 0.3), Part(Circle(0, y0 + 3, 1.1), 0.6)]
    parts += [Part(RoundedBox(0, y0 + 5.5 + 1.4 * i, 4.8, 0.6), 0.5) for i in range(rings)]
    return parts


def codman_hakim(rng: np.random.Generator) -> ValveDesign:
    parts = [
        Part(RoundedBox(0, -2, 13, 22, radius=3), 0.12),  # titanium base plate
        Part(Ring(0, -7.5, 1.5, 2.3), 0.55),
        Part(RoundedBox(0, -7.5, 4.0, 0.7), 0.5),  # inlet ball/seat
        Part(Circle(0, 0, 3.6), 0.9, "hub"),  # cam disc
        Part(RoundedBox(0, -3.3, 1.5, 1.8), -0.95, "indicator", turns=True),  # rim notch
        *[Part(Circle(*_polar(1.9, a), 0.5), -0.55, "body", turns=True) for a in (60, 180, 300)],
        Part(Circle(3.2, -6.5, 0.6), 1.2, "marker"),  # right-hand-side dot
        Part(RoundedBox(0, 6.0, 6.0, 3.5, radius=0.8), 0.45),  # stepper motor
        *_connectors(-9.5, 8.5, 4.5),
    ]
    if rng.random() < 0.35:  # SIPHONGUARD distal
        parts += [Part(Capsule(0, 14.5, 0, 22, 2.5), 0.14), Part(Ring(0, 18, 1.0, 1.6), 0.3)]
    return ValveDesign("codman_hakim_programmable", tuple(parts), (0, -14), (0, 23))


def codman_certas(rng: np.random.Generator) -> ValveDesign:
    small = rng.random() < 0.3
    width = 14.0 if small else 17.0
    parts = [
        Part(Circle(0, -16, 5.25), 0.06),
        Part(Ring(0, -16, 4.8, 5.25), 0.08),  # reservoir [M]
        Part(RoundedBox(0, -1, width, 20, radius=6), 0.07),  # mechanism housing
        Part(Circle(0, 0, 1.5), 0.7, "hub"),  # rotating construct
        Part(RoundedBox(0, -3.2, 2.5, 1.2), MAGNET, "indicator", turns=True),
        Part(Circle(0, -4.35, 0.55), TANTALUM, "indicator", turns=True),  # ball on the set magnet
        Part(RoundedBox(0, 3.2, 2.5, 1.2), MAGNET, "body", turns=True),
        Part(triangle(0, -8.4, 2.2, 180), 0.9, "marker"),  # flow arrow [M]
        Part(Circle(3.6, -7.5, 0.5), 1.5, "marker"),  # RHS marker [M]
        *_connectors(-21.3, 9.0, 4.0, 0.25),
    ]
    outlet = 13.0
    if rng.random() < 0.35:  # SIPHONGUARD
        parts.append(Part(Capsule(0, 13, 0, 20, 2.6), 0.12))
        outlet = 21.0
    return ValveDesign("codman_certas_plus", tuple(parts), (0, -25.3), (0, outlet))


def sophy_sm8(rng: np.random.Generator) -> ValveDesign:
    range_dots = int(rng.integers(0, 4))  # 0-3 points code the pressure range [C]
    parts = [
        Part(Circle(0, 0, 8.0), 0.06),  # polysulfone body, d = 16 mm [C]
        Part(
            RoundedBox(0, -11.5, 2.6, 7.5, radius=0.8), STEEL
        ),  # steel connectors, 32 mm overall [C]
        Part(RoundedBox(0, 11.5, 2.6, 7.5, radius=0.8), STEEL),
        Part(Ring(0, 0, 6.2, 6.7), 0.25),
        Part(Circle(0, 0, 1.3), 0.35, "hub"),
        Part(RoundedBox(0, -2.7, 2.4, 2.4, radius=0.3), MAGNET, "indicator", turns=True),
        Part(Circle(0, -4.5, 0.45), 1.2, "indicator", turns=True),  # [U] tip mark of the rotor
        Part(RoundedBox(0, 2.7, 2.4, 2.4, radius=0.3), MAGNET, "body", turns=True),
        *[
            Part(Circle(*_polar(6.45, 300 + 14 * i), 0.42), 1.0, "marker")
            for i in range(range_dots)
        ],
    ]
    return ValveDesign(
        "sophysa_sophy_minism8", tuple(parts), (0, -15.5), (0, 15.5), {"range_dots": range_dots}
    )


def _progav_rotor() -> list[Part]:
    parts = [Part(Circle(0, 0, 3.9), 0.2, "hub")]
    parts += [
        Part(Circle(*_polar(2.6, a), 0.85), MAGNET, "indicator", turns=True) for a in (-28, 28)
    ]
    parts += [Part(Circle(*_polar(2.6, a), 0.85), MAGNET, "body", turns=True) for a in (152, 208)]
    parts += [Part(Circle(*_polar(3.1, a), 0.55), -0.35, "body", turns=True) for a in (118, 242)]
    return parts


def progav2(rng: np.random.Generator) -> ValveDesign:
    parts = [
        Part(Circle(0, 0, 6.0), 0.12),
        Part(Ring(0, 0, 6.0, 7.2), 0.55),  # titanium housing
        *_progav_rotor(),
        Part(Ellipse(6.6, 0, 0.55, 2.2), -0.45, "marker"),  # black side marker, right [C]
        *_connectors(-7.0, 7.0, 4.0, 0.4),
    ]
    outlet = 11.0
    if rng.random() < 0.7:
        parts += _gravity_unit(13.0, int(rng.integers(0, 5)))
        outlet = 25.0
    return ValveDesign("miethke_progav_2", tuple(parts), (0, -11), (0, outlet))


def progav1(rng: np.random.Generator) -> ValveDesign:
    parts = [
        Part(Circle(0, 0, 6.0), 0.12),
        Part(Ring(0, 0, 6.0, 7.2), 0.55),
        Part(RoundedBox(7.0, 0, 2.2, 9.0), -0.56),  # flat side on the right [C]
        Part(RoundedBox(5.7, 0, 0.9, 8.8), 0.55),
        Part(Circle(0, 0, 0.8), 0.3, "hub"),
        Part(Ellipse(0, 0, 1.9, 3.4), 0.25, "body", turns=True),
        *[Part(Circle(0, y, 0.9), MAGNET, "body", turns=True) for y in (-1.9, 1.9)],
        Part(triangle(0, -4.3, 1.8, 0), 1.0, "indicator", turns=True),  # rotor tip = setting
        *_connectors(-7.0, 7.0, 4.0, 0.4),
    ]
    outlet = 11.0
    if rng.random() < 0.6:
        parts += _gravity_unit(13.0, int(rng.integers(0, 5)))
        outlet = 25.0
    return ValveDesign("miethke_progav_1", tuple(parts), (0, -11), (0, outlet))


def strata(rng: np.random.Generator) -> ValveDesign:
    parts = [
        Part(RoundedBox(0, -2, 12, 30, radius=6), 0.05),  # housing
        Part(Ring(0, -10, 3.6, 4.3), 0.12),  # reservoir dome
        Part(Circle(0, 0, 3.3), 0.65, "hub"),  # rotor disc
        Part(Circle(0, -3.4, 0.8), 1.6, "indicator", turns=True),  # white notch/dot
        Part(triangle(0, -6.3, 2.4, 180), 1.0, "marker"),  # flow director [C]
        Part(RoundedBox(2.3, -6.3, 0.6, 2.2), 1.0, "marker"),  # bar to its right [M]
        Part(RoundedBox(0, 7.5, 6.0, 5.5, radius=2), 0.15),
        Part(Circle(0, 7.5, 1.1), 0.4),  # Delta chamber
        *_connectors(-17.0, 13.0, 3.0, 0.2),
    ]
    return ValveDesign("medtronic_ps_medical_strata", tuple(parts), (0, -20), (0, 16))


def integra_dp(rng: np.random.Generator) -> ValveDesign:
    parts = []
    for y in (-3.5, 10.5):  # two in-line dense cylinders, ~2.3x as long as wide [M]
        parts += [
            Part(RoundedBox(0, y, 3.0, 7.0, radius=1.2), 0.85),
            Part(RoundedBox(0, y, 1.1, 5.0, radius=0.5), -0.3),
        ]
    parts.append(Part(Capsule(0, 0, 0, 7, 1.1), SILICONE))
    if rng.random() < 0.6:  # burr-hole reservoir ring upstream
        parts.append(Part(Ring(0, -14.5, 4.0, 4.8), 0.2))
    return ValveDesign("integra_dp", tuple(parts), (0, -19.5), (0, 14.5))


def delta(rng: np.random.Generator) -> ValveDesign:
    parts = [
        Part(RoundedBox(0, 0, 12, 26, radius=6), 0.04),
        Part(triangle(0, -3.5, 2.2, 180), 1.2, "marker"),
    ]
    extra = rng.random()
    if extra < 0.45:
        parts.append(Part(triangle(0, 1.5, 2.2, 180), 1.2, "marker"))
    elif extra < 0.8:
        parts.append(Part(Circle(0, 1.5, 0.6), 1.2, "marker"))
    return ValveDesign("medtronic_ps_medical_delta", tuple(parts), (0, -13), (0, 13))


def spitz_holter(rng: np.random.Generator) -> ValveDesign:
    parts = [Part(Capsule(0, -18, 0, 18, 1.3), SILICONE)]
    for y in (-18.0, 18.0):  # two cylinders with stem ends, gap ~3.5 lengths [M]
        parts += [
            Part(RoundedBox(0, y, 3.4, 8.0, radius=1.4), 0.8),
            Part(Capsule(0, y - 4, 0, y - 6.5, 0.7), 0.6),
            Part(Capsule(0, y + 4, 0, y + 6.5, 0.7), 0.6),
        ]
    return ValveDesign("unknown_spitz_holter", tuple(parts), (0, -25), (0, 25))


def codman_fixed(rng: np.random.Generator) -> ValveDesign:
    dots = int(rng.integers(2, 5))
    parts = [
        Part(RoundedBox(0, 1, 13, 24, radius=5), 0.03),
        Part(Ring(0, -9.5, 2.4, 3.1), 0.25),  # inlet connector/reservoir
        *[Part(Circle(0, -2.0 + 2.8 * i, 0.7), 1.4, "marker") for i in range(dots)],
        Part(triangle(0, 11.0, 1.6, 180), 0.6, "marker"),
    ]
    return ValveDesign("unknown_codman_fixed", tuple(parts), (0, -13), (0, 14), {"dots": dots})


BUILDERS = {
    "codman_hakim_programmable": codman_hakim,
    "codman_certas_plus": codman_certas,
    "sophysa_sophy_minism8": sophy_sm8,
    "miethke_progav_2": progav2,
    "miethke_progav_1": progav1,
    "medtronic_ps_medical_strata": strata,
    "integra_dp": integra_dp,
    "medtronic_ps_medical_delta": delta,
    "unknown_spitz_holter": spitz_holter,
    "unknown_codman_fixed": codman_fixed,
}


def build_design(valve_id: str, rng: np.random.Generator) -> ValveDesign:
    """The parts of ``valve_id`` (a catalogue id or an ``unknown_*`` design), variant from ``rng``.

    Raises:
        ValueError: no design of that id.
    """
    try:
        builder = BUILDERS[valve_id]
    except KeyError:
        raise ValueError(
            f"no phantom design for valve '{valve_id}'; known: {', '.join(BUILDERS)}"
        ) from None
    return builder(rng)
