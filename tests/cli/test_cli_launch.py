"""`valvereader` before the window: mistyped commands, missing files, no display, missing libraries."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from valvereader import cli
from valvereader.gui import display_check, launch

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "resources" / "samples"
UNUSED_DISPLAY = ":4713"


@pytest.fixture
def window_calls(monkeypatch: pytest.MonkeyPatch) -> list:
    """The arguments each opened window got (none opens for real)."""
    calls: list = []
    monkeypatch.setattr(launch, "run", lambda args: calls.append(args) or 0)
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    return calls


@pytest.mark.parametrize(("argv", "says"), [
    (["bogus"], "argument COMMAND: invalid choice: 'bogus' (choose from 'classify', "),
    (["clasify", str(SAMPLES)], "invalid choice: 'clasify'"),
    (["--bogus"], "unrecognized arguments: --bogus"),
    ([str(SAMPLES), "--bogus"], "unrecognized arguments: --bogus"),
    (["view", str(SAMPLES), "--no-such-option"], "unrecognized arguments: --no-such-option"),
])
def test_an_unknown_command_or_option_is_a_usage_error_and_opens_no_window(
        argv, says, window_calls, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as stop:
        cli.main(argv)
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: valvereader") and says in err
    assert window_calls == []


def test_a_file_named_like_a_word_still_opens(window_calls, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "film").write_bytes(b"")  # a DICOM file without a suffix, as some archives name them
    assert cli.main(["film"]) == 0
    assert [list(map(str, call.paths)) for call in window_calls] == [["film"]]


def test_a_missing_file_for_the_window_is_a_usage_error_naming_it(window_calls, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as stop:
        cli.main([str(SAMPLES), "scans/missing.dcm"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "valvereader view: error: no such file or folder: scans/missing.dcm" in err
    assert "Traceback" not in err and window_calls == []


def _run_without_qt_platform(env_changes: dict[str, str], *argv: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env.update(env_changes)
    return subprocess.run([sys.executable, "-m", "valvereader", *argv], check=False, capture_output=True, text=True,
                          env=env, timeout=120, cwd=ROOT)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the platform plugins checked are Linux's")
def test_without_a_display_one_line_says_what_to_do_and_the_exit_code_is_2() -> None:
    done = _run_without_qt_platform({}, str(SAMPLES))
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("valvereader: no display to open the window on")
    assert "xvfb-run -a valvereader" in lines[0] and "--screenshot" in lines[0]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the platform plugins checked are Linux's")
def test_a_display_without_a_server_is_reported_instead_of_qts_abort() -> None:
    if Path(f"/tmp/.X11-unix/X{UNUSED_DISPLAY[1:]}").exists():
        pytest.skip(f"display {UNUSED_DISPLAY} is in use here")
    if display_check.missing_libraries("xcb"):
        pytest.skip("the xcb plugin's libraries are missing here (that message comes first)")
    done = _run_without_qt_platform({"DISPLAY": UNUSED_DISPLAY}, str(SAMPLES))
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == done.stderr.strip().splitlines()[0]
    assert f"cannot connect to the display '{UNUSED_DISPLAY}'" in done.stderr


def test_the_screenshot_mode_needs_no_display() -> None:
    assert display_check.problem({}, screenless_ok=True, system="linux") is None
    assert display_check.problem({}, system="linux") == display_check.no_display_message()
    assert display_check.problem({"QT_QPA_PLATFORM": "offscreen"}, system="linux") is None
    assert display_check.problem({}, system="darwin") is None


@pytest.mark.parametrize(("soname", "package"), [
    ("libxcb-icccm.so.4", "libxcb-icccm4"), ("libxcb-keysyms.so.1", "libxcb-keysyms1"),
    ("libxcb-cursor.so.0", "libxcb-cursor0"), ("libxcb-render-util.so.0", "libxcb-render-util0"),
    ("libxkbcommon-x11.so.0", "libxkbcommon-x11-0"), ("libdbus-1.so.3", "libdbus-1-3"),
    ("libEGL.so.1", "libegl1"), ("libX11-xcb.so.1", "libx11-xcb1"), ("libglib-2.0.so.0", "libglib2.0-0"),
])
def test_a_missing_library_is_named_by_its_debian_package(soname: str, package: str) -> None:
    assert display_check.package_for(soname) == package


HIDE_LIBRARIES = r"""
set -e
lib=/usr/lib/x86_64-linux-gnu
farm=$(mktemp -d); orig=$(mktemp -d)
mount --bind "$lib" "$orig"
for f in "$orig"/*; do
  case "${f##*/}" in libxcb-icccm.so*|libxcb-keysyms.so*) ;; *) ln -s "$f" "$farm/${f##*/}" ;; esac
done
mount --bind "$farm" "$lib"
exec "$@"
"""


def _can_hide_libraries() -> bool:
    if not sys.platform.startswith("linux") or os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    if not Path("/usr/lib/x86_64-linux-gnu/libxcb-icccm.so.4").exists():
        return False
    return subprocess.run(["unshare", "-m", "true"], check=False, capture_output=True).returncode == 0


@pytest.mark.skipif(not _can_hide_libraries(), reason="needs root, unshare and the xcb libraries to hide")
def test_missing_xcb_libraries_give_the_exact_apt_get_command(tmp_path: Path) -> None:
    """As on a fresh machine without libxcb-icccm4 and libxcb-keysyms1 (hidden in a mount namespace)."""
    script = tmp_path / "hide.sh"
    script.write_text(HIDE_LIBRARIES)
    env = {k: v for k, v in os.environ.items() if k not in ("WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env["DISPLAY"] = UNUSED_DISPLAY  # the libraries are checked before the display answers
    done = subprocess.run(["unshare", "-m", "bash", str(script), sys.executable, "-m", "valvereader", str(SAMPLES)],
                          check=False, capture_output=True, text=True, env=env, timeout=120, cwd=ROOT)
    assert done.returncode == 2, done.stderr
    line = done.stderr.strip()
    assert "\n" not in line and "libxcb-icccm.so.4" in line and "libxcb-keysyms.so.1" in line
    command = "sudo apt-get update && sudo apt-get install -y --no-install-recommends "
    assert command in line
    assert {"libxcb-icccm4", "libxcb-keysyms1"} <= set(line.split(command)[1].split())


def test_classify_prints_each_failure_with_its_reason_as_it_goes(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    broken = tmp_path / "broken.dcm"
    broken.write_bytes(b"not an image")
    out = tmp_path / "results.csv"
    assert cli.main(["classify", str(broken), "--output", str(out), "--no-progress"]) == 1
    err = capsys.readouterr().err
    import csv

    with open(out, newline="") as handle:
        (row,) = list(csv.DictReader(handle))
    assert row["status"] == "error" and row["error"]
    failed = f"failed: {broken}: {row['error']}"
    assert failed in err.splitlines()
    assert err.index(failed) < err.index("0 classified, 1 failed")


def test_classify_help_names_the_default_output(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as stop:
        cli.main(["classify", "--help"])
    assert stop.value.code == 0
    assert "default: results.csv in the current folder" in " ".join(capsys.readouterr().out.split())
