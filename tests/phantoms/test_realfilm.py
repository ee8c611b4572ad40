"""Films made from real valve-free radiographs: the committed split, the blend, the files.

Synthetic backgrounds and crops stand in for the research radiographs (never in the
repository); the split file is checked as committed."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("cv2")

from valvereader.geometry import Box
from valvereader.phantoms import realfilm
from valvereader.phantoms.composite import Crop
from valvereader.phantoms.realfilm import (
    SPLIT_FILE,
    _cut_at_valve,
    make_film,
    make_split,
    read_split,
    write_films,
)


def test_the_committed_split_keeps_every_radiograph_on_one_side():
    split = read_split()
    assert {k: len(v) for k, v in split.items()} == {"train": 180, "validation": 60, "test": 60}
    names = [n for part in split.values() for n in part]
    assert len(names) == len(set(names)) == 300
    with SPLIT_FILE.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len({r["sha256"] for r in rows}) == 300  # no image twice under two names


def test_a_file_on_two_sides_is_refused(tmp_path: Path):
    bad = tmp_path / "split.csv"
    bad.write_text("file,sha256,part\na.jpg,1,train\na.jpg,1,test\n")
    with pytest.raises(ValueError, match="two sides"):
        read_split(bad)


def test_make_split_is_seeded_and_by_image(tmp_path: Path):
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("path,sha256\n" + "".join(f"im{i}.jpg,{i}\n" for i in range(20)))
    first, again = make_split(manifest, seed=3), make_split(manifest, seed=3)
    assert first == again
    parts = [r["part"] for r in first]
    assert parts.count("train") == 12 and parts.count("validation") == 4 and parts.count("test") == 4


def _background(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:300, 0:240]
    skull = 0.55 + 0.3 * np.exp(-(((xx - 100) / 90.0) ** 2 + ((yy - 110) / 100.0) ** 2))
    return np.clip(skull + rng.normal(0, 0.01, skull.shape), 0, 1).astype(np.float32)


def _crop(tmp_path: Path) -> Crop:
    pixels = np.full((60, 80), 90, np.uint8)
    pixels[20:40, 25:55] = 250  # the valve's metal
    folder = tmp_path / "codman_certas_plus"
    folder.mkdir(exist_ok=True)
    Image.fromarray(pixels).save(folder / "c0.png")
    return Crop(folder / "c0.png", "codman_certas_plus")


def test_a_valve_is_blended_in_at_true_size_and_shows_brighter(tmp_path: Path):
    background = _background()
    crop = _crop(tmp_path)
    for seed in range(6):
        film = make_film(background, 0.4, crop, np.random.default_rng(seed), "bg.jpg")
        assert film.truth["valve_id"] == "codman_certas_plus" and film.truth["kind"] == "valve"
        box = film.box
        assert box is not None and box.width > 0 and box.height > 0
        side = max(box.width, box.height)
        mm = float(film.truth["valve_mm"])
        # the crop's long side is the valve's size at 0.4 mm per pixel (rotated: up to sqrt 2 more)
        assert 0.8 * mm / 0.4 <= side <= 1.5 * mm / 0.4 + 2
        inside = film.pixels[box.y0 : box.y1, box.x0 : box.x1]
        assert inside.max() > np.median(inside) + 0.1  # the metal stands out of what surrounds it


def test_a_film_without_a_valve_has_no_box(tmp_path: Path):
    film = make_film(_background(), 0.4, None, np.random.default_rng(1), "bg.jpg")
    assert film.box is None and film.truth["kind"] == "negative" and film.truth["valve_id"] == ""


def test_an_edge_cut_keeps_part_of_the_valve_at_the_edge():
    display = np.zeros((200, 100), np.float32)
    box = Box(2, 80, 30, 110)  # near the left edge
    cut, moved = _cut_at_valve(display, box, np.random.default_rng(0))
    assert cut.shape[1] < 100 and moved.x0 == 0 and 0 < moved.width < box.width
    far = Box(40, 80, 60, 110)  # far from every edge: left alone
    same, kept = _cut_at_valve(np.zeros((400, 300), np.float32), Box(120, 150, 180, 250), np.random.default_rng(0))
    assert same.shape == (400, 300) and kept == Box(120, 150, 180, 250) and far.width == 20


def test_written_films_open_with_the_program_loader_and_match_their_truth(tmp_path: Path):
    from valvereader.io import load

    backgrounds = tmp_path / "bg"
    backgrounds.mkdir()
    Image.fromarray((_background() * 255).astype(np.uint8)).save(backgrounds / "a.jpg")
    (backgrounds / "manifest.csv").write_text("path,width,height,pixel_spacing_mm\na.jpg,240,300,0.4\n")
    truth = write_films(backgrounds, ["a.jpg"], [_crop(tmp_path)], tmp_path / "films", per_background=5, seed=2, negatives=2)
    with truth.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 7 and sum(r["kind"] == "negative" for r in rows) == 2
    for row in rows:
        radiograph = load(truth.parent / row["file"])
        assert radiograph.pixels.ndim == 2
        if row["kind"] == "negative":
            assert row["box_x0"] == ""
        else:
            assert 0 <= int(row["box_x0"]) < int(row["box_x1"]) <= radiograph.shape[1]
        if row["file"].endswith(".dcm"):
            assert radiograph.meta.pixel_spacing is not None


def _bright_square() -> tuple[np.ndarray, Box]:
    film = np.full((300, 400), 0.3, np.float32)
    film[100:140, 200:250] = 0.95
    return film, Box(200, 100, 250, 140)


@pytest.mark.parametrize("seed", range(12))
def test_another_machine_keeps_the_valve_in_its_box(seed: int):
    film, box = _bright_square()
    out, moved, steps = realfilm.another_machine(film, box, 0.2, np.random.default_rng(seed))
    assert 1 <= len(steps.split("+")) <= 2 and set(steps.split("+")) <= set(realfilm.MACHINE_STEPS)
    assert out.dtype == np.float32 and 0.0 <= out.min() and out.max() <= 1.0
    assert moved is not None
    inside = out[moved.y0 + 3:moved.y1 - 3, moved.x0 + 3:moved.x1 - 3].mean()
    assert inside > np.median(out) + 0.2  # the valve stays inside its (moved) box, brighter than the film
    if "resample" not in steps:
        assert out.shape == film.shape and moved == box
    else:
        zoom = out.shape[1] / film.shape[1]
        assert 0.59 <= zoom <= 1.61 and abs(moved.x0 - 200 * zoom) <= 1 and abs(moved.y1 - 140 * out.shape[0] / 300) <= 1


def test_another_machine_changes_the_film_and_leaves_the_input_alone():
    film, box = _bright_square()
    before = film.copy()
    out, _, _ = realfilm.another_machine(film, box, 0.2, np.random.default_rng(3), steps=2)
    assert np.array_equal(film, before)
    assert out.shape != film.shape or not np.allclose(out, film, atol=0.01)


def test_films_processed_as_another_machine_are_the_same_films_before_processing(tmp_path: Path):
    backgrounds = tmp_path / "bg"
    backgrounds.mkdir()
    Image.fromarray((_background() * 255).astype(np.uint8)).save(backgrounds / "a.jpg")
    (backgrounds / "manifest.csv").write_text("path,width,height,pixel_spacing_mm\na.jpg,240,300,0.4\n")
    crops = [_crop(tmp_path)]
    plain = [f for f, _ in realfilm.films(backgrounds, ["a.jpg"], crops, per_background=4, seed=2, negatives=2)]
    again = [f for f, _ in realfilm.films(backgrounds, ["a.jpg"], crops, per_background=4, seed=2, negatives=2, machine=0.0)]
    processed = [f for f, _ in realfilm.films(backgrounds, ["a.jpg"], crops, per_background=4, seed=2, negatives=2,
                                             machine=1.0)]
    assert all(np.array_equal(a.pixels, b.pixels) and a.box == b.box for a, b in zip(plain, again))
    assert all("machine" not in f.truth for f in plain)
    for before, after in zip(plain, processed):
        steps = after.truth["machine"].split("+")
        assert set(steps) <= set(realfilm.MACHINE_STEPS)
        assert {k: v for k, v in after.truth.items() if k != "machine"} == before.truth  # the same film drawn
        assert (after.box is None) == (before.box is None)
        if "resample" not in steps:
            assert after.box == before.box and after.pixels.shape == before.pixels.shape
