"""Pressure settings and indicator angles of the valves the phantoms draw.

Angles use the canonical view of ``../shared/valves/valve-facts.yaml``: valve seen from the
scalp, inlet at 12 o'clock, degrees clockwise. Values are copied from that file (tags kept in
the comments); where it has no angle, the phantoms use an *assumed* mapping, marked here and
in ``ASSUMED_ANGLES`` so that nobody mistakes it for a fact.
"""

from __future__ import annotations

from ..catalogue import VALVE_IDS

# Valve ids the facts file spells differently from the catalogue.
FACTS_TO_CATALOGUE: dict[str, str] = {
    "sophysa_sophy_mini_sm8": "sophysa_sophy_minism8",
    "miethke_progav_2_0": "miethke_progav_2",
    "miethke_progav_gen1": "miethke_progav_1",
    "medtronic_strata": "medtronic_ps_medical_strata",
    "medtronic_delta": "medtronic_ps_medical_delta",
}

# Two designs that are none of the catalogue's valves (facts additions: spitz_holter,
# codman_fixed_pressure); they exercise the "unknown valve" path.
UNKNOWN_DESIGNS: tuple[str, ...] = ("unknown_spitz_holter", "unknown_codman_fixed")
ALL_DESIGNS: tuple[str, ...] = (*VALVE_IDS, *UNKNOWN_DESIGNS)


def _hakim_angle(pressure_mmh2o: float) -> float:
    # [M] additions: angle ~= 68 + 17.5 x (P - 30)/10, clockwise.
    return (68.0 + 17.5 * (pressure_mmh2o - 30.0) / 10.0) % 360.0


def _progav_angle(pressure_cmh2o: float) -> float:
    # [M] proGAV card (additions): 0 cmH2O at ~286 deg, 15.0 deg per cmH2O clockwise.
    return (286.0 + 15.0 * pressure_cmh2o) % 360.0


def _clock(hours: int, minutes: int) -> float:
    return ((hours % 12) * 30.0 + minutes * 0.5) % 360.0


# setting label -> indicator angle (deg clockwise from the inlet) per programmable valve.
INDICATOR_ANGLES: dict[str, dict[str, float]] = {
    "codman_hakim_programmable": {str(p): _hakim_angle(p) for p in range(30, 201, 10)},
    # [M] sector_angles_deg_canonical, setting = position 1..8
    "codman_certas_plus": {
        "1": 135.0,
        "2": 180.0,
        "3": 225.0,
        "4": 270.0,
        "5": 315.0,
        "6": 0.0,
        "7": 45.0,
        "8": 90.0,
    },
    "miethke_progav_2": {str(p): _progav_angle(p) for p in range(21)},
    "miethke_progav_1": {str(p): _progav_angle(p) for p in range(21)},
    # [M] StrataMR Fig 6 clock positions, setting = performance level
    "medtronic_ps_medical_strata": {
        "0.5": _clock(3, 0),
        "1.0": _clock(5, 30),
        "1.5": _clock(7, 45),
        "2.0": _clock(10, 15),
        "2.5": _clock(12, 40),
    },
    # [U] ASSUMED: the facts file has no angle per position for the Sophy SM8. The phantoms
    # place position 1 at 125 deg (the one X-ray in the MRI guide) and step 45 deg clockwise.
    # Setting = opening pressure of the standard SM8 range (1 radiopaque point), mmH2O.
    "sophysa_sophy_minism8": {
        str(p): (125.0 + 45.0 * i) % 360.0
        for i, p in enumerate((30, 50, 70, 90, 110, 140, 170, 200))
    },
}
ASSUMED_ANGLES: frozenset[str] = frozenset({"sophysa_sophy_minism8"})

SETTING_UNITS: dict[str, str] = {
    "codman_hakim_programmable": "mmH2O",
    "codman_certas_plus": "position 1-8",
    "miethke_progav_2": "cmH2O",
    "miethke_progav_1": "cmH2O",
    "medtronic_ps_medical_strata": "performance level",
    "sophysa_sophy_minism8": "mmH2O (assumed angles)",
}


def settings_of(valve_id: str) -> tuple[str, ...]:
    """Setting labels of a programmable valve; () for fixed and unknown designs."""
    return tuple(INDICATOR_ANGLES.get(valve_id, {}))


def indicator_angle(valve_id: str, setting: str) -> float | None:
    """Indicator angle in degrees clockwise from the inlet, or None for a fixed valve.

    Raises:
        ValueError: ``setting`` is not a setting of ``valve_id``.
    """
    table = INDICATOR_ANGLES.get(valve_id)
    if table is None:
        return None
    if setting not in table:
        raise ValueError(f"'{setting}' is not a setting of {valve_id}; known: {', '.join(table)}")
    return table[setting]
