"""Speed: the fast preprocessing equals the straightforward one.

Border crop from a strided sample plus refinement = the crop over every pixel (exactly); the
resize reduced from the source region in place = PIL on a contiguous copy (within 1e-6: the
block means are summed in another order; without a reduction, exactly); shared work between
the locator's and the identifier's inputs = preparing each separately, whatever the sizes.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from valvereader.geometry import Box
from valvereader.inference.views import Prepare
from valvereader.preprocess import (
    Preprocess,
    _reduce,
    border_crop_box,
    border_crop_box_reference,
    squish_resize,
)

RESIZE_TOLERANCE = 1e-6
from valvereader.radiograph import Radiograph, RadiographMeta


def _image_with_border(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    h, w = shape
    pixels = np.zeros(shape, np.float32)
    y0, y1 = sorted(rng.integers(0, h + 1, 2))
    x0, x1 = sorted(rng.integers(0, w + 1, 2))
    pixels[y0:y1, x0:x1] = rng.uniform(0.0, 1.0, (y1 - y0, x1 - x0))
    # Dim noise below the threshold in the border, and a few lone bright pixels anywhere
    # (most off the sampling grid), which the sample cannot see but the crop must include.
    pixels += rng.uniform(0.0, 0.019, shape).astype(np.float32) * (rng.random() < 0.5)
    for _ in range(rng.integers(0, 4)):
        pixels[rng.integers(0, h), rng.integers(0, w)] = rng.uniform(0.03, 1.0)
    return pixels


def test_fast_border_crop_equals_the_exact_one_on_random_images() -> None:
    rng = np.random.default_rng(0)
    for trial in range(300):
        shape = (int(rng.integers(1, 200)), int(rng.integers(1, 200))) if trial % 3 else (
            int(rng.integers(200, 900)), int(rng.integers(200, 900)))
        pixels = _image_with_border(rng, shape)
        for threshold in (0.02, 0.5):
            assert border_crop_box(pixels, threshold) == border_crop_box_reference(pixels, threshold), trial


@pytest.mark.parametrize("case", ["dark", "bright", "one_pixel", "corners", "nan", "lines"])
def test_fast_border_crop_edge_cases(case: str) -> None:
    pixels = np.zeros((517, 389), np.float32)
    if case == "bright":
        pixels[:] = 1.0
    elif case == "one_pixel":
        pixels[201, 133] = 0.5  # between the sample points
    elif case == "corners":
        pixels[0, 0] = pixels[-1, -1] = 0.5
        pixels[100:400, 100:300] = 0.7
    elif case == "nan":
        pixels[:] = np.nan
        pixels[50:60, 70:71] = 0.9
    elif case == "lines":
        pixels[100:300, 100:300] = 0.7
        pixels[3, 301:388] = 0.3  # a row outside the sampled box reaching right
        pixels[511, 17] = 0.3
    assert border_crop_box(pixels) == border_crop_box_reference(pixels)


def test_border_crop_of_a_view_into_a_larger_image() -> None:
    rng = np.random.default_rng(1)
    big = _image_with_border(rng, (800, 700))
    view = big[37:611, 45:690]
    assert border_crop_box(view) == border_crop_box_reference(view)


def _reference_squish(pixels: np.ndarray, size: int | tuple[int, int], gap: float = 2.0) -> np.ndarray:
    """The straightforward resize: contiguous copy → PIL mode F → bilinear with reducing gap."""
    height, width = (size, size) if isinstance(size, int) else size
    image = Image.fromarray(np.ascontiguousarray(pixels, dtype=np.float32), mode="F")
    return np.asarray(image.resize((width, height), Image.Resampling.BILINEAR, reducing_gap=gap), dtype=np.float32)


@pytest.mark.parametrize("gap", [1.0, 1.5, 3.0])
def test_resize_with_another_reducing_gap_equals_pils(gap: float) -> None:
    """Preprocess(reducing_gap=...) (the locator's card asks for 1.0): PIL's resize with that gap,
    also through the cache of reductions that several input sizes of one crop share."""
    from valvereader.preprocess import Preprocess

    rng = np.random.default_rng(5)
    big = rng.uniform(0, 1, (2503, 2011)).astype(np.float32)
    for box in (Box(0, 0, 2011, 2503), Box(13, 7, 1000, 1290), Box(3, 1200, 1017, 2503), Box(50, 50, 330, 330)):
        view = big[box.y0 : box.y1, box.x0 : box.x1]
        for size in (320, (300, 200)):
            np.testing.assert_allclose(squish_resize(view, size, reducing_gap=gap), _reference_squish(view, size, gap),
                                       rtol=0, atol=RESIZE_TOLERANCE, err_msg=f"{box} {size}")
    reduced: dict = {}
    default, other = Preprocess(320, crop_border=False), Preprocess(320, crop_border=False, reducing_gap=gap)
    for preprocess in (default, other, default):  # one cache, both gaps, either order
        out = preprocess.resize(big, Box.full(big.shape), reduced).pixels
        want = np.clip(_reference_squish(big, 320, preprocess.reducing_gap), 0, 1)
        np.testing.assert_allclose(out, want, rtol=0, atol=RESIZE_TOLERANCE)
    assert "reducing_gap" not in default.config() and other.config()["reducing_gap"] == gap
    with pytest.raises(ValueError, match="reducing_gap"):
        Preprocess(320, reducing_gap=0.5)


@pytest.mark.parametrize("size", [320, 384, 448, (300, 200)])
def test_resize_read_from_the_source_region_equals_resizing_a_copy(size: int | tuple[int, int]) -> None:
    rng = np.random.default_rng(2)
    big = rng.uniform(0, 1, (2503, 2011)).astype(np.float32)
    boxes = (Box(0, 0, 2011, 2503), Box(13, 7, 1000, 1290), Box(500, 600, 517, 1301), Box(3, 1200, 1017, 2503),
             Box(100, 100, 1380, 1124), Box(0, 0, 640, 700), Box(50, 50, 330, 330))
    for box in boxes:
        view = big[box.y0 : box.y1, box.x0 : box.x1]
        np.testing.assert_allclose(squish_resize(view, size), _reference_squish(view, size), rtol=0,
                                   atol=RESIZE_TOLERANCE, err_msg=str(box))
    # Not float32, not a plain view: the general path.
    as_float64 = big[::2, ::3].astype(np.float64)
    np.testing.assert_allclose(squish_resize(as_float64, 320), _reference_squish(as_float64, 320), rtol=0, atol=RESIZE_TOLERANCE)
    transposed = big.T[100:700, 50:900]
    np.testing.assert_allclose(squish_resize(transposed, 320), _reference_squish(transposed, 320), rtol=0, atol=RESIZE_TOLERANCE)


def test_resize_without_reduction_is_bit_exact() -> None:
    rng = np.random.default_rng(3)
    big = rng.uniform(0, 1, (900, 800)).astype(np.float32)
    for box in (Box(10, 20, 600, 610), Box(0, 0, 800, 900), Box(100, 0, 180, 70)):
        view = big[box.y0 : box.y1, box.x0 : box.x1]
        assert np.array_equal(squish_resize(view, 320), _reference_squish(view, 320))


@pytest.mark.parametrize(("fx", "fy"), [(2, 2), (3, 3), (2, 3), (4, 1), (1, 5), (7, 6)])
def test_block_means_equal_pil_reduce(fx: int, fy: int) -> None:
    rng = np.random.default_rng(fx * 10 + fy)
    big = rng.uniform(0, 1, (613, 577)).astype(np.float32)
    for h, w in ((613, 577), (600, 560), (fy, fx), (fy + 1, fx + 1), (3, 2), (1, 1)):
        view = big[5 : 5 + h, 7 : 7 + w] if h + 5 <= 613 and w + 7 <= 577 else big[:h, :w]
        expected = np.asarray(Image.fromarray(np.ascontiguousarray(view), mode="F").reduce((fx, fy)))
        got = _reduce(view, fx, fy)
        assert got.shape == expected.shape, (h, w)
        np.testing.assert_allclose(got, expected, rtol=0, atol=2e-7)


def _reference_preprocess(pixels: np.ndarray, size: int, region: Box | None, threshold: float = 0.02) -> tuple[np.ndarray, Box]:
    base = region.clip(pixels.shape) if region is not None else Box.full(pixels.shape)
    view = pixels[base.y0 : base.y1, base.x0 : base.x1]
    crop = border_crop_box_reference(view, threshold)
    view = view[crop.y0 : crop.y1, crop.x0 : crop.x1]
    return np.clip(_reference_squish(view, size), 0.0, 1.0), crop.shifted(base.x0, base.y0)


@pytest.mark.parametrize("size", [320, 384, 448])
def test_preprocess_equals_the_straightforward_pipeline(size: int) -> None:
    rng = np.random.default_rng(size)
    pixels = _image_with_border(rng, (1250, 1000))
    pixels[:, :40] = 0
    for region in (None, Box(300, 400, 700, 800), Box(-50, -20, 200, 300)):
        prepared = Preprocess(size)(pixels, region)
        expected, crop = _reference_preprocess(pixels, size, region)
        assert prepared.crop == crop
        np.testing.assert_allclose(prepared.pixels, expected, rtol=0, atol=RESIZE_TOLERANCE)
        assert prepared.pixels.shape == (size, size) and prepared.source_shape == pixels.shape


@pytest.mark.parametrize(("locator_size", "identifier_size"), [(320, 320), (320, 384), (320, 448), (256, 448)])
def test_shared_preparation_equals_preparing_each_input_alone(locator_size: int, identifier_size: int) -> None:
    rng = np.random.default_rng(4)
    pixels = _image_with_border(rng, (900, 700))
    radiograph = Radiograph(pixels, RadiographMeta())
    prepare = Prepare(radiograph)
    locator, identifier = Preprocess(locator_size), Preprocess(identifier_size)
    shared = [prepare(locator), prepare(identifier), prepare(identifier, Box(100, 100, 400, 400))]
    alone = [locator(pixels), identifier(pixels), identifier(pixels, Box(100, 100, 400, 400))]
    for got, expected in zip(shared, alone):
        assert got.crop == expected.crop and np.array_equal(got.pixels, expected.pixels)
    assert prepare(identifier) is shared[1]  # remembered, not redone
    prepare.release()
    assert not prepare.reduced


def test_a_crop_is_read_in_place_not_copied_first() -> None:
    from valvereader.preprocess import _row_span

    big = np.zeros((50, 40), np.float32)
    assert _row_span(big[3:50, 5:40]) == (46 * 40 + 35) * 4  # reaches the array's last byte
    assert _row_span(big[3:10, 5:8]) is not None
    assert _row_span(big[::2, 5:8]) == (24 * 80 + 3) * 4
    assert _row_span(big[:, ::2]) is None  # columns not adjacent: general path


def _whole_block_means_loop(view: np.ndarray, fx: int, fy: int) -> np.ndarray:
    """The means of the whole fx × fy blocks as first written: sums of fy rows (starting from a
    float32 copy of the first), then of fx columns, then scaled. (The last partial row and
    column did not change; test_block_means_equal_pil_reduce covers them.)"""
    rows, cols = view.shape[0] // fy, view.shape[1] // fx
    acc = np.array(view[0 : rows * fy : fy], dtype=np.float32)
    for k in range(1, fy):
        acc += view[k : rows * fy : fy]
    body = np.array(acc[:, 0 : cols * fx : fx])
    for j in range(1, fx):
        body += acc[:, j : cols * fx : fx]
    body *= np.float32(1.0 / (fx * fy))
    return body


def test_block_means_with_fewer_passes_equal_the_first_loop_bit_for_bit() -> None:
    # The first row sum written from two rows, one row read in place, the first column sum
    # written from two columns: the same float32 operations in the same order.
    rng = np.random.default_rng(21)
    big = rng.random((900, 900), dtype=np.float32)
    for _ in range(60):
        h, w = (int(v) for v in rng.integers(1, 880, 2))
        fx, fy = (int(v) for v in rng.integers(1, 7, 2))
        view = big[3 : 3 + h, 5 : 5 + w]
        rows, cols = h // fy, w // fx
        got = _reduce(view, fx, fy)[:rows, :cols]
        assert np.array_equal(got, _whole_block_means_loop(view, fx, fy)), (h, w, fx, fy)
    as_float64 = big[:301, :257].astype(np.float64)  # another dtype: the general path
    assert np.array_equal(_reduce(as_float64, 3, 2)[:150, :85], _whole_block_means_loop(as_float64, 3, 2))
