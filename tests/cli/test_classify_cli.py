"""`valvereader classify`: one row per file, broken files reported and skipped, resume, kill."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "model"))

from tiny_model import noise_pngs, write_tiny_weights

from valvereader.catalogue import VALVE_IDS
from valvereader.cli import main
from valvereader.inference.classify import columns


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("weights")
    write_tiny_weights(folder)
    return folder


def make_batch(folder: Path, good: int = 3) -> list[Path]:
    paths = noise_pngs(folder, good)
    broken = folder / "sub" / "broken.dcm"
    broken.parent.mkdir()
    broken.write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00\x10\x00garbage")
    paths.append(broken)
    return paths


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_classify_writes_one_row_per_file_and_reports_the_broken_one(weights: Path, tmp_path: Path) -> None:
    files = make_batch(tmp_path / "batch")
    out = tmp_path / "results.csv"
    code = main(["classify", str(tmp_path / "batch"), "--output", str(out), "--weights", str(weights), "--no-progress"])
    assert code == 0
    rows = read_rows(out)
    assert sorted(r["path"] for r in rows) == sorted(str(p) for p in files)
    assert list(rows[0].keys()) == columns(VALVE_IDS)
    broken = next(r for r in rows if r["path"].endswith("broken.dcm"))
    assert broken["status"] == "error" and broken["error"]
    for row in rows:
        if row["status"] == "ok":
            probs = [float(row[f"p_{v}"]) for v in VALVE_IDS]
            assert abs(sum(probs) - 1) < 1e-3
            assert row["predicted"] == VALVE_IDS[int(np.argmax(probs))]
            assert row["verdict"] in {"confident", "review", "unknown"}
            assert row["verdict_reason"] in {"sure", "unsure", "unusual", "low_confidence", "unlike_training"}
            assert (row["verdict"] == "confident") == (row["verdict_reason"] == "sure")


def test_resume_skips_files_already_done(weights: Path, tmp_path: Path) -> None:
    make_batch(tmp_path / "batch")
    out = tmp_path / "results.csv"
    args = ["classify", str(tmp_path / "batch"), "--output", str(out), "--weights", str(weights), "--no-progress"]
    main(args)
    first = read_rows(out)
    (tmp_path / "batch" / "late.png").write_bytes((tmp_path / "batch" / "img0.png").read_bytes())
    main([*args, "--resume"])
    rows = read_rows(out)
    assert len(rows) == len(first) + 1
    assert len({r["path"] for r in rows}) == len(rows)


def test_resume_keeps_the_columns_of_an_older_csv(weights: Path, tmp_path: Path) -> None:
    """A CSV written before a column was added gets its new rows under its own header."""
    make_batch(tmp_path / "batch", good=2)
    out = tmp_path / "results.csv"
    args = ["classify", str(tmp_path / "batch"), "--output", str(out), "--weights", str(weights), "--no-progress"]
    main(args)
    old_columns = [c for c in columns(VALVE_IDS) if c not in ("ood_score", "verdict_reason")]
    with open(out, newline="") as handle:
        rows = list(csv.DictReader(handle))
    with open(out, "w", newline="") as handle:  # as an older version wrote it, one file short
        writer = csv.DictWriter(handle, fieldnames=old_columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows[:-1])
    main([*args, "--resume"])
    again = read_rows(out)
    assert len(again) == len(rows) and all(list(r.keys()) == old_columns for r in again)
    assert again[-1]["path"] == rows[-1]["path"] and again[-1]["p_" + VALVE_IDS[0]] == rows[-1]["p_" + VALVE_IDS[0]]


def test_missing_weights_exit_with_a_plain_message(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    make_batch(tmp_path / "batch", good=1)
    code = main(["classify", str(tmp_path / "batch"), "--output", str(tmp_path / "r.csv"), "--weights", str(tmp_path / "none")])
    assert code == 3
    assert "No valve model installed" in capsys.readouterr().err


def test_only_broken_files_exit_non_zero(weights: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.dcm"
    bad.write_bytes(b"not an image at all")
    code = main(["classify", str(bad), "--output", str(tmp_path / "r.csv"), "--weights", str(weights), "--no-progress"])
    assert code == 1


def test_killing_a_batch_keeps_every_finished_row(weights: Path, tmp_path: Path) -> None:
    from PIL import Image

    folder = tmp_path / "many"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for i in range(400):
        Image.fromarray(rng.integers(0, 255, (200, 160), dtype=np.uint8)).save(folder / f"{i:04d}.png")
    out = tmp_path / "results.csv"
    cmd = [sys.executable, "-m", "valvereader", "classify", str(folder), "--output", str(out),
           "--weights", str(weights), "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline and (not out.exists() or len(read_rows(out)) < 5):
        time.sleep(0.1)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    rows = read_rows(out)
    assert 5 <= len(rows) < 400, "the run should have been killed mid-batch"
    assert all(r["status"] == "ok" and r["p_" + VALVE_IDS[0]] for r in rows)  # no torn rows
    code = main(["classify", str(folder), "--output", str(out), "--weights", str(weights), "--no-progress", "--resume"])
    assert code == 0
    assert len({r["path"] for r in read_rows(out)}) == 400


def test_logs_hold_no_patient_names(weights: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    from run import write_dicom  # the benchmark's DX writer

    logs = tmp_path / "logs"
    monkeypatch.setenv("VALVEREADER_LOG_DIR", str(logs))
    folder = tmp_path / "Doe^Jane_study"
    folder.mkdir()
    write_dicom(folder / "a.dcm", np.random.default_rng(0).uniform(0, 1, (80, 60)), patient="Doe^Jane")
    (folder / "broken.dcm").write_bytes(b"junk")
    from valvereader.logs import setup_logging

    log_path = setup_logging(folder=logs)
    main(["classify", str(folder), "--output", str(tmp_path / "r.csv"), "--weights", str(weights), "--no-progress"])
    import logging

    for handler in logging.getLogger("valvereader").handlers:
        handler.flush()
    text = log_path.read_text()
    assert "broken.dcm" in text  # the skip was logged...
    assert "Jane" not in text and "Doe" not in text  # ...without the patient's name
