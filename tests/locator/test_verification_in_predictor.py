"""The verification as the predictor applies it to a real crop around a valve (not a film)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from valvereader.inference.predictor import load_predictor
from valvereader.io import load
from valvereader.prediction import REASON_WEAK_LOCATION, Verdict

WEIGHTS = Path(__file__).resolve().parents[2] / "weights"


def _weights_with(tmp_path: Path, verification: dict) -> Path:
    folder = tmp_path / "weights"
    folder.mkdir(parents=True)
    for item in WEIGHTS.iterdir():
        if item.suffix == ".json":
            shutil.copy(item, folder / item.name)  # the cards are edited below
        elif item.is_file() and item.suffix != ".py":
            (folder / item.name).symlink_to(item)  # the networks and statistics are only read (70 MB)
    card = json.loads((folder / "locator.json").read_text(encoding="utf-8"))
    card["verification"] = verification
    (folder / "locator.json").write_text(json.dumps(card), encoding="utf-8")
    identifier = json.loads((folder / "identifier.json").read_text(encoding="utf-8"))
    identifier["view_choice"]["located_margin"] = 1e9  # the located region is always the view read
    (folder / "identifier.json").write_text(json.dumps(identifier), encoding="utf-8")
    return folder


def test_a_crop_that_reads_as_a_valve_whole_is_not_capped_for_a_weak_location(tmp_path: Path, crops_dir: Path) -> None:
    rule = {"candidates": 3, "min_score": 0.02, "confident_min_score": 0.9999}  # every located peak is "weak"
    strict = load_predictor(_weights_with(tmp_path / "a", {**rule, "whole_ood_above": 0.0}), device="cpu")
    lenient = load_predictor(_weights_with(tmp_path / "b", {**rule, "whole_ood_above": 1e9}), device="cpu")
    confident = 0
    for folder in ("miethke_progav_2", "codman_hakim_programmable", "medtronic_ps_medical_strata"):
        for path in sorted((crops_dir / folder).glob("*.png"))[:2]:
            crop = load(path)
            kept, capped = lenient.predict(crop, with_heatmap=False), strict.predict(crop, with_heatmap=False)
            assert kept.pipeline == capped.pipeline == "locate+identify" and kept.named == capped.named
            # one candidate stands for the whole image (its own view or a region covering most of the crop)
            assert sum(bool(c["whole"]) for c in kept.candidates) == 1
            if kept.verdict is Verdict.CONFIDENT:  # the crop reads as a valve whole: the weak peak does not matter
                confident += 1
                assert capped.verdict is Verdict.REVIEW and capped.verdict_reason == REASON_WEAK_LOCATION
            else:
                assert capped.verdict is kept.verdict
    assert confident >= 2
