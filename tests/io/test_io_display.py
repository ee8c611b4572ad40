"""The per-level lookup-table path of the display pipeline equals per-pixel arithmetic."""

from __future__ import annotations

import numpy as np
import pytest
from io_dicom_factory import make_dataset

from valvereader.io import display


@pytest.mark.parametrize(
    ("photometric", "attributes"),
    [
        ("MONOCHROME2", {}),  # percentile window
        ("MONOCHROME1", {"WindowCenter": 1200, "WindowWidth": 800}),
        ("MONOCHROME2", {"RescaleSlope": 2, "RescaleIntercept": -1024, "VOILUTFunction": "SIGMOID",
                         "WindowCenter": 500, "WindowWidth": 900}),
        ("MONOCHROME1", {"PixelPaddingValue": 0}),
    ],
)
def test_lookup_table_path_equals_per_pixel_path(
    monkeypatch: pytest.MonkeyPatch, photometric: str, attributes: dict[str, object]
) -> None:
    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 3000, (300, 320)).astype(np.uint16)  # above the LUT-path size
    pixels[:10] = 0
    ds = make_dataset(pixels, photometric, 12, **attributes)
    if "PixelPaddingValue" in attributes:
        ds["PixelPaddingValue"].VR = "US"
    assert display._stored_value_domain(pixels) is not None
    fast = display.render(pixels, ds, [])
    monkeypatch.setattr(display, "_stored_value_domain", lambda raw, extremes=None: None)
    slow = display.render(pixels, ds, [])
    assert fast.window_center == pytest.approx(slow.window_center, rel=1e-3) if slow.window_center else True
    np.testing.assert_allclose(fast.pixels, slow.pixels, atol=2e-3)
    assert fast.pixels.dtype == np.float32 and fast.pixels.shape == pixels.shape
