"""`valvereader info FILE [--png OUT.png]`: print what the loader sees, optionally save it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, help="DICOM, PNG, JPEG, TIFF or BMP file")
    parser.add_argument("--png", type=Path, metavar="OUT.png",
                        help="write the displayed image (after LUTs and inversion) as 16-bit PNG")
    parser.add_argument("--frame", type=int, default=1, help="frame of a multi-frame file (from 1)")


def describe(radiograph: object) -> list[str]:
    """Lines describing a Radiograph's metadata, as `info` prints them."""
    meta = radiograph.meta  # type: ignore[attr-defined]
    rows, columns = radiograph.shape  # type: ignore[attr-defined]
    spacing = meta.pixel_spacing
    window = (
        f"center {meta.window_center:g}, width {meta.window_width:g}"
        if meta.window_center is not None and meta.window_width is not None
        else "none (LUT from the file or already display values)"
    )
    pairs = [
        ("file", meta.source),
        ("format", meta.file_format),
        ("size", f"{columns} x {rows} pixels (width x height)"),
        ("photometric", meta.photometric or "-"),
        ("bits stored", meta.bits_stored if meta.bits_stored is not None else "-"),
        ("transfer syntax", meta.transfer_syntax or "-"),
        ("window", window),
        ("pixel spacing", f"{spacing.row_mm:g} x {spacing.column_mm:g} mm, {spacing.describe()}"
         if spacing else "unknown"),
        ("frames", meta.frames),
        ("modality", meta.modality or "-"),
        ("body part", meta.body_part or "-"),
        ("view", meta.view_position or "-"),
        ("patient name", meta.patient_name or "-"),
        ("patient id", meta.patient_id or "-"),
        ("birth date", meta.patient_birth_date or "-"),
        ("study date", meta.study_date or "-"),
        ("accession", meta.accession_number or "-"),
        ("study uid", meta.study_instance_uid or "-"),
        ("series uid", meta.series_instance_uid or "-"),
        ("sop uid", meta.sop_instance_uid or "-"),
        ("grey range", f"{float(radiograph.pixels.min()):.3f} .. {float(radiograph.pixels.max()):.3f}"),  # type: ignore[attr-defined]
    ]
    lines = [f"{key:>16}: {value}" for key, value in pairs]
    lines += [f"{'note':>16}: {note}" for note in meta.notes]
    return lines


def write_png16(pixels: object, out: Path) -> None:
    """Save 0..1 pixels as a 16-bit greyscale PNG."""
    import numpy as np
    from PIL import Image

    values = np.round(np.clip(np.asarray(pixels, dtype=np.float64), 0, 1) * 65535).astype(np.uint16)
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(values).save(out, format="PNG")


def run(args: argparse.Namespace) -> int:
    from ..errors import InputError
    from . import load

    try:
        radiograph = load(args.file, frame=max(int(args.frame) - 1, 0))
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print("\n".join(describe(radiograph)))
    if args.png:
        try:
            write_png16(radiograph.pixels, args.png)
        except OSError as exc:
            print(f"error: cannot write {args.png}: {exc}", file=sys.stderr)
            return 2
        print(f"{'written':>16}: {args.png} (16-bit PNG)")
    return 0
