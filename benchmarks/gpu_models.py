"""The GPU benchmark's networks and inputs (``benchmarks/gpu.py``): the identifier and locator
built in torch from a weights folder (sha256 checked), and deterministic input batches (the
sample radiographs as the program prepares them, a saved batch, or fixed-seed stand-ins)."""

from __future__ import annotations

import csv
import hashlib
import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "resources" / "samples"
CROP_SCALE = 1.6  # the app's default square around the located box (inference.predictor.Predictor.crop_scale)
TOP1_MARGIN = 0.1  # bf16: top-1 must agree where the CPU's top-1 − top-2 probability exceeds this


# --- models --------------------------------------------------------------------------------
@dataclass
class Models:
    """The two networks on the CPU in float32, eval mode, and what their cards say."""

    identifier: torch.nn.Module
    identifier_size: int
    class_ids: tuple[str, ...]
    locator: torch.nn.Module | None = None
    locator_size: int | None = None
    info: dict[str, Any] = field(default_factory=dict)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


_SAFETENSORS_DTYPES = {
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "F64": torch.float64,
    "I32": torch.int32,
}


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A safetensors file as float32 tensors (integer ones kept), with or without ``safetensors``."""
    try:
        from safetensors.torch import load_file

        state = load_file(str(path))
    except ImportError:  # the format is an 8-byte header length, a JSON header, then raw data
        raw = Path(path).read_bytes()
        (length,) = struct.unpack("<Q", raw[:8])
        header = json.loads(raw[8 : 8 + length])
        data = raw[8 + length :]
        state = {}
        for name, entry in header.items():
            if name == "__metadata__":
                continue
            start, end = entry["data_offsets"]
            dtype = _SAFETENSORS_DTYPES[entry["dtype"]]
            chunk = bytearray(data[start:end])
            tensor = torch.frombuffer(chunk, dtype=dtype) if chunk else torch.empty(0, dtype=dtype)
            state[name] = tensor.reshape(entry["shape"]).clone()
    return {k: (v.float() if v.is_floating_point() else v) for k, v in state.items()}


def _card(weights: Path, name: str) -> tuple[dict[str, Any], Path] | None:
    """The card ``name``.json and its checked safetensors file, or None when the card is absent."""
    card_path = weights / f"{name}.json"
    if not card_path.exists():
        return None
    card = json.loads(card_path.read_text(encoding="utf-8"))
    entry = card["files"]["safetensors"]
    path = weights / entry["path"]
    if not path.exists():
        raise FileNotFoundError(f"{path} (listed in {card_path.name}) is missing")
    expected = str(entry.get("sha256", "")).lower()
    if expected and _sha256(path) != expected:
        raise ValueError(f"{path.name}: sha256 does not match {card_path.name}")
    return card, path


def _load_checked(model: torch.nn.Module, path: Path) -> torch.nn.Module:
    result = model.load_state_dict(read_state_dict(path), strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise ValueError(
            f"{path.name} does not fit: missing {result.missing_keys[:3]}, unexpected {result.unexpected_keys[:3]}"
        )
    return model.float().eval()


def load_models(weights: Path, with_locator: bool = True) -> Models:
    """Build the identifier (and the locator, if its card is there) from a weights folder.

    Same construction as ``valvereader.model.runtime.TorchBackend`` (build_model / LocatorNet +
    the card's safetensors, sha256 checked), without the card module's catalogue (and YAML).
    """
    from valvereader.model.architectures import build_model

    weights = Path(weights)
    found = _card(weights, "identifier")
    if found is None:
        raise FileNotFoundError(f"no identifier.json in {weights}")
    card, path = found
    class_ids = tuple(card.get("class_ids") or ())
    identifier = _load_checked(
        build_model(card["architecture"], len(class_ids), pretrained=False, members=card.get("members")), path
    )
    models = Models(identifier, int(card["input_size"]), class_ids)
    models.info["identifier"] = {
        "architecture": card["architecture"],
        "version": card.get("version"),
        "input_size": models.identifier_size,
        "classes": len(class_ids),
        "parameters": sum(p.numel() for p in identifier.parameters()),
    }
    located = _card(weights, "locator") if with_locator else None
    if located is not None:
        from valvereader.model.locator_net import LocatorNet

        lcard, lpath = located
        models.locator = _load_checked(LocatorNet(pretrained=False), lpath)
        models.locator_size = int(lcard["input_size"])
        models.info["locator"] = {
            "architecture": lcard["architecture"],
            "version": lcard.get("version"),
            "input_size": models.locator_size,
            "parameters": sum(p.numel() for p in models.locator.parameters()),
        }
    return models


# --- inputs --------------------------------------------------------------------------------
@dataclass
class Inputs:
    """Grey batches (N, 1, S, S) float32 in 0..1 on the CPU."""

    identifier: torch.Tensor
    locator: torch.Tensor | None
    source: str  # "samples", "synthetic" or "file"
    note: str = ""


def _dihedral(x: torch.Tensor, k: int) -> torch.Tensor:
    """The k-th of the 8 flips/rotations of (..., S, S)."""
    y = torch.rot90(x, k % 4, dims=(-2, -1))
    return torch.flip(y, dims=(-1,)) if k >= 4 else y


def expand(base: torch.Tensor, n: int) -> torch.Tensor:
    """``n`` images from ``base`` (K, 1, S, S): every base image, then their flips/rotations."""
    k = base.shape[0]
    return torch.stack([_dihedral(base[i % k], (i // k) % 8) for i in range(n)]).contiguous()


def sample_inputs(
    n: int, identifier_size: int, locator_size: int | None, threshold: float = 0.02
) -> Inputs:
    """The sample radiographs, preprocessed as the app does (needs pydicom and its decoders)."""
    import numpy as np

    from valvereader.geometry import Box
    from valvereader.io import load
    from valvereader.preprocess import Preprocess

    rows = list(csv.DictReader((SAMPLES / "ground_truth.csv").open(encoding="utf-8")))
    identify = Preprocess(identifier_size, threshold, crop_border=True)
    locate = Preprocess(locator_size, threshold, crop_border=True) if locator_size else None
    crops, wholes = [], []
    for row in rows:
        pixels = load(SAMPLES / row["file"]).pixels
        box = Box(*(int(float(row[k])) for k in ("box_x0", "box_y0", "box_x1", "box_y1")))
        crops.append(identify(pixels, box.square(CROP_SCALE, minimum=32).clip(pixels.shape)).pixels)
        if locate is not None:
            wholes.append(locate(pixels).pixels)
    if not crops:
        raise FileNotFoundError(f"no rows in {SAMPLES / 'ground_truth.csv'}")
    ident = expand(torch.from_numpy(np.stack(crops)[:, None].astype(np.float32)), n)
    loc = (
        expand(torch.from_numpy(np.stack(wholes)[:, None].astype(np.float32)), n)
        if wholes
        else None
    )
    return Inputs(ident, loc, "samples", f"{len(crops)} sample radiographs x flips/rotations")


def synthetic_inputs(n: int, size: int, seed: int = 0) -> torch.Tensor:
    """Fixed-seed stand-ins (N, 1, S, S) in 0..1: smooth noise with a few bright rings and discs."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 1, max(2, size // 16), max(2, size // 16), generator=g)
    image = 0.15 + 0.35 * torch.nn.functional.interpolate(
        coarse, size=(size, size), mode="bilinear", align_corners=False
    )
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    for i in range(n):
        for _ in range(3):
            cx, cy, r = (
                torch.rand(3, generator=g) * torch.tensor([1.2, 1.2, 0.25])
                + torch.tensor([-0.6, -0.6, 0.08])
            ).tolist()
            d = ((xx - cx) ** 2 + (yy - cy) ** 2).sqrt()
            ring = torch.exp(-(((d - r) / 0.02) ** 2))
            disc = torch.sigmoid((0.4 * r - d) / 0.01)
            image[i, 0] += 0.5 * ring + 0.3 * disc
    image += 0.02 * torch.randn(image.shape, generator=g)
    return image.clamp(0.0, 1.0).contiguous()


def make_inputs(
    n: int,
    identifier_size: int,
    locator_size: int | None,
    source: str = "auto",
    inputs_file: Path | None = None,
    seed: int = 0,
) -> Inputs:
    """Deterministic inputs: a saved file, the sample radiographs, or synthetic images."""
    if inputs_file is not None:
        saved = torch.load(str(inputs_file), map_location="cpu", weights_only=True)
        ident = expand(saved["identifier"].float(), n)
        loc = saved.get("locator")
        return Inputs(
            ident,
            expand(loc.float(), n) if loc is not None and locator_size else None,
            "file",
            f"{inputs_file} ({saved.get('source', '?')})",
        )
    note = ""
    if source in ("auto", "samples"):
        try:
            return sample_inputs(n, identifier_size, locator_size)
        except (
            Exception
        ) as exc:  # ImportError without pydicom; InputError without a JPEG 2000 decoder
            if source == "samples":
                raise
            note = f"samples not readable here ({type(exc).__name__}: {str(exc)[:160]})"
    loc = synthetic_inputs(n, locator_size, seed + 1) if locator_size else None
    return Inputs(synthetic_inputs(n, identifier_size, seed), loc, "synthetic", note or "asked for")
