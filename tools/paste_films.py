"""Whole radiographs made the plain way: each crop of one part of the split pasted, at its own
size, into a 2000 x 2500 film, then read by the program (a diagnostic, nothing is chosen on it).

    python tools/paste_films.py validation OUT_DIR [--split runs/identifier/split.json]

Three films per crop, at the same random place: (skull) on the benchmark's synthetic skull, as
DICOM with a pixel spacing (a film: the program reads the located square alone); (skull, PNG)
the same film as 8-bit PNG without a spacing (the program reads both views and chooses); (grey)
on a flat grey field, DICOM. A crop larger than 60 % of the film's side is shrunk to fit. The
crop keeps its own surroundings (unlike the composites of ``valvereader phantoms``, which paste
the valve's detail into a phantom skull with noise and distractors), so this is the kindest
way to make a radiograph from a crop. Writes OUT_DIR/<variant>/ (films and ground_truth.csv)
and prints accuracy, verdicts and the box hit rate per variant as a Markdown table.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from run import synthetic_skull, write_dicom  # the benchmark's film maker

from valvereader.training import composites

FILM = composites.PASTED_FILM  # rows, columns
VARIANTS = ("skull", "skull_png", "grey")


def make(split: Path, part: str, out: Path, seed: int = 7) -> dict[str, list[tuple[str, str, tuple[int, int, int, int]]]]:
    """Write the films; returns, per variant, (file name, label, paste box x0 y0 x1 y1)."""
    doc = json.loads(split.read_text(encoding="utf-8"))
    rng = np.random.default_rng(seed)
    rows: dict[str, list] = {v: [] for v in VARIANTS}
    for v in VARIANTS:
        (out / v).mkdir(parents=True, exist_ok=True)
    for i in doc["split"][part]:
        path = Path(doc["paths"][i])
        if not path.is_absolute():
            path = (ROOT / path).resolve()
        crop = composites.fit_to_film(composites.load_grey(path), FILM)  # (8-bit crops: the same pixels as PIL's own shrink)
        ch, cw = crop.shape
        skull = synthetic_skull(FILM, rng, None)
        place = composites.paste_place(crop.shape, rng, FILM)
        y0, x0, box = place.y0, place.x0, place.as_tuple()
        skull[y0 : y0 + ch, x0 : x0 + cw] = crop
        grey = np.full(FILM, 0.3, dtype=np.float32)
        grey[y0 : y0 + ch, x0 : x0 + cw] = crop
        name = f"{part}_{i:04d}"
        write_dicom(out / "skull" / f"{name}.dcm", skull)
        Image.fromarray(np.round(skull * 255).astype(np.uint8)).save(out / "skull_png" / f"{name}.png")
        write_dicom(out / "grey" / f"{name}.dcm", grey)
        label = doc["labels"][i]
        rows["skull"].append((f"{name}.dcm", label, box))
        rows["skull_png"].append((f"{name}.png", label, box))
        rows["grey"].append((f"{name}.dcm", label, box))
    for v, items in rows.items():
        with open(out / v / "ground_truth.csv", "w", encoding="utf-8") as fh:
            fh.write("file,box_x0,box_y0,box_x1,box_y1,kind,valve_id\n")
            for name, label, (a, b, c, d) in items:
                fh.write(f"{name},{a},{b},{c},{d},paste,{label}\n")
    return rows


def read(out: Path, rows: dict[str, list]) -> list[str]:
    from valvereader.inference.predictor import load_predictor

    predictor = load_predictor(device="cpu")
    lines = ["| films | n | accuracy | box centre in the pasted crop | confident | review | unknown | confident and wrong |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for v, items in rows.items():
        by_name = {name: (label, box) for name, label, box in items}
        right = inside = wrong_confident = 0
        verdicts = {"confident": 0, "review": 0, "unknown": 0}
        paths = [out / v / name for name, _, _ in items]
        for path, _, result in predictor.predict_many(paths, with_heatmap=False):
            if isinstance(result, Exception):
                print(f"{path.name}: {result}", file=sys.stderr)
                continue
            label, (x0, y0, x1, y1) = by_name[path.name]
            ok = result.predicted == label
            right += ok
            verdicts[result.verdict] = verdicts.get(result.verdict, 0) + 1
            wrong_confident += (not ok) and result.verdict == "confident"
            if result.box is not None:
                cx, cy = (result.box.x0 + result.box.x1) / 2, (result.box.y0 + result.box.y1) / 2
                inside += x0 <= cx <= x1 and y0 <= cy <= y1
        n = len(items)
        lines.append(f"| {v} | {n} | {right / n:.3f} | {inside / n:.3f} | {verdicts['confident']} | {verdicts['review']} "
                     f"| {verdicts['unknown']} | {wrong_confident} |")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("part", help="the split's part: validation or test")
    parser.add_argument("out", type=Path)
    parser.add_argument("--split", type=Path, default=ROOT / "runs/identifier/split.json")
    args = parser.parse_args()
    rows = make(args.split, args.part, args.out)
    print("\n".join(read(args.out, rows)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
