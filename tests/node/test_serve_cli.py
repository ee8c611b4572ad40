"""`valvereader serve`: its options, its refusals to start, and Ctrl-C."""

from __future__ import annotations

import argparse
import csv
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from node_helpers import LOOPBACK, sample_dataset, send


def parse(*argv: str) -> argparse.Namespace:
    from valvereader.cli import build_parser

    return build_parser("serve").parse_args(["serve", *argv])


def test_defaults_and_options(tmp_path):
    from valvereader.node.cli import config_from
    from valvereader.node.scp import Allowed
    from valvereader.node.send import Peer

    config = config_from(parse("--out", str(tmp_path), "--allow", "CT1", "--allow", "PACS@10.0.0.5",
                               "--send-to", "PACS@10.0.0.5:104", "--with-sc"))
    assert (config.ae_title, config.port, config.out) == ("VALVEREADER", 11112, tmp_path)
    assert list(config.allowed) == [Allowed("CT1"), Allowed("PACS", "10.0.0.5")]
    assert config.send_to == Peer("PACS", "10.0.0.5", 104) and config.with_sc and not config.allow_any


@pytest.mark.parametrize("argv, message", [
    ((), "no peer would be accepted"),
    (("--allow", "CT1", "--send-to", "PACS@nowhere"), "AET@HOST:PORT"),
    (("--allow", "CT1", "--aet", "MUCH_TOO_LONG_A_TITLE"), "not an AE title"),
    (("--allow", "CT1", "--port", "70000"), "not a port"),
])
def test_refuses_to_start_with_bad_options(tmp_path, capsys, argv, message):
    from valvereader.node.cli import run

    assert run(parse("--out", str(tmp_path / "out"), *argv)) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_serve_is_listed_in_the_help(capsys):
    from valvereader.cli import main

    with pytest.raises(SystemExit) as stop:
        main(["serve", "--help"])
    assert stop.value.code == 0
    help_text = capsys.readouterr().out
    for option in ("--aet", "--port", "--out", "--send-to", "--allow", "--allow-any", "--with-sc"):
        assert option in help_text


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


def test_ctrl_c_stops_the_node_cleanly(tmp_path):
    out, port = tmp_path / "out", free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    # Ctrl-C as at a terminal, also when the tests run as a background job: that ignores SIGINT,
    # and a child inherits an ignored signal (a handler is reset to the default instead).
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "valvereader", "serve", "--out", str(out), "--port", str(port), "--bind", LOOPBACK,
             "--allow", "MODALITY"], stderr=subprocess.PIPE, text=True, env=env)
    finally:
        signal.signal(signal.SIGINT, previous)
    try:
        lines = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = process.stderr.readline()
            if not line:
                break
            lines.append(line)
            if "Ctrl-C stops" in line:
                break
        assert any(f"{LOOPBACK}:{port}" in line for line in lines), "".join(lines)
        sent = sample_dataset()
        assert send(port, [sent]) == [0x0000]
        results = out / "results.csv"
        while time.monotonic() < deadline and not (results.exists() and sent.SOPInstanceUID in results.read_text()):
            time.sleep(0.1)
        process.send_signal(signal.SIGINT)
        _, rest = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, rest
    assert "stopped" in rest
    with open(results, newline="", encoding="utf-8") as handle:
        assert [row["status"] for row in csv.DictReader(handle)] == ["ok"]
    assert (out / "in" / f"{sent.SOPInstanceUID}.dcm").is_file()
    with pytest.raises(OSError):  # no longer listening
        socket.create_connection((LOOPBACK, port), timeout=2).close()


def test_out_is_a_folder_of_dicoms(tmp_path, start_node):
    """OUT/ opens as any folder of DICOM files does: in/ holds the films, sr/ the reports."""
    from valvereader.io import scan

    node = start_node(out=tmp_path / "out")
    assert send(node.port, [sample_dataset()]) == [0x0000]
    assert node.wait_idle(30)
    kinds = {(entry.path.parent.name, entry.kind) for entry in scan([Path(tmp_path / "out")])}
    assert ("in", "dicom") in kinds  # the film, shown as an image
    assert ("sr", "dicom") not in kinds  # the report is not taken for an image


def test_the_node_does_not_import_the_window():
    code = ("import sys\n"
            "import valvereader.node.cli, valvereader.node.scp, valvereader.node.reading, valvereader.node.sr\n"
            "import valvereader.node.send\n"
            "print(sorted(m for m in sys.modules if m.startswith(('valvereader.gui', 'PySide6'))))\n")
    out = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"
