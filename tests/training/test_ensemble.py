"""Identifier ensembles: EnsembleNet's arithmetic, the run folder made from member runs, and
the whole path train → join → evaluate → ship → the program's predictor."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch import nn

from valvereader.errors import ModelError
from valvereader.model.architectures import LITE_MEAN, LITE_STD, EnsembleNet, ValveNet, build_model


def _tiny_net(seed: int, channels: int = 4) -> ValveNet:
    torch.manual_seed(seed)
    backbone = nn.Sequential(nn.Conv2d(3, channels, 3, stride=4, padding=1), nn.ReLU())
    return ValveNet("tiny", backbone, channels, 8, LITE_MEAN, LITE_STD).eval()


def test_ensemble_logits_are_the_mean_of_each_member_on_its_own_input_size() -> None:
    a, b = _tiny_net(0), _tiny_net(1, channels=6)
    ensemble = EnsembleNet([a, b], [32, 48]).eval()
    assert ensemble.input_size == 48 and ensemble.num_features == 10
    x = torch.rand(3, 1, 48, 48)
    with torch.no_grad():
        logits, features = ensemble(x)
        small = nn.functional.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False)
        expected = (a(small)[0] + b(x)[0]) / 2
    torch.testing.assert_close(logits, expected)
    assert tuple(features.shape) == (3, 10, 12, 12)  # the 48 px member's grid


def test_the_ensemble_classifier_gives_its_logits_from_its_features_when_no_map_is_resampled() -> None:
    ensemble = EnsembleNet([_tiny_net(2), _tiny_net(3, channels=5)], [40, 40]).eval()
    with torch.no_grad():
        logits, features = ensemble(torch.rand(2, 1, 40, 40))
        again = ensemble.classifier(features.mean((2, 3)))
    torch.testing.assert_close(again, logits, atol=1e-5, rtol=1e-5)
    assert tuple(ensemble.classifier.weight.shape) == (8, 9)


def test_ensembles_are_refused_when_they_cannot_work() -> None:
    with pytest.raises(ModelError, match="at least two"):
        EnsembleNet([_tiny_net(0)], [32])
    with pytest.raises(ModelError, match="at least two"):
        build_model("ensemble", 8, members=[{"arch": "resnet34", "input_size": 32}])
    with pytest.raises(ModelError, match="arch and input_size"):
        build_model("ensemble", 8, members=[{"arch": "resnet34"}, {"arch": "resnet34"}])
    with pytest.raises(ModelError, match="not initialised from ImageNet"):
        build_model("ensemble", 8, pretrained=True, members=[{"arch": "resnet34", "input_size": 32}] * 2)


def _fake_run(folder: Path, split: dict, input_size: int, arch: str = "resnet34") -> Path:
    from safetensors.torch import save_file

    folder.mkdir(parents=True)
    save_file({"classifier.weight": torch.full((8, 512), float(input_size))}, str(folder / "model.safetensors"))  # resnet34: 512 features
    (folder / "model.json").write_text(json.dumps({"arch": arch, "input_size": input_size, "class_ids": list("abcdefgh"),
                                                   "preprocessing": {"size": input_size}, "config": {"seed": 1}}))
    (folder / "split.json").write_text(json.dumps(split))
    return folder


def test_make_ensemble_joins_runs_of_one_split_and_refuses_others(tmp_path: Path) -> None:
    from safetensors.torch import load_file

    from valvereader.training.ensemble import main, make_ensemble

    split = {"paths": ["x.png", "y.png", "z.png"], "labels": ["a", "b", "a"], "split": {"train": [0], "validation": [1], "test": [2]}}
    a = _fake_run(tmp_path / "a", split, 32)
    b = _fake_run(tmp_path / "b", split, 48)
    out = make_ensemble([a, b], tmp_path / "ens")
    card = json.loads((out / "model.json").read_text())
    assert card["arch"] == "ensemble" and card["input_size"] == 48
    assert card["members"] == [{"arch": "resnet34", "input_size": 32}, {"arch": "resnet34", "input_size": 48}]
    assert card["preprocessing"] == {"size": 48} and card["config"]["input_size"] == 48
    state = load_file(str(out / "model.safetensors"))
    assert float(state["members.0.classifier.weight"][0, 0]) == 32 and float(state["members.1.classifier.weight"][0, 0]) == 48
    # The same images in another order is the same split; other test images are not.
    shuffled = {"paths": ["z.png", "y.png", "x.png"], "labels": ["a", "b", "a"], "split": {"train": [2], "validation": [1], "test": [0]}}
    make_ensemble([a, _fake_run(tmp_path / "c", shuffled, 40)], tmp_path / "ens2")
    other = {**split, "split": {"train": [2], "validation": [1], "test": [0]}}
    with pytest.raises(ModelError, match="different splits"):
        make_ensemble([a, _fake_run(tmp_path / "d", other, 40)], tmp_path / "ens3")
    with pytest.raises(ModelError, match="already an ensemble"):
        make_ensemble([a, out], tmp_path / "ens4")
    with pytest.raises(ModelError, match="at least two"):
        make_ensemble([a], tmp_path / "ens5")
    assert main([str(a), str(tmp_path / "missing"), "--out", str(tmp_path / "ens6")]) == 2


def test_the_open_set_may_cover_the_first_members_only(tmp_path: Path) -> None:
    """With ``openset_members`` the card names the channel range of those members' features
    (a third member need not square the statistics' size); out of range is refused."""
    from valvereader.training.ensemble import main, make_ensemble

    split = {"paths": ["x.png", "y.png", "z.png"], "labels": ["a", "b", "a"], "split": {"train": [0], "validation": [1], "test": [2]}}
    runs = [_fake_run(tmp_path / name, split, size) for name, size in (("a", 32), ("b", 48), ("c", 40))]
    card = json.loads((make_ensemble(runs, tmp_path / "e2", openset_members=2) / "model.json").read_text())
    assert card["openset_features"] == [0, 1024]  # two resnet34 members, 512 pooled features each
    assert "openset_features" not in json.loads((make_ensemble(runs, tmp_path / "e3", openset_members=3) / "model.json").read_text())
    assert "openset_features" not in json.loads((make_ensemble(runs, tmp_path / "e0") / "model.json").read_text())
    for bad in (0, 4):
        with pytest.raises(ModelError, match="openset_members"):
            make_ensemble(runs, tmp_path / f"bad{bad}", openset_members=bad)
    assert main([*map(str, runs), "--out", str(tmp_path / "e1"), "--openset-members", "1"]) == 0
    assert json.loads((tmp_path / "e1" / "model.json").read_text())["openset_features"] == [0, 512]


@pytest.mark.slow
def test_two_trained_runs_join_evaluate_ship_and_run_in_the_program(tmp_path: Path) -> None:
    from test_train_evaluate_ship import write_tiny_crops

    from valvereader.inference.predictor import load_predictor
    from valvereader.model.card import ModelCard
    from valvereader.radiograph import Radiograph, RadiographMeta
    from valvereader.training import cli_evaluate, cli_train
    from valvereader.training.ensemble import make_ensemble
    from valvereader.training.ship import ship_identifier

    torch.set_num_threads(1)
    write_tiny_crops(tmp_path / "data", per_class=8, shape=(40, 36), seed=0)
    runs = []
    for size in (32, 40):
        run = tmp_path / "runs" / f"r{size}"
        assert cli_train.main(["--data", str(tmp_path / "data"), "--out", str(run), "--input-size", str(size), "--epochs", "1",
                               "--batch-size", "8", "--accumulate-to", "8", "--test-fraction", "0.2",
                               "--validation-fraction", "0.2", "--no-progress"]) == 0
        runs.append(run)
    ensemble = make_ensemble(runs, tmp_path / "runs" / "ens")
    evaluation = tmp_path / "evaluation"
    assert cli_evaluate.main(["--run", str(ensemble), "--out", str(evaluation), "--cam-examples", "2"]) == 0
    card = ModelCard.load(ship_identifier(ensemble, evaluation, tmp_path / "weights", version="2.0.0"))
    assert card.architecture == "ensemble" and card.input_size == 40
    assert [m["input_size"] for m in card.data["members"]] == [32, 40]
    assert card.data["metrics"]["onnx_vs_torch_max_abs_logit_difference"] < 1e-4
    # The program reads it through ONNX Runtime like any identifier, attention map included.
    predictor = load_predictor(tmp_path / "weights", device="cpu")
    assert predictor.model_name == "identifier 2.0.0 (ensemble of 2 resnet34, 32 + 40 px)"  # on screen and on exports
    assert "ensemble of resnet34 at 32 px + resnet34 at 40 px" in (tmp_path / "weights" / "identifier.md").read_text()
    assert [m["input_size"] for m in card.data["training"]["members"]] == [32, 40]
    pixels = np.random.default_rng(0).random((60, 50)).astype(np.float32)
    prediction = predictor.predict(Radiograph(pixels, RadiographMeta(source="test")), with_heatmap=True)
    assert prediction.probabilities.shape == (8,) and abs(float(prediction.probabilities.sum()) - 1) < 1e-5
    assert prediction.heatmap is not None and prediction.heatmap.shape == (60, 50)
    # The open set may cover the first member's features only: the statistics, the card and the
    # program's score follow (the score then ignores the second member's channels).
    first_only = make_ensemble(runs, tmp_path / "runs" / "ens_first", openset_members=1)
    assert cli_evaluate.main(["--run", str(first_only), "--out", str(tmp_path / "eval_first"), "--cam-examples", "2"]) == 0
    narrow = ModelCard.load(ship_identifier(first_only, tmp_path / "eval_first", tmp_path / "weights_first", version="2.0.0"))
    assert narrow.data["openset"]["features"] == [0, 512]
    from valvereader.training.openset import load_openset

    assert load_openset(tmp_path / "weights_first" / "identifier.openset.safetensors").precision.shape == (512, 512)
    first = load_predictor(tmp_path / "weights_first", device="cpu")
    image = Radiograph(pixels, RadiographMeta(source="test"))
    score = first.predict(image).ood_score
    assert score is not None and np.isfinite(score) and score != predictor.predict(image).ood_score
    # Re-made from the shipped weights, the open set is fitted on the same channels again.
    (tmp_path / "split_first.json").write_text((first_only / "split.json").read_text())
    assert cli_evaluate.main(["--weights", str(tmp_path / "weights_first"), "--split", str(tmp_path / "split_first.json"),
                              "--out", str(tmp_path / "again_first"), "--cam-examples", "2"]) == 0
    assert json.loads((tmp_path / "again_first" / "metrics.json").read_text())["openset"]["features"] == [0, 512]
    # Its numbers are re-made from the shipped weights and the split alone.
    split_file = tmp_path / "split.json"
    split_file.write_text((ensemble / "split.json").read_text())
    assert cli_evaluate.main(["--weights", str(tmp_path / "weights"), "--split", str(split_file), "--out",
                              str(tmp_path / "again"), "--cam-examples", "2"]) == 0
    remade = json.loads((tmp_path / "again" / "metrics.json").read_text())["test"]["metrics"]
    # The prepared images went to a temporary folder, not into the report (about 1 GB for the real data).
    assert not (tmp_path / "again" / "cache").exists() and not list((tmp_path / "again").rglob("prepared-*.npy"))
    original = json.loads((evaluation / "metrics.json").read_text())["test"]["metrics"]
    assert remade["n"] == original["n"] and remade["accuracy"] == pytest.approx(original["accuracy"], abs=2 / original["n"])
    # The ensemble's own CV (a joined report: members trained per fold, logits
    # averaged) is named as such on the card, with each member's figures beside it.
    mean_sd = {"accuracy": {"mean": 0.985, "sd": 0.012}, "macro_precision": {"mean": 0.97, "sd": 0.02},
               "macro_recall": {"mean": 0.98, "sd": 0.02}, "macro_f1": {"mean": 0.976, "sd": 0.02}}
    joined = tmp_path / "cv_joined.json"
    joined.write_text(json.dumps({"protocol": "joined protocol", "mean_sd": mean_sd,
                                  "folds": [{"fold": f"cv{k}", "crops": 10 + k, "epochs": [16, 27]} for k in range(5)],
                                  "members_mean_sd": [{"accuracy": [0.983, 0.013], "macro_f1": [0.97, 0.016]},
                                                      {"accuracy": [0.982, 0.012], "macro_f1": [0.966, 0.026]}]}))
    card = ModelCard.load(ship_identifier(ensemble, evaluation, tmp_path / "weights", version="2.0.0", cross_validation=joined))
    cv = card.data["metrics"]["cross_validation"]
    assert cv["images"] == 60 and cv["joined"]["members"] == 2 and cv["of"].startswith("the ensemble's recipe")
    assert "the ensemble's recipe (its members trained per fold, logits averaged): 5-fold cross-validation gives accuracy 0.985" in \
        card.data["metrics"]["protocol"]
    text = (tmp_path / "weights" / "identifier.md").read_text()
    assert "each member alone, accuracy / macro-F1: 0.983 ± 0.013 / 0.970 ± 0.016; 0.982 ± 0.012 / 0.966 ± 0.026" in text
    assert "not the ensemble" not in card.data["metrics"]["protocol"]
