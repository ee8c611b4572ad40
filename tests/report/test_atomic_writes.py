"""valvereader.atomic: a crash never leaves a half-written file in place of a good one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from valvereader import atomic


def _die_during(step: str, target: Path, payload: str) -> int:
    # A real process death (os._exit) at the chosen moment of the write.
    code = f"""
import os, sys
from valvereader import atomic
real = os.{step}
def crash(*args, **kwargs):
    os._exit(9)
os.{step} = crash
atomic.write_text(sys.argv[1], sys.argv[2])
"""
    return subprocess.run([sys.executable, "-c", code, str(target), payload], check=False).returncode


@pytest.mark.parametrize("step", ["fsync", "replace"])
def test_write_killed_midway_leaves_old_file_intact(tmp_path: Path, step: str) -> None:
    target = tmp_path / "settings.json"
    atomic.write_text(target, "old content")
    assert _die_during(step, target, "new content " * 1000) == 9
    assert target.read_text() == "old content"


def test_write_that_raises_leaves_old_file_and_no_temp_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "report.png"
    atomic.write_bytes(target, b"old")

    def refuse(*args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(atomic.os, "replace", refuse)
    with pytest.raises(OSError):
        atomic.write_bytes(target, b"new")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.png"]


def test_write_json_creates_missing_folders_and_round_trips(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "x.json"
    atomic.write_json(target, {"name": "Ünïcode", "n": [1, 2]})
    assert json.loads(target.read_text(encoding="utf-8")) == {"name": "Ünïcode", "n": [1, 2]}


def test_append_line_starts_a_new_line_after_a_torn_tail(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    log.write_text('{"a": 1}\n{"b": ')  # a crash cut the last record
    atomic.append_line(log, '{"c": 3}')
    assert log.read_text().splitlines()[-1] == '{"c": 3}'


def test_append_line_refuses_text_with_a_line_break(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        atomic.append_line(tmp_path / "log.jsonl", "two\nlines")
