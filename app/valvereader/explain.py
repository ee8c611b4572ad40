"""Model attention maps ("where the network looked"). Not a finding.

For networks whose logits are a linear layer over the global average of the last feature map
(ResNet, EfficientNet), Grad-CAM on that layer equals the class activation map
``relu(sum_c w[k, c] * F[c])``: the same map for the cost of the forward pass already made.
``gradcam_reference`` runs pytorch-grad-cam for tests that prove the two agree.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from .geometry import Box


def class_activation_map(features: np.ndarray, class_weights: np.ndarray, mirrored: np.ndarray | None = None) -> np.ndarray:
    """CAM for one image: ``features`` (C, h, w), ``class_weights`` (C,) → (h, w) in 0..1.

    ``mirrored``: the feature map (C, h, w) of the image mirrored left to right, where the logits
    are the mean of both readings; the map is then the mean of both readings' maps (before the
    ReLU), the mirrored one turned back."""
    weights = class_weights.astype(np.float32)
    cam = np.tensordot(weights, features.astype(np.float32), axes=(0, 0))
    if mirrored is not None:
        cam = np.asarray((cam + np.tensordot(weights, mirrored.astype(np.float32), axes=(0, 0))[:, ::-1]) / 2, np.float32)
    cam = np.maximum(cam, 0.0)
    peak = float(cam.max())
    return (cam / peak).astype(np.float32) if peak > 0 else np.zeros_like(cam, dtype=np.float32)


def place_map(cam: np.ndarray, region: Box, shape: tuple[int, int], step: int = 1) -> np.ndarray:
    """Resize ``cam`` onto ``region`` of an image of ``shape``; zero elsewhere.

    With ``step`` > 1 the result is sampled every ``step`` pixels: shape
    (ceil(rows / step), ceil(columns / step)), the same grid as ``full[::step, ::step]``.
    """
    rows, cols = -(-shape[0] // step), -(-shape[1] // step)
    heatmap = np.zeros((rows, cols), dtype=np.float32)
    region = region.clip(shape)
    if region.width <= 0 or region.height <= 0:
        return heatmap
    # Grid cells whose sample point (multiple of step) falls inside the region.
    y0, y1 = -(-region.y0 // step), -(-region.y1 // step)
    x0, x1 = -(-region.x0 // step), -(-region.x1 // step)
    if y1 <= y0 or x1 <= x0:
        return heatmap
    # PIL's box: the region in source-pixel units, sampled at the decimated grid.
    box = (
        (x0 * step - region.x0) * cam.shape[1] / region.width,
        (y0 * step - region.y0) * cam.shape[0] / region.height,
        ((x1 - 1) * step + 1 - region.x0) * cam.shape[1] / region.width,
        ((y1 - 1) * step + 1 - region.y0) * cam.shape[0] / region.height,
    )
    if step == 1:
        box = (0.0, 0.0, float(cam.shape[1]), float(cam.shape[0]))
    resized = Image.fromarray(cam.astype(np.float32), mode="F").resize(
        (x1 - x0, y1 - y0), Image.Resampling.BILINEAR, box=box
    )
    heatmap[y0:y1, x0:x1] = np.clip(np.asarray(resized), 0.0, 1.0)
    return heatmap


def attention_box(cam: np.ndarray, region: Box, level: float = 0.5) -> Box:
    """Box around the part of ``cam`` at or above ``level`` × its peak, in image coordinates
    (``cam`` covers ``region``)."""
    h, w = cam.shape
    ys, xs = np.nonzero(cam >= level * max(float(cam.max()), 1e-12))
    if ys.size == 0:
        return region
    sx, sy = region.width / w, region.height / h
    return Box(
        region.x0 + int(np.floor(xs.min() * sx)),
        region.y0 + int(np.floor(ys.min() * sy)),
        region.x0 + int(np.ceil((xs.max() + 1) * sx)),
        region.y0 + int(np.ceil((ys.max() + 1) * sy)),
    )


def gradcam_reference(model, batch: np.ndarray, class_index: int) -> np.ndarray:  # pragma: no cover - torch
    """pytorch-grad-cam (the reference implementation) on the last feature map, for tests.

    ``model`` is a ``valvereader.model.architectures.ValveNet``. An identity "tap" module is
    put where the last feature map leaves the backbone, and the logits are recomputed from it
    exactly as ValveNet does (linear layer over the spatial mean), so gradients flow through
    the tap. Returns (h, w) in 0..1 at the feature map's resolution.
    """
    import torch
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    class Tapped(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module):
            super().__init__()
            self.inner: Any = inner  # a ValveNet (its classifier is called below)
            self.tap = torch.nn.Identity()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            _, features = self.inner(x)
            return self.inner.classifier(self.tap(features).mean(dim=(2, 3)))

    tensor = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))
    wrapped = Tapped(model.eval())
    captured: list[torch.Tensor] = []
    hook = wrapped.tap.register_forward_hook(lambda _m, _i, out: captured.append(out.detach()))
    with GradCAM(model=wrapped, target_layers=[wrapped.tap]) as cam:
        cam(input_tensor=tensor, targets=[ClassifierOutputTarget(class_index)])
        h, w = captured[0].shape[-2:]
        # The per-layer map before pytorch-grad-cam upsamples it to the input size.
        grads = cam.activations_and_grads.gradients[0].cpu().numpy()
        acts = cam.activations_and_grads.activations[0].cpu().numpy()
        layer_map = cam.get_cam_image(tensor, wrapped.tap, [ClassifierOutputTarget(class_index)], acts, grads)
    hook.remove()
    layer_map = np.maximum(layer_map[0], 0).astype(np.float32)
    assert layer_map.shape == (h, w)
    peak = float(layer_map.max())
    return layer_map / peak if peak > 0 else layer_map
