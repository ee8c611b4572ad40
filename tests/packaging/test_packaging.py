"""Light checks of packaging/ (the PyInstaller build itself runs in packaging/build.sh, not here)."""

from __future__ import annotations

import ast
import configparser
import csv
import importlib.util
import os
import re
import shutil
import stat
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGING = ROOT / "packaging"
SCRIPTS = ("build.sh", "smoke_test.sh", "install.sh")


def _load_helpers():
    return _load("smoke_helpers")


def test_spec_parses_and_names_what_matters():
    text = (PACKAGING / "ValveReader.spec").read_text()
    tree = ast.parse(text)
    calls = {node.func.id for node in ast.walk(tree)
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)}
    assert {"Analysis", "PYZ", "EXE", "COLLECT"} <= calls
    assert 'NAME = "ShuntValveReader"' in text
    # data where valvereader.paths looks inside a bundle
    assert '"valvereader/resources"' in text and '"valvereader/weights"' in text
    # pixel-data plugins are found through entry points: metadata must be copied
    for dist in ("pylibjpeg-libjpeg", "pylibjpeg-openjpeg", "pylibjpeg-rle"):
        assert f'"{dist}"' in text
    excludes = next(node for node in ast.walk(tree)
                    if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "excludes")
    names = {elt.value for elt in excludes.value.elts}
    assert {"torch", "torchvision", "onnx", "pytorch_grad_cam", "tensorboard", "matplotlib"} <= names


def test_entry_script_is_the_cli():
    text = (PACKAGING / "entry.py").read_text()
    ast.parse(text)
    assert "from valvereader.cli import main" in text


@pytest.mark.parametrize("name", SCRIPTS)
def test_scripts_are_executable_bash(name):
    path = PACKAGING / name
    assert path.stat().st_mode & stat.S_IXUSR, f"{name} is not executable"
    assert path.read_text().startswith("#!/usr/bin/env bash")
    bash = shutil.which("bash")
    if bash:
        subprocess.run([bash, "-n", str(path)], check=True)


def test_desktop_file_is_valid():
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # keys are case-sensitive
    parser.read(PACKAGING / "valvereader.desktop", encoding="utf-8")
    assert parser.sections() == ["Desktop Entry"]
    entry = parser["Desktop Entry"]
    for key in ("Type", "Name", "Exec", "Icon", "Categories"):
        assert entry.get(key), key
    assert entry["Type"] == "Application"
    assert entry["Terminal"] in {"true", "false"}
    assert entry["Exec"].split()[0].endswith("/ShuntValveReader")
    assert "%F" in entry["Exec"] or "%f" in entry["Exec"]
    for key in ("Categories", "MimeType", "Keywords"):
        assert entry[key].endswith(";"), f"{key} must end with ';'"
    categories = entry["Categories"].split(";")
    # MedicalSoftware is an additional category: it needs Science or Education beside it
    assert "MedicalSoftware" not in categories or "Science" in categories
    known = {"Type", "Version", "Name", "GenericName", "Comment", "Exec", "TryExec", "Icon",
             "Terminal", "Categories", "MimeType", "Keywords", "StartupNotify", "StartupWMClass"}
    assert set(entry) <= known
    assert (PACKAGING / f"{entry['Icon']}.png").is_file()
    assert (PACKAGING / f"{entry['Icon']}.svg").is_file()


def _validate_desktop_file(path: Path) -> None:
    """freedesktop.org's validator (Debian's desktop-file-utils): no error, warning or hint."""
    tool = shutil.which("desktop-file-validate")
    if not tool:
        pytest.skip("desktop-file-validate missing (desktop-file-utils; scripts/install-system-deps.sh)")
    result = subprocess.run([tool, str(path)], check=False, capture_output=True, text=True)
    assert result.returncode == 0 and not (result.stdout + result.stderr).strip(), result.stdout + result.stderr


def test_desktop_file_passes_desktop_file_validate():
    _validate_desktop_file(PACKAGING / "valvereader.desktop")


