"""Real DICOM corpora: every file loads with finite 0..1 pixels or raises a typed
InputError, each within a time limit."""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from valvereader.errors import InputError, TruncatedDataError
from valvereader.io import load

PER_FILE_SECONDS = 10.0


def _check(path: Path) -> str:
    start = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            image = load(path)
    except InputError as exc:
        outcome = type(exc).__name__
        assert path.name in str(exc) or str(path) in str(exc), f"message does not name the file: {exc}"
    else:
        pixels = image.pixels
        assert pixels.dtype == np.float32 and pixels.ndim == 2
        assert np.isfinite(pixels).all() and pixels.min() >= 0 and pixels.max() <= 1, path
        outcome = "ok"
    elapsed = time.perf_counter() - start
    assert elapsed < PER_FILE_SECONDS, f"{path} took {elapsed:.1f} s"
    return outcome


def _pydicom_bundled_files() -> list[Path]:
    from pydicom.data import get_testdata_files

    # No pattern: with a pattern pydicom tries to download the data it lacks.
    return sorted(Path(p) for p in get_testdata_files() if Path(p).is_file())


@pytest.mark.shared
@pytest.mark.slow
def test_every_zoo_file_loads_or_raises_a_typed_error(dicom_zoo: Path) -> None:
    files = sorted(p for p in dicom_zoo.rglob("*") if p.is_file())
    assert len(files) > 100
    outcomes = [_check(path) for path in files]
    # The zoo is mostly valid images: most must load.
    assert outcomes.count("ok") >= 0.7 * len(files)
    # pydicom's cut file ends inside its compressed pixel data, not after its meta header.
    cut = [p for p in files if p.name == "emri_small_jpeg_2k_lossless_too_short.dcm"]
    if cut:
        with pytest.raises(TruncatedDataError, match="ends inside its compressed pixel data"):
            load(cut[0])


@pytest.mark.slow
def test_every_pydicom_test_file_loads_or_raises_a_typed_error() -> None:
    files = _pydicom_bundled_files()
    if not files:
        pytest.skip("pydicom ships no test files in this installation")
    outcomes = {path.name: _check(path) for path in files}
    assert outcomes.get("CT_small.dcm") == "ok"
    assert outcomes.get("MR_truncated.dcm") == "TruncatedDataError"
    assert outcomes.get("rtplan.dcm") == "NonImageObjectError"
    assert outcomes.get("README.txt") == "NotDicomError"


def test_ct_small_uses_its_own_window_and_shows_air_dark() -> None:
    from pydicom.data import get_testdata_file

    ct = get_testdata_file("CT_small.dcm", download=False)
    if ct is None:
        pytest.skip("pydicom test file CT_small.dcm not present")
    image = load(ct)
    assert image.meta.window_width is not None  # the file's window, not percentiles
    assert image.pixels[0, 0] < 0.2  # air outside the body
