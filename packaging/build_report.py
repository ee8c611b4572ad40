"""Write the last build's numbers into docs/packaging.md, so that they cannot go stale.

    python build_report.py RESULTS.txt OUT.md [--doc docs/packaging.md]

RESULTS.txt holds ``key=value`` lines from packaging/build.sh and packaging/smoke_test.sh (a key
may repeat, e.g. one ``codec=`` per decoded transfer syntax). OUT.md gets the results section;
with ``--doc`` the same section replaces the text between BEGIN and END in that file.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

BEGIN = "<!-- build results: written by packaging/build.sh (packaging/build_report.py); do not edit -->"
END = "<!-- end of build results -->"


def read(path: Path) -> dict[str, list[str]]:
    values: dict[str, list[str]] = defaultdict(list)
    for line in path.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip():
            values[key.strip()].append(value.strip())
    return values


def mib(value: str) -> str:
    return f"**{int(value) / 2**20:.0f} MiB** ({int(value):,} bytes)"


def render(v: dict[str, list[str]]) -> str:
    def one(key: str, default: str = "not run") -> str:
        return v[key][-1] if v.get(key) else default

    rows = [("bundle folder `dist/ShuntValveReader/`", mib(one("folder_bytes", "0")))]
    if v.get("archive_bytes"):
        rows.append((f"archive `{one('archive_name')}`", (f"{mib(one('archive_bytes'))} (+ `.sha256`); "
                                                          f"unpacks in {one('unpack_seconds', '?')} s")))
    else:
        rows.append(("archive", "not built (`--no-archive`)"))
    rows += [
        ("PyInstaller", f"{one('pyinstaller_seconds', '?')} s"),
        ("whole `build.sh`", f"{one('build_seconds', '?')} s"),
        ("libraries", one("libraries", "?") + " (`BUNDLED-LIBRARIES.txt`)"),
        ("smoke test", f"**{one('smoke')}** ({one('checks', '')}); isolation: {one('isolation', '?')}"),
        ("window on a sample", one("view")),
        ("without the workstation's optional libraries", one("optional_libs")),
        ("bundle self-test", one("selftest")),
        ("compressed DICOM, same image as the Python install", "; ".join(v.get("codec", [])) or "not run"),
        ("`classify` on the samples", (f"{one('classify_same')}; {one('classify_correct', 'no ground truth')}; "
                                       f"{one('classify_seconds', '?')} s")),
        ("nothing leaves the workstation", one("offline")),
    ]
    lines = [
        BEGIN,
        f"Last build: {one('date', '?')}, commit `{one('commit', '?')}`"
        + (" (with uncommitted changes)" if v.get("dirty") else "")
        + f", `{('bash packaging/build.sh ' + one('options', '')).strip()}`, Python {one('python', '?')}, "
        f"PyInstaller {one('pyinstaller', '?')}, {one('lock', '?')}, on {one('machine', '?')}.",
        "",
        "| | |",
        "| --- | --- |",
        *[f"| {name} | {value} |" for name, value in rows],
        "",
        "Largest parts of `_internal/`: " + ", ".join(v.get("part", [])) + ".",
        END,
    ]
    return "\n".join(lines)


def replace_block(doc: Path, block: str) -> None:
    text = doc.read_text()
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{doc}: no build-results markers")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    doc.write_text(head + block + tail)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--doc", type=Path)
    args = parser.parse_args(argv)
    block = render(read(args.results))
    args.out.write_text(block + "\n")
    if args.doc:
        replace_block(args.doc, block)
    print(block)
    return 0


if __name__ == "__main__":
    sys.exit(main())
