"""ValveNet contract: grey input, (logits, features) output, CAM-compatible head, offline weights."""

from __future__ import annotations

import pytest
import torch

from valvereader.errors import ModelError
from valvereader.model.architectures import build_model, lite_weights_path


@pytest.mark.parametrize("arch", ["resnet34", "efficientnet_lite0"])
def test_forward_returns_logits_from_the_mean_of_the_returned_feature_map(arch: str) -> None:
    torch.manual_seed(0)
    model = build_model(arch, num_classes=5).eval()
    x = torch.rand(2, 1, 64, 64)
    with torch.no_grad():
        logits, features = model(x)
        pooled = model.embed(x)
    assert logits.shape == (2, 5)
    assert features.shape[:2] == (2, model.num_features)
    assert isinstance(model.classifier, torch.nn.Linear)
    torch.testing.assert_close(pooled, features.mean((2, 3)))
    torch.testing.assert_close(logits, model.classifier(features.mean((2, 3))))


def test_class_activation_map_averages_to_the_logit() -> None:
    torch.manual_seed(1)
    model = build_model("resnet34", num_classes=3).eval()
    with torch.no_grad():
        logits, features = model(torch.rand(1, 1, 96, 96))
        cam = torch.einsum("c,chw->hw", model.classifier.weight[2], features[0])
        averaged = cam.mean() + model.classifier.bias[2]
    assert float(averaged) == pytest.approx(float(logits[0, 2]), abs=1e-4)


def test_colour_input_is_refused() -> None:
    model = build_model("resnet34", num_classes=2)
    with pytest.raises(ValueError, match="grey"):
        model(torch.rand(1, 3, 32, 32))


def test_resnet34_imagenet_without_a_file_raises_an_offline_error() -> None:
    with pytest.raises(ModelError, match="never downloads"):
        build_model("resnet34", num_classes=2, pretrained=True)


def test_resnet34_reads_a_local_torchvision_state_dict(tmp_path) -> None:
    from torchvision.models import resnet34

    torch.manual_seed(3)
    reference = resnet34(weights=None)
    path = tmp_path / "resnet34.pth"
    torch.save(reference.state_dict(), path)
    model = build_model("resnet34", num_classes=4, pretrained=path)
    torch.testing.assert_close(model.backbone.layer4[0].conv1.weight, reference.layer4[0].conv1.weight)


def test_missing_pretrained_file_raises_model_error(tmp_path) -> None:
    with pytest.raises(ModelError, match="not found"):
        build_model("resnet34", num_classes=2, pretrained=tmp_path / "absent.pth")


def test_lite0_imagenet_weights_come_from_the_installed_package() -> None:
    state = torch.load(lite_weights_path("efficientnet_lite0"), map_location="cpu", weights_only=True)
    model = build_model("efficientnet_lite0", num_classes=8, pretrained=True)
    torch.testing.assert_close(model.backbone.net._conv_head.weight, state["_conv_head.weight"])
    untrained = build_model("efficientnet_lite0", num_classes=8)
    assert not torch.equal(untrained.backbone.net._conv_head.weight, state["_conv_head.weight"])


def test_unknown_architecture_names_the_choices() -> None:
    with pytest.raises(ModelError, match="resnet34"):
        build_model("vgg16", num_classes=2)
