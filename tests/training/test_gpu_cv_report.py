"""scripts/gpu_cv_report.py: per-fold metrics, mean ± SD and the leave-one-class-out table from
what a GPU session returns (results.json, cv_predictions.npz)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from script_module import load_script

from valvereader.catalogue import VALVE_IDS


def _load():
    return load_script("gpu_cv_report")


def _session(folder: Path, folds: dict[str, tuple[np.ndarray, np.ndarray]], loco: dict[str, dict]) -> None:
    folder.mkdir(parents=True)
    results = {}
    arrays = {}
    start = 0
    for name, (true, predicted) in folds.items():
        logits = np.full((len(true), len(VALVE_IDS)), -3.0, dtype=np.float32)
        logits[np.arange(len(true)), predicted] = 3.0
        arrays.update({f"{name}_logits": logits, f"{name}_true": true, f"{name}_index": np.arange(start, start + len(true))})
        start += len(true)
        results[name] = {"epochs_done": 20, "epochs_planned": 22, "metrics": {"test_regions": {"accuracy": 0.8, "macro_f1": 0.7}}}
    for name, metrics in loco.items():
        results[name] = {"epochs_done": 11, "metrics": metrics}
    results["cv9"] = {"error": "no result (killed or crashed)"}  # a failed model is left out, not fatal
    (folder / "results.json").write_text(json.dumps({"results": results}))
    if arrays:
        np.savez(folder / "cv_predictions.npz", **arrays)


def test_report_computes_fold_metrics_and_takes_later_sessions_for_repeated_models(tmp_path, monkeypatch) -> None:
    k = len(VALVE_IDS)
    true = np.repeat(np.arange(k), 4)
    wrong = true.copy()
    wrong[:2] = 1  # two Hakim images called Certas Plus
    _session(tmp_path / "s1", {"cv0": (true, true), "cv1": (true, wrong)},
             {"loco0": {"left_out": VALVE_IDS[0], "auroc_mahalanobis_l2_t_real": 0.2}})
    _session(tmp_path / "s2", {}, {"loco0": {"left_out": VALVE_IDS[0], "auroc_mahalanobis_l2_t_real": 0.9},
                                   "loco1": {"left_out": VALVE_IDS[1], "auroc_mahalanobis_l2_t_real": 0.7}})
    out = tmp_path / "report"
    monkeypatch.setattr("sys.argv", ["gpu_cv_report.py", "--results", str(tmp_path / "s1"), str(tmp_path / "s2"), "--out", str(out)])
    assert _load().main() == 0
    doc = json.loads((out / "metrics.json").read_text())
    assert set(doc["folds"]) == {"cv0", "cv1"} and doc["images_covered"] == 2 * len(true)
    accuracies = [doc["folds"][f]["crops"]["accuracy"] for f in ("cv0", "cv1")]
    assert accuracies == [1.0, pytest.approx(1 - 2 / len(true))]
    assert doc["mean_sd"]["accuracy"]["mean"] == pytest.approx(np.mean(accuracies))
    assert doc["mean_sd"]["accuracy"]["sd"] == pytest.approx(np.std(accuracies, ddof=1))
    assert doc["mean_sd"][f"{VALVE_IDS[0]}.recall"]["mean"] == pytest.approx((1.0 + 0.5) / 2)
    assert doc["pooled"]["confusion"][0][1] == 2
    # loco0 came from both sessions: the later one counts.
    assert doc["leave_one_class_out"][VALVE_IDS[0]]["auroc_mahalanobis_l2_t_real"] == 0.9
    assert doc["auroc_mean_sd"]["auroc_mahalanobis_l2_t_real"][:2] == [pytest.approx(0.8), pytest.approx(np.std([0.9, 0.7], ddof=1))]
    report = (out / "report.md").read_text()
    assert "| cv1 | 20 of 22 |" in report and "0.800 ± 0.141" in report


def test_join_averages_the_members_logits_per_fold_and_refuses_other_folds(tmp_path, monkeypatch) -> None:
    k = len(VALVE_IDS)
    true = np.repeat(np.arange(k), 3)
    a_pred, b_pred = true.copy(), true.copy()
    a_pred[0] = 1  # member A wrong on image 0, member B wrong on image 1
    b_pred[1] = 2
    _session(tmp_path / "a", {"cv0": (true, a_pred)}, {})
    _session(tmp_path / "b", {"cv0": (true, b_pred)}, {})
    # Make the members disagree softly so the mean decides: A is sure, B less so.
    with np.load(tmp_path / "b" / "cv_predictions.npz") as d:
        arrays = {n: d[n] for n in d.files}
    arrays["cv0_logits"] = arrays["cv0_logits"] / 3.0
    np.savez(tmp_path / "b" / "cv_predictions.npz", **arrays)
    out = tmp_path / "joined"
    monkeypatch.setattr("sys.argv", ["gpu_cv_report.py", "--join", "--results", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(out)])
    assert _load().main() == 0
    doc = json.loads((out / "metrics.json").read_text())
    (row,) = doc["folds"]
    # Image 0: A says 1 (+3), B says 0 (+1) -> mean favours A's wrong call; image 1: A right (+3) beats B (+1).
    assert row["members_accuracy"] == [pytest.approx(1 - 1 / len(true)), pytest.approx(1 - 1 / len(true))]
    assert row["accuracy"] == pytest.approx(1 - 1 / len(true))
    assert doc["pooled"]["confusion"][0][1] == 1 and doc["pooled"]["confusion"][1][2] == 0
    assert "| cv0 | 24 | 20 + 20 |" in (out / "report.md").read_text()
    # Folds that held out other images cannot be joined.
    arrays["cv0_index"] = arrays["cv0_index"][::-1].copy()
    np.savez(tmp_path / "b" / "cv_predictions.npz", **arrays)
    with pytest.raises(SystemExit, match="other images"):
        _load().main()


def test_composite_regions_at_the_field_edge_are_pooled_over_the_folds(tmp_path, monkeypatch) -> None:
    # Sessions that record the regions' positions (gpu_session.py's test_regions.by_position):
    # accuracy with and without valves cut by the collimator's edge, weighted by each fold's n.
    true = np.repeat(np.arange(len(VALVE_IDS)), 2)
    _session(tmp_path / "s", {"cv0": (true, true), "cv1": (true, true)}, {})
    doc = json.loads((tmp_path / "s" / "results.json").read_text())
    doc["results"]["cv0"]["metrics"]["test_regions"]["by_position"] = {"edge": {"n": 4, "accuracy": 0.5},
                                                                       "elsewhere": {"n": 20, "accuracy": 0.9}}
    doc["results"]["cv1"]["metrics"]["test_regions"]["by_position"] = {"edge": {"n": 6, "accuracy": 1.0},
                                                                       "elsewhere": {"n": 0, "accuracy": None}}
    (tmp_path / "s" / "results.json").write_text(json.dumps(doc))
    out = tmp_path / "report"
    monkeypatch.setattr("sys.argv", ["gpu_cv_report.py", "--results", str(tmp_path / "s"), "--out", str(out)])
    assert _load().main() == 0
    pooled = json.loads((out / "metrics.json").read_text())["regions_by_position"]
    assert pooled["edge"] == {"n": 10, "accuracy": pytest.approx((2 + 6) / 10)}
    assert pooled["elsewhere"] == {"n": 20, "accuracy": pytest.approx(0.9)}
    assert "valve cut by the field edge (pooled) | 0.800 (n = 10)" in (out / "report.md").read_text()


def test_pasted_squares_are_reported_apart_from_the_composite_regions(tmp_path, monkeypatch) -> None:
    # Sessions run with gpu_session.py --pasted-per-crop give each fold's test_pasted too.
    true = np.repeat(np.arange(len(VALVE_IDS)), 2)
    _session(tmp_path / "s", {"cv0": (true, true), "cv1": (true, true)}, {})
    doc = json.loads((tmp_path / "s" / "results.json").read_text())
    doc["results"]["cv0"]["metrics"]["test_pasted"] = {"n": 10, "accuracy": 0.9, "macro_f1": 0.8}
    doc["results"]["cv1"]["metrics"]["test_pasted"] = {"n": 10, "accuracy": 0.7, "macro_f1": 0.6}
    (tmp_path / "s" / "results.json").write_text(json.dumps(doc))
    out = tmp_path / "report"
    monkeypatch.setattr("sys.argv", ["gpu_cv_report.py", "--results", str(tmp_path / "s"), "--out", str(out)])
    assert _load().main() == 0
    summary = json.loads((out / "metrics.json").read_text())
    assert summary["pasted_mean_sd"]["accuracy"] == pytest.approx([0.8, np.std([0.9, 0.7], ddof=1)])
    assert summary["regions_mean_sd"]["accuracy"][0] == pytest.approx(0.8)  # the composites' own, unchanged
    assert summary["folds"]["cv1"]["pasted"]["accuracy"] == 0.7
    assert "pasted whole into films: accuracy / macro-F1 | 0.800 ± 0.141 / 0.700 ± 0.141" in (out / "report.md").read_text()
    # Without pasted squares the report says nothing of them.
    _session(tmp_path / "t", {"cv0": (true, true), "cv1": (true, true)}, {})
    monkeypatch.setattr("sys.argv", ["gpu_cv_report.py", "--results", str(tmp_path / "t"), "--out", str(tmp_path / "r2")])
    assert _load().main() == 0
    assert "pasted_mean_sd" not in json.loads((tmp_path / "r2" / "metrics.json").read_text())


def test_join_takes_a_members_folds_from_several_calls(tmp_path, monkeypatch) -> None:
    # The eighteenth session's 384 px folds came back from two calls (cv0 in one, cv1 in the next).
    k = len(VALVE_IDS)
    true = np.repeat(np.arange(k), 3)
    wrong = true.copy()
    wrong[:3] = 1
    _session(tmp_path / "a1", {"cv0": (true, true)}, {})
    _session(tmp_path / "a2", {"cv1": (true, wrong)}, {})
    _session(tmp_path / "b", {"cv0": (true, true), "cv1": (true, true)}, {})
    # Both calls' folds hold out images from 0: make the second call's fold the second block.
    with np.load(tmp_path / "a2" / "cv_predictions.npz") as d:
        arrays = {n: d[n] for n in d.files}
    arrays["cv1_index"] = arrays["cv1_index"] + len(true)
    np.savez(tmp_path / "a2" / "cv_predictions.npz", **arrays)
    out = tmp_path / "joined"
    member_a = f"{tmp_path / 'a1'}+{tmp_path / 'a2'}"
    monkeypatch.setattr("sys.argv", ["gpu_cv_report.py", "--join", "--results", member_a, str(tmp_path / "b"), "--out", str(out)])
    assert _load().main() == 0
    rows = {row["fold"]: row for row in json.loads((out / "metrics.json").read_text())["folds"]}
    assert set(rows) == {"cv0", "cv1"}  # cv9 failed in every call: left out
    assert rows["cv0"]["members_accuracy"] == [1.0, 1.0]
    assert rows["cv1"]["members_accuracy"] == [pytest.approx(1 - 3 / len(true)), 1.0]
    # Without the second call member A has no cv1: only cv0 can be joined.
    monkeypatch.setattr("sys.argv", ["gpu_cv_report.py", "--join", "--results", str(tmp_path / "a1"), str(tmp_path / "b"), "--out", str(out)])
    assert _load().main() == 0
    assert [row["fold"] for row in json.loads((out / "metrics.json").read_text())["folds"]] == ["cv0"]
