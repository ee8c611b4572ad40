"""Identifier training regions cut from real skull radiographs with real valve crops blended in.

The identifier reads a valve on a whole film through a region: the located (or the reader's)
box made square × the locator card's ``crop_scale`` and clipped to the film, then the
identifier's Preprocess (border crop, squish-resize). Regions cut here are cut the same way
from films of :mod:`valvereader.phantoms.realfilm` (train-split backgrounds × train-split
crops, valves 15-45 mm at the background's pixel spacing, every file format's round trip as the
loader sees it), so that a member can be fine-tuned on valves in real-film context.

    python -m valvereader.training.film_regions --backgrounds ../shared/data/skull-radiographs \\
        --crops ../shared/data/csf-shuntvalves --split docs/evaluation/identifier/split.json \\
        --out runs/film_regions --per-background 4

Each film gives two regions: its true box squared at ``crop_scale`` (variant 0, what the
program reads through the true box) and a jittered box (centre ± 8 %, scale × exp(N(0, 0.12)),
as the composite regions) squared at ``crop_scale`` × U(1.0, 1.25) (variant 1, a located box's
looser fit). Written as ``film_regions_{size}.npy`` (uint8, N × size × size) and
``film_regions.json`` (label, variant, background, source crop, valve size per region).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from ..geometry import Box
from ..preprocess import Preprocess

JITTER_SQUARE = (1.0, 1.25)  # a jittered box's square, × crop_scale
FORMAT_WEIGHTS = (0.3, 0.2, 0.25, 0.25)  # as realfilm.write_films draws them


def cut_region(pixels: np.ndarray, box: Box, crop_scale: float, size: int) -> np.ndarray:
    """The region the program reads for ``box`` on a film (``Predictor._predict_region``): the
    box clipped to the film, made square × ``crop_scale`` (at least 32 px), clipped again, then
    the identifier's Preprocess at ``size``; uint8 (0..255).

    Raises:
        ValueError: the box lies outside the film.
    """
    clipped = box.clip(pixels.shape)
    if clipped.width <= 0 or clipped.height <= 0:
        raise ValueError(f"the box {box.as_tuple()} lies outside the film ({pixels.shape[1]} x {pixels.shape[0]} px)")
    square = clipped.square(crop_scale, minimum=32).clip(pixels.shape)
    prepared = Preprocess(size, 0.02, True)(pixels, square)
    return np.round(prepared.pixels * 255).astype(np.uint8)


def film_boxes(box: Box, crop_scale: float, rng: np.random.Generator) -> list[tuple[Box, float]]:
    """The two regions' (box, square scale) of one film: the true box at ``crop_scale``, and a
    jittered box at ``crop_scale`` × U(1.0, 1.25)."""
    from .composites import box_jitter

    return [(box, crop_scale), (box_jitter(box, rng), crop_scale * float(rng.uniform(*JITTER_SQUARE)))]


def _cut_into(arrays: dict[int, list[np.ndarray]], pixels: np.ndarray, box: Box, crop_scale: float,
              rng: np.random.Generator) -> list[tuple[int, float]]:
    """Cut a film's two regions (``film_boxes``) at every size of ``arrays`` and append them;
    returns (variant, square scale) of each region cut (a box outside the film is skipped)."""
    done = []
    for variant, (region, scale) in enumerate(film_boxes(box, crop_scale, rng)):
        try:
            cut = {size: cut_region(pixels, region, scale, size) for size in arrays}
        except ValueError:
            continue
        for size, image in cut.items():
            arrays[size].append(image)
        done.append((variant, scale))
    return done


def _write_regions(out: Path, arrays: dict[int, list[np.ndarray]], meta: dict) -> dict:
    """``film_regions_{size}.npy`` for every size and ``film_regions.json``; returns ``meta``."""
    for size, images in arrays.items():
        np.save(out / f"film_regions_{size}.npy", np.stack(images) if images else np.zeros((0, size, size), np.uint8))
    (out / "film_regions.json").write_text(json.dumps(meta), encoding="utf-8")
    return meta


def locator_crop_scale(locator_card: Path) -> float:
    """The crop scale the predictor reads located boxes at (the locator card's, 1.6 without one)."""
    try:
        data = json.loads(Path(locator_card).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return 1.6
    return float(data.get("crop_scale") or 1.6)


def make_film_regions(backgrounds: Path, crops_dir: Path, split_json: Path, out: Path, per_background: int, seed: int,
                      sizes: list[int], crop_scale: float, part: str = "train", class_ids: list[str] | None = None,
                      machine: float = 0.0) -> dict:
    """Films of ``part`` backgrounds × ``part`` crops (``realfilm.films``, no negatives), each read
    back through a file format's round trip, cut into two regions at every size; a ``machine``
    share of the films is first processed as another machine's (``realfilm.films``). Returns
    (and writes) the metadata."""
    from ..catalogue import VALVE_IDS
    from ..phantoms.realfilm import FORMATS, crops_by_part, films, read_split, roundtrip

    class_ids = list(class_ids or VALVE_IDS)
    names = read_split()[part]
    crops = crops_by_part(crops_dir, split_json)[part]
    out.mkdir(parents=True, exist_ok=True)
    arrays: dict[int, list[np.ndarray]] = {size: [] for size in sizes}
    meta: dict = {"label": [], "variant": [], "background": [], "source_crop": [], "valve_mm": [], "format": [], "scale": []}
    began = time.time()
    for i, (film, rng) in enumerate(films(backgrounds, names, crops, per_background, seed, negatives=0, machine=machine)):
        if film.box is None:
            continue
        fmt = str(rng.choice(FORMATS, p=list(FORMAT_WEIGHTS)))
        reverse = fmt in ("png", "jpeg") and rng.random() < 0.15
        pixels = roundtrip(film.pixels, fmt, rng, reverse).astype(np.float32)
        for variant, scale in _cut_into(arrays, pixels, film.box, crop_scale, rng):
            meta["label"].append(class_ids.index(film.truth["valve_id"]))
            meta["variant"].append(variant)
            meta["background"].append(film.truth["background"])
            meta["source_crop"].append(film.truth["source_crop"])
            meta["valve_mm"].append(float(film.truth["valve_mm"]))
            meta["format"].append(fmt)
            meta["scale"].append(round(scale, 4))
            if machine:
                meta.setdefault("machine", []).append(film.truth.get("machine", ""))
        if (i + 1) % 100 == 0:
            print(f"{i + 1} films cut ({time.time() - began:.0f} s)", file=sys.stderr, flush=True)
    meta.update(part=part, per_background=per_background, seed=seed, crop_scale=crop_scale, sizes=sizes, machine_share=machine,
                backgrounds=len(names), crops=len(crops), class_ids=class_ids, seconds=round(time.time() - began, 1))
    return _write_regions(out, arrays, meta)


def make_synthetic_regions(radiographs: Path, out: Path, seed: int, sizes: list[int], crop_scale: float,
                           class_ids: list[str] | None = None) -> dict:
    """Regions of synthetic radiographs (a folder with the ``ground_truth.csv`` that
    ``valvereader phantoms`` writes), cut as ``make_film_regions`` cuts a film's: the true box and
    a jittered box of every catalogue valve, each file read by the program's loader. Returns (and
    writes) the metadata; ``background`` is the radiograph's file."""
    import csv

    from ..catalogue import VALVE_IDS
    from ..io import load

    class_ids = list(class_ids or VALVE_IDS)
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    arrays: dict[int, list[np.ndarray]] = {size: [] for size in sizes}
    meta: dict = {"label": [], "variant": [], "background": [], "source_crop": [], "kind": [], "scale": []}
    began = time.time()
    with open(radiographs / "ground_truth.csv", newline="", encoding="utf-8") as handle:
        rows = [row for row in csv.DictReader(handle) if row.get("valve_id") in class_ids and row.get("box_x0")]
    for row in rows:
        pixels = load(radiographs / row["file"]).pixels.astype(np.float32)
        box = Box(*(int(float(row[key])) for key in ("box_x0", "box_y0", "box_x1", "box_y1")))
        for variant, scale in _cut_into(arrays, pixels, box, crop_scale, rng):
            meta["label"].append(class_ids.index(row["valve_id"]))
            meta["variant"].append(variant)
            meta["background"].append(row["file"])
            meta["source_crop"].append(row.get("source_crop", ""))
            meta["kind"].append(row.get("kind", ""))
            meta["scale"].append(round(scale, 4))
    meta.update(part="synthetic", radiographs=str(radiographs), seed=seed, crop_scale=crop_scale, sizes=sizes,
                backgrounds=len(rows), class_ids=class_ids, seconds=round(time.time() - began, 1))
    return _write_regions(out, arrays, meta)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m valvereader.training.film_regions", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backgrounds", type=Path, help="the skull-radiograph folder (manifest.csv)")
    parser.add_argument("--crops", type=Path, help="the crop folder (class folders)")
    parser.add_argument("--split", type=Path, help="the identifier's split.json")
    parser.add_argument("--from-radiographs", type=Path, default=None, metavar="DIR",
                        help="cut the regions of these synthetic radiographs instead (a folder with the ground_truth.csv "
                             "of valvereader phantoms); --backgrounds, --crops and --split are then not used")
    parser.add_argument("--synthetic", type=int, default=None, metavar="COUNT",
                        help="first make COUNT synthetic radiographs from the --part crops of --split (phantoms.dataset.generate, "
                             "1024 x 1280, as recipe locator-3.2 makes its synthetic films) into OUT/radiographs, then cut theirs")
    parser.add_argument("--synthetic-seed", type=int, default=21)
    parser.add_argument("--composite-fraction", type=float, default=0.8)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--per-background", type=int, default=4)
    parser.add_argument("--seed", type=int, default=101)
    parser.add_argument("--sizes", default="320,384")
    parser.add_argument("--part", default="train", choices=("train", "validation"))
    parser.add_argument("--machine", type=float, default=0.0,
                        help="share of films processed as another machine's first (phantoms.realfilm.another_machine)")
    parser.add_argument("--locator-card", type=Path, default=Path("weights/locator.json"),
                        help="whose crop_scale the regions are squared at (the predictor's)")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.synthetic is not None:
        if args.crops is None or args.split is None:
            parser.error("--synthetic needs --crops and --split")
        from ..phantoms.dataset import generate
        from ..phantoms.realfilm import crops_by_part

        args.from_radiographs = args.out / "radiographs"
        if not (args.from_radiographs / "ground_truth.csv").is_file():
            generate(args.synthetic, args.from_radiographs, seed=args.synthetic_seed,
                     composites_from=crops_by_part(args.crops, args.split)[args.part], workers=2,
                     composite_fraction=args.composite_fraction)
    if args.from_radiographs is not None:
        if not (args.from_radiographs / "ground_truth.csv").is_file():
            parser.error(f"{args.from_radiographs} has no ground_truth.csv")
        meta = make_synthetic_regions(args.from_radiographs, args.out, args.seed, sizes, locator_crop_scale(args.locator_card))
        print(f"{len(meta['label'])} regions from {meta['backgrounds']} radiographs written to {args.out} ({meta['seconds']} s)")
        return 0
    if args.backgrounds is None or args.crops is None or args.split is None:
        parser.error("--backgrounds, --crops and --split are needed (or --from-radiographs)")
    meta = make_film_regions(args.backgrounds, args.crops, args.split, args.out, args.per_background, args.seed,
                             sizes, locator_crop_scale(args.locator_card), args.part, machine=args.machine)
    print(f"{len(meta['label'])} regions from {meta['backgrounds']} backgrounds written to {args.out} ({meta['seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
