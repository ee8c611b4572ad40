"""Films from another machine: a folder of films (``ground_truth.csv`` as written by
``valvereader.phantoms.realfilm``) changed the way another hospital's films might differ, then
read by the program (a measurement; nothing is chosen on it).

    python tools/shift_films.py make FILMS_DIR OUT_DIR [--shifts a,b,...]
    python tools/shift_films.py read OUT_DIR [--weights W]     # classify + film_rule evaluate
    python tools/shift_films.py truebox OUT_DIR [--weights W]  # classify --boxes with the true boxes
    python tools/shift_films.py table OUT_DIR                  # the Markdown table

Each shift is applied to every film in its display domain (0..1, bone white; a DICOM file's
stored values are turned into that and back, MONOCHROME1 included; a PNG or JPEG file exported
reversed is changed as stored), and the file is written again in its own format: DICOM with
the same bits and photometric interpretation (pixel spacing updated where the pixels are
resampled), PNG as 8 bits, JPEG at quality 92. Boxes in the ground truth follow resampling and
padding. The shifts:

- ``none``: written again unchanged (the rewrite itself, for reference);
- ``finer``: resampled to 1.5 x the pixels (0.133 mm a pixel for a 0.2 mm film);
- ``coarser``: resampled to 0.7 x the pixels (0.286 mm a pixel);
- ``gamma_bright`` / ``gamma_dark``: display values to the power 0.6 / 1.6;
- ``flat``: contrast x 0.6 about the film's mean;
- ``edge_enhanced``: unsharp masking, Gaussian sigma 3 mm, amount 1.0 (a DR unit's detail
  processing);
- ``equalised``: CLAHE (clip limit 2, 8 x 8 tiles);
- ``grainy``: Gaussian noise, sigma 0.02;
- ``wider_field``: the film padded by 20 % of its size on every side with the film's darkest
  value (a larger detector: the skull smaller in the frame).
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pydicom
from PIL import Image

from valvereader.training import film_rule

SHIFTS = ("none", "finer", "coarser", "gamma_bright", "gamma_dark", "flat", "edge_enhanced", "equalised",
          "grainy", "wider_field")
BOX = ("box_x0", "box_y0", "box_x1", "box_y1")


def change(display: np.ndarray, shift: str, spacing_mm: float, rng: np.random.Generator) -> tuple[np.ndarray, float, int]:
    """(changed display, zoom factor, padding in pixels of the changed film)."""
    x = display.astype(np.float32)
    zoom, pad = 1.0, 0
    if shift in ("finer", "coarser"):
        zoom = 1.5 if shift == "finer" else 0.7
        size = (round(x.shape[1] * zoom), round(x.shape[0] * zoom))
        x = cv2.resize(x, size, interpolation=cv2.INTER_CUBIC if zoom > 1 else cv2.INTER_AREA)
    elif shift == "gamma_bright":
        x = np.clip(x, 0, 1) ** 0.6
    elif shift == "gamma_dark":
        x = np.clip(x, 0, 1) ** 1.6
    elif shift == "flat":
        x = x.mean() + 0.6 * (x - x.mean())
    elif shift == "edge_enhanced":
        sigma = 3.0 / spacing_mm
        x = x + 1.0 * (x - cv2.GaussianBlur(x, (0, 0), sigma))
    elif shift == "equalised":
        clahe = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8))
        x = clahe.apply(np.round(np.clip(x, 0, 1) * 65535).astype(np.uint16)).astype(np.float32) / 65535
    elif shift == "grainy":
        x = x + rng.normal(0, 0.02, x.shape).astype(np.float32)
    elif shift == "wider_field":
        pad = round(0.2 * max(x.shape))
        x = np.pad(x, pad, constant_values=float(x.min()))
    elif shift != "none":
        raise ValueError(f"unknown shift {shift!r}")
    return np.clip(x, 0, 1), zoom, pad


def _dicom(src: Path, dst: Path, shift: str, rng: np.random.Generator) -> tuple[float, int]:
    ds = pydicom.dcmread(src)
    top = (1 << int(ds.BitsStored)) - 1
    stored = ds.pixel_array.astype(np.float32) / top
    mono1 = ds.PhotometricInterpretation == "MONOCHROME1"
    spacing = float(ds.PixelSpacing[0]) if "PixelSpacing" in ds else 0.2
    out, zoom, pad = change(1 - stored if mono1 else stored, shift, spacing, rng)
    values = np.rint((1 - out if mono1 else out) * top).astype(ds.pixel_array.dtype)
    ds.Rows, ds.Columns = values.shape
    ds.PixelData = values.tobytes()
    for tag in ("PixelSpacing", "ImagerPixelSpacing"):
        if tag in ds:
            ds[tag].value = [f"{float(v) / zoom:.6g}" for v in ds[tag].value]
    ds.save_as(dst)
    return zoom, pad


def _image(src: Path, dst: Path, shift: str, rng: np.random.Generator) -> tuple[float, int]:
    with Image.open(src) as image:
        display = np.asarray(image.convert("L"), dtype=np.float32) / 255.0
    out, zoom, pad = change(display, shift, 0.2, rng)
    buffer = io.BytesIO()
    picture = Image.fromarray(np.rint(out * 255).astype(np.uint8))
    if dst.suffix.lower() in (".jpg", ".jpeg"):
        picture.save(buffer, "JPEG", quality=92)
    else:
        picture.save(buffer, "PNG")
    dst.write_bytes(buffer.getvalue())
    return zoom, pad


def make(films: Path, out: Path, shifts: list[str]) -> None:
    with (films / "ground_truth.csv").open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        fields, rows = list(reader.fieldnames or []), list(reader)
    for shift in shifts:
        folder = out / shift
        folder.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(SHIFTS.index(shift))
        new_rows = []
        for row in rows:
            src, dst = films / row["file"], folder / row["file"]
            zoom, pad = (_dicom if src.suffix.lower() == ".dcm" else _image)(src, dst, shift, rng)
            row = dict(row)
            if row.get("box_x0"):
                row.update({k: str(round(float(row[k]) * zoom) + pad) for k in BOX})
            new_rows.append(row)
        with (folder / "ground_truth.csv").open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=fields)
            writer.writeheader()
            writer.writerows(new_rows)
        print(f"{shift}: {len(new_rows)} films", flush=True)


def _folders(out: Path) -> list[Path]:
    return sorted(p for p in out.iterdir() if (p / "ground_truth.csv").is_file())


def _classify(inputs: list[str], output: Path, weights: Path | None, *extra: str) -> None:
    """``valvereader classify`` in its own process (a fresh program per set, as a user runs it)."""
    cmd = [str(Path(sys.executable).parent / "valvereader"), "classify", *inputs, *extra, "--output", str(output)]
    if weights is not None:
        cmd += ["--weights", str(weights)]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def read(out: Path, weights: Path | None) -> None:
    for folder in _folders(out):
        result = folder.with_suffix(".csv")
        if not result.is_file():
            _classify([str(folder)], result, weights)
        report = film_rule.evaluate(folder / "ground_truth.csv", result)
        folder.with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
        print(folder.name, "read", flush=True)


def truebox(out: Path, weights: Path | None) -> None:
    """The films with a valve read through their true box (``classify --boxes``): the
    identifier's part of a change, without the locator's."""
    for folder in _folders(out):
        result = out / f"{folder.name}_truebox.csv"
        if result.is_file():
            continue
        with (folder / "ground_truth.csv").open(newline="", encoding="utf-8") as handle:
            rows = [r for r in csv.DictReader(handle) if r.get("box_x0")]
        boxes = out / f"{folder.name}_boxes.csv"
        with boxes.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["path", *BOX])
            writer.writerows([[r["file"], *(r[k] for k in BOX)] for r in rows])
        _classify([str(folder / r["file"]) for r in rows], result, weights, "--boxes", str(boxes))
        print(folder.name, "read through the true box", flush=True)


def _truebox_named(out: Path, shift: str) -> str:
    path = out / f"{shift}_truebox.csv"
    if not path.is_file():
        return "–"
    return f"{film_rule.evaluate(out / shift / 'ground_truth.csv', path)['overall']['named_right']:.3f}"


def table(out: Path) -> str:
    lines = [("| films | box holds the valve | named right | \"confident\" (right) | \"no valve\": valve-free / with a valve "
             "| true box: named right |"),
             "|---|---:|---:|---:|---:|---:|"]
    for shift in SHIFTS:
        path = out / f"{shift}.json"
        if not path.is_file():
            continue
        o = json.loads(path.read_text())["overall"]
        lines.append(f"| {shift} | {o['box_hit']:.2f} | {o['named_right']:.3f} | {o['confident']:.1%} "
                     f"({o['right_when_confident']:.2f}) | {o['no_valve_on_valve_free']:.0%} / "
                     f"{o['no_valve_on_valve_films']:.1%} | {_truebox_named(out, shift)} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    m = sub.add_parser("make")
    m.add_argument("films", type=Path)
    m.add_argument("out", type=Path)
    m.add_argument("--shifts", default=",".join(SHIFTS))
    r = sub.add_parser("read")
    r.add_argument("out", type=Path)
    r.add_argument("--weights", type=Path)
    b = sub.add_parser("truebox")
    b.add_argument("out", type=Path)
    b.add_argument("--weights", type=Path)
    t = sub.add_parser("table")
    t.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    if args.command == "make":
        make(args.films, args.out, [s for s in args.shifts.split(",") if s])
    elif args.command == "read":
        read(args.out, args.weights)
    elif args.command == "truebox":
        truebox(args.out, args.weights)
    else:
        print(table(args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
