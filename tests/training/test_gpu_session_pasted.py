"""scripts/gpu_session.py --pasted-per-crop: loose squares of crops pasted whole into films,
trained like composite regions and evaluated apart from them."""
from __future__ import annotations

import types

import numpy as np
import pytest
from script_module import load_script

from valvereader.catalogue import VALVE_IDS


def test_each_crop_gives_two_loose_squares_holding_it() -> None:
    gpu_session = load_script("gpu_session")
    white = np.ones((60, 80), np.float32)  # a crop brighter than any film around it
    squares = gpu_session.pasted_squares([white, white * 0.9], per_crop=2, sizes=[32, 48], seed=3,
                                         film=(400, 320), backgrounds=2)
    assert [s["crop"] for s in squares] == [0, 0, 1, 1]
    assert {s["kind"] for s in squares} == {"pasted"}
    for entry in squares:
        for size in (32, 48):
            regions = entry["regions"][size]
            assert regions.shape == (2, size, size) and regions.dtype == np.uint8
        first = entry["regions"][48][0]  # the rectangle squared x1.5: the crop in the middle, film around
        assert first[24, 24] >= 225
        assert min(first[1, 1], first[1, -2], first[-2, 1], first[-2, -2]) < 200
    # The same seed, the same squares; another seed, other places.
    again = gpu_session.pasted_squares([white, white * 0.9], per_crop=2, sizes=[32], seed=3, film=(400, 320), backgrounds=2)
    assert all(np.array_equal(a["regions"][32], b["regions"][32]) for a, b in zip(squares, again))
    other = gpu_session.pasted_squares([white, white * 0.9], per_crop=2, sizes=[32], seed=4, film=(400, 320), backgrounds=2)
    assert not all(np.array_equal(a["regions"][32], b["regions"][32]) for a, b in zip(squares, other))


def test_pasted_squares_train_with_the_regions_and_are_evaluated_apart() -> None:
    gpu_session = load_script("gpu_session")
    gpu_session.CLASSES = list(VALVE_IDS)
    classes = len(VALVE_IDS)
    labels = [c % classes for c in range(48)]
    split = ["train"] * 32 + ["validation"] * 8 + ["test"] * 8
    # Two regions (variants 0 and 1) per film: one composite and one pasted film per crop.
    source = [i for i in range(48) for _ in range(2)] * 2
    meta = {"labels": labels, "split": split, "region_source": source, "region_variant": [0, 1] * 96,
            "region_label": [labels[i] for i in source], "region_kind": ["composite"] * 96 + ["pasted"] * 96}
    args = types.SimpleNamespace(max_lr=1e-3, batch=16, region_ratio=1.0, phantom_regions=False, sizes=[64], epochs_final=1,
                                 epochs_cv=1, epochs_loco=1, folds=2, loco=True)
    workers = {w["name"]: w for w in gpu_session.plan_workers(meta, args)}
    kinds = np.asarray(meta["region_kind"])
    final = workers["final_a"]
    assert set(kinds[final["train_regions"]]) == {"composite", "pasted"}
    assert set(kinds[final["eval"]["val_regions"]]) == {"composite"}
    assert set(kinds[final["eval"]["val_pasted"]]) == {"pasted"} and set(kinds[final["eval"]["test_pasted"]]) == {"pasted"}
    assert len(final["eval"]["val_pasted"]) == 8  # one variant-0 square per validation crop
    assert np.all(np.asarray(meta["region_variant"])[final["eval"]["test_pasted"]] == 0)
    cv = workers["cv0"]
    assert set(kinds[cv["eval"]["test_regions"]]) == {"composite"} and set(kinds[cv["eval"]["test_pasted"]]) == {"pasted"}
    assert not set(np.asarray(source)[cv["eval"]["test_pasted"]]) & set(cv["train_real"])
    assert set(kinds[workers["loco0"]["eval"]["known_regions"]]) == {"composite"}
    # A session prepared before pasted squares existed has no region_kind: every region is a composite.
    old = {k: v for k, v in meta.items() if k != "region_kind"}
    old.update(region_source=source[:96], region_variant=[0, 1] * 48, region_label=[labels[i] for i in source[:96]])
    legacy = {w["name"]: w for w in gpu_session.plan_workers(old, args)}["final_a"]
    assert "val_pasted" not in legacy["eval"] and len(legacy["eval"]["val_regions"]) == 8


def test_invert_and_noise_reach_every_worker_only_when_asked() -> None:
    gpu_session = load_script("gpu_session")
    gpu_session.CLASSES = list(VALVE_IDS)
    labels = [c % len(VALVE_IDS) for c in range(48)]
    meta = {"labels": labels, "split": ["train"] * 32 + ["validation"] * 8 + ["test"] * 8,
            "region_source": list(range(48)), "region_variant": [0] * 48, "region_label": labels}
    common = dict(max_lr=1e-3, batch=16, region_ratio=1.0, phantom_regions=False, sizes=[64], epochs_final=1,
                  epochs_cv=1, epochs_loco=1, folds=2, loco=True)
    asked = gpu_session.plan_workers(meta, types.SimpleNamespace(**common, invert=0.3, noise=0.02))
    assert asked and all(w["augment"] == {"invert": 0.3, "noise": 0.02} for w in asked)
    # Off (0, or an older caller without the flags): no "augment" key, the specs of earlier sessions.
    for args in (types.SimpleNamespace(**common, invert=0.0, noise=0.0), types.SimpleNamespace(**common)):
        assert not any("augment" in w for w in gpu_session.plan_workers(meta, args))


def test_setup_stops_at_once_when_a_package_the_device_lacks_is_not_carried(tmp_path, monkeypatch) -> None:
    # The eighteenth session's first device call died after 33 s of work: no pydicom wheel.
    gpu_session = load_script("gpu_session")
    (tmp_path / "whl").mkdir()
    monkeypatch.setattr(gpu_session, "REQUIRED_MODULES", ("pydicom", "no_such_module_carried_xyz"))
    with pytest.raises(SystemExit, match="no_such_module_carried_xyz") as stopped:
        gpu_session._setup(tmp_path)
    assert "pydicom," not in str(stopped.value)  # only what is missing is named
