"""Helpers for packaging/smoke_test.sh, run with the *build* Python (never inside the bundle).

    python smoke_helpers.py codec-files DIR        copy compressed DICOM test files to DIR
    python smoke_helpers.py compare-csv A.csv B.csv [--tol 1e-4]
    python smoke_helpers.py compare-png A.png B.png
    python smoke_helpers.py check-png FILE.png
    python smoke_helpers.py count-correct RESULT.csv ground_truth.csv   prints "K of N correct"
"""

from __future__ import annotations

import argparse
import csv
import math
import shutil
import sys
from pathlib import Path

# pydicom's wheel ships these test files (offline); one per pixel-data encoding the bundle
# must decode through the pylibjpeg plugins (or pydicom's own RLE/deflate/big-endian code).
CODEC_FILES = {
    "JPEG2000.dcm": "JPEG 2000 (lossless), openjpeg",
    "693_J2KI.dcm": "JPEG 2000 (lossy), openjpeg",
    "SC_rgb_jpeg_dcmtk.dcm": "JPEG baseline, libjpeg",
    "JPGExtended.dcm": "JPEG extended 12-bit, libjpeg",
    "MR_small_jpeg_ls_lossless.dcm": "JPEG-LS lossless, libjpeg",
    "MR_small_RLE.dcm": "RLE lossless, rle / pydicom",
    "MR_small_bigendian.dcm": "explicit VR big endian",
    "image_dfl.dcm": "deflated explicit VR little endian",
}
# JPEG lossless (process 14) is not in the wheel; take it from ../shared when present.
ZOO_FILES = {
    "pylibjpeg-data/ljdata/ds/JPEGLossless/JPEGLossless_1s_1f_u_16_12.dcm": "JPEG lossless SV1, libjpeg",
}


def codec_files(out: Path) -> int:
    from pydicom.data import get_testdata_file

    out.mkdir(parents=True, exist_ok=True)
    for name, what in CODEC_FILES.items():
        try:
            src = get_testdata_file(name, download=False)
        except TypeError:  # older signature
            src = get_testdata_file(name)
        if not src:
            print(f"missing pydicom test file {name} ({what})", file=sys.stderr)
            continue
        shutil.copy(src, out / name)
        print(f"{name}\t{what}")
    for root in (Path(__file__).resolve().parents[2] / "shared/data/dicom-zoo",
                 Path.cwd().parent / "shared/data/dicom-zoo"):
        if root.is_dir():
            for rel, what in ZOO_FILES.items():
                if (root / rel).is_file():
                    shutil.copy(root / rel, out / Path(rel).name)
                    print(f"{Path(rel).name}\t{what}")
            break
    return 0


def _rows(path: Path) -> dict[str, dict[str, str]]:
    with path.open(newline="") as handle:
        return {row["path"]: row for row in csv.DictReader(handle)}


def compare_csv(a: Path, b: Path, tol: float) -> int:
    """Same files, same status, same predicted class and verdict, probabilities within tol."""
    rows_a, rows_b = _rows(a), _rows(b)
    problems: list[str] = []
    if set(rows_a) != set(rows_b):
        problems.append(f"different files: only in {a.name}: {sorted(set(rows_a) - set(rows_b))}, "
                        f"only in {b.name}: {sorted(set(rows_b) - set(rows_a))}")
    worst = 0.0
    ok = 0
    for key in sorted(set(rows_a) & set(rows_b)):
        ra, rb = rows_a[key], rows_b[key]
        for column in ("status", "predicted", "verdict"):
            if ra.get(column, "") != rb.get(column, ""):
                problems.append(f"{key}: {column} {ra.get(column)!r} != {rb.get(column)!r}")
        for column in ra:
            if column.startswith("p_") or column in ("confidence", "entropy", "margin"):
                va, vb = ra.get(column, ""), rb.get(column, "")
                if va == vb == "":
                    continue
                try:
                    diff = abs(float(va) - float(vb))
                except ValueError:
                    problems.append(f"{key}: {column} {va!r} vs {vb!r}")
                    continue
                if math.isnan(diff) or diff > tol:
                    problems.append(f"{key}: {column} {va} vs {vb} (|diff| {diff:.2e} > {tol})")
                worst = max(worst, diff)
        ok += ra.get("status") == "ok"
    print(f"compared {len(rows_a)} rows ({ok} ok), largest probability difference {worst:.2e}")
    for problem in problems[:20]:
        print("MISMATCH", problem)
    return 1 if problems else 0


def compare_png(a: Path, b: Path) -> int:
    import numpy as np
    from PIL import Image

    pa, pb = np.asarray(Image.open(a)), np.asarray(Image.open(b))
    if pa.shape != pb.shape or not np.array_equal(pa, pb):
        print(f"MISMATCH {a.name}: {pa.shape} vs {pb.shape}")
        return 1
    return 0


def check_png(path: Path) -> int:
    from PIL import Image

    with Image.open(path) as image:
        image.load()
        print(f"{path.name}: {image.size[0]}x{image.size[1]} {image.mode}")
        extrema = image.convert("L").getextrema()
        if extrema[0] == extrema[1]:
            print("screenshot is a single flat colour", file=sys.stderr)
            return 1
    return 0


def count_correct(result: Path, truth: Path) -> int:
    """How many of the ground truth's files the classify CSV names the right valve for."""
    with truth.open(newline="") as handle:
        expected = {row["file"]: row["valve_id"] for row in csv.DictReader(handle) if row.get("valve_id")}
    got = {Path(key).name: row.get("predicted", "") for key, row in _rows(result).items()}
    right = sorted(name for name, valve in expected.items() if got.get(name) == valve)
    wrong = [f"{name}: {got.get(name) or 'nothing'} (is {expected[name]})"
             for name in sorted(expected) if name not in right]
    print(f"{len(right)} of {len(expected)} correct" + (f"; wrong: {', '.join(wrong)}" if wrong else ""))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("codec-files").add_argument("out", type=Path)
    p = sub.add_parser("compare-csv")
    p.add_argument("a", type=Path)
    p.add_argument("b", type=Path)
    p.add_argument("--tol", type=float, default=1e-4)
    p = sub.add_parser("compare-png")
    p.add_argument("a", type=Path)
    p.add_argument("b", type=Path)
    sub.add_parser("check-png").add_argument("file", type=Path)
    p = sub.add_parser("count-correct")
    p.add_argument("result", type=Path)
    p.add_argument("truth", type=Path)
    args = parser.parse_args(argv)
    if args.command == "codec-files":
        return codec_files(args.out)
    if args.command == "compare-csv":
        return compare_csv(args.a, args.b, args.tol)
    if args.command == "count-correct":
        return count_correct(args.result, args.truth)
    if args.command == "compare-png":
        return compare_png(args.a, args.b)
    return check_png(args.file)


if __name__ == "__main__":
    sys.exit(main())
