"""Speed: the fast grey pipeline (per-level table, gathered in chunks) gives the values of the
straightforward per-pixel float arithmetic, on 8/12/16-bit, signed and MONOCHROME1 data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from io_dicom_factory import make_dataset

from valvereader.io import display, load


@pytest.mark.parametrize(
    ("dtype", "low", "high"),
    [(np.uint8, 0, 256), (np.uint16, 0, 4096), (np.uint16, 0, 65536), (np.uint16, 1000, 1200),
     (np.int16, -1024, 3072), (np.int16, -32768, 32768),
     # span over 32767: ``raw - first`` in int16 wraps (the old ``table[raw - first]`` read
     # wrong levels silently)
     (np.int16, -20000, 20001)],
)
def test_chunked_gather_equals_fancy_indexing(dtype: type, low: int, high: int) -> None:
    rng = np.random.default_rng(low + high)
    # Not a multiple of the chunk, so the last chunk is a partial one.
    raw = rng.integers(low, high, (301, 457), dtype=np.int64).astype(dtype)
    first = int(raw.min())
    table = rng.random(int(raw.max()) - first + 1).astype(np.float32)
    got = display.apply_level_table(table, raw, first)
    assert got.dtype == np.float32 and got.shape == raw.shape and got.flags.c_contiguous
    assert np.array_equal(got, table[raw.astype(np.int64) - first])


def test_chunked_gather_of_an_empty_or_tiny_image() -> None:
    table = np.arange(4, dtype=np.float32)
    assert display.apply_level_table(table, np.zeros((0, 5), np.uint16)).shape == (0, 5)
    assert np.array_equal(display.apply_level_table(table, np.array([[3, 1]], np.uint16)), [[3.0, 1.0]])


def _linear_window(values: np.ndarray, center: float, width: float) -> np.ndarray:
    """DICOM PS3.3 C.11.2.1.2.1 LINEAR, per pixel, float64, output 0..1."""
    out = (values - (center - 0.5)) / (width - 1) + 0.5
    return np.clip(out, 0.0, 1.0)


@pytest.mark.parametrize(
    ("bits", "signed", "photometric", "slope", "intercept", "center", "width"),
    [
        (12, False, "MONOCHROME2", 1.0, 0.0, 2048, 4096),
        (12, False, "MONOCHROME1", 1.0, 0.0, 1500, 900),
        (16, False, "MONOCHROME2", 1.0, 0.0, 30000, 20000),
        (16, False, "MONOCHROME1", 1.0, 0.0, 32768, 65536),
        (12, True, "MONOCHROME2", 2.0, -1024.0, 500, 1500),
        (16, True, "MONOCHROME1", 0.5, 100.0, 0, 8000),
        (16, True, "MONOCHROME2", 1.0, 0.0, 0, 40000),  # span over 32767 levels
    ],
)
def test_table_path_equals_per_pixel_window(
    bits: int, signed: bool, photometric: str, slope: float, intercept: float, center: float, width: float
) -> None:
    rng = np.random.default_rng(bits + signed)
    low, high = (-(1 << (bits - 1)), 1 << (bits - 1)) if signed else (0, 1 << bits)
    raw = rng.integers(low, high, (320, 400), dtype=np.int64).astype(np.int16 if signed else np.uint16)
    if signed and width > 32768:
        raw = np.clip(raw, -20000, 20000).astype(np.int16)
    ds = make_dataset(raw, photometric, bits, RescaleSlope=slope, RescaleIntercept=intercept,
                      WindowCenter=center, WindowWidth=width)
    assert display._stored_value_domain(raw) is not None  # the fast path is the one tested
    got = display.render(raw, ds, []).pixels
    expected = _linear_window(raw.astype(np.float64) * slope + intercept, center, width)
    if photometric == "MONOCHROME1":
        expected = 1.0 - expected
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)


def test_loaded_file_equals_per_pixel_reference(tmp_path: Path) -> None:
    rng = np.random.default_rng(9)
    raw = rng.integers(0, 4096, (700, 500), dtype=np.int64).astype(np.uint16)
    ds = make_dataset(raw, "MONOCHROME1", 12, WindowCenter=2000, WindowWidth=3000)
    path = tmp_path / "x.dcm"
    ds.save_as(path, enforce_file_format=True)
    got = load(path).pixels
    expected = 1.0 - _linear_window(raw.astype(np.float64), 2000, 3000)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    ("photometric", "attributes"),
    [
        ("MONOCHROME2", {"WindowCenter": 2048, "WindowWidth": 4096}),
        ("MONOCHROME1", {"WindowCenter": 1200, "WindowWidth": 800}),
        ("MONOCHROME2", {"RescaleSlope": 2, "RescaleIntercept": -1024, "WindowCenter": 500, "WindowWidth": 900}),
        ("MONOCHROME1", {"VOILUTFunction": "LINEAR_EXACT", "WindowCenter": 1000.5, "WindowWidth": 1501}),
        ("MONOCHROME2", {}),  # percentile window (LINEAR_EXACT)
        ("MONOCHROME2", {"PresentationLUTShape": "INVERSE", "WindowCenter": 900, "WindowWidth": 3000}),
    ],
)
def test_window_as_a_line_equals_the_level_table(
    monkeypatch: pytest.MonkeyPatch, photometric: str, attributes: dict[str, object]
) -> None:
    rng = np.random.default_rng(11)
    raw = rng.integers(0, 4096, (400, 333), dtype=np.int64).astype(np.uint16)
    ds = make_dataset(raw, photometric, 12, **attributes)
    used: list[bool] = []
    exact = display._line_if_exact
    monkeypatch.setattr(display, "_line_if_exact", lambda *a: used.append(True) or exact(*a))
    fast = display.render(raw, ds, []).pixels
    assert used, "the line path was not tried"
    monkeypatch.setattr(display, "_line_if_exact", lambda *a: None)
    table = display.render(raw, ds, []).pixels
    np.testing.assert_allclose(fast, table, rtol=0, atol=display._LINE_TOLERANCE)


def test_line_that_misses_the_table_is_not_used() -> None:
    domain = np.arange(0, 4096, dtype=np.uint16)
    table = np.clip((domain.astype(np.float64) - 100) / 3000, 0, 1).astype(np.float32)
    assert display._line_if_exact((100.0, 1 / 3000), False, domain, table) is not None
    assert display._line_if_exact((101.0, 1 / 3000), False, domain, table) is None
    assert display._line_if_exact((100.0, 1 / 3000), True, domain, 1 - table) is not None


def test_sigmoid_and_modality_lut_keep_the_table(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(12)
    raw = rng.integers(0, 4096, (300, 300), dtype=np.int64).astype(np.uint16)
    ds = make_dataset(raw, "MONOCHROME2", 12, VOILUTFunction="SIGMOID", WindowCenter=2000, WindowWidth=1000)
    monkeypatch.setattr(display, "apply_level_line", lambda *a: pytest.fail("line used for a sigmoid"))
    display.render(raw, ds, [])


@pytest.mark.parametrize(("origin", "gain"), [(117.5, 1 / 2900), (0.0, 1 / 4095), (-0.5, 1 / 4096), (4095.0, -1 / 4095),
                                              (300.0, 1 / 3000), (1000.0, 1 / 1000)])
def test_the_window_line_leaves_out_the_clip_only_where_it_changes_nothing(origin: float, gain: float) -> None:
    """apply_level_line with the image's bounds: bit for bit the straightforward formula, whether
    the window covers every level (no clip needed) or cuts some (clip kept)."""
    from valvereader.io.display import apply_level_line

    raw = (np.random.default_rng(4).random((700, 530)) * 4095).astype(np.uint16)
    raw[0, 0], raw[-1, -1] = 0, 4095
    want = np.clip((raw.astype(np.float32) - np.float32(origin)) * np.float32(gain), 0.0, 1.0)
    bounds = (float(raw.min()), float(raw.max()))
    assert np.array_equal(apply_level_line(raw, origin, gain, bounds=bounds), want)
    assert np.array_equal(apply_level_line(raw, origin, gain), want)
    inside = raw[1:-1, 1:-1]  # levels away from both ends
    assert np.array_equal(apply_level_line(inside, origin, gain, bounds=(float(inside.min()), float(inside.max()))), want[1:-1, 1:-1])


@pytest.mark.parametrize("dtype", [np.uint16, np.int16, np.uint8])
@pytest.mark.parametrize("where", ["first half", "second half", "ends"])
def test_level_range_is_the_exact_minimum_and_maximum(dtype: type, where: str) -> None:
    """The loader's one (minimum, maximum) pass: exact in two halves, on one thread and on tiny images."""
    from valvereader import halves

    info = np.iinfo(dtype)
    rng = np.random.default_rng(5)
    raw = rng.integers(info.min // 2, info.max // 2, (1100, 1000), dtype=np.int64).astype(dtype)  # ≥ SPLIT_FROM pixels
    assert raw.size >= halves.SPLIT_FROM
    flat = raw.reshape(-1)
    low_at, high_at = {"first half": (10, 20), "second half": (raw.size - 30, raw.size - 40), "ends": (0, raw.size - 1)}[where]
    flat[low_at], flat[high_at] = info.min, info.max
    assert display.level_range(raw) == (int(info.min), int(info.max))
    with halves.off():
        assert display.level_range(raw) == (int(info.min), int(info.max))
    assert display.level_range(raw[:3, :5]) == (int(raw[:3, :5].min()), int(raw[:3, :5].max()))


def _pydicom_window_to_unit(values: np.ndarray, center: float, width: float, function: str) -> np.ndarray:
    """window_to_unit as it was: pydicom's apply_windowing on a 0..65535 data set, divided."""
    from pydicom.dataset import Dataset
    from pydicom.pixels.processing import apply_windowing

    window = Dataset()
    window.PhotometricInterpretation = "MONOCHROME2"
    window.BitsStored = 16
    window.PixelRepresentation = 0
    window.WindowCenter = float(center)
    window.WindowWidth = float(width)
    window.VOILUTFunction = function
    return np.asarray(apply_windowing(np.asarray(values, dtype=np.float64), window), dtype=np.float64) / 65535.0


@pytest.mark.parametrize("function", ["LINEAR", "LINEAR_EXACT", "SIGMOID"])
def test_the_window_in_numpy_equals_pydicoms_bit_for_bit(function: str) -> None:
    from valvereader.io.display import window_to_unit

    rng = np.random.default_rng(21)
    values = np.concatenate([np.arange(-2048, 4096, dtype=np.float64), rng.normal(1000, 3000, 5000),
                             [np.nan, np.inf, -np.inf, 0.0, -0.0]])
    windows = [(2048.0, 4096.0), (40.0, 400.0), (1023.5, 1.0), (0.0, 1.0), (-512.25, 3.5), (3000.123456789, 17.9)]
    windows += [(float(c), float(w)) for c, w in zip(rng.uniform(-3000, 6000, 20), rng.uniform(1, 9000, 20))]
    for center, width in windows:
        ours = window_to_unit(values, center, width, function)
        theirs = _pydicom_window_to_unit(values, center, width, function)
        assert ours.dtype == theirs.dtype == np.float64
        np.testing.assert_array_equal(ours, theirs)  # NaN where NaN, and every other value equal
        assert np.array_equal(np.signbit(ours), np.signbit(theirs), equal_nan=True)
    stored = values.copy()
    window_to_unit(stored, 40.0, 400.0, function)
    np.testing.assert_array_equal(stored, values)  # the caller's values are left alone


def test_the_window_refuses_what_dicom_does_not_allow() -> None:
    from valvereader.io.display import window_to_unit

    with pytest.raises(ValueError):
        window_to_unit(np.arange(4.0), 1.0, 0.5, "LINEAR")
    with pytest.raises(ValueError):
        window_to_unit(np.arange(4.0), 1.0, 0.0, "LINEAR_EXACT")
    with pytest.raises(ValueError):
        window_to_unit(np.arange(4.0), 1.0, 0.0, "SIGMOID")
    with pytest.raises(ValueError):
        window_to_unit(np.arange(4.0), 1.0, 1.0, "GAMMA")
