"""Films of valves outside the catalogue: stand-ins for valve types the identifier never saw, on
real skull radiographs.

    python tools/outside_films.py --phantom-seed 902 --film-seed 9021 --out runs/outside902

The phantom generator draws two designs outside the catalogue (a fixed-pressure Codman and a
Spitz-Holter; ``valvereader.phantoms.generate(count, seed=PHANTOM_SEED, composite_fraction=0,
unknown_fraction=1)``). Each drawn valve is cut around its true box (1.1-1.5 times its longer
side, drawn from the phantom seed) into ``OUT/crops/<design>/``, and the crops are blended into
the backgrounds of one part of ``phantoms/realfilm_split.csv`` as the validation crops are
(``realfilm.write_films``: ``--per-background`` films each, no valve-free film) in ``OUT/films``
with its ``ground_truth.csv`` (``valve_id`` is the design, which no catalogue valve matches).
The backgrounds are research-use radiographs: what this writes stays outside the repository.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def save_crop(pixels: np.ndarray, box: tuple[float, float, float, float], path: Path, scale: float) -> bool:
    """The square around ``box`` (``scale`` times its longer side, clipped to the image) as an
    8-bit PNG at ``path``; False, and nothing written, where less than 16 pixels a side is left."""
    from PIL import Image

    x0, y0, x1, y1 = box
    cx, cy, side = (x0 + x1) / 2, (y0 + y1) / 2, max(x1 - x0, y1 - y0) * scale
    h, w = pixels.shape
    a, b = int(max(0, cx - side / 2)), int(max(0, cy - side / 2))
    c, d = int(min(w, cx + side / 2)), int(min(h, cy + side / 2))
    if c - a < 16 or d - b < 16:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.clip(pixels[b:d, a:c] * 255 + 0.5, 0, 255).astype(np.uint8)).save(path)
    return True


def cut_crops(truth: Path, seed: int, path_of: Callable[[dict], Path]) -> list:
    """Every drawn valve of a phantom ground truth cut around its true box (1.1-1.5 times its
    longer side, drawn from ``seed`` in the truth's order) to ``path_of(row)``; the crops made."""
    from valvereader.io import load
    from valvereader.phantoms.composite import Crop

    rng = np.random.default_rng(seed)
    crops = []
    for row in csv.DictReader(truth.open(encoding="utf-8")):
        if not row["box_x0"]:
            continue
        box = tuple(float(row[k]) for k in ("box_x0", "box_y0", "box_x1", "box_y1"))
        path = path_of(row)
        if save_crop(load(truth.parent / row["file"]).pixels, box, path, float(rng.uniform(1.1, 1.5))):  # type: ignore[arg-type]
            crops.append(Crop(path, row["valve_id"]))
    return crops


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--phantom-seed", type=int, required=True)
    parser.add_argument("--film-seed", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--count", type=int, default=120, help="phantom radiographs drawn")
    parser.add_argument("--per-background", type=int, default=2)
    parser.add_argument("--part", default="validation", choices=("train", "validation", "test"))
    parser.add_argument("--backgrounds", type=Path, default=ROOT.parent / "shared/data/skull-radiographs")
    args = parser.parse_args(argv)
    from valvereader.phantoms import generate
    from valvereader.phantoms.realfilm import read_split, write_films

    if not args.backgrounds.is_dir():
        parser.error(f"{args.backgrounds}: no skull radiographs")
    truth = generate(args.count, args.out / "phantoms", seed=args.phantom_seed, composite_fraction=0.0, unknown_fraction=1.0,
                     workers=1)
    crops = cut_crops(truth, args.phantom_seed, lambda row: args.out / "crops" / row["valve_id"] / f"{Path(row['file']).stem}.png")
    if not crops:
        parser.error("no drawn valve could be cut")
    films = write_films(args.backgrounds, read_split()[args.part], crops, args.out / "films", args.per_background,
                        args.film_seed, 0)
    print(f"{len(crops)} outside-design crops -> {films}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
