"""Contact sheet: thumbnails of generated radiographs with their ground-truth boxes and labels.

    python -m valvereader.phantoms.sheet --out docs/contact-sheet.png [--seed 5]

renders 16 phantoms and 16 composites (crops from ../shared) and tiles them.
"""

from __future__ import annotations

import argparse
import csv
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw


def display_pixels(path: Path) -> np.ndarray:
    """A DICOM file's pixels as 0..1 display values (MONOCHROME1 inverted), plain pydicom."""
    import pydicom

    ds = pydicom.dcmread(path)
    pixels = ds.pixel_array.astype(np.float32) / float((1 << int(ds.BitsStored)) - 1)
    return 1.0 - pixels if ds.PhotometricInterpretation == "MONOCHROME1" else pixels


def contact_sheet(
    csv_path: Path,
    rows: list[dict[str, str]],
    out: Path,
    tile: int = 256,
    columns: int = 8,
    title: str = "",
) -> Path:
    """Tile the images of ``rows`` (ground-truth CSV rows) with boxes and labels into ``out`` (PNG)."""
    base = Path(csv_path).parent
    thumbs = []
    for r in rows:
        pixels = display_pixels(base / r["file"])
        h, w = pixels.shape
        scale = tile / max(h, w)
        image = Image.fromarray((pixels * 255).astype(np.uint8)).resize(
            (int(w * scale), int(h * scale)), Image.Resampling.LANCZOS
        )
        canvas = Image.new("RGB", (tile, tile + 26), (20, 20, 20))
        label_y = image.height + 1
        canvas.paste(image.convert("RGB"), ((tile - image.width) // 2, 0))
        draw = ImageDraw.Draw(canvas)
        if r["box_x0"]:
            ox = (tile - image.width) // 2
            box = [
                ox + int(r["box_x0"]) * scale,
                int(r["box_y0"]) * scale,
                ox + int(r["box_x1"]) * scale,
                int(r["box_y1"]) * scale,
            ]
            draw.rectangle(box, outline=(255, 80, 60), width=1)
        label = f"{r['kind'][:4]} {r['valve_id'][:22]} {r['setting']}"
        draw.text((3, label_y), label, fill=(230, 230, 230))
        draw.text(
            (3, label_y + 12),
            f"{r['view']} {r['position']} {r['photometric']} {r['transfer_syntax']}",
            fill=(160, 160, 160),
        )
        thumbs.append(canvas)
    height = max(t.height for t in thumbs) if thumbs else tile
    cell = min(height, max(round(tile * 0.8) + 26, 1))
    n_rows = (len(thumbs) + columns - 1) // columns
    top = 22 if title else 0
    sheet = Image.new("RGB", (columns * tile, top + n_rows * cell), (0, 0, 0))
    if title:
        ImageDraw.Draw(sheet).text((6, 5), title, fill=(255, 255, 255))
    for i, t in enumerate(thumbs):
        sheet.paste(t.crop((0, 0, tile, cell)), ((i % columns) * tile, top + (i // columns) * cell))
    sheet.save(out, optimize=True)
    return out


def read_rows(csv_path: Path) -> list[dict[str, str]]:
    with open(csv_path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def main() -> None:
    from ..paths import shared_dir
    from .dataset import generate

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    shared = shared_dir()
    crops = shared / "data" / "csf-shuntvalves" if shared else None
    with tempfile.TemporaryDirectory() as folder:
        path = generate(96, folder, seed=args.seed, composites_from=crops, workers=args.workers)
        rows = read_rows(path)
        chosen: list[dict[str, str]] = []
        for kind in ("phantom", "composite"):
            # One image per patient first (more variety), then fill up.
            candidates = [r for r in rows if r["kind"] == kind]
            firsts = list({r["patient_id"]: r for r in reversed(candidates)}.values())[::-1]
            rest = [r for r in candidates if r not in firsts]
            pick = []
            for view, share in (("lateral", 10), ("ap", 6)):  # lateral films are the common case
                pick += [r for r in firsts + rest if r["view"] == view][:share]
            chosen += sorted(pick, key=lambda r: (r["view"] == "ap", r["valve_id"]))
        contact_sheet(
            path,
            chosen,
            args.out,
            tile=240,
            columns=8,
            title="Synthetic skull radiographs - top: 16 phantoms (drawn valves), bottom: 16 composites "
            "(real crops, CC BY 4.0, Rhomberg et al. 2024). Red: ground-truth box. Not patient images.",
        )
    print(args.out)


if __name__ == "__main__":
    main()
