"""End to end on tiny images: train → evaluate → ship, and the shipped card passes the loader's checks."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from valvereader.catalogue import VALVE_IDS


@pytest.mark.slow
def write_tiny_crops(folder, per_class: int, shape: tuple[int, int], seed: int) -> None:
    """A folder per valve of noise images, each class with a bright bar at its own height."""
    rng = np.random.default_rng(seed)
    for k, valve in enumerate(VALVE_IDS):
        (folder / valve).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            image = (rng.random(shape) * 60).astype(np.uint8)
            image[k * 4 : k * 4 + 8, shape[1] // 2 - 8 : shape[1] // 2 + 8] = 250
            Image.fromarray(image).save(folder / valve / f"{i}.png")


def test_train_evaluate_and_ship_produce_a_card_the_loader_accepts(tmp_path) -> None:
    import torch

    from valvereader.model.card import ModelCard
    from valvereader.training import cli_evaluate, cli_train
    from valvereader.training.ship import ship_identifier

    torch.set_num_threads(1)
    write_tiny_crops(tmp_path / "data", per_class=10, shape=(40, 36), seed=0)
    run = tmp_path / "runs" / "tiny"
    assert cli_train.main(["--data", str(tmp_path / "data"), "--out", str(run), "--input-size", "32", "--epochs", "1",
                           "--batch-size", "8", "--accumulate-to", "8", "--test-fraction", "0.2",
                           "--validation-fraction", "0.2", "--no-progress"]) == 0
    split = json.loads((run / "split.json").read_text())
    assert not set(split["split"]["train"]) & set(split["split"]["test"])
    evaluation = tmp_path / "evaluation"
    assert cli_evaluate.main(["--run", str(run), "--out", str(evaluation), "--cam-examples", "4"]) == 0
    report = (evaluation / "report.md").read_text()
    assert "no patient identifiers" in report and "Held-out test" in report
    for figure in ("confusion_test.png", "reliability_test.png", "attention_test.png"):
        assert (evaluation / figure).stat().st_size > 1000
    card_path = ship_identifier(run, evaluation, tmp_path / "weights")
    card = ModelCard.load(card_path)
    card.check_classes()
    for role in ("safetensors", "onnx", "openset"):
        card.verify(role)
    data = card.data
    assert data["class_ids"] == list(VALVE_IDS)
    assert "research demonstration, not for clinical use" in data["intended_use"].lower()
    assert "no patient ids" in data["metrics"]["protocol"]
    assert data["metrics"]["onnx_vs_torch_max_abs_logit_difference"] < 1e-4
    assert set(data["thresholds"]) >= {"confident", "unknown_confidence", "ood_review", "ood_unknown"}
    assert data["data_attribution"]["doi"] == "10.1007/s00701-024-05940-3"
    metrics = json.loads((evaluation / "metrics.json").read_text())
    assert metrics["calibration"]["fitted_on"] == "validation" and metrics["calibration"]["temperature"] > 0
    assert metrics["calibration"]["validation_nll_after"] <= metrics["calibration"]["validation_nll_before"] + 1e-9
    assert data["calibration"]["temperature"] == pytest.approx(metrics["calibration"]["temperature"])
    assert "softmax(logits / T)" in (tmp_path / "weights" / "identifier.md").read_text()
    assert "auroc_loco_honest" not in data["openset"]  # no loco_partial.json beside the evaluation
    # Shipping again over a card with a view choice (chosen on validation radiographs) keeps it,
    # and a loco_partial.json beside the evaluation folder gives the honest unseen-valve AUROC.
    # The views are compared by the raw-feature score of their own (heldout.VIEW_NORMALISE), in its own file.
    assert set(data["view_choice"]) == {"score"} and data["view_choice"]["score"]["normalise"] == "none"
    assert data["openset"]["normalise"] == "l2"
    card.verify("view_score")
    per_class = {v: {"mahalanobis_none": 0.5 + 0.05 * k, "mahalanobis_l2": 0.9} for k, v in enumerate(VALVE_IDS)}
    (evaluation.parent / "loco_partial.json").write_text(json.dumps({"epochs": 3, "per_class": per_class}))
    choice = {"whole_radiograph_fov_mm": 90.0, "located_margin": 2.0, "rule": "test rule", "chosen_on": "test"}
    card_path.write_text(json.dumps({**data, "view_choice": choice, "training": {**data["training"], "lineage": "test lineage"}}))
    again = ModelCard.load(ship_identifier(run, evaluation, tmp_path / "weights", version="9.9.9"))
    assert again.data["view_choice"] == {**choice, "score": data["view_choice"]["score"]} and again.data["version"] == "9.9.9"
    # The same network shipped again keeps the provenance the previous card gave it.
    assert again.data["training"]["lineage"] == "test lineage"
    assert again.data["training"]["reshipped"].startswith(f"the network of {data['version']}, unchanged")
    assert "Shipped again: the network of" in (tmp_path / "weights" / "identifier.md").read_text()
    assert "identifier.openset_view.safetensors` (the view choice's own" in (tmp_path / "weights" / "identifier.md").read_text()
    # Building the same version again keeps its note instead of calling it its own parent.
    rebuilt = ModelCard.load(ship_identifier(run, evaluation, tmp_path / "weights", version="9.9.9"))
    assert rebuilt.data["training"]["reshipped"] == again.data["training"]["reshipped"]
    assert again.data["openset"]["auroc_loco_frozen"] is None  # no linear probe in this evaluation
    assert "test rule" in (tmp_path / "weights" / "identifier.md").read_text()
    honest = again.data["openset"]["auroc_loco_honest"]
    key = "mahalanobis_l2" if again.data["openset"]["normalise"] == "l2" else "mahalanobis_none"
    expected = [entry[key] for entry in per_class.values()]
    assert honest["runs"] == 8 and honest["mean"] == pytest.approx(np.mean(expected), abs=1e-3)
    assert honest["min"] == pytest.approx(min(expected)) and honest["max"] == pytest.approx(max(expected))
    assert f"{np.mean(expected):.2f} ± " in (tmp_path / "weights" / "identifier.md").read_text()
    # A cross-validation report gives the recipe's CV and honest
    # leave-one-class-out runs; the card carries both, and how the view rule reads validation.
    folds = {f"cv{k}": {} for k in range(5)}
    mean_sd = {"accuracy": {"mean": 0.9812, "sd": 0.0123}, "macro_precision": {"mean": 0.97, "sd": 0.02},
               "macro_recall": {"mean": 0.975, "sd": 0.015}, "macro_f1": {"mean": 0.9688, "sd": 0.0157},
               **{f"{v}.recall": {"mean": 0.9 + 0.01 * k, "sd": 0.05} for k, v in enumerate(VALVE_IDS)}}
    loco = {v: {"epochs": 11, "auroc_mahalanobis_l2_t_real": 0.6 + 0.04 * k, "auroc_mahalanobis_none_t_real": 0.5}
            for k, v in enumerate(VALVE_IDS)}
    report = tmp_path / "cv_gpu.json"
    report.write_text(json.dumps({"folds": folds, "images_covered": 1556, "protocol": "test protocol", "mean_sd": mean_sd,
                                  "leave_one_class_out": loco}))
    third = ModelCard.load(ship_identifier(run, evaluation, tmp_path / "weights", version="9.9.10", cross_validation=report,
                                           honest_loco=report, view_check="validation crops 0.9 and radiographs 0.8"))
    cv = third.data["metrics"]["cross_validation"]
    assert cv["folds"] == 5 and cv["accuracy"] == [0.9812, 0.0123] and cv["macro_f1"] == [0.9688, 0.0157]
    assert "5-fold cross-validation gives accuracy 0.981 ± 0.012" in third.data["metrics"]["protocol"]
    assert "no cross-validation" not in third.data["metrics"]["protocol"]
    honest = third.data["openset"]["auroc_loco_honest"]
    key = "auroc_mahalanobis_l2_t_real" if third.data["openset"]["normalise"] == "l2" else "auroc_mahalanobis_none_t_real"
    assert honest["mean"] == pytest.approx(np.mean([e[key] for e in loco.values()]), abs=1e-3) and "whole network" in honest["source"]
    text = (tmp_path / "weights" / "identifier.md").read_text()
    assert "macro-F1 **0.969 ± 0.016**" in text and "Checked for this identifier: validation crops 0.9" in text
    assert "Test protocol." in text  # the report's protocol, capitalised as a sentence
    assert "split_file" not in third.data["metrics"]  # no split.json in this evaluation folder
    # The card's numbers re-made from the shipped weights and the split alone (a fresh clone
    # has no run folder), with the images moved elsewhere (--data).
    moved = tmp_path / "moved"
    (tmp_path / "data").rename(moved)
    split_file = tmp_path / "split.json"
    split_file.write_text((run / "split.json").read_text())
    shipped = tmp_path / "weights"
    again_out = tmp_path / "from_weights"
    assert cli_evaluate.main(["--weights", str(shipped), "--split", str(split_file), "--out", str(again_out)]) == 2  # images not found
    assert cli_evaluate.main(["--weights", str(shipped), "--out", str(again_out)]) == 2  # no split
    assert cli_evaluate.main(["--weights", str(shipped), "--split", str(split_file), "--data", str(moved), "--out", str(again_out),
                              "--cam-examples", "2"]) == 0
    remade = json.loads((again_out / "metrics.json").read_text())["test"]["metrics"]
    original = json.loads((evaluation / "metrics.json").read_text())["test"]["metrics"]
    assert remade["n"] == original["n"]
    # The shipped file is fp16: the same predictions up to rounding.
    assert remade["accuracy"] == pytest.approx(original["accuracy"], abs=2 / original["n"])
    # A weights file that does not match its card is refused.
    weights_file = shipped / third.data["files"]["safetensors"]["path"]
    weights_file.write_bytes(weights_file.read_bytes()[:-8] + b"\0" * 8)
    assert cli_evaluate.main(["--weights", str(shipped), "--split", str(split_file), "--data", str(moved), "--out", str(tmp_path / "x")]) == 2


def test_evaluate_cross_validates_the_recipe_per_fold_with_a_shorter_budget(tmp_path) -> None:
    """`evaluate --cv K --cv-epochs E`: K trainings on grouped folds, each tested on its own fold;
    metrics per fold and mean ± SD, and the report says the budget was shorter than the run's."""
    import torch

    from valvereader.training import cli_evaluate, cli_train

    torch.set_num_threads(1)
    write_tiny_crops(tmp_path / "data", per_class=6, shape=(36, 36), seed=1)
    run = tmp_path / "run"
    assert cli_train.main(["--data", str(tmp_path / "data"), "--out", str(run), "--input-size", "32", "--epochs", "2",
                           "--batch-size", "8", "--accumulate-to", "8", "--test-fraction", "0.2",
                           "--validation-fraction", "0.2", "--no-progress"]) == 0
    out = tmp_path / "evaluation"
    assert cli_evaluate.main(["--run", str(run), "--out", str(out), "--cam-examples", "2", "--cv", "2", "--cv-epochs", "1"]) == 0
    cv = json.loads((out / "metrics.json").read_text())["cross_validation"]
    assert len(cv["folds"]) == 2 and sum(f["n"] for f in cv["folds"]) == 6 * len(VALVE_IDS)  # every image tested once
    assert "1 epochs each (the run itself trained 2" in cv["protocol"]
    accuracies = [f["accuracy"] for f in cv["folds"]]
    assert cv["summary"]["accuracy"]["mean"] == pytest.approx(np.mean(accuracies))
    assert cv["summary"]["accuracy"]["sd"] == pytest.approx(np.std(accuracies, ddof=1))
    for fold in (1, 2):  # each fold trained its own model, with a checkpoint to resume from
        assert (run / "cv" / f"fold{fold}" / "checkpoint.json").is_file()
    report = (out / "report.md").read_text()
    assert "Cross-validation of the training recipe" in report and "a shorter budget" in report


@pytest.mark.slow
def test_torchrun_trains_with_two_processes(tmp_path) -> None:
    import subprocess
    import sys

    for k, valve in enumerate(VALVE_IDS[:2]):
        for i in range(8):
            image = np.full((36, 36), 30 + 100 * k, dtype=np.uint8)
            (tmp_path / "data" / valve).mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(tmp_path / "data" / valve / f"{i}.png")
    run = tmp_path / "run"
    import socket

    with socket.socket() as probe:  # a free loopback port, so parallel runs cannot collide
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
               "--master_port", port,
               "-m", "valvereader.training.cli_train", "--data", str(tmp_path / "data"), "--out", str(run),
               "--input-size", "32", "--epochs", "1", "--batch-size", "4", "--accumulate-to", "8",
               "--test-fraction", "0.25", "--validation-fraction", "0.1", "--threads", "1", "--no-progress"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=240, check=False)
    # All of it: torchrun ends with its own summary, and a rank's traceback comes before that.
    assert done.returncode == 0, f"exit {done.returncode}\n--- stderr ---\n{done.stderr}\n--- stdout ---\n{done.stdout}"
    assert (run / "model.safetensors").is_file()
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 1
