"""The reading aid maps a needle laid over the image to a setting under any move, turn and flip."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from valvereader.catalogue.reading_aid import DialPose, ReadingAid, angle_of
from valvereader.catalogue.templates import load_template

poses = st.builds(
    DialPose,
    center_x=st.floats(-500, 500),
    center_y=st.floats(-500, 500),
    rotation_deg=st.floats(0, 360, exclude_max=True),
    mirrored=st.booleans(),
    radius_px=st.floats(5, 400),
)


def test_angle_of_uses_clockwise_degrees_from_image_up() -> None:
    assert [round(angle_of(*v)) for v in ((0, -1), (1, 0), (0, 1), (-1, 0))] == [0, 90, 180, 270]


@settings(max_examples=60, deadline=None)
@given(pose=poses, x=st.floats(-2, 2), y=st.floats(-2, 2))
def test_pose_maps_dial_points_to_image_and_back(pose: DialPose, x: float, y: float) -> None:
    back = pose.to_dial(*pose.to_image(x, y))
    assert back == pytest.approx((x, y), abs=1e-6)


@settings(max_examples=60, deadline=None)
@given(pose=poses, angle=st.floats(0, 360, exclude_max=True))
def test_canonical_and_image_angles_are_inverse(pose: DialPose, angle: float) -> None:
    assert pose.canonical_angle(pose.image_angle(angle)) == pytest.approx(angle % 360.0, abs=1e-6) or (
        abs(pose.canonical_angle(pose.image_angle(angle)) - angle) == pytest.approx(360.0, abs=1e-6)
    )


@pytest.mark.parametrize("valve_id", ["codman_hakim_programmable", "codman_certas_plus", "miethke_progav_1",
                                      "medtronic_ps_medical_strata"])
@settings(max_examples=15, deadline=None)
@given(pose=poses)
def test_needle_on_a_ticks_image_position_reads_that_setting(valve_id: str, pose: DialPose) -> None:
    aid = ReadingAid(load_template(valve_id), pose)
    for s in aid.dial.settings:
        target = pose.tick_position(s, 0.8)
        assert target is not None
        aid.point_needle_at(*target)
        assert aid.reading().setting == s
        # the image direction of the tick agrees with the pose's angle mapping
        angle = angle_of(target[0] - pose.center_x, target[1] - pose.center_y)
        assert pose.canonical_angle(angle) == pytest.approx(s.angle_deg, abs=1e-6) or abs(
            pose.canonical_angle(angle) - (s.angle_deg or 0.0)) == pytest.approx(360.0, abs=1e-6)


def test_flipping_the_dial_changes_the_reading_of_the_same_image_point() -> None:
    template = load_template("codman_hakim_programmable")
    plain = ReadingAid(template, DialPose(100, 100, 0, False, 50))
    plain.point_needle_at(150, 100)  # 3 o'clock in the image
    flipped = ReadingAid(template, plain.pose.flipped())
    flipped.point_needle_at(150, 100)
    dial = template.dial
    assert dial is not None
    assert plain.reading().needle_deg == pytest.approx(90.0)
    assert flipped.reading().needle_deg == pytest.approx(270.0)
    assert plain.reading().setting == dial.setting_at(90.0) is not None
    assert flipped.reading().setting == dial.setting_at(270.0) is not None
    assert plain.reading().setting != flipped.reading().setting
    assert "mirrored" in flipped.reading().as_text()


def test_keys_step_through_the_settings_and_snap() -> None:
    aid = ReadingAid(load_template("medtronic_ps_medical_strata"))
    aid.set_needle(95.0)
    aid.snap_needle()
    assert aid.needle_deg == 90.0
    aid.step(+1)
    assert aid.reading().setting.label == "1.0"  # type: ignore[union-attr]
    aid.step(-1)
    aid.step(-1)
    assert aid.reading().setting.label == "2.5"  # type: ignore[union-attr]


def test_a_dial_with_unverified_angles_names_the_position_but_no_pressure() -> None:
    aid = ReadingAid(load_template("miethke_progav_2"))
    aid.set_needle(121.0)
    text = aid.reading().as_text()
    assert "cmH2O" not in text and "13" not in text.split("(needle")[0]
    assert "4:02 (121 deg)" in text and "[U] unverified" in text and "geometry not verified" in text
    assert aid.reading().basis.startswith("[U]")
    aid.set_needle(256.0)
    assert "no setting" in aid.reading().as_text()


def test_a_certas_reading_names_the_plus_and_the_original_table() -> None:
    aid = ReadingAid(load_template("codman_certas_plus"))
    aid.set_needle(225.0)
    text = aid.reading().as_text()
    assert "setting 3:" in text and "80 mmH2O" in text and "CERTAS Plus" in text
    assert "109 mmH2O if original CERTAS" in text and "[M]" in text
    assert "original CERTAS [M]" in aid.reading().basis and "(card)" in aid.reading().basis


def test_a_hakim_reading_names_the_neighbours_its_tolerance_allows() -> None:
    template = load_template("codman_hakim_programmable")
    assert template.dial is not None and template.dial.tolerance_deg is not None
    half_step = 17.5 / 2
    assert template.dial.tolerance_deg > half_step
    aid = ReadingAid(template)
    aid.set_needle(190.5)
    text = aid.reading().as_text()
    assert "100 mmH2O [M], may be 90 mmH2O or 110 mmH2O" in text
    aid.set_needle(68.0)  # 30 mmH2O: 200 lies 62.5 deg away across the gap, so only 40 is named
    assert aid.reading().as_text().split(" (needle")[0].endswith("30 mmH2O [M], may be 40 mmH2O")


def test_a_strata_reading_says_older_models_are_unverified() -> None:
    aid = ReadingAid(load_template("medtronic_ps_medical_strata"))
    aid.set_needle(232.5)
    text = aid.reading().as_text()
    assert "70-90 mmH2O" in text and "StrataMR [M]" in text and "Strata II / NSC [U] unverified" in text


def test_fixed_valves_have_no_reading_aid() -> None:
    with pytest.raises(ValueError, match="no dial"):
        ReadingAid(load_template("integra_dp"))


def test_pose_rejects_a_non_positive_scale() -> None:
    with pytest.raises(ValueError, match="positive"):
        DialPose().scaled(0)
