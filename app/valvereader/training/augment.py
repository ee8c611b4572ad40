"""Training augmentation on prepared batches (after ``Preprocess``, never instead of it).

One random projective transform per image (flip, rotation, zoom, a little shift and a
perspective warp, composed into one homography, one resampling), then brightness, contrast
and gamma jitter; optionally a reversed grey scale and pixel noise (both off by default).
Works on (N, 1, H, W) tensors in 0..1, on CPU or GPU.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class AugmentConfig:
    flip_horizontal: float = 0.5  # probability
    flip_vertical: float = 0.5
    max_rotation: float = 45.0  # degrees, uniform in ±
    zoom: tuple[float, float] = (0.85, 1.3)  # >1 magnifies
    max_shift: float = 0.08  # fraction of the side
    max_warp: float = 0.15  # perspective strength
    brightness: float = 0.15  # additive, ±
    contrast: float = 0.25  # multiplicative, 1 ±
    gamma: float = 0.25  # log-uniform, exp(±)
    invert: float = 0.0  # probability of reversing the grey scale
    # Gaussian pixel noise at the network's scale: each image's sigma uniform in 0..noise (0: none).
    # Drawn last, and only when on, so that a config without it gives the same batches as before.
    noise: float = 0.0

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


class Augment:
    """Random augmentation of a batch; ``generator`` makes it reproducible."""

    def __init__(self, config: AugmentConfig | None = None, generator: torch.Generator | None = None):
        self.config = config or AugmentConfig()
        self.generator = generator

    def _uniform(self, n: int, low: float, high: float, device: torch.device) -> torch.Tensor:
        return torch.rand(n, generator=self.generator).to(device) * (high - low) + low

    def homographies(self, n: int, device: torch.device) -> torch.Tensor:
        """(n, 3, 3) maps from output to input normalised coordinates (-1..1)."""
        c = self.config
        angle = self._uniform(n, -c.max_rotation, c.max_rotation, device) * math.pi / 180.0
        zoom = torch.exp(self._uniform(n, math.log(c.zoom[0]), math.log(c.zoom[1]), device))
        flip_x = torch.where(self._uniform(n, 0, 1, device) < c.flip_horizontal, -1.0, 1.0)
        flip_y = torch.where(self._uniform(n, 0, 1, device) < c.flip_vertical, -1.0, 1.0)
        shift = [self._uniform(n, -c.max_shift, c.max_shift, device) * 2 for _ in range(2)]
        warp = [self._uniform(n, -c.max_warp, c.max_warp, device) * 0.5 for _ in range(2)]
        cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
        h = torch.zeros(n, 3, 3, device=device)
        h[:, 0, 0], h[:, 0, 1], h[:, 0, 2] = cos * flip_x, -sin * flip_y, shift[0]
        h[:, 1, 0], h[:, 1, 1], h[:, 1, 2] = sin * flip_x, cos * flip_y, shift[1]
        h[:, 2, 0], h[:, 2, 1], h[:, 2, 2] = warp[0], warp[1], 1.0
        return h

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4:
            raise ValueError(f"expected (N, C, H, W), got {tuple(images.shape)}")
        n, _, height, width = images.shape
        device = images.device
        ys = torch.linspace(-1, 1, height, device=device)
        xs = torch.linspace(-1, 1, width, device=device)
        grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
        points = torch.stack([grid_x, grid_y, torch.ones_like(grid_x)], dim=-1).view(1, -1, 3)
        mapped = points @ self.homographies(n, device).transpose(1, 2)
        grid = (mapped[..., :2] / mapped[..., 2:].clamp(min=1e-3)).view(n, height, width, 2)
        out = F.grid_sample(images, grid, mode="bilinear", padding_mode="reflection", align_corners=True)
        c = self.config
        shape = (n, 1, 1, 1)
        gamma = torch.exp(self._uniform(n, -c.gamma, c.gamma, device)).view(shape)
        out = out.clamp(0, 1) ** gamma
        mean = out.mean(dim=(1, 2, 3), keepdim=True)
        contrast = self._uniform(n, 1 - c.contrast, 1 + c.contrast, device).view(shape)
        brightness = self._uniform(n, -c.brightness, c.brightness, device).view(shape)
        out = (out - mean) * contrast + mean + brightness
        if c.invert > 0:
            flip = (self._uniform(n, 0, 1, device) < c.invert).view(shape)
            out = torch.where(flip, 1 - out, out)
        if c.noise > 0:
            sigma = self._uniform(n, 0.0, c.noise, device).view(shape)
            # Drawn on the batch's device by a generator seeded from this one (reproducible, and no
            # batch-sized CPU tensor copied to the GPU every step).
            seed = int(torch.randint(0, 2**62, (1,), generator=self.generator))
            out = out + sigma * torch.randn(out.shape, generator=torch.Generator(device).manual_seed(seed), device=device)
        return out.clamp(0, 1)
