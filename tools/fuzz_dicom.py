#!/usr/bin/env python
"""Long fuzz run of valvereader.io.load on damaged DICOM files.

Usage: python tools/fuzz_dicom.py [EXAMPLES] [--save-failures DIR]

Mutates small valid DICOM files (native, MONOCHROME1 with VOI, RGB, multi-frame, RLE,
JPEG 2000, JPEG-LS) byte-wise and tag-wise with hypothesis, loads each, and counts outcomes.
Anything other than a Radiograph with finite 0..1 pixels or an InputError subclass is a
failure: it is printed (and saved with --save-failures). Exit status 1 when any failed.
The latest result is recorded in docs/dicom-robustness.md.
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "io"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("examples", nargs="?", type=int, default=5000)
    parser.add_argument("--save-failures", type=Path, help="folder for failing inputs")
    parser.add_argument("--seed", type=int, default=20240601)
    args = parser.parse_args()

    from hypothesis import HealthCheck, given, seed, settings
    from io_fuzz_strategies import damaged_dicom
    from test_io_fuzz import check_bytes

    outcomes: collections.Counter[str] = collections.Counter()
    failures: list[tuple[str, bytes]] = []
    slowest = [0.0]

    @seed(args.seed)
    @settings(max_examples=args.examples, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(damaged_dicom)
    def run(data: bytes) -> None:
        start = time.perf_counter()
        try:
            outcomes[check_bytes(data)] += 1
        except Exception:  # noqa: BLE001 - counting failures is the point
            outcomes["FAILURE"] += 1
            failures.append((traceback.format_exc(limit=3), data))
        slowest[0] = max(slowest[0], time.perf_counter() - start)

    start = time.perf_counter()
    run()
    elapsed = time.perf_counter() - start
    total = sum(outcomes.values())
    print(f"examples: {total} in {elapsed:.0f} s (slowest {slowest[0]:.2f} s)")
    for name, count in outcomes.most_common():
        print(f"  {name:34s} {count}")
    for index, (trace, data) in enumerate(failures[:20]):
        print(f"--- failure {index}: {len(data)} bytes\n{trace}")
        if args.save_failures:
            args.save_failures.mkdir(parents=True, exist_ok=True)
            (args.save_failures / f"failure_{index}.dcm").write_bytes(data)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
