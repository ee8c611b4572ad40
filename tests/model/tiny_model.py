"""A tiny network with the ValveNet contract, exported to ONNX with a model card, for tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from valvereader.catalogue import VALVE_IDS
from valvereader.model.card import sha256_of


def build_tiny(num_classes: int = len(VALVE_IDS), seed: int = 0):
    import torch
    from torch import nn

    torch.manual_seed(seed)

    class TinyNet(nn.Module):
        """(N,1,S,S) → (logits, features (N,8,S/4,S/4)); logits = classifier(mean(features))."""

        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Sequential(
                nn.Conv2d(1, 8, 3, stride=2, padding=1), nn.ReLU(),
                nn.Conv2d(8, 8, 3, stride=2, padding=1), nn.ReLU(),
            )
            self.classifier = nn.Linear(8, num_classes)

        def forward(self, x):
            features = self.body(x)
            return self.classifier(features.mean(dim=(2, 3))), features

    return TinyNet().eval()


def write_tiny_weights(folder: Path, size: int = 32, thresholds: dict | None = None, seed: int = 0) -> Path:
    """identifier.onnx + identifier.safetensors + identifier.json in ``folder``; returns the card."""
    import torch
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    model = build_tiny(seed=seed)
    onnx_path = folder / "identifier.onnx"
    torch.onnx.export(
        model, torch.zeros(1, 1, size, size), str(onnx_path), input_names=["image"],
        output_names=["logits", "features"], dynamic_axes={"image": {0: "n"}}, opset_version=17,
        dynamo=False,
    )
    st_path = folder / "identifier.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(st_path))
    card = {
        "name": "tiny-test", "version": "0", "task": "identify", "architecture": "tiny",
        "input_size": size, "class_ids": list(VALVE_IDS),
        "preprocessing": {"threshold": 0.02, "crop_border": True},
        "files": {
            "onnx": {"path": onnx_path.name, "sha256": sha256_of(onnx_path)},
            "safetensors": {"path": st_path.name, "sha256": sha256_of(st_path)},
        },
        "thresholds": thresholds or {"confident": 0.9, "unknown_confidence": 0.05},
        "intended_use": "unit tests only",
    }
    card_path = folder / "identifier.json"
    card_path.write_text(json.dumps(card, indent=1))
    return card_path


def noise_pngs(folder: Path, count: int, shape: tuple[int, int] = (64, 48), seed: int = 0) -> list[Path]:
    """``count`` grey noise PNGs img0.png, img1.png... in ``folder`` (created): valid images
    for batch tests, whatever the model makes of them."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(count):
        path = folder / f"img{i}.png"
        Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def synthetic_radiograph(shape=(120, 90), seed: int = 1):
    from valvereader.radiograph import Radiograph, RadiographMeta

    rng = np.random.default_rng(seed)
    pixels = np.zeros(shape, dtype=np.float32)
    pixels[10:-10, 8:-8] = rng.uniform(0.2, 0.6, (shape[0] - 20, shape[1] - 16))
    pixels[50:70, 40:60] = 0.95  # a bright "valve"
    return Radiograph(pixels, RadiographMeta(source="synthetic"))
