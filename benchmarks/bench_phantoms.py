"""Time `valvereader phantoms` on this machine and extrapolate to 1000 images.

    nice -n 10 python benchmarks/bench_phantoms.py --count 100 --workers 2 [--composites-from DIR]

Prints seconds per image and the extrapolated time for 1000 images of the chosen size.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import time
from pathlib import Path

from valvereader.paths import shared_dir
from valvereader.phantoms import generate


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--size", default="1024x1280", help="ROWSxCOLUMNS")
    parser.add_argument(
        "--composites-from", default=None, help="crop folder (default: ../shared if present)"
    )
    args = parser.parse_args()
    crops = args.composites_from
    if crops is None and shared_dir() is not None:
        crops = str(shared_dir() / "data" / "csf-shuntvalves")
    rows, columns = (int(v) for v in args.size.split("x"))
    out = Path(tempfile.mkdtemp(prefix="bench_phantoms_"))
    try:

        def cpu() -> float:
            own, children = (
                resource.getrusage(resource.RUSAGE_SELF),
                resource.getrusage(resource.RUSAGE_CHILDREN),
            )
            return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime

        cpu_started = cpu()
        started = time.perf_counter()
        csv_path = generate(
            args.count,
            out,
            seed=123,
            composites_from=crops,
            workers=args.workers,
            size=(rows, columns),
        )
        elapsed = time.perf_counter() - started
        cpu_seconds = cpu() - cpu_started
        size_mb = sum(p.stat().st_size for p in (out / "images").glob("*.dcm")) / 1e6
    finally:
        shutil.rmtree(out, ignore_errors=True)
    per_image = elapsed / args.count
    print(
        f"{args.count} images {rows}x{columns}, {args.workers} workers, composites={'yes' if crops else 'no'}: "
        f"{elapsed:.1f} s, {per_image:.3f} s/image, {size_mb / args.count:.2f} MB/image"
    )
    print(
        f"extrapolated 1000 images: {per_image * 1000 / 60:.1f} min wall under the load at the time "
        f"({csv_path.name} written)"
    )
    cpu_per_image = cpu_seconds / args.count
    print(
        f"CPU: {cpu_per_image:.3f} s/image; on {args.workers} otherwise idle cores 1000 images take about "
        f"{cpu_per_image * 1000 / args.workers / 60:.1f} min"
    )


if __name__ == "__main__":
    main()
