"""valvereader.io.load on DICOM files built in the test: LUT order, polarity, colour, frames."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from io_dicom_factory import make_dataset, ramp, save
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    RLELossless,
)

from valvereader.io import load


def test_monochrome1_is_the_inverse_of_monochrome2(tmp_path: Path) -> None:
    pixels = ramp()
    m2 = load(save(make_dataset(pixels, "MONOCHROME2", 12), tmp_path / "m2.dcm"))
    m1 = load(save(make_dataset(pixels, "MONOCHROME1", 12), tmp_path / "m1.dcm"))
    assert m2.pixels.dtype == np.float32
    assert m2.pixels.max() > 0.9 and m2.pixels.min() < 0.1
    np.testing.assert_allclose(m1.pixels, 1.0 - m2.pixels, atol=1e-6)
    # The brightest stored value is white in MONOCHROME2 and black in MONOCHROME1.
    corner = np.unravel_index(np.argmax(pixels), pixels.shape)
    assert m2.pixels[corner] > 0.99 and m1.pixels[corner] < 0.01


def test_rescale_slope_and_intercept_apply_before_the_window(tmp_path: Path) -> None:
    stored = ramp(high=1000)
    rescaled = (stored.astype(np.int32) * 2 - 1000).astype(np.int16)
    window = {"WindowCenter": 0, "WindowWidth": 1000}
    via_rescale = make_dataset(stored, RescaleSlope=2, RescaleIntercept=-1000, **window)
    direct = make_dataset(rescaled, **window)
    a = load(save(via_rescale, tmp_path / "rescale.dcm"))
    b = load(save(direct, tmp_path / "direct.dcm"))
    np.testing.assert_allclose(a.pixels, b.pixels, atol=1e-6)
    assert (a.pixels == 0).any() and (a.pixels == 1).any()  # the window clips both ends
    assert a.meta.window_center == 0 and a.meta.window_width == 1000


def test_window_from_the_file_maps_center_to_grey_and_clips_outside(tmp_path: Path) -> None:
    pixels = np.array([[0, 100, 200, 300, 400]], dtype=np.uint16).repeat(4, axis=0)
    ds = make_dataset(pixels, WindowCenter=200, WindowWidth=301)
    image = load(save(ds, tmp_path / "w.dcm"))
    row = image.pixels[0]
    assert row[0] == 0 and row[-1] == 1
    assert row[2] == pytest.approx(0.5, abs=0.01)
    assert 0 < row[1] < row[2] < row[3] < 1


def test_voi_lut_sequence_is_applied_in_preference_to_the_window(tmp_path: Path) -> None:
    pixels = np.arange(256, dtype=np.uint8).reshape(16, 16)
    lut = Dataset()
    lut.LUTDescriptor = [256, 0, 8]
    lut.LUTData = [255 - v for v in range(256)]  # a reversing LUT
    lut["LUTData"].VR = "US"
    ds = make_dataset(pixels, WindowCenter=128, WindowWidth=256, VOILUTSequence=Sequence([lut]))
    image = load(save(ds, tmp_path / "lut.dcm"))
    np.testing.assert_allclose(image.pixels, (255 - pixels) / 255.0, atol=1e-6)
    assert any("VOI LUT" in note for note in image.meta.notes)
    assert image.meta.window_center is None


def test_presentation_lut_inverse_inverts_monochrome2_but_not_monochrome1_twice(tmp_path: Path) -> None:
    pixels = ramp()
    plain = load(save(make_dataset(pixels, "MONOCHROME2"), tmp_path / "a.dcm")).pixels
    inverse = load(save(make_dataset(pixels, "MONOCHROME2", PresentationLUTShape="INVERSE"), tmp_path / "b.dcm"))
    np.testing.assert_allclose(inverse.pixels, 1 - plain, atol=1e-6)
    assert any("INVERSE" in note for note in inverse.meta.notes)
    m1 = load(save(make_dataset(pixels, "MONOCHROME1"), tmp_path / "c.dcm")).pixels
    m1_inverse = load(save(make_dataset(pixels, "MONOCHROME1", PresentationLUTShape="INVERSE"), tmp_path / "d.dcm")).pixels
    np.testing.assert_allclose(m1_inverse, m1, atol=1e-6)


def test_without_a_window_the_robust_percentiles_set_black_and_white(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    pixels = rng.integers(1000, 2000, size=(64, 64)).astype(np.uint16)
    pixels[0, 0] = 60000  # a single hot pixel must not squash the contrast
    image = load(save(make_dataset(pixels), tmp_path / "p.dcm"))
    low, high = np.percentile(pixels, [0.5, 99.5])
    assert image.meta.window_center == pytest.approx((low + high) / 2, rel=1e-3)
    assert image.meta.window_width == pytest.approx(high - low, rel=1e-3)
    assert image.pixels[0, 0] == 1.0
    assert 0.3 < float(np.median(image.pixels)) < 0.7
    assert any("percentile" in note for note in image.meta.notes)


def test_rgb_becomes_grey_by_luminance(tmp_path: Path) -> None:
    rgb = np.zeros((8, 9, 3), dtype=np.uint8)
    rgb[:, :3, 0] = 255  # red
    rgb[:, 3:6, 1] = 255  # green
    rgb[:, 6:, :] = 255  # white
    image = load(save(make_dataset(rgb, "RGB"), tmp_path / "rgb.dcm"))
    assert image.shape == (8, 9)
    assert image.pixels[0, 0] == pytest.approx(0.299, abs=1e-3)
    assert image.pixels[0, 4] == pytest.approx(0.587, abs=1e-3)
    assert image.pixels[0, 8] == pytest.approx(1.0, abs=1e-3)


def test_palette_colour_uses_the_lookup_tables(tmp_path: Path) -> None:
    indices = np.arange(4, dtype=np.uint8).repeat(4).reshape(4, 4)
    ds = make_dataset(indices, "PALETTE COLOR")
    for colour, values in (("Red", [0, 255, 0, 255]), ("Green", [0, 0, 255, 255]), ("Blue", [0, 0, 0, 255])):
        setattr(ds, f"{colour}PaletteColorLookupTableDescriptor", [4, 0, 8])
        setattr(ds, f"{colour}PaletteColorLookupTableData", bytes(values))
    image = load(save(ds, tmp_path / "pal.dcm"))
    expected = np.array([0.0, 0.299, 0.587, 1.0])
    np.testing.assert_allclose(image.pixels[:, 0], expected, atol=2e-3)


def test_multi_frame_shows_the_asked_frame_and_says_so(tmp_path: Path) -> None:
    frames = np.stack([np.full((8, 8), v, dtype=np.uint16) for v in (0, 1000, 2000)])
    frames[:, 0, 0] = 4095  # each frame has some contrast
    ds = make_dataset(frames, WindowCenter=2048, WindowWidth=4096)
    path = save(ds, tmp_path / "mf.dcm")
    first, second = load(path), load(path, frame=1)
    assert first.meta.frames == 3
    assert any("frame 1 of 3" in note for note in first.meta.notes)
    assert any("frame 2 of 3" in note for note in second.meta.notes)
    assert second.pixels[4, 4] > first.pixels[4, 4]


@pytest.mark.parametrize(
    "syntax", [ImplicitVRLittleEndian, ExplicitVRBigEndian, DeflatedExplicitVRLittleEndian]
)
def test_uncompressed_transfer_syntaxes_give_the_same_image(tmp_path: Path, syntax: str) -> None:
    ds = make_dataset(ramp(), WindowCenter=2048, WindowWidth=4096)
    reference = load(save(ds, tmp_path / "ref.dcm")).pixels
    other = make_dataset(ramp(), WindowCenter=2048, WindowWidth=4096)
    other.file_meta.TransferSyntaxUID = syntax
    if syntax == ExplicitVRBigEndian:
        other.PixelData = ramp().astype(">u2").tobytes()
        other["PixelData"].VR = "OW"
    path = tmp_path / "other.dcm"
    other.save_as(path, enforce_file_format=True, implicit_vr=syntax == ImplicitVRLittleEndian,
                  little_endian=syntax != ExplicitVRBigEndian)
    assert pydicom.dcmread(path).file_meta.TransferSyntaxUID == syntax
    np.testing.assert_allclose(load(path).pixels, reference, atol=1e-6)


@pytest.mark.parametrize("syntax", [RLELossless, JPEG2000Lossless])
def test_compressed_round_trip_matches_the_uncompressed_image(tmp_path: Path, syntax: str) -> None:
    ds = make_dataset(ramp(), "MONOCHROME1", 12, WindowCenter=2048, WindowWidth=4096)
    reference = load(save(ds, tmp_path / "ref.dcm")).pixels
    ds.compress(syntax)
    compressed = load(save(ds, tmp_path / "c.dcm"))
    assert compressed.meta.transfer_syntax == pydicom.uid.UID(syntax).name
    np.testing.assert_allclose(compressed.pixels, reference, atol=1e-6)


def test_file_without_preamble_and_meta_header_loads(tmp_path: Path) -> None:
    ds = make_dataset(ramp(), WindowCenter=2048, WindowWidth=4096)
    reference = load(save(ds, tmp_path / "ref.dcm")).pixels
    bare = tmp_path / "bare"  # no extension either
    del ds.file_meta
    ds.save_as(bare, implicit_vr=True, little_endian=True)
    assert bare.read_bytes()[128:132] != b"DICM"
    np.testing.assert_allclose(load(bare).pixels, reference, atol=1e-6)


def test_metadata_is_filled_and_imager_pixel_spacing_is_preferred(tmp_path: Path) -> None:
    ds = make_dataset(ramp(), ImagerPixelSpacing=[0.15, 0.14], PixelSpacing=[0.12, 0.11])
    meta = load(save(ds, tmp_path / "m.dcm")).meta
    assert meta.file_format == "DICOM"
    assert (meta.patient_name, meta.patient_id, meta.patient_birth_date) == ("Test^Patient", "ID12345", "19700101")
    assert (meta.study_date, meta.accession_number, meta.modality) == ("20240131", "ACC1", "CR")
    assert (meta.body_part, meta.view_position, meta.photometric) == ("SKULL", "LL", "MONOCHROME2")
    assert meta.study_instance_uid == ds.StudyInstanceUID and meta.sop_instance_uid == ds.SOPInstanceUID
    assert meta.original_shape == (32, 48) and meta.bits_stored == 16
    assert meta.transfer_syntax == "Explicit VR Little Endian"
    assert meta.pixel_spacing is not None
    assert meta.pixel_spacing.kind == "ImagerPixelSpacing"
    assert (meta.pixel_spacing.row_mm, meta.pixel_spacing.column_mm) == (0.15, 0.14)
    del ds.ImagerPixelSpacing
    meta = load(save(ds, tmp_path / "n.dcm")).meta
    assert meta.pixel_spacing is not None and meta.pixel_spacing.kind == "PixelSpacing"


def test_signed_pixels_with_padding_show_padding_black(tmp_path: Path) -> None:
    pixels = ramp(high=2000).astype(np.int16) - 1000
    pixels[:4] = -2000
    ds = make_dataset(pixels, "MONOCHROME1", PixelPaddingValue=-2000)
    ds["PixelPaddingValue"].VR = "SS"
    image = load(save(ds, tmp_path / "pad.dcm"))
    assert (image.pixels[:4] == 0).all()
    assert image.pixels[4:].max() > 0.9


def test_invalid_identifying_values_are_not_quoted_in_warnings(tmp_path: Path, recwarn: pytest.WarningsRecorder) -> None:
    ds = make_dataset(ramp())
    ds.PatientName = "Secret^Person\\Other"
    ds.PatientBirthDate = "19xx0101"
    ds.PatientID = "ID-" + "9" * 80  # too long for LO
    meta = load(save(ds, tmp_path / "phi.dcm")).meta
    assert meta.patient_birth_date == "19xx0101"  # still read, just not validated aloud
    for warning in recwarn:
        text = str(warning.message)
        assert "Secret" not in text and "19xx" not in text and "999999" not in text, text
