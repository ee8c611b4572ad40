"""`valvereader phantoms` on the command line."""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import pytest

from valvereader.phantoms import cli


def main(argv: list[str]) -> int:
    """The subcommand alone (the full CLI imports every other subcommand too)."""
    assert argv[0] == "phantoms"
    parser = argparse.ArgumentParser(prog="valvereader phantoms")
    cli.add_arguments(parser)
    return cli.run(parser.parse_args(argv[1:]))


def test_cli_writes_the_requested_count_and_only_the_requested_view(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "phantoms",
            "--count",
            "3",
            "--out",
            str(tmp_path),
            "--seed",
            "2",
            "--views",
            "ap",
            "--workers",
            "1",
            "--size",
            "128x160",
        ]
    )
    assert code == 0
    with open(tmp_path / "ground_truth.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 3 and {r["view"] for r in rows} == {"ap"}
    assert all((tmp_path / r["file"]).exists() for r in rows)
    assert "ground truth" in capsys.readouterr().out


def test_cli_refuses_a_malformed_size_with_the_expected_form(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        main(["phantoms", "--count", "1", "--out", "x", "--size", "big"])
    assert "1024x1280" in capsys.readouterr().err


def test_cli_reports_an_unknown_view_as_an_error_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["phantoms", "--count", "1", "--out", str(tmp_path), "--views", "towne", "--workers", "1"]
    )
    assert code == 2
    assert "unknown view 'towne'" in capsys.readouterr().err
