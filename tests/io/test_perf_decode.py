"""Speed: uncompressed grey pixels are read in place, without pydicom's unused-bit copy, only
when that copy would change nothing; the decoded values equal pydicom's own decode."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from io_dicom_factory import make_dataset
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.pixels import pixel_array
from pydicom.sequence import Sequence
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


def _files(tmp_path: Path) -> list[tuple[Path, int]]:
    """Native files of every kind the in-place loader takes or must refuse, with a frame."""
    from pydicom.uid import ImplicitVRLittleEndian

    rng = np.random.default_rng(21)
    made: list[tuple[Path, int]] = []

    def add(name: str, pixels: np.ndarray, photometric: str, bits: int, frame: int = 0, syntax=None, **attrs) -> None:
        ds = make_dataset(pixels, photometric, bits, **attrs)
        if syntax is not None:
            ds.file_meta.TransferSyntaxUID = syntax
        path = tmp_path / f"{name}.dcm"
        ds.save_as(path, enforce_file_format=True)
        made.append((path, frame))

    big12 = rng.integers(0, 4096, (1500, 1400)).astype(np.uint16)  # pixel data deferred (> 4 MB)
    add("big12_mono1", big12, "MONOCHROME1", 12, WindowCenter=2000, WindowWidth=3000)
    add("big12_pct", big12, "MONOCHROME2", 12)
    add("small16", rng.integers(0, 65536, (300, 200)).astype(np.uint16), "MONOCHROME2", 16)  # deferred (> 64 KiB)
    add("tiny16", rng.integers(0, 65536, (120, 100)).astype(np.uint16), "MONOCHROME2", 16)  # read, not deferred
    # A VOI LUT of 65536 entries (its sequence, 128 KiB, is deferred too; implicit VR, as
    # explicit VR cannot hold it): read back from the buffer when the display uses it.
    lut = Dataset()
    lut.LUTDescriptor = [0, 0, 16]  # 0 entries means 65536
    lut.LUTData = list(range(65535, -1, -1))
    lut["LUTData"].VR = "US"
    add("big_lut", rng.integers(0, 4096, (400, 300)).astype(np.uint16), "MONOCHROME2", 12,
        syntax=ImplicitVRLittleEndian, VOILUTSequence=Sequence([lut]))
    add("signed", rng.integers(-2048, 2048, (1500, 1500)).astype(np.int16), "MONOCHROME2", 12,
        RescaleSlope=1, RescaleIntercept=-1024)
    add("garbage_bits", rng.integers(0, 65536, (1500, 1400)).astype(np.uint16), "MONOCHROME2", 12)
    add("eight", rng.integers(0, 256, (333, 257)).astype(np.uint8), "MONOCHROME2", 8)
    add("implicit", big12, "MONOCHROME2", 12, syntax=ImplicitVRLittleEndian, WindowCenter=1000, WindowWidth=2000)
    add("frames", rng.integers(0, 4096, (3, 900, 800)).astype(np.uint16), "MONOCHROME2", 12, frame=2)
    add("padding", big12, "MONOCHROME1", 12, PixelPaddingValue=0)
    return made


def test_in_place_loader_equals_the_ordinary_loader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dataclasses import asdict

    files = _files(tmp_path)
    fast = [load(path, frame) for path, frame in files]
    taken = {path.stem for path, frame in files if dicom._load_native_grey(np.fromfile(path, np.uint8), path, frame)}
    assert {"big12_mono1", "big12_pct", "small16", "tiny16", "big_lut", "signed", "eight", "implicit", "frames"} <= taken
    assert "garbage_bits" not in taken
    lut_file = next(got for (path, _), got in zip(files, fast) if path.stem == "big_lut")
    assert "VOI LUT from the file applied" in lut_file.meta.notes
    monkeypatch.setattr(dicom, "_load_native_grey", lambda *a: None)
    for (path, frame), got in zip(files, fast):
        expected = load(path, frame)
        assert np.array_equal(got.pixels, expected.pixels), path.stem
        assert asdict(got.meta) == asdict(expected.meta), path.stem


def test_truncated_file_still_says_so(tmp_path: Path) -> None:
    from valvereader.errors import TruncatedDataError

    raw = np.random.default_rng(22).integers(0, 4096, (1500, 1400)).astype(np.uint16)
    ds = make_dataset(raw, "MONOCHROME2", 12)
    path = tmp_path / "cut.dcm"
    ds.save_as(path, enforce_file_format=True)
    path.write_bytes(path.read_bytes()[:-100_000])
    with pytest.raises(TruncatedDataError):
        load(path)
    assert dicom._load_native_grey(np.fromfile(path, np.uint8), path, 0) is None
