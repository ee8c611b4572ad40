"""Issue 7: uncompressed grey pixels are read in place, without pydicom's unused-bit copy, only
when that copy would change nothing; the decoded values equal pydicom's own decode."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from io_dicom_factory import make_dataset
from pydicom import dcmread
from pydicom.pixels import pixel_array
from pydicom.uid import ExplicitVRBigEndian

from valvereader.io import dicom, load


def _roundtrip(tmp_path: Path, raw: np.ndarray, bits: int, **attributes) -> Path:
    ds = make_dataset(raw, "MONOCHROME2", bits, WindowCenter=1 << (bits - 1), WindowWidth=1 << bits, **attributes)
    path = tmp_path / "x.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


@pytest.mark.parametrize(
    ("dtype", "bits", "low", "high", "fast"),
    [
        (np.uint16, 12, 0, 1 << 12, True),
        (np.uint16, 16, 0, 1 << 16, True),
        (np.uint16, 12, 0, 1 << 16, False),  # garbage in the 4 unused bits: pydicom masks them
        (np.int16, 12, -(1 << 11), 1 << 11, True),
        (np.int16, 12, -(1 << 15), 1 << 15, False),  # not sign-extended: pydicom fixes it
        (np.uint8, 8, 0, 256, True),
        (np.uint8, 6, 0, 256, False),
    ],
)
def test_in_place_decode_equals_pydicom(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dtype: type, bits: int, low: int, high: int, fast: bool
) -> None:
    rng = np.random.default_rng(bits + high)
    raw = rng.integers(low, high, (257, 311), dtype=np.int64).astype(dtype)
    path = _roundtrip(tmp_path, raw, bits)
    ds = dcmread(path)
    uid = ds.file_meta.TransferSyntaxUID
    view = dicom._native_grey_view(ds, uid, 0)
    assert (view is not None) == fast
    reference = pixel_array(ds, index=0)  # pydicom, unused bits corrected
    if view is not None:
        assert np.array_equal(view, reference) and view.dtype == reference.dtype
    # Whatever path is taken, the loader shows what pydicom's decode gives.
    shown = load(path).pixels
    monkeypatch.setattr(dicom, "_native_grey_view", lambda *a: None)
    assert np.array_equal(load(path).pixels, shown)


def test_big_endian_and_colour_are_decoded_by_pydicom(tmp_path: Path) -> None:
    raw = np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) % 4096
    ds = make_dataset(raw, "MONOCHROME2", 12)
    assert dicom._native_grey_view(ds, ExplicitVRBigEndian, 0) is None
    rgb = make_dataset(np.zeros((8, 8, 3), np.uint8), "RGB", 8)
    assert dicom._native_grey_view(rgb, rgb.file_meta.TransferSyntaxUID, 0) is None


def test_multi_frame_reads_the_asked_frame(tmp_path: Path) -> None:
    frames = np.stack([np.full((40, 50), v, np.uint16) for v in (100, 2000, 4000)])
    ds = make_dataset(frames, "MONOCHROME2", 12)
    view = dicom._native_grey_view(ds, ds.file_meta.TransferSyntaxUID, 1)
    assert view is not None and view.shape == (40, 50) and np.all(view == 2000)
