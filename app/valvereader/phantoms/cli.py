"""`valvereader phantoms`: generate phantom and composite skull radiographs with ground truth."""

from __future__ import annotations

import argparse
import sys
import time


def _size(text: str) -> tuple[int, int]:
    try:
        rows, columns = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"size must look like 1024x1280 (rows x columns), got '{text}'"
        ) from None
    if not (64 <= rows <= 8192 and 64 <= columns <= 8192):
        raise argparse.ArgumentTypeError(f"size {text} out of range: 64..8192 per side")
    return rows, columns


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--count", type=int, required=True, help="number of images")
    parser.add_argument("--out", required=True, help="output folder (created)")
    parser.add_argument("--seed", type=int, default=0, help="same seed, same files (default 0)")
    parser.add_argument(
        "--composites-from",
        metavar="DIR",
        help="folder of real valve crops (one folder per valve id, or manifest.csv)",
    )
    parser.add_argument(
        "--composite-fraction",
        type=float,
        default=0.5,
        help="share of patients with a real crop instead of a drawn valve (default 0.5)",
    )
    parser.add_argument(
        "--none-fraction",
        type=float,
        default=0.0,
        help="share of drawn-valve patients without any valve (default 0)",
    )
    parser.add_argument("--views", default="lateral,ap", help="comma-separated: lateral,ap")
    parser.add_argument("--workers", type=int, default=2, help="processes (default 2)")
    parser.add_argument(
        "--size", type=_size, default=(1024, 1280), help="ROWSxCOLUMNS (default 1024x1280)"
    )


def run(args: argparse.Namespace) -> int:
    from ..errors import ValveReaderError

    try:
        from .dataset import generate
    except ImportError as exc:
        print(
            f"valvereader phantoms needs OpenCV ({exc}): pip install 'valvereader[train]' "
            "or opencv-python-headless",
            file=sys.stderr,
        )
        return 2

    started = time.perf_counter()
    try:
        path = generate(
            args.count,
            args.out,
            args.seed,
            args.composites_from,
            tuple(v.strip() for v in args.views.split(",") if v.strip()),
            args.workers,
            args.size,
            args.composite_fraction,
            args.none_fraction,
        )
    except (ValveReaderError, ValueError) as exc:
        print(f"valvereader phantoms: {exc}", file=sys.stderr)
        return 2
    print(f"{args.count} images in {time.perf_counter() - started:.1f} s; ground truth: {path}")
    return 0
