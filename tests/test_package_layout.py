"""The package's shape: Qt only under gui/, no torch on the inference path, data installed."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "app" / "valvereader"


def _modules_outside_gui() -> list[str]:
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        parts = rel.parts
        if "gui" in parts or parts[-1] == "__main__":
            continue
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def test_nothing_outside_gui_imports_qt() -> None:
    code = (
        "import importlib, sys\n"
        f"for name in {_modules_outside_gui()!r}:\n"
        "    try:\n        importlib.import_module(name)\n"
        "    except ImportError:\n        pass\n"
        "bad = sorted(m for m in sys.modules if m.startswith(('PySide6', 'PyQt', 'shiboken')))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "", f"Qt imported outside gui/: {out.stdout.strip()}"


def test_command_line_and_inference_path_do_not_import_torch() -> None:
    code = (
        "import sys\n"
        "from valvereader.cli import build_parser\n"
        "import valvereader.predict, valvereader.classify, valvereader.io\n"
        "build_parser()\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "False"


@pytest.mark.slow
def test_wheel_carries_templates_samples_and_weights(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(ROOT)],
        capture_output=True, text=True, timeout=600,
    )
    if out.returncode != 0:
        pytest.skip(f"cannot build a wheel here: {out.stderr[-300:]}")
    wheel = next(tmp_path.glob("valvereader-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    templates = [n for n in names if n.startswith("valvereader/resources/templates/") and n.endswith("template.yaml")]
    assert len(templates) >= 8
    for card in (ROOT / "weights").glob("*.json"):
        assert f"valvereader/weights/{card.name}" in names
        for entry in json.loads(card.read_text()).get("files", {}).values():
            assert f"valvereader/weights/{entry['path']}" in names
    samples = [n for n in names if n.startswith("valvereader/resources/samples/")]
    if (ROOT / "resources" / "samples").is_dir() and any((ROOT / "resources" / "samples").iterdir()):
        assert samples
