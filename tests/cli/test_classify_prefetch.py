"""`valvereader classify` through ``Predictor.predict_many`` (loading and preprocessing in the
loader thread while the networks run) writes the rows the plain per-file ``predict`` gives:
same order, valve, verdict, box, probabilities; broken files get their typed error row; an
interruption keeps the finished rows and ``--resume`` completes the run."""

from __future__ import annotations

import csv
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "model"))

from tiny_model import noise_pngs, write_tiny_weights

from valvereader.cli import main
from valvereader.inference import classify
from valvereader.inference.predictor import Predictor, load_predictor

BROKEN_DICOM = b"\0" * 128 + b"DICM" + b"\x02\x00\x10\x00garbage"


def _read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _weights(tmp_path: Path) -> Path:
    """The shipped identifier (+ locator) when installed, else a tiny identifier."""
    from valvereader.paths import weights_dir

    if (weights_dir() / "identifier.json").exists():
        return weights_dir()
    folder = tmp_path / "weights"
    write_tiny_weights(folder)
    return folder


def _sample_folder(folder: Path) -> tuple[list[Path], Path]:
    """The sample DICOMs and a truncated one sorted between them (files after it must survive)."""
    from valvereader.paths import samples_dir

    samples = sorted(samples_dir().glob("*.dcm"))
    if not samples:
        pytest.skip("no sample radiographs")
    folder.mkdir()
    for sample in samples:
        shutil.copy(sample, folder / sample.name)
    broken = folder / "composite_m_broken.dcm"
    broken.write_bytes(BROKEN_DICOM)
    return sorted(folder.glob("*.dcm")), broken


def _spy_on_predict(monkeypatch: pytest.MonkeyPatch) -> tuple[list, list]:
    """Record, per predict call, whether it got a preparation made ahead, and every Prediction
    classify turned into a row (the raw float probabilities, not the CSV's 5 decimals)."""
    prepared_ahead: list[bool] = []
    predictions: list = []
    plain_predict, plain_row = Predictor.predict, classify.prediction_row

    def predict(self, radiograph, *args, prepared=None, **kwargs):
        prepared_ahead.append(prepared is not None and prepared.radiograph is radiograph)
        return plain_predict(self, radiograph, *args, prepared=prepared, **kwargs)

    def prediction_row(path, prediction):
        predictions.append((str(path), prediction))
        return plain_row(path, prediction)

    monkeypatch.setattr(Predictor, "predict", predict)
    monkeypatch.setattr(classify, "prediction_row", prediction_row)
    return prepared_ahead, predictions


def test_prefetched_classify_equals_plain_predict_per_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from valvereader.errors import InputError
    from valvereader.io import load

    weights = _weights(tmp_path)
    files, broken = _sample_folder(tmp_path / "batch")
    prepared_ahead, predictions = _spy_on_predict(monkeypatch)
    out = tmp_path / "results.csv"
    code = main(["classify", str(tmp_path / "batch"), "--output", str(out), "--weights", str(weights),
                 "--device", "cpu", "--no-progress"])
    assert code == 0
    assert prepared_ahead and all(prepared_ahead), "classify should hand predict the preparation made ahead"
    monkeypatch.undo()

    rows = _read_rows(out)
    assert [r["path"] for r in rows] == [str(f) for f in files]  # every file, in order
    predictor = load_predictor(weights, device="cpu")
    by_path = dict(predictions)
    for path, row in zip(files, rows):
        if path == broken:
            with pytest.raises(InputError) as raised:
                load(path)
            assert row["status"] == "error" and row["error"] == str(raised.value)
            assert row["predicted"] == "" and row["p_" + predictor.valve_ids[0]] == ""
            continue
        plain = predictor.predict(load(path), with_heatmap=False)
        assert row == {k: str(v) for k, v in classify.prediction_row(path, plain).items()}
        fast = by_path[str(path)]
        assert fast.predicted == plain.predicted and fast.verdict == plain.verdict
        assert fast.box == plain.box and fast.pipeline == plain.pipeline
        np.testing.assert_allclose(fast.probabilities, plain.probabilities, rtol=0, atol=1e-6)
        for valve_id, p in zip(plain.valve_ids, plain.probabilities):
            assert abs(float(row[f"p_{valve_id}"]) - float(p)) <= 0.5e-5 + 1e-6
    assert len(by_path) == len(files) - 1


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("weights")
    write_tiny_weights(folder)
    return folder


def test_a_preprocessing_failure_in_the_loader_thread_gets_its_typed_row(
    tiny_weights: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from valvereader.errors import UnsupportedImageError

    files = noise_pngs(tmp_path / "batch", 4, (90, 70), seed=3)
    plain_prepare = Predictor.prepare

    def prepare(self, radiograph):  # the second file fails (by name: two streams prepare in any order)
        if Path(radiograph.meta.source).name == files[1].name:
            raise UnsupportedImageError("cannot prepare this one")
        return plain_prepare(self, radiograph)

    monkeypatch.setattr(Predictor, "prepare", prepare)
    out = tmp_path / "results.csv"
    code = main(["classify", str(tmp_path / "batch"), "--output", str(out), "--weights", str(tiny_weights),
                 "--device", "cpu", "--no-progress"])
    assert code == 0
    rows = _read_rows(out)
    assert [r["path"] for r in rows] == [str(f) for f in files]
    assert [r["status"] for r in rows] == ["ok", "error", "ok", "ok"]
    assert rows[1]["error"] == "cannot prepare this one"  # an InputError: its message alone


def test_interrupt_keeps_finished_rows_and_resume_completes(
    tiny_weights: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = noise_pngs(tmp_path / "batch", 8, (90, 70), seed=3)
    out = tmp_path / "results.csv"
    args = ["classify", str(tmp_path / "batch"), "--output", str(out), "--weights", str(tiny_weights),
            "--device", "cpu", "--no-progress"]
    plain_row = classify.prediction_row

    def interrupted(path, prediction):
        if path.name == files[3].name:
            raise KeyboardInterrupt  # Ctrl-C while the loader thread is ahead
        return plain_row(path, prediction)

    monkeypatch.setattr(classify, "prediction_row", interrupted)
    assert main(args) == 130  # the CLI's answer to Ctrl-C
    assert [r["path"] for r in _read_rows(out)] == [str(f) for f in files[:3]]
    monkeypatch.undo()
    assert main([*args, "--resume"]) == 0
    rows = _read_rows(out)
    assert [r["path"] for r in rows] == [str(f) for f in files]
    assert all(r["status"] == "ok" for r in rows)
