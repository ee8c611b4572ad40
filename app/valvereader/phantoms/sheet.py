"""Contact sheet: thumbnails of generated radiographs with their ground-truth boxes and labels."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw


def display_pixels(path: Path) -> np.ndarray:
    """A DICOM file's pixels as 0..1 display values (MONOCHROME1 inverted), plain pydicom."""
    import pydicom

    ds = pydicom.dcmread(path)
    pixels = ds.pixel_array.astype(np.float32) / float((1 << int(ds.BitsStored)) - 1)
    return 1.0 - pixels if ds.PhotometricInterpretation == "MONOCHROME1" else pixels


def contact_sheet(csv_path: Path, rows: list[dict[str, str]], out: Path, tile: int = 256, columns: int = 8) -> Path:
    """Tile the images of ``rows`` (ground-truth CSV rows) with boxes and labels into ``out`` (PNG)."""
    base = Path(csv_path).parent
    thumbs = []
    for r in rows:
        pixels = display_pixels(base / r["file"])
        h, w = pixels.shape
        scale = tile / max(h, w)
        image = Image.fromarray((pixels * 255).astype(np.uint8)).resize((int(w * scale), int(h * scale)), Image.Resampling.LANCZOS)
        canvas = Image.new("RGB", (tile, tile + 26), (20, 20, 20))
        canvas.paste(image.convert("RGB"), ((tile - image.width) // 2, 0))
        draw = ImageDraw.Draw(canvas)
        if r["box_x0"]:
            ox = (tile - image.width) // 2
            box = [ox + int(r["box_x0"]) * scale, int(r["box_y0"]) * scale, ox + int(r["box_x1"]) * scale, int(r["box_y1"]) * scale]
            draw.rectangle(box, outline=(255, 80, 60), width=1)
        label = f"{r['kind'][:4]} {r['valve_id'][:22]} {r['setting']}"
        draw.text((3, tile + 1), label, fill=(230, 230, 230))
        draw.text((3, tile + 13), f"{r['view']} {r['position']} {r['photometric'][-1]}", fill=(160, 160, 160))
        thumbs.append(canvas)
    n_rows = (len(thumbs) + columns - 1) // columns
    sheet = Image.new("RGB", (columns * tile, n_rows * (tile + 26)), (0, 0, 0))
    for i, t in enumerate(thumbs):
        sheet.paste(t, ((i % columns) * tile, (i // columns) * (tile + 26)))
    sheet.save(out, optimize=True)
    return out


def read_rows(csv_path: Path) -> list[dict[str, str]]:
    with open(csv_path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))
