"""Regions of real-film training: cut as the program reads a box on a film (the box squared at
the locator card's crop scale, clipped, the identifier's Preprocess), and the fine-tune's
frozen layers. Synthetic films only; nothing from ../shared."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from valvereader.geometry import Box
from valvereader.preprocess import Preprocess
from valvereader.radiograph import Radiograph, RadiographMeta
from valvereader.training.film_regions import (
    JITTER_SQUARE,
    cut_region,
    film_boxes,
    locator_crop_scale,
)


def _film(shape=(300, 240), seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    film = (0.3 + 0.1 * rng.random(shape)).astype(np.float32)
    film[120:150, 100:140] = 0.95  # a bright "valve" at box (100, 120, 140, 150)
    return film


class _Read(Exception):
    """Carries what the predictor handed to the identifier."""


def _program_region(pixels: np.ndarray, box: Box, crop_scale: float, size: int) -> tuple[Box, np.ndarray]:
    """The square and the prepared input the program's predictor reads for a reader's box
    (Predictor._predict_region, stopped where it hands the region to the identifier)."""
    from valvereader.inference.predictor import Predictor
    from valvereader.inference.views import Prepare

    predictor = object.__new__(Predictor)
    predictor.crop_scale = crop_scale
    predictor._identify = Preprocess(size, 0.02, True)

    def identify(radiograph, square, prepare):
        raise _Read(square, prepare(predictor._identify, square).pixels)

    predictor.identify = identify
    radiograph = Radiograph(pixels, RadiographMeta(source="synthetic"))
    with pytest.raises(_Read) as caught:
        predictor._predict_region(radiograph, box, Prepare(radiograph), with_heatmap=False, heatmap_max_side=None)
    return caught.value.args


@pytest.mark.parametrize("crop_scale", [1.0, 1.25, 1.6])
@pytest.mark.parametrize("box", [Box(100, 120, 140, 150), Box(0, 5, 30, 60), Box(220, 280, 260, 320)])
def test_a_region_is_cut_as_the_predictor_reads_a_box_on_a_film(box: Box, crop_scale: float) -> None:
    pixels = _film()
    square, prepared = _program_region(pixels, box, crop_scale, 64)
    cut = cut_region(pixels, box, crop_scale, 64)
    assert cut.dtype == np.uint8 and cut.shape == (64, 64)
    np.testing.assert_array_equal(cut, np.round(prepared * 255).astype(np.uint8))
    clipped = box.clip(pixels.shape)
    assert square == clipped.square(crop_scale, minimum=32).clip(pixels.shape)


def test_the_true_box_region_is_the_box_squared_around_its_centre() -> None:
    pixels = _film()
    # 40 x 30 box centred at (120, 135): its square at 1.0 is 40 x 40, rows 115..155.
    cut = cut_region(pixels, Box(100, 120, 140, 150), 1.0, 40)
    expected = np.round(Preprocess(40, 0.02, True)(pixels, Box(100, 115, 140, 155)).pixels * 255).astype(np.uint8)
    np.testing.assert_array_equal(cut, expected)
    # The bright valve fills the middle rows (120..150 of 115..155) and all columns.
    assert cut[20, 20] > 200 and cut[2, 20] < 150 and cut[38, 20] < 150


def test_a_box_off_the_film_is_refused() -> None:
    with pytest.raises(ValueError, match="outside the film"):
        cut_region(_film(), Box(500, 500, 540, 540), 1.0, 32)


def test_each_film_gives_its_true_box_and_a_looser_jittered_box() -> None:
    rng = np.random.default_rng(0)
    scales = []
    for _ in range(50):
        (true_box, true_scale), (jittered, scale) = film_boxes(Box(100, 120, 140, 150), 1.0, rng)
        assert true_box == Box(100, 120, 140, 150) and true_scale == 1.0
        scales.append(scale)
        assert abs(jittered.center[0] - 120) < 20 and abs(jittered.center[1] - 135) < 20
    assert JITTER_SQUARE[0] <= min(scales) and max(scales) <= JITTER_SQUARE[1]
    assert max(scales) - min(scales) > 0.1


def test_the_crop_scale_is_the_locator_cards_as_the_predictor_takes_it(tmp_path: Path) -> None:
    card = tmp_path / "locator.json"
    card.write_text(json.dumps({"crop_scale": 1.0}), encoding="utf-8")
    assert locator_crop_scale(card) == 1.0
    card.write_text(json.dumps({"name": "locator"}), encoding="utf-8")
    assert locator_crop_scale(card) == 1.6  # the predictor's default without one
    assert locator_crop_scale(tmp_path / "missing.json") == 1.6


def test_the_fine_tune_leaves_the_stem_and_the_early_blocks_as_shipped() -> None:
    pytest.importorskip("torch")
    from valvereader.model.architectures import build_model
    from valvereader.training.film_finetune import cosine_lr, frozen_names

    model = build_model("efficientnet_lite0", 8, pretrained=False)
    frozen = set(frozen_names(model, 8))
    names = [name for name, _ in model.named_parameters()]
    assert any("_conv_stem" in n for n in frozen)
    assert all(n in frozen for n in names if "._blocks.7." in n or "._blocks.0." in n)
    assert not any("._blocks.8." in n or "._blocks.15." in n or n.startswith("classifier") or "_conv_head" in n for n in frozen)
    # A warm-up, then a decay to 5 % of the peak.
    total = 100
    lrs = [cosine_lr(s, total, 2e-4) for s in range(total)]
    assert lrs[0] < lrs[4] == pytest.approx(2e-4) and lrs[-1] < 0.1 * 2e-4 and lrs[-1] >= 0.05 * 2e-4


def test_distillation_keeps_the_crops_answers_near_the_shipped_members(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from types import SimpleNamespace

    from valvereader.model.architectures import build_model
    from valvereader.training.film_finetune import finetune_member

    torch.manual_seed(0)
    shipped = build_model("efficientnet_lite0", 3, pretrained=False)
    state = {k: v.clone() for k, v in shipped.state_dict().items()}
    rng = np.random.default_rng(0)
    crops = rng.integers(0, 255, (8, 64, 64), dtype=np.uint8)
    regions = rng.integers(0, 255, (8, 64, 64), dtype=np.uint8)
    crop_labels, region_labels = np.array([0, 1, 2, 0, 1, 2, 0, 1]), np.full(8, 2)  # the regions pull to one class
    member = {"arch": "efficientnet_lite0", "input_size": 64}

    def drift(distill: float) -> float:
        out = tmp_path / f"d{distill}"
        out.mkdir()
        args = SimpleNamespace(seed=0, freeze_blocks=0, max_lr=3e-3, distill=distill, distill_temperature=2.0, region_ratio=1.0,
                               epochs=1, batch=8, checkpoint_steps=100, max_steps=0)
        model, result = finetune_member(0, state, member, ["a", "b", "c"], crops, crop_labels, regions, region_labels, out, args)
        x = torch.from_numpy(crops).unsqueeze(1).float().div(255)
        with torch.no_grad():
            before, after = torch.log_softmax(shipped.eval()(x)[0], 1), torch.log_softmax(model(x)[0], 1)
        assert result["steps"] == 2 and (result["distill"] is None) == (distill == 0)
        return float(torch.sum(before.exp() * (before - after), 1).mean())

    kept, free = drift(20.0), drift(0.0)
    assert kept < 0.5 * free, (kept, free)


def test_synthetic_radiographs_are_cut_as_films_are(tmp_path: Path) -> None:
    """``film_regions --from-radiographs``: the true box and a jittered box of every catalogue
    valve of a ``valvereader phantoms`` folder, the true box cut exactly as the predictor cuts it."""
    import csv

    from valvereader.geometry import Box
    from valvereader.io import load
    from valvereader.phantoms import generate
    from valvereader.training.film_regions import cut_region, main

    folder = tmp_path / "synthetic"
    generate(3, folder, seed=4, size=(256, 320), workers=1, unknown_fraction=0.0)
    out = tmp_path / "regions"
    assert main(["--from-radiographs", str(folder), "--out", str(out), "--sizes", "64", "--seed", "1",
                 "--locator-card", str(tmp_path / "none.json")]) == 0
    meta = json.loads((out / "film_regions.json").read_text())
    images = np.load(out / "film_regions_64.npy")
    with open(folder / "ground_truth.csv", newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["box_x0"]]
    assert meta["part"] == "synthetic" and len(images) == len(meta["label"]) == 2 * len(rows)
    first = rows[0]
    box = Box(*(int(float(first[k])) for k in ("box_x0", "box_y0", "box_x1", "box_y1")))
    expected = cut_region(load(folder / first["file"]).pixels.astype(np.float32), box, 1.6, 64)
    np.testing.assert_array_equal(images[0], expected)
    assert meta["variant"][:2] == [0, 1] and meta["background"][0] == first["file"]


def test_regions_need_their_sources(tmp_path: Path, capsys) -> None:
    from valvereader.training.film_regions import main

    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path / "r")])
    assert "--backgrounds, --crops and --split are needed" in capsys.readouterr().err


def test_several_region_folders_are_read_as_one_set(tmp_path: Path) -> None:
    from valvereader.training.film_finetune import read_regions

    folders = []
    for i, count in enumerate((3, 2)):
        folder = tmp_path / f"set{i}"
        folder.mkdir()
        np.save(folder / "film_regions_32.npy", np.full((count, 32, 32), 10 * (i + 1), np.uint8))
        (folder / "film_regions.json").write_text(json.dumps({"label": list(range(i, i + count))}))
        folders.append(folder)
    images, labels = read_regions(folders, 32)
    assert images.shape == (5, 32, 32) and labels.tolist() == [0, 1, 2, 1, 2]
    assert images[:3].max() == 10 and images[3:].min() == 20
    with pytest.raises(FileNotFoundError, match="64 px"):
        read_regions(folders, 64)
    (folders[1] / "film_regions.json").write_text(json.dumps({"label": [0]}))
    with pytest.raises(ValueError, match="2 regions but 1 labels"):
        read_regions(folders, 32)
