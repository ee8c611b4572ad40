"""Property: damaged DICOM files give a valid image or a typed InputError."""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from io_fuzz_strategies import SEED_NAMES, damaged_dicom, seed_bytes

from valvereader.errors import InputError
from valvereader.io import load


def check_bytes(data: bytes) -> str:
    """Load ``data`` from a temporary file; return 'ok' or the InputError class name.
    Any other exception propagates (that is the failure the fuzzing looks for)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.dcm"
        path.write_bytes(data)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                image = load(path)
        except InputError as exc:
            return type(exc).__name__
    assert image.pixels.dtype == np.float32 and image.pixels.ndim == 2
    assert np.isfinite(image.pixels).all()
    assert image.pixels.min() >= 0 and image.pixels.max() <= 1
    return "ok"


def test_every_seed_file_loads() -> None:
    for name in SEED_NAMES:
        assert check_bytes(seed_bytes(name)) == "ok", name


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
@given(damaged_dicom)
def test_damaged_dicom_gives_an_image_or_a_typed_error(data: bytes) -> None:
    check_bytes(data)
