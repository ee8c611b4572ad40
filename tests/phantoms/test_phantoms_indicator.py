"""The drawn indicator points where the valve facts file says, for every setting."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from valvereader.phantoms import facts
from valvereader.phantoms.designs import build_design
from valvereader.phantoms.valve import Pose, render_valve


def _entries(path: Path) -> dict[str, dict]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return {entry["id"]: entry for entry in data["valves"]}


def _clock_deg(hours: str, minutes: str) -> float:
    return ((int(hours) % 12) * 30.0 + int(minutes) * 0.5) % 360.0


def angles_from_yaml(folder: Path) -> dict[str, dict[str, float]]:
    """Expected indicator angles per setting, read from the facts files (not from facts.py)."""
    main = _entries(folder / "valve-facts.yaml")
    additions = _entries(folder / "valve-facts-additions.yaml")
    expected: dict[str, dict[str, float]] = {}

    rule = additions["codman_hakim_programmable"]["updates"]["notch_clock_positions_refined"][
        "rule"
    ]
    offset, step, base, per = (
        float(v)
        for v in re.search(
            r"~=\s*([\d.]+)\s*\+\s*([\d.]+)\s*x\s*\(P_mmH2O\s*-\s*([\d.]+)\)/([\d.]+)", rule
        ).groups()
    )
    pressures = main["codman_hakim_programmable"]["settings"]["values_mmH2O"]
    expected["codman_hakim_programmable"] = {
        str(p): (offset + step * (p - base) / per) % 360 for p in pressures
    }

    sectors = main["codman_certas_plus"]["sector_angles_deg_canonical"]
    expected["codman_certas_plus"] = {str(k): float(v) for k, v in sectors.items()}

    text = additions["miethke_progav_2_0"]["updates"]["angle_per_cmH2O"]
    zero = float(re.search(r"0 at ~([\d.]+) deg", text).group(1))
    per_cm = float(re.search(r"([\d.]+) deg per cmH2O", text).group(1))
    low, high = (
        int(v)
        for v in re.search(
            r"(\d+)-(\d+)", main["miethke_progav_2_0"]["settings"]["range_cmH2O"]
        ).groups()
    )
    table = {str(p): (zero + per_cm * p) % 360 for p in range(low, high + 1)}
    expected["miethke_progav_2"] = table
    expected["miethke_progav_1"] = table  # the additions give the proGAV 1 card's numbers

    reading = " ".join(main["medtronic_strata"]["reading_method"])
    expected["medtronic_ps_medical_strata"] = {
        level: _clock_deg(h, m) for level, h, m in re.findall(r"(\d\.\d) ~(\d+):(\d+)", reading)
    }
    return expected


def measured_angle(valve_id: str, angle: float, pose: Pose) -> float:
    """Direction from hub to indicator as drawn, degrees clockwise from image up."""
    design = build_design(valve_id, np.random.default_rng(0))
    layer = render_valve(design, angle, pose, px_per_mm=6.0, center_xy=(0.0, 0.0))

    def centroid(mask: np.ndarray) -> np.ndarray:
        ys, xs = np.mgrid[0 : mask.shape[0], 0 : mask.shape[1]]
        return np.array([(xs * mask).sum(), (ys * mask).sum()]) / mask.sum()

    dx, dy = centroid(layer.role_masks["indicator"]) - centroid(layer.role_masks["hub"])
    return float(np.degrees(np.arctan2(dx, -dy)) % 360)


def _difference(a: float, b: float) -> float:
    return abs((a - b + 180) % 360 - 180)


def test_facts_table_matches_the_facts_files_for_every_setting(valve_facts: Path) -> None:
    expected = angles_from_yaml(valve_facts)
    for valve_id, table in expected.items():
        assert set(facts.settings_of(valve_id)) == set(table), valve_id
        for setting, angle in table.items():
            assert _difference(facts.indicator_angle(valve_id, setting), angle) < 0.01, (
                valve_id,
                setting,
            )


def test_drawn_indicator_angle_equals_the_facts_for_every_setting(valve_facts: Path) -> None:
    for valve_id, table in angles_from_yaml(valve_facts).items():
        for setting, angle in table.items():
            drawn = measured_angle(valve_id, facts.indicator_angle(valve_id, setting), Pose())
            assert _difference(drawn, angle) < 2.0, (valve_id, setting, drawn, angle)


@pytest.mark.parametrize("valve_id", sorted(facts.INDICATOR_ANGLES))
def test_rotation_adds_and_mirroring_reverses_the_drawn_angle(valve_id: str) -> None:
    setting = facts.settings_of(valve_id)[1]
    angle = facts.indicator_angle(valve_id, setting)
    turned = measured_angle(valve_id, angle, Pose(rotation_deg=37.0))
    mirrored = measured_angle(valve_id, angle, Pose(rotation_deg=37.0, mirrored=True))
    assert _difference(turned, angle + 37.0) < 2.0
    assert _difference(mirrored, 37.0 - angle) < 2.0


def test_sophy_angles_are_marked_as_assumed_because_the_facts_file_has_none(
    valve_facts: Path,
) -> None:
    additions = _entries(valve_facts / "valve-facts-additions.yaml")
    assert "NOT FOUND" in additions["sophysa_sophy_mini_sm8"]["updates"]["angles_per_position"]
    assert "sophysa_sophy_minism8" in facts.ASSUMED_ANGLES


def test_unknown_setting_is_refused_with_the_known_ones_named() -> None:
    with pytest.raises(ValueError, match="known: 1, 2"):
        facts.indicator_angle("codman_certas_plus", "9")
