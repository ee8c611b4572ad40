"""scripts/loco_partial_ensemble.py: two runs per held-out valve joined like identifier 2.0.0's
members (features side by side), scored as loco_partial.py scores one run."""
from __future__ import annotations

import json

import numpy as np
import pytest
from script_module import load_script

pytest.importorskip("sklearn")

VALVES = ("a", "b", "c")


def _runs(rng, labels: np.ndarray, spread: dict[str, float]) -> dict[str, np.ndarray]:
    """Per held-out valve: features in which every class has its own centre; the held-out
    class's centre sits ``spread[valve]`` from the origin (small = looks like the others)."""
    out = {}
    n = len(labels)
    for c, valve in enumerate(VALVES):
        centres = rng.normal(0, 1, (len(VALVES), 6))
        centres[c] *= spread[valve]
        pooled = centres[labels] + rng.normal(0, 0.6, (n, 6)) + 10.0  # positive, like pooled activations
        logits = rng.normal(0, 1, (n, len(VALVES) - 1))
        out[f"{valve}__pooled"] = pooled.astype(np.float16)
        out[f"{valve}__logits"] = logits.astype(np.float32)
    return out


def test_joined_runs_are_scored_from_both_and_each_run_alone_as_before(tmp_path, monkeypatch) -> None:
    module = load_script("loco_partial_ensemble")
    rng = np.random.default_rng(1)
    labels = np.repeat(np.arange(len(VALVES)), 40)
    train = np.concatenate([np.flatnonzero(labels == k)[:25] for k in range(len(VALVES))])
    test = np.setdiff1d(np.arange(len(labels)), train)
    weak = _runs(rng, labels, {"a": 0.0, "b": 0.0, "c": 0.0})  # the held-out class sits at the origin: hard
    strong = _runs(rng, labels, {"a": 3.0, "b": 3.0, "c": 3.0})
    single = module.loco_aurocs([weak], labels, train, test, VALVES)
    joined = module.loco_aurocs([weak, strong], labels, train, test, VALVES)
    for valve in VALVES:
        assert 0.0 <= single[valve]["mahalanobis_l2"] <= 1.0
        assert joined[valve]["mahalanobis_l2"] > single[valve]["mahalanobis_l2"]
    summary = module.summary(joined)
    assert summary["mean_mahalanobis_l2"] == pytest.approx(np.mean([joined[v]["mahalanobis_l2"] for v in VALVES]), abs=1e-4)
    # The command line: two runs files, a split, a JSON with each run alone and joined.
    paths = []
    for name, runs in (("weak", weak), ("strong", strong)):
        paths.append(tmp_path / f"{name}.npz")
        np.savez(paths[-1], **runs)
    split = tmp_path / "split.json"
    split.write_text(json.dumps({"labels": [VALVES[k] for k in labels], "split": {"train": train.tolist(), "test": test.tolist()}}))
    import valvereader.catalogue as catalogue

    monkeypatch.setattr(catalogue, "VALVE_IDS", VALVES)  # the script reads the catalogue's ids
    assert module.main([str(paths[0]), str(paths[1]), "--split", str(split), "--out", str(tmp_path / "out.json")]) == 0
    doc = json.loads((tmp_path / "out.json").read_text())
    assert set(doc) >= {"a", "b", "joined", "protocol"}
    assert doc["joined"]["mean_mahalanobis_l2"] == pytest.approx(summary["mean_mahalanobis_l2"], abs=1e-4)