def test_desktop_file_names_the_window_class():
    from valvereader.gui.launch import WINDOW_CLASS

    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str
    parser.read(PACKAGING / "valvereader.desktop", encoding="utf-8")
    # the window's WM_CLASS instance (QApplication's argv[0] in valvereader.gui.launch); the
    # window test in tests/packaging/test_offline.py reads it back from the X server
    assert parser["Desktop Entry"]["StartupWMClass"] == WINDOW_CLASS


def test_icon_files():
    png = (PACKAGING / "valvereader.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert (width, height) == (256, 256)
    root = ET.parse(PACKAGING / "valvereader.svg").getroot()
    assert root.tag.endswith("svg")


def _write_csv(path: Path, rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def test_compare_csv(tmp_path, capsys):
    helpers = _load_helpers()
    row = {"path": "a.png", "status": "ok", "predicted": "integra_dp", "verdict": "confident",
           "confidence": "0.91", "p_integra_dp": "0.91", "p_codman_certas_plus": "0.09"}
    _write_csv(tmp_path / "a.csv", [row])
    _write_csv(tmp_path / "b.csv", [dict(row, p_integra_dp="0.91005")])
    assert helpers.compare_csv(tmp_path / "a.csv", tmp_path / "b.csv", 1e-4) == 0
    _write_csv(tmp_path / "c.csv", [dict(row, p_integra_dp="0.9102")])
    assert helpers.compare_csv(tmp_path / "a.csv", tmp_path / "c.csv", 1e-4) == 1
    _write_csv(tmp_path / "d.csv", [dict(row, predicted="codman_certas_plus")])
    assert helpers.compare_csv(tmp_path / "a.csv", tmp_path / "d.csv", 1e-4) == 1


@pytest.mark.skipif(sys.platform != "linux" or not shutil.which("bash"), reason="Linux installer")
def test_install_script_user_mode(tmp_path):
    bundle = tmp_path / "ShuntValveReader"
    bundle.mkdir()
    exe = bundle / "ShuntValveReader"
    exe.write_text("#!/bin/sh\necho fake\n")
    exe.chmod(0o755)
    for name in ("valvereader.desktop", "valvereader.png", "valvereader.svg", "install.sh"):
        shutil.copy(PACKAGING / name, bundle / name)
    home = tmp_path / "home"
    env = {"HOME": str(home), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    subprocess.run(["bash", str(bundle / "install.sh"), "--user"], check=True, env=env,
                   capture_output=True)
    target = home / ".local/opt/ShuntValveReader"
    assert (target / "ShuntValveReader").is_file()
    desktop = (home / ".local/share/applications/valvereader.desktop").read_text()
    assert f"Exec={target}/ShuntValveReader view %F" in desktop
    assert (home / ".local/share/icons/hicolor/256x256/apps/valvereader.png").is_file()
    assert (home / ".local/bin/valvereader").resolve() == (target / "ShuntValveReader").resolve()
    if shutil.which("desktop-file-validate"):
        _validate_desktop_file(home / ".local/share/applications/valvereader.desktop")
    # what the program and ONNX Runtime left in the user's home before the offline fix
    usage_events = home / ".cache/Microsoft/DeveloperTools/.onnxruntime"
    usage_events.mkdir(parents=True)
    (usage_events / "onnxruntime.db").write_bytes(b"x")
    (home / ".cache/valvereader").mkdir()
    (home / ".cache/valvereader/whitener.npz").write_bytes(b"x")
    (home / ".cache/other-program").mkdir()
    (home / ".config/valvereader").mkdir(parents=True)
    (home / ".config/valvereader/review.csv").write_text("kept\n")
    subprocess.run(["bash", str(target / "install.sh"), "--user", "--uninstall"], check=True,
                   env=env, capture_output=True)
    assert not target.exists()
    assert not (home / ".local/share/applications/valvereader.desktop").exists()
    # every folder the installer made is gone; the user's records and others' files stay
    left = sorted(str(p.relative_to(home)) for p in home.rglob("*"))
    assert left == [".cache", ".cache/other-program", ".config", ".config/valvereader",
                    ".config/valvereader/review.csv"], left


@pytest.mark.skipif(sys.platform != "linux" or not shutil.which("bash"), reason="Linux installer")
def test_uninstall_keeps_folders_it_did_not_make(tmp_path):
    bundle = tmp_path / "ShuntValveReader"
    bundle.mkdir()
    exe = bundle / "ShuntValveReader"
    exe.write_text("#!/bin/sh\necho fake\n")
    exe.chmod(0o755)
    for name in ("valvereader.desktop", "valvereader.png", "valvereader.svg", "install.sh"):
        shutil.copy(PACKAGING / name, bundle / name)
    home = tmp_path / "home"
    (home / ".local/bin").mkdir(parents=True)
    (home / ".local/bin/other-tool").write_text("")
    (home / ".local/share/applications").mkdir(parents=True)
    env = {"HOME": str(home), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    for args in (["--user"], ["--user"], ["--user", "--uninstall"]):  # a reinstall in between
        script = bundle / "install.sh" if args == ["--user"] else home / ".local/opt/ShuntValveReader/install.sh"
        subprocess.run(["bash", str(script), *args], check=True, env=env, capture_output=True)
    left = sorted(str(p.relative_to(home)) for p in home.rglob("*"))
    assert left == [".local", ".local/bin", ".local/bin/other-tool", ".local/share",
                    ".local/share/applications"], left


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, PACKAGING / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_build_writes_the_numbers_into_the_packaging_doc(tmp_path):
    report = _load("build_report")
    doc_text = (ROOT / "docs" / "packaging.md").read_text()
    assert doc_text.count(report.BEGIN) == 1 and doc_text.count(report.END) == 1
    assert doc_text.index(report.BEGIN) < doc_text.index(report.END)
    results = tmp_path / "results.txt"
    results.write_text("folder_bytes=374000000\narchive_name=ShuntValveReader-0.1.0-linux-x86_64.tar.zst\n"
                       "archive_bytes=150000000\ncodec=JPEG baseline\ncodec=RLE\n"
                       "classify_correct=5 of 6 correct\nsmoke=PASSED\npart=PySide6 130 MiB\n")
    doc = tmp_path / "packaging.md"
    doc.write_text(doc_text)
    report.main([str(results), str(tmp_path / "out.md"), "--doc", str(doc)])
    new = doc.read_text()
    # the text around the block is kept; the block holds this build's numbers
    assert new.split(report.BEGIN)[0] == doc_text.split(report.BEGIN)[0]
    assert new.split(report.END)[1] == doc_text.split(report.END)[1]
    block = new.split(report.BEGIN)[1].split(report.END)[0]
    assert "357 MiB" in block and "143 MiB" in block and "5 of 6 correct" in block
    assert "JPEG baseline; RLE" in block and "**PASSED**" in block


def test_packaging_doc_states_build_numbers_only_in_the_generated_block():
    report = _load("build_report")
    text = (ROOT / "docs" / "packaging.md").read_text()
    outside = text.split(report.BEGIN)[0] + text.split(report.END)[1]
    stale = re.findall(r"\b\d+ of \d+ (?:modules|correct|checks)|\b\d+(?:\.\d+)? ?(?:MB|MiB|GB)\b[^|\n]{0,30}"
                       r"(?:bundle|archive|folder)|(?:bundle|archive|folder)[^.\n]{0,40}\b\d+(?:\.\d+)? ?(?:MB|MiB|GB)\b",
                       outside)
    assert stale == [], stale


def test_lock_pins_every_bundle_dependency_with_a_hash():
    """packaging/bundle-requirements.lock: each line `name==version --hash=sha256:…`, and every
    runtime dependency of pyproject.toml and the packaging extra is in it (else: packaging/lock.py)."""
    import tomllib

    def norm(name: str) -> str:
        return re.sub(r"[-_.]+", "-", name).lower()

    pinned = {}
    for line in (PACKAGING / "bundle-requirements.lock").read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([^\s]+) --hash=sha256:[0-9a-f]{64}", line)
        assert match, line
        pinned[norm(match.group(1))] = match.group(2)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = project["dependencies"] + project["optional-dependencies"]["packaging"]
    names = {norm(re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0]) for requirement in wanted}
    assert names - set(pinned) == set(), "run packaging/lock.py"
    assert "torch" not in pinned
