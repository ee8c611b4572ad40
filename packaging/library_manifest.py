"""Where each compiled library in the bundle comes from, for IT's security updates.

    python library_manifest.py LIBRARIES.tsv OUT.txt     (run by build.sh with the build Python)

LIBRARIES.tsv (written by ValveReader.spec) has one line per bundled library or extension
module: its path in the bundle and the file it was copied from. Each is attributed to
  * a wheel (distribution and version, pinned in packaging/bundle-requirements.lock),
  * the Python interpreter the bundle was built with, or
  * a Debian package of the build machine (package and version, from dpkg).
OUT.txt lists them grouped that way; the last line of standard output is a one-line summary.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import defaultdict
from importlib import metadata
from pathlib import Path


def wheel_owners() -> dict[str, str]:
    owners: dict[str, str] = {}
    for dist in metadata.distributions():
        label = f"{dist.metadata['Name']} {dist.version}"
        for file in dist.files or []:
            if ".so" in file.name:
                owners[str(Path(dist.locate_file(file)).resolve())] = label
    return owners


def debian_packages(paths: list[str]) -> dict[str, str]:
    """path -> 'package version' for files dpkg knows (tried as given and under /usr)."""
    if not paths or not shutil.which("dpkg"):
        return {}
    candidates = {}
    for path in paths:
        for alias in (path, path.removeprefix("/usr") if path.startswith("/usr/lib") else "/usr" + path):
            candidates[alias] = path
    out = subprocess.run(["dpkg", "-S", *candidates], check=False, capture_output=True, text=True).stdout
    package_of: dict[str, str] = {}
    for line in out.splitlines():
        package, _, path = line.partition(": ")
        if path in candidates:
            package_of[candidates[path]] = package.split(":")[0].split(",")[0].strip()
    versions = {}
    if package_of:
        query = subprocess.run(["dpkg-query", "-W", "-f", "${Package} ${Version}\n", *set(package_of.values())],
                               check=False, capture_output=True, text=True).stdout
        versions = dict(line.split(" ", 1) for line in query.splitlines() if " " in line)
    return {path: f"{package} {versions.get(package, '?')}" for path, package in package_of.items()}


def main(argv: list[str]) -> int:
    table, out = Path(argv[0]), Path(argv[1])
    rows = [line.split("\t", 1) for line in table.read_text().splitlines() if "\t" in line]
    owners = wheel_owners()
    base = str(Path(sys.base_prefix).resolve())
    groups: dict[str, list[str]] = defaultdict(list)
    system: list[tuple[str, str]] = []
    for dest, src in rows:
        if src in owners:
            groups[f"wheel {owners[src]}"].append(dest)
        elif src.startswith(base) or "/stripped/" in src:  # ValveReader.spec strips the interpreter's own
            groups[f"Python {sys.version.split()[0]} (interpreter)"].append(dest)
        else:
            system.append((dest, src))
    packages = debian_packages([src for _, src in system])
    for dest, src in system:
        groups[f"system package {packages.get(src, 'unknown: ' + src)}"].append(dest)
    lines = ["Compiled libraries in this bundle and where they come from (written by packaging/build.sh).",
             "Wheels are pinned by packaging/bundle-requirements.lock; system packages are the build",
             "machine's. Everything not listed (glibc, GLib, D-Bus, X11, OpenGL, fontconfig, GTK 3, CUPS,",
             "OpenSSL, ...) is loaded from the workstation and updated with it.", ""]
    for origin in sorted(groups, key=lambda g: (not g.startswith("wheel"), g.startswith("system"), g.lower())):
        lines.append(f"{origin}: {len(groups[origin])}")
        lines += [f"    {dest}" for dest in sorted(groups[origin])]
    out.write_text("\n".join(lines) + "\n")
    wheel = sum(len(v) for k, v in groups.items() if k.startswith("wheel"))
    interp = sum(len(v) for k, v in groups.items() if k.startswith("Python"))
    debs = sorted({k.removeprefix("system package ") for k in groups if k.startswith("system")})
    print(f"{len(rows)} libraries: {wheel} from wheels, {interp} the interpreter's, "
          f"{len(system)} from the build machine ({'; '.join(debs) or 'none'})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
