"""scripts/loco_combine.py: chooses an unknown-valve score on the selection half of the
leave-one-class-out runs and reports it on the test half."""
from __future__ import annotations

import json

import numpy as np
import pytest
from script_module import load_script


def _load():
    return load_script("loco_combine")


def _run(rng, shift: dict[str, float]) -> dict[str, np.ndarray]:
    out = {}
    for half, n in (("v_real", 40), ("t_real", 60)):
        for score in ("mahalanobis_l2", "mahalanobis_none", "max_softmax", "energy"):
            out[f"{half}_known_{score}"] = rng.normal(0, 1, n)
            out[f"{half}_unknown_{score}"] = rng.normal(shift.get(score, 0.0), 1, n // 2)
    return out


def test_the_score_that_separates_on_the_selection_half_is_chosen_and_reported_on_the_test_half(tmp_path) -> None:
    rng = np.random.default_rng(0)
    runs = {"loco0": _run(rng, {"max_softmax": 3.0, "mahalanobis_l2": 1.0}), "loco1": _run(rng, {"max_softmax": 3.0})}
    first = tmp_path / "a.npz"
    np.savez(first, **{f"{r}_{k}": v for r, d in runs.items() for k, v in d.items()})
    # A later file's run replaces an earlier one of the same name.
    later = tmp_path / "b.npz"
    replaced = _run(rng, {"max_softmax": 3.0, "energy": 0.5})
    np.savez(later, **{f"loco1_{k}": v for k, v in replaced.items()})
    module = _load()
    assert module.read_runs([first, later])["loco1"]["t_real_unknown_energy"] == pytest.approx(replaced["t_real_unknown_energy"])
    out = tmp_path / "combine.json"
    assert module.main([str(first), str(later), "--out", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["runs"] == ["loco0", "loco1"]
    rows = {r["score"]: r for r in doc["candidates"]}
    single = rows["max_softmax"]
    # The reported AUROC is that of the test half of each run, as computed directly.
    expected = module.auroc(replaced["t_real_known_max_softmax"], replaced["t_real_unknown_max_softmax"])
    assert single["test"]["per_run"]["loco1"] == pytest.approx(expected)
    assert single["selection"]["mean"] > 0.95 and rows["mahalanobis_none"]["selection"]["mean"] < 0.75
    assert "max_softmax" in doc["chosen"].split(" + ")
    chosen = rows[doc["chosen"]]
    assert chosen["selection"]["mean"] == max(r["selection"]["mean"] for r in doc["candidates"])


def test_no_scores_is_a_clear_error(tmp_path, capsys) -> None:
    empty = tmp_path / "empty.npz"
    np.savez(empty)
    assert _load().main([str(empty)]) == 2
    assert "no leave-one-class-out scores" in capsys.readouterr().err
