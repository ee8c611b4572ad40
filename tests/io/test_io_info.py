"""`valvereader info`: prints what the loader sees, writes a 16-bit PNG, exit 2 on bad input."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest
from io_dicom_factory import make_dataset, ramp, save
from PIL import Image

from valvereader.io import info, load


def _run(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    info.add_arguments(parser)
    return info.run(parser.parse_args(list(argv)))


def test_info_prints_fields_and_writes_16_bit_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = save(make_dataset(ramp(), "MONOCHROME1", 12, ImagerPixelSpacing=[0.1, 0.1]), tmp_path / "x.dcm")
    out = tmp_path / "shown.png"
    assert _run(str(path), "--png", str(out)) == 0
    text = capsys.readouterr().out
    for expected in ("MONOCHROME1", "Explicit VR Little Endian", "ImagerPixelSpacing", "ID12345", "percentile"):
        assert expected in text
    with Image.open(out) as image:
        assert image.mode.startswith("I;16")
        written = np.asarray(image, dtype=np.float64) / 65535
    np.testing.assert_allclose(written, load(path).pixels, atol=1 / 65535)


def test_info_exits_2_with_the_typed_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.dcm"
    bad.write_text("not dicom at all")
    assert _run(str(bad)) == 2
    assert "bad.dcm" in capsys.readouterr().err
