"""Dial.setting_at finds the setting an indicator angle points to, in plain and mirrored images."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from valvereader.catalogue.templates import Dial, DialSetting, load_all, load_template

DIAL_IDS = [vid for vid, t in load_all().items() if t.dial is not None and t.dial.readable]


@pytest.mark.parametrize("valve_id", DIAL_IDS)
def test_setting_at_round_trips_every_setting_angle(valve_id: str) -> None:
    dial = load_template(valve_id).dial
    assert dial is not None
    for s in dial.settings:
        assert s.angle_deg is not None
        assert dial.setting_at(s.angle_deg) == s
        assert dial.setting_at((360.0 - s.angle_deg) % 360.0, mirrored=True) == s
        assert dial.setting_at(s.angle_deg + 360.0) == s


@pytest.mark.parametrize("valve_id", DIAL_IDS)
def test_mirrored_reading_differs_from_plain_reading_off_the_axis(valve_id: str) -> None:
    dial = load_template(valve_id).dial
    assert dial is not None
    off_axis = [s for s in dial.settings if s.angle_deg is not None and 30 < s.angle_deg < 150]
    for s in off_axis:
        assert dial.setting_at(s.angle_deg or 0.0, mirrored=True) != s


@pytest.mark.parametrize("valve_id", DIAL_IDS)
@settings(max_examples=30, deadline=None)
@given(jitter=st.floats(min_value=-0.45, max_value=0.45))
def test_small_errors_within_half_a_step_still_find_the_setting(valve_id: str, jitter: float) -> None:
    dial = load_template(valve_id).dial
    assert dial is not None
    for s in dial.settings:
        assert dial.setting_at((s.angle_deg or 0.0) + jitter * 2 * dial.capture_deg * 0.99) == s


def test_progav_dead_sector_matches_no_setting() -> None:
    dial = load_template("miethke_progav_2").dial
    assert dial is not None
    assert dial.setting_at(256.0) is None  # between 20 (226) and 0 (286)
    assert dial.setting_at(226.0 + 4).label == "20"  # type: ignore[union-attr]


def test_hakim_gap_between_200_and_30_matches_no_setting() -> None:
    dial = load_template("codman_hakim_programmable").dial
    assert dial is not None
    assert dial.setting_at(37.0) is None
    assert dial.setting_at(10.0).label == "200"  # type: ignore[union-attr]


def test_certas_sectors_cover_the_whole_circle() -> None:
    dial = load_template("codman_certas_plus").dial
    assert dial is not None
    assert all(dial.setting_at(float(a)) is not None for a in range(0, 360, 5))
    assert dial.setting_at(112.0).label == "8"  # type: ignore[union-attr]
    assert dial.setting_at(113.0).label == "1"  # type: ignore[union-attr]


def test_unknown_angles_give_no_setting() -> None:
    dial = load_template("sophysa_sophy_minism8").dial
    assert dial is not None and not dial.readable
    assert dial.setting_at(125.0) is None
    assert Dial([]).setting_at(0.0) is None
    assert Dial([DialSetting("1", 1.0, "x", 10.0, "M")]).setting_at(float("nan")) is None


def test_setting_tag_is_the_weaker_of_value_and_angle_tags() -> None:
    hakim = load_template("codman_hakim_programmable").dial
    progav2 = load_template("miethke_progav_2").dial
    assert hakim is not None and progav2 is not None
    assert {s.tag for s in hakim.settings} == {"M"}
    assert {s.tag for s in progav2.settings} == {"U"}
