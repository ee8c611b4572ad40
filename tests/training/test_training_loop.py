"""Training loop: class weights aligned to ids, schedule, checkpoints, resume, augmentation."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from valvereader.errors import ModelError
from valvereader.training.augment import Augment, AugmentConfig
from valvereader.training.train import (
    TrainConfig,
    inverse_frequency_weights,
    load_trained,
    one_cycle_lr,
    save_model,
    train_model,
)

CLASSES = ("a", "b", "c", "d")


def test_inverse_frequency_weights_follow_class_ids_not_first_appearance() -> None:
    labels = [2, 2, 2, 2, 0, 1, 1, 2]  # class 3 absent; class 2 appears first
    weights = inverse_frequency_weights(labels, 4)
    assert weights.shape == (4,)
    assert weights[0] == pytest.approx(8 / (3 * 1))
    assert weights[1] == pytest.approx(8 / (3 * 2))
    assert weights[2] == pytest.approx(8 / (3 * 5))
    assert weights[3] == 0
    # weighted mean of the per-class weights over the samples is 1: the loss scale is kept
    assert float(weights[torch.tensor(labels)].mean()) == pytest.approx(1.0)


def test_one_cycle_rises_to_the_maximum_then_decays() -> None:
    lrs = [one_cycle_lr(s, 100, 3e-3, pct_start=0.25) for s in range(101)]
    assert max(lrs) == pytest.approx(3e-3)
    assert int(np.argmax(lrs)) == 25
    assert lrs[0] < 3e-3 / 20 and lrs[-1] < 1e-6


def test_augment_is_reproducible_stays_in_range_and_is_identity_when_off() -> None:
    x = torch.rand(4, 1, 32, 32)
    a = Augment(generator=torch.Generator().manual_seed(5))(x)
    b = Augment(generator=torch.Generator().manual_seed(5))(x)
    torch.testing.assert_close(a, b)
    assert a.min() >= 0 and a.max() <= 1 and not torch.allclose(a, x)
    off = AugmentConfig(0, 0, 0, (1.0, 1.0), 0, 0, 0, 0, 0, 0)
    torch.testing.assert_close(Augment(off)(x), x, atol=1e-5, rtol=0)


def test_augment_invert_and_noise_are_what_they_say_and_leave_other_configs_unchanged() -> None:
    x = torch.rand(64, 1, 32, 32) * 0.5 + 0.25  # (no clipping below: the noise stays visible)
    off = {"flip_horizontal": 0, "flip_vertical": 0, "max_rotation": 0, "zoom": (1.0, 1.0), "max_shift": 0, "max_warp": 0,
               "brightness": 0, "contrast": 0, "gamma": 0}
    inverted = Augment(AugmentConfig(**off, invert=1.0))(x)
    torch.testing.assert_close(inverted, 1 - x, atol=1e-5, rtol=0)
    noisy = Augment(AugmentConfig(**off, noise=0.04), torch.Generator().manual_seed(1))(x)
    residual = (noisy - x).flatten(1)
    sigmas = residual.std(dim=1)
    assert residual.mean().abs() < 2e-3  # zero-mean noise
    assert sigmas.max() <= 0.04 * 1.1 and sigmas.min() < 0.01 and sigmas.max() > 0.03  # each image its own sigma in 0..0.04
    # A config without noise draws nothing more: the same seed gives the batches it gave before.
    plain = Augment(AugmentConfig(), torch.Generator().manual_seed(7))(x)
    explicit = Augment(AugmentConfig(noise=0.0, invert=0.0), torch.Generator().manual_seed(7))(x)
    torch.testing.assert_close(plain, explicit, atol=0, rtol=0)
    with_noise = Augment(AugmentConfig(noise=0.02), torch.Generator().manual_seed(7))(x)
    assert not torch.allclose(plain, with_noise)


def _toy_data(n: int = 24, size: int = 32):
    rng = np.random.default_rng(0)
    labels = np.arange(n) % len(CLASSES)
    images = rng.random((n, size, size), dtype=np.float32) * 0.3
    for i, label in enumerate(labels):  # a bright square whose place tells the class
        y, x = divmod(int(label), 2)
        images[i, y * 16 : y * 16 + 12, x * 16 : x * 16 + 12] += 0.6
    return images, labels


def _config(**overrides) -> TrainConfig:
    base = {"arch": "resnet34", "input_size": 32, "epochs": 2, "batch_size": 8, "accumulate_to": 16, "max_lr": 1e-3, "seed": 3}
    base.update(overrides)
    return TrainConfig(**base)


def test_training_writes_metrics_and_checkpoint_and_resume_reproduces_a_straight_run(tmp_path) -> None:
    torch.set_num_threads(1)
    images, labels = _toy_data()
    train, val = np.arange(16), np.arange(16, 24)
    straight, history = train_model(_config(), images, labels, train, val, tmp_path / "straight", CLASSES, progress=False)
    assert [r.epoch for r in history] == [1, 2]
    rows = (tmp_path / "straight" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(r)["epoch"] for r in rows] == [1, 2]
    assert (tmp_path / "straight" / "metrics.csv").read_text().startswith("epoch,")

    train_model(_config(epochs=1), images, labels, train, val, tmp_path / "resumed", CLASSES, progress=False)
    # The schedule depends on the total epochs, so the interrupted run is re-labelled as a
    # 2-epoch run that stopped after epoch 1: same as what --resume sees after a crash.
    state_path = tmp_path / "resumed" / "checkpoint.json"
    state = json.loads(state_path.read_text())
    state["config"]["epochs"] = 2
    state_path.write_text(json.dumps(state))
    resumed, resumed_history = train_model(_config(), images, labels, train, val, tmp_path / "resumed", CLASSES, resume=True, progress=False)
    assert [r.epoch for r in resumed_history] == [1, 2]
    for key, value in straight.state_dict().items():
        if value.is_floating_point():
            torch.testing.assert_close(resumed.state_dict()[key], value, atol=1e-5, rtol=1e-4)


def test_resume_with_another_configuration_is_refused(tmp_path) -> None:
    images, labels = _toy_data(8)
    train_model(_config(epochs=1), images, labels, np.arange(8), np.arange(0), tmp_path, CLASSES, progress=False)
    with pytest.raises(ModelError, match="another configuration"):
        train_model(_config(epochs=1, max_lr=5e-3), images, labels, np.arange(8), np.arange(0), tmp_path, CLASSES, resume=True, progress=False)


def test_resume_without_checkpoint_says_so(tmp_path) -> None:
    images, labels = _toy_data(8)
    with pytest.raises(ModelError, match="no checkpoint"):
        train_model(_config(), images, labels, np.arange(8), np.arange(0), tmp_path, CLASSES, resume=True, progress=False)


def test_saved_model_reloads_with_identical_outputs(tmp_path) -> None:
    images, labels = _toy_data(8)
    model, _ = train_model(_config(epochs=1), images, labels, np.arange(8), np.arange(0), tmp_path, CLASSES, progress=False)
    save_model(tmp_path, model, {"arch": "resnet34", "class_ids": list(CLASSES), "input_size": 32})
    again, card = load_trained(tmp_path)
    x = torch.from_numpy(images[:2]).unsqueeze(1)
    with torch.no_grad():
        torch.testing.assert_close(again(x)[0], model(x)[0])
    assert card["class_ids"] == list(CLASSES)


def test_init_from_starts_from_an_earlier_models_weights(tmp_path) -> None:
    images, labels = _toy_data(8)
    first, _ = train_model(_config(epochs=1), images, labels, np.arange(8), np.arange(0), tmp_path / "a", CLASSES, progress=False)
    path = save_model(tmp_path / "a", first, {"arch": "resnet34", "class_ids": list(CLASSES), "input_size": 32})
    second, _ = train_model(_config(epochs=0, init_from=str(path)), images, labels, np.arange(8), np.arange(0), tmp_path / "b", CLASSES, progress=False)
    torch.testing.assert_close(second.classifier.weight, first.classifier.weight)
