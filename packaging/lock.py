"""Write packaging/bundle-requirements.lock: every package of the bundle's build venv, pinned.

    python packaging/lock.py [--reference PYTHON] [--output FILE]

The packages are pyproject.toml's runtime dependencies and its ``packaging`` extra (PyInstaller)
with everything they pull in, torch-free. Each is pinned to the version installed in the
reference Python (default: the one running this script, i.e. the development install the test
suite runs with) where it has one, else to pip's choice today, and carries its wheel's sha256.
packaging/build.sh installs exactly this file (``pip install --require-hashes --no-deps
--only-binary :all:``), so the same commit builds the bundle from the same wheels. The lock is
for CPython 3.11 on Linux x86-64 (the hashes are of those wheels). Run it to update the
libraries the bundle carries (security fixes), then rebuild and rerun the smoke test.
Needs a package index (or PIP_FIND_LINKS); the build itself can then run from a wheelhouse.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import tomllib
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "packaging" / "bundle-requirements.lock"


def requirements() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return list(project["dependencies"]) + list(project["optional-dependencies"]["packaging"])


def installed_versions(python: str) -> list[str]:
    code = ("import importlib.metadata as m\n"
            "for d in m.distributions():\n"
            "    n = d.metadata['Name']\n"
            "    if n and d.version: print(f'{n}=={d.version}')\n")
    out = subprocess.run([python, "-c", code], check=True, capture_output=True, text=True).stdout
    return sorted({line for line in out.splitlines() if line and not line.lower().startswith("valvereader==")})


def resolve(reqs: list[str], constraints: list[str]) -> list[dict]:
    with tempfile.TemporaryDirectory() as tmp:
        req_file, con_file, report = Path(tmp, "req.txt"), Path(tmp, "con.txt"), Path(tmp, "report.json")
        req_file.write_text("\n".join(reqs) + "\n")
        con_file.write_text("\n".join(constraints) + "\n")
        subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed",
                        "--only-binary", ":all:", "--quiet", "--report", str(report),
                        "-r", str(req_file), "-c", str(con_file)], check=True)
        return json.loads(report.read_text())["install"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", default=sys.executable,
                        help="Python whose installed versions the lock follows (default: this one)")
    parser.add_argument("--output", type=Path, default=LOCK)
    args = parser.parse_args(argv)
    if sys.version_info[:2] != (3, 11):
        print("lock.py: run it with Python 3.11 (the bundle's interpreter)", file=sys.stderr)
        return 2
    items = resolve(requirements(), installed_versions(args.reference))
    lines = [
        "# The desktop bundle's build venv, pinned: written by packaging/lock.py, read by",
        "# packaging/build.sh (pip install --require-hashes --no-deps --only-binary :all:).",
        (f"# {datetime.now(UTC):%Y-%m-%d}, CPython {platform.python_version()} "
         f"{sys.platform} {platform.machine()}; pyproject.toml dependencies + the packaging extra,"),
        "# versions as in the development install where it has them. Do not edit by hand.",
    ]
    missing = []
    for item in sorted(items, key=lambda i: i["metadata"]["name"].lower()):
        name, version = item["metadata"]["name"], item["metadata"]["version"]
        digest = ((item.get("download_info") or {}).get("archive_info") or {}).get("hashes", {}).get("sha256")
        if not digest:
            missing.append(name)
            continue
        lines.append(f"{name}=={version} --hash=sha256:{digest}")
    if missing:
        print(f"lock.py: no sha256 from the index for {', '.join(missing)}", file=sys.stderr)
        return 1
    args.output.write_text("\n".join(lines) + "\n")
    print(f"{args.output}: {len(items)} packages")
    return 0


if __name__ == "__main__":
    sys.exit(main())
