"""PNG, JPEG, TIFF and BMP through valvereader.io.load: bit depth kept, colour to grey."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from valvereader.io import load


def test_png_8_bit_scales_to_0_1(tmp_path: Path) -> None:
    values = np.arange(256, dtype=np.uint8).reshape(16, 16)
    Image.fromarray(values).save(tmp_path / "a.png")
    image = load(tmp_path / "a.png")
    assert image.meta.file_format == "PNG" and image.meta.bits_stored == 8
    np.testing.assert_allclose(image.pixels, values / 255.0, atol=1e-6)


def test_png_16_bit_keeps_16_bit_precision(tmp_path: Path) -> None:
    values = (np.arange(64 * 64, dtype=np.uint32) * 16 + 3).astype(np.uint16).reshape(64, 64)
    Image.fromarray(values).save(tmp_path / "b.png")
    image = load(tmp_path / "b.png")
    assert image.meta.bits_stored == 16
    np.testing.assert_allclose(image.pixels, values / 65535.0, atol=1e-7)
    # Neighbouring 16-bit values stay distinct (8-bit would merge them).
    assert len(np.unique(image.pixels)) == values.size


def test_png_16_bit_using_part_of_the_range_is_stretched_and_says_so(tmp_path: Path) -> None:
    # The stored values of a 12-bit detector, as crops exported from DICOM often are: divided
    # by 65535 they came out nearly black (the program read such crops at 0.34).
    values = (np.arange(64 * 64, dtype=np.uint32) % 3901 + 100).astype(np.uint16).reshape(64, 64)  # 100..4000
    Image.fromarray(values).save(tmp_path / "twelve.png")
    image = load(tmp_path / "twelve.png")
    assert image.meta.bits_stored == 16
    np.testing.assert_allclose(image.pixels, (values - 100.0) / 3900.0, atol=1e-6)
    assert any("only from 100 to 4000" in note and "stretched" in note for note in image.meta.notes)
    # Reaching a quarter of the range or more: a 16-bit picture, read as it is.
    values[0, 0] = 1 << 14
    Image.fromarray(values).save(tmp_path / "sixteen.png")
    image = load(tmp_path / "sixteen.png")
    np.testing.assert_allclose(image.pixels, values / 65535.0, atol=1e-7)
    assert not any("stretched" in note for note in image.meta.notes)


def test_tiff_16_bit_and_multi_page_note(tmp_path: Path) -> None:
    pages = [Image.fromarray(np.full((8, 8), v, dtype=np.uint16)) for v in (1000, 30000)]
    pages[0].save(tmp_path / "c.tif", save_all=True, append_images=pages[1:])
    first = load(tmp_path / "c.tif")
    second = load(tmp_path / "c.tif", frame=1)
    assert first.meta.file_format == "TIFF"
    assert first.pixels[0, 0] == pytest.approx(1000 / 65535, abs=1e-6)
    assert second.pixels[0, 0] == pytest.approx(30000 / 65535, abs=1e-6)
    assert any("page 2 of 2" in note for note in second.meta.notes)


def test_jpeg_loads_close_to_its_source(tmp_path: Path) -> None:
    y, x = np.mgrid[0:64, 0:64]
    values = ((x + y) * 2).astype(np.uint8)
    Image.fromarray(values).save(tmp_path / "d.jpg", quality=95)
    image = load(tmp_path / "d.jpg")
    assert image.meta.file_format == "JPEG"
    assert np.abs(image.pixels - values / 255.0).max() < 0.05


def test_rgb_png_becomes_grey(tmp_path: Path) -> None:
    rgb = np.zeros((4, 4, 3), dtype=np.uint8)
    rgb[..., 1] = 255
    Image.fromarray(rgb).save(tmp_path / "e.png")
    image = load(tmp_path / "e.png")
    assert image.shape == (4, 4)
    assert image.pixels[0, 0] == pytest.approx(0.587, abs=1e-3)


def test_image_without_extension_is_found_by_content(tmp_path: Path) -> None:
    Image.fromarray(np.zeros((4, 5), dtype=np.uint8)).save(tmp_path / "noext", format="PNG")
    assert load(tmp_path / "noext").shape == (4, 5)


def test_bmp_loads_the_same_pixels_as_png(tmp_path: Path) -> None:
    # Windows tools export BMP; training already read .bmp crops (training.datasets), so the
    # program must too: 8-bit grey (written with a grey palette) and 24-bit colour.
    values = np.random.default_rng(3).integers(0, 256, (37, 53), dtype=np.uint8)
    Image.fromarray(values).save(tmp_path / "grey.bmp")
    Image.fromarray(values).convert("RGB").save(tmp_path / "colour.bmp")
    Image.fromarray(values).save(tmp_path / "same.png")
    png = load(tmp_path / "same.png").pixels
    for name in ("grey.bmp", "colour.bmp"):
        image = load(tmp_path / name)
        assert image.meta.file_format == "BMP" and image.shape == (37, 53)
        np.testing.assert_allclose(image.pixels, png, atol=1e-6)


def test_a_file_that_only_starts_with_bm_is_not_taken_for_a_bmp(tmp_path: Path) -> None:
    from valvereader.errors import NotDicomError
    from valvereader.io.sniff import sniff

    text = tmp_path / "notes.bmp"
    text.write_bytes(b"BMI of the patient: see the chart. " * 4)
    assert sniff(text) is None
    with pytest.raises(NotDicomError, match="BMP"):
        load(text)
    real = tmp_path / "real.bmp"
    Image.new("L", (4, 4), 7).save(real)
    assert sniff(real) == "image"


def _valve_like(shape: tuple[int, int] = (48, 64)) -> np.ndarray:
    """Display values 0..1: a dark field with a bright (dense, metal-like) block."""
    display = np.full(shape, 0.2)
    display[10:30, 20:40] = 0.95
    display[0, 0] = 0.0  # the darkest value present, so a reversal cannot hide in a stretch
    return display


@pytest.mark.parametrize("bits", [8, 16])
def test_tiff_white_is_zero_shows_dense_metal_white(tmp_path: Path, bits: int) -> None:
    """A TIFF whose PhotometricInterpretation is WhiteIsZero stores 0 for white. Pillow reverses
    8-bit ones itself and reads 16-bit ones as stored: either way the metal must come out white."""
    from PIL import TiffImagePlugin

    display = _valve_like()
    info = TiffImagePlugin.ImageFileDirectory_v2()
    info[262] = 0  # WhiteIsZero
    path = tmp_path / f"white_is_zero_{bits}.tif"
    if bits == 8:  # Pillow writes "L" WhiteIsZero reversed on disk, and reverses it back on reading
        Image.fromarray(np.round(display * 255).astype(np.uint8)).save(path, tiffinfo=info)
    else:  # stored as WhiteIsZero means: the higher the value, the darker
        Image.fromarray(np.round((1.0 - display) * 65535).astype(np.uint16)).save(path, tiffinfo=info)
    with Image.open(path) as check:
        assert check.tag_v2.get(262) == 0
    r = load(path)
    assert r.pixels[20, 30] > 0.9 and r.pixels[40, 5] < 0.3  # metal white, field dark
    np.testing.assert_allclose(r.pixels, display, atol=1.5 / 255)
    assert r.meta.photometric == "MONOCHROME1"
    reversed_here = any("WhiteIsZero" in note for note in r.meta.notes)
    assert reversed_here is (bits == 16)  # said where the program reversed it, not where Pillow did


def test_tiff_16_bit_black_is_zero_is_not_reversed(tmp_path: Path) -> None:
    from PIL import TiffImagePlugin

    display = _valve_like()
    info = TiffImagePlugin.ImageFileDirectory_v2()
    info[262] = 1  # BlackIsZero, the usual
    path = tmp_path / "black_is_zero.tif"
    Image.fromarray(np.round(display * 65535).astype(np.uint16)).save(path, tiffinfo=info)
    r = load(path)
    np.testing.assert_allclose(r.pixels, display, atol=1.5 / 255)
    assert r.meta.photometric == "MONOCHROME2" and not any("WhiteIsZero" in note for note in r.meta.notes)
