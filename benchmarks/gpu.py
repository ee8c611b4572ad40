"""GPU benchmark: latency, throughput and CPU/GPU agreement of the torch models.

Usage:
    PYTHONPATH=app python benchmarks/gpu.py --weights weights --out gpu.json [--device cuda]
        [--seconds-budget 60] [--n-inputs 32] [--batches 32,128] [--inputs auto|samples|synthetic]
        [--inputs-file FILE.pt] [--save-inputs FILE.pt]

What it measures on ``--device`` (CUDA by default), for the identifier and locator of a weights
folder (``identifier.json`` + ``.safetensors``, ``locator.json`` + ``.safetensors``):

- latency of one image (batch 1), locator + identifier forward, median of up to ``--runs`` runs,
  in three modes: ``fp32`` (TF32 off: true float32), ``tf32`` (cuDNN/cuBLAS allowed to use TF32,
  close to torch's default for convolutions, which is what the app's TorchBackend gets) and
  ``bf16`` (``torch.autocast(bfloat16)`` and channels_last); only ``fp32`` on the CPU;
- the same batch-1 pipeline end to end: host tensor → device → both models → host;
- identifier throughput (images/s) at each of ``--batches``, in each mode;
- host→device copy of one identifier batch (largest of ``--batches``), pageable and pinned;
- equivalence: both models on the same inputs on the CPU (fp32, the reference) and on the device
  in each mode: identical top-1 classes?, max |Δ softmax probability|, locator heatmap peak
  (argmax) equal?, max |Δ sigmoid heatmap|.

Inputs are deterministic: the sample radiographs in ``resources/samples`` (the identifier gets
the ground-truth box squared ×1.6, as the app crops; the locator the whole image), expanded to
``--n-inputs`` by the 8 flips/rotations; or, when they cannot be read (no pydicom / JPEG 2000
decoder), a fixed-seed synthetic batch of smooth noise with bright rings and discs. The JSON
records which. ``--save-inputs`` writes the batch used (float16, torch.save) and
``--inputs-file`` reads one back, so a machine without pydicom can use the sample images.

Needs torch, the package ``efficientnet-lite-pytorch`` and ``valvereader`` on the path (run it
from the repository root with ``PYTHONPATH=app`` or with the package installed); safetensors,
numpy, Pillow, pydicom are used when present. Never imports Qt. Exit status 0 unless the models
cannot be built or the device cannot be used (equivalence mismatches are results, not failures).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import csv
import hashlib
import json
import math
import os
import platform
import statistics
import struct
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STARTED = time.perf_counter()
ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "resources" / "samples"
CROP_SCALE = 1.6  # the app's default square around the located box (inference.predictor.Predictor.crop_scale)
TOP1_MARGIN = 0.1  # bf16: top-1 must agree where the CPU's top-1 − top-2 probability exceeds this

try:  # valvereader from the repository when it is not installed
    import valvereader  # noqa: F401
except ImportError:
    sys.path.insert(0, str(ROOT / "app"))

import torch

MODES = ("fp32", "tf32", "bf16")


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


def _expand(base: torch.Tensor, n: int) -> torch.Tensor:
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
    ident = _expand(torch.from_numpy(np.stack(crops)[:, None].astype(np.float32)), n)
    loc = (
        _expand(torch.from_numpy(np.stack(wholes)[:, None].astype(np.float32)), n)
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
        ident = _expand(saved["identifier"].float(), n)
        loc = saved.get("locator")
        return Inputs(
            ident,
            _expand(loc.float(), n) if loc is not None and locator_size else None,
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


# --- running -------------------------------------------------------------------------------
def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@contextlib.contextmanager
def tf32_allowed(enabled: bool) -> Iterator[None]:
    """TF32 in cuDNN convolutions and cuBLAS matmuls on or off (legacy flags only, never mixed)."""
    old = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    torch.backends.cudnn.allow_tf32 = enabled
    torch.backends.cuda.matmul.allow_tf32 = enabled
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = old


@contextlib.contextmanager
def mode_context(device: torch.device, mode: str) -> Iterator[None]:
    """fp32: TF32 off; tf32: TF32 on; bf16: TF32 off + autocast to bfloat16."""
    with tf32_allowed(mode == "tf32"), torch.inference_mode():
        if mode == "bf16":
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16):
                yield
        else:
            yield


class Placed:
    """Copies of the models on ``device`` in the memory format of ``mode`` (channels_last for bf16)."""

    def __init__(self, models: Models, device: torch.device, mode: str):
        self.device, self.mode = device, mode
        self.channels_last = mode == "bf16"
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        self.identifier = (
            copy.deepcopy(models.identifier).to(device=device, memory_format=fmt).eval()
        )
        self.locator = (
            copy.deepcopy(models.locator).to(device=device, memory_format=fmt).eval()
            if models.locator is not None
            else None
        )

    def put(self, x: torch.Tensor, non_blocking: bool = False) -> torch.Tensor:
        x = x.to(self.device, non_blocking=non_blocking)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def identify(self, x: torch.Tensor) -> torch.Tensor:
        """Softmax probabilities (N, K), float32, on the device."""
        with mode_context(self.device, self.mode):
            logits, _ = self.identifier(x)
        return logits.float().softmax(-1)

    def locate(self, x: torch.Tensor) -> torch.Tensor:
        """Sigmoid heatmap, flattened to (N, h·w), float32, on the device."""
        assert self.locator is not None
        with mode_context(self.device, self.mode):
            heatmap, _ = self.locator(x)
        return heatmap.float().sigmoid().flatten(1)


def run_outputs(placed: Placed, inputs: Inputs, chunk: int = 16) -> dict[str, torch.Tensor]:
    """Identifier probabilities and locator heatmaps for every input, on the CPU."""
    out: dict[str, list[torch.Tensor]] = {"probs": [], "heat": []}
    for i in range(0, inputs.identifier.shape[0], chunk):
        out["probs"].append(placed.identify(placed.put(inputs.identifier[i : i + chunk])).cpu())
    if placed.locator is not None and inputs.locator is not None:
        for i in range(0, inputs.locator.shape[0], chunk):
            out["heat"].append(placed.locate(placed.put(inputs.locator[i : i + chunk])).cpu())
    return {k: torch.cat(v) for k, v in out.items() if v}


def compare(
    reference: dict[str, torch.Tensor],
    other: dict[str, torch.Tensor],
    margin: float = TOP1_MARGIN,
    tie: float = 1e-3,
) -> dict[str, Any]:
    """How far ``other`` is from ``reference`` (both from :func:`run_outputs`).

    ``top1_identical`` / ``peaks_identical`` are the strict answers. A disagreement is a tie when
    the reference's own top-1 − top-2 probability gap (or its peak − its value at the other's
    peak) is under ``tie``; "confident" inputs are those with a top-1 − top-2 gap over ``margin``.
    """
    p, q = reference["probs"].double(), other["probs"].double()
    diff = (p - q).abs().amax(1)
    top2 = p.topk(min(2, p.shape[1]), dim=1).values
    gap = top2[:, 0] - top2[:, -1] if p.shape[1] > 1 else torch.ones(p.shape[0], dtype=p.dtype)
    mismatch = p.argmax(1) != q.argmax(1)
    confident = gap > margin
    result: dict[str, Any] = {
        "n": int(p.shape[0]),
        "top1_identical": bool(not mismatch.any()),
        "top1_mismatches": int(mismatch.sum()),
        "top1_mismatches_beyond_ties": int((mismatch & (gap >= tie)).sum()),
        "tie": tie,
        "confident_n": int(confident.sum()),
        "confident_margin": margin,
        "top1_mismatches_confident": int((mismatch & confident).sum()),
        "max_abs_prob_diff": float(diff.max()),
        "max_abs_prob_diff_confident": float(diff[confident].max()) if confident.any() else None,
        "mean_abs_prob_diff": float((p - q).abs().mean()),
    }
    if "heat" in reference and "heat" in other:
        h, g = reference["heat"].double(), other["heat"].double()
        hdiff = (h - g).abs().amax(1)
        ref_peak, other_peak = h.argmax(1), g.argmax(1)
        loss = h.gather(1, ref_peak[:, None])[:, 0] - h.gather(1, other_peak[:, None])[:, 0]
        moved = ref_peak != other_peak
        result.update(
            {
                "peaks_identical": bool(not moved.any()),
                "peak_mismatches": int(moved.sum()),
                "peak_mismatches_beyond_ties": int((moved & (loss >= tie)).sum()),
                "max_abs_heat_diff": float(hdiff.max()),
            }
        )
    return result


def equivalence(
    models: Models,
    inputs: Inputs,
    device: str | torch.device,
    modes: tuple[str, ...] = MODES,
    reference: dict[str, torch.Tensor] | None = None,
) -> dict[str, dict[str, Any]]:
    """CPU fp32 (the reference) against ``device`` in each of ``modes``."""
    device = torch.device(device)
    if reference is None:
        reference = run_outputs(Placed(models, torch.device("cpu"), "fp32"), inputs)
    return {
        mode: compare(reference, run_outputs(Placed(models, device, mode), inputs))
        for mode in modes
    }


# --- timing --------------------------------------------------------------------------------
class Budget:
    """Seconds left until ``start + seconds`` (start: when the process began, or main() was called)."""

    def __init__(self, seconds: float, start: float = STARTED):
        self.start = start
        self.deadline = start + seconds
        self.skipped: list[str] = []

    def left(self) -> float:
        return self.deadline - time.perf_counter()


def measure(
    fn: Callable[[], Any], device: torch.device, runs: int, cap_s: float, warmup: int
) -> dict[str, Any]:
    """Median/min/p90 milliseconds of ``fn`` over up to ``runs`` runs, stopping after ``cap_s``."""
    start = time.perf_counter()
    for _ in range(warmup):
        fn()
        _sync(device)
        if time.perf_counter() - start > cap_s / 2:
            break
    times: list[float] = []
    while len(times) < runs:
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
        if time.perf_counter() - start > cap_s:
            break
    times.sort()
    return {
        "median_ms": 1e3 * statistics.median(times),
        "min_ms": 1e3 * times[0],
        "p90_ms": 1e3 * times[min(len(times) - 1, math.ceil(0.9 * len(times)) - 1)],
        "runs": len(times),
    }


def benchmark(
    models: Models,
    inputs: Inputs,
    device: torch.device,
    modes: tuple[str, ...],
    batches: tuple[int, ...],
    budget: Budget,
    runs: int,
    throughput_runs: int,
) -> dict[str, Any]:
    cuda = device.type == "cuda"
    warmup = 3 if cuda else 1
    placed = {mode: Placed(models, device, mode) for mode in modes}
    steps: list[tuple[str, Callable[[], dict[str, Any] | None]]] = []
    id1 = inputs.identifier[:1]
    loc1 = inputs.locator[:1] if inputs.locator is not None and models.locator is not None else None

    def latency(mode: str) -> Callable[[], dict[str, Any]]:
        p = placed[mode]
        x_id, x_loc = p.put(id1), (p.put(loc1) if loc1 is not None else None)

        def fn() -> None:
            if x_loc is not None:
                p.locate(x_loc)
            p.identify(x_id)

        def run() -> dict[str, Any]:
            stats = measure(fn, device, runs, cap(), warmup)
            per_image_s[mode] = stats["median_ms"] / 1e3
            return stats

        return run

    def end_to_end() -> dict[str, Any]:
        p = placed["fp32"]

        def fn() -> None:
            if loc1 is not None:
                p.locate(p.put(loc1)).cpu()
            p.identify(p.put(id1)).cpu()

        return measure(fn, device, runs, cap(), warmup)

    # The latest seconds per image of each mode, to skip a batch that cannot fit.
    per_image_s: dict[str, float] = {}

    def throughput(mode: str, batch: int) -> Callable[[], dict[str, Any] | None]:
        def run() -> dict[str, Any] | None:
            # A batch costs at most batch x the per-image time seen so far (far less on a GPU);
            # skip it when warm-up and one run of that could not fit in what is left.
            if mode in per_image_s and per_image_s[mode] * batch * (warmup + 1) > budget.left():
                return None
            p = placed[mode]
            x = p.put(_expand(inputs.identifier, batch))
            stats = measure(lambda: p.identify(x), device, throughput_runs, cap(), warmup)
            stats["images_per_s"] = batch / (stats["median_ms"] / 1e3)
            per_image_s[mode] = stats["median_ms"] / 1e3 / batch
            return stats

        return run

    def copy_time() -> dict[str, Any] | None:
        if not cuda:
            return None
        batch = max(batches)
        host = _expand(inputs.identifier, batch)
        pinned = host.pin_memory()
        megabytes = host.numel() * host.element_size() / 1e6
        out: dict[str, Any] = {"batch": batch, "megabytes": megabytes}
        for name, src, nb in (("pageable", host, False), ("pinned", pinned, True)):
            stats = measure(lambda s=src, b=nb: s.to(device, non_blocking=b), device, 20, cap(), 2)
            stats["gb_per_s"] = megabytes / 1e3 / (stats["median_ms"] / 1e3)
            out[name] = stats
        return out

    for mode in modes:
        steps.append((f"latency.{mode}", latency(mode)))
    steps.append(("latency_end_to_end.fp32", end_to_end))
    steps.append(("host_to_device", copy_time))
    for batch in batches:
        for mode in modes:
            steps.append((f"throughput.{mode}.b{batch}", throughput(mode, batch)))

    results: dict[str, Any] = {
        "latency_ms": {},
        "latency_end_to_end_ms": {},
        "throughput": {},
        "host_to_device": None,
    }
    remaining = [len(steps)]

    def cap() -> float:  # each step gets an equal share of what is left
        return max(0.05, budget.left() / max(1, remaining[0]))

    for name, step in steps:
        if budget.left() <= 0:
            budget.skipped.append(name)
            remaining[0] -= 1
            continue
        value = step()
        remaining[0] -= 1
        if value is None and name != "host_to_device":
            budget.skipped.append(name)
            continue
        group, _, key = name.partition(".")
        if group == "latency":
            results["latency_ms"][key] = value
        elif group == "latency_end_to_end":
            results["latency_end_to_end_ms"][key] = value
        elif group == "throughput":
            results["throughput"][key] = value
        else:
            results["host_to_device"] = value
        print(f"  {name}: done ({budget.left():.1f} s of budget left)", file=sys.stderr, flush=True)
    if cuda:
        results["peak_memory_mb"] = torch.cuda.max_memory_allocated(device) / 1e6
    return results


# --- report --------------------------------------------------------------------------------
def machine(device: torch.device) -> dict[str, Any]:
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cuda_available": torch.cuda.is_available(),
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(
            {
                "device_name": torch.cuda.get_device_name(device),
                "device_memory_gb": props.total_memory / 1e9,
                "compute_capability": f"{props.major}.{props.minor}",
                "cuda": torch.version.cuda,
                "cudnn": torch.backends.cudnn.version(),
                "bf16_supported": torch.cuda.is_bf16_supported(),
            }
        )
        driver = Path("/proc/driver/nvidia/version")
        if driver.exists():
            info["driver"] = driver.read_text(errors="replace").splitlines()[0].strip()
    else:
        info["device_name"] = f"CPU ({info['processor']}, {torch.get_num_threads()} threads)"
    info["description"] = (
        f"{info['device_name']}; {info['cpu_count']} CPU cores; Python {info['python']}; torch {info['torch']}; {info['platform']}"
    )
    return info


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        return f"{value:.{digits}f}" if abs(value) >= 1e-3 or value == 0 else f"{value:.1e}"
    return str(value)


def markdown(report: dict[str, Any]) -> str:
    modes = report["modes"]
    lines = [
        f"GPU benchmark on {report['machine']['description']}",
        f"inputs: {report['inputs']['source']} ({report['inputs']['n']}; {report['inputs']['note']})",
        "",
    ]
    lines += ["| measure | " + " | ".join(modes) + " |", "|---|" + "---:|" * len(modes)]
    lat = report["timings"]["latency_ms"]
    lines.append(
        "| latency, locator + identifier, batch 1 (ms, median) | "
        + " | ".join(_fmt((lat.get(m) or {}).get("median_ms")) for m in modes)
        + " |"
    )
    e2e = report["timings"]["latency_end_to_end_ms"].get("fp32")
    lines.append(
        "| same, host → device → host (ms, median) | "
        + " | ".join(_fmt(e2e["median_ms"] if (e2e and m == "fp32") else None) for m in modes)
        + " |"
    )
    for batch in report["batches"]:
        cells = [
            (report["timings"]["throughput"].get(f"{m}.b{batch}") or {}).get("images_per_s")
            for m in modes
        ]
        lines.append(
            f"| identifier throughput, batch {batch} (images/s) | "
            + " | ".join(_fmt(c, 0) for c in cells)
            + " |"
        )
    h2d = report["timings"].get("host_to_device")
    if h2d:
        lines.append("")
        lines.append(
            f"host → device, batch {h2d['batch']} ({h2d['megabytes']:.1f} MB): pageable {h2d['pageable']['median_ms']:.2f} ms ({h2d['pageable']['gb_per_s']:.1f} GB/s), pinned {h2d['pinned']['median_ms']:.2f} ms ({h2d['pinned']['gb_per_s']:.1f} GB/s)"
        )
    lines += [
        "",
        f"| {report['device']} vs CPU fp32 | top-1 identical | mismatches (beyond ties) | confident (gap > {TOP1_MARGIN}) mismatches | max abs Δprob | same, confident | peaks identical | max abs Δheat |",
        "|---|---|---:|---:|---:|---:|---|---:|",
    ]
    for mode, r in report["equivalence"].items():
        lines.append(
            f"| {mode} | {_fmt(r['top1_identical'])} | {r['top1_mismatches']} ({r['top1_mismatches_beyond_ties']}) | {r['top1_mismatches_confident']} of {r['confident_n']} | "
            f"{_fmt(r['max_abs_prob_diff'], 4)} | {_fmt(r['max_abs_prob_diff_confident'], 4)} | {_fmt(r.get('peaks_identical'))} | {_fmt(r.get('max_abs_heat_diff'), 4)} |"
        )
    if report["skipped"]:
        lines += ["", "skipped (budget): " + ", ".join(report["skipped"])]
    lines.append(f"\ntotal {report['elapsed_s']:.1f} s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights", type=Path, default=ROOT / "weights")
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    parser.add_argument("--device", default="cuda", help="cuda (default), cuda:N or cpu")
    parser.add_argument(
        "--seconds-budget",
        type=float,
        default=60.0,
        help="stop timing after this many seconds from start",
    )
    parser.add_argument(
        "--n-inputs",
        type=int,
        help="inputs for the equivalence check (default 32 on a GPU, 8 on the CPU)",
    )
    parser.add_argument("--batches", default="32,128", help="identifier throughput batch sizes")
    parser.add_argument("--runs", type=int, default=50, help="latency runs (median reported)")
    parser.add_argument("--throughput-runs", type=int, default=10)
    parser.add_argument("--inputs", choices=("auto", "samples", "synthetic"), default="auto")
    parser.add_argument("--inputs-file", type=Path, help="read inputs saved by --save-inputs")
    parser.add_argument(
        "--save-inputs", type=Path, help="write the inputs used (float16) for another machine"
    )
    args = parser.parse_args(argv)
    # Run as a script, the budget counts from the process start (imports included); called from
    # Python (tests), from this call.
    budget = Budget(args.seconds_budget, STARTED if argv is None else time.perf_counter())
    batches = tuple(int(b) for b in args.batches.split(",") if b.strip())

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print(
            "error: --device cuda, but torch sees no CUDA device (use --device cpu)",
            file=sys.stderr,
        )
        return 2
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        if device.index is not None:
            torch.cuda.set_device(device)
        device = torch.device("cuda", torch.cuda.current_device())
    modes = MODES if device.type == "cuda" else ("fp32",)
    n_inputs = args.n_inputs or (32 if device.type == "cuda" else 8)
    try:
        models = load_models(args.weights)
    except Exception as exc:  # noqa: BLE001 - files, checksum, efficientnet-lite-pytorch missing
        print(
            f"error: cannot build the models from {args.weights}: {type(exc).__name__}: {exc}",
            file=sys.stderr,
        )
        return 1
    t0 = time.perf_counter()
    inputs = make_inputs(
        n_inputs, models.identifier_size, models.locator_size, args.inputs, args.inputs_file
    )
    if args.save_inputs:
        args.save_inputs.parent.mkdir(parents=True, exist_ok=True)
        saved = {"identifier": inputs.identifier.half(), "source": inputs.source}
        if inputs.locator is not None:
            saved["locator"] = inputs.locator.half()
        torch.save(saved, str(args.save_inputs))
    inputs_s = time.perf_counter() - t0
    print(
        f"inputs: {inputs.source} ({inputs.note}); models built; {budget.left():.1f} s of budget left",
        file=sys.stderr,
        flush=True,
    )

    t0 = time.perf_counter()
    eq = equivalence(models, inputs, device, modes)
    equivalence_s = time.perf_counter() - t0
    print(f"equivalence: done in {equivalence_s:.1f} s", file=sys.stderr, flush=True)
    timings = benchmark(
        models, inputs, device, modes, batches, budget, args.runs, args.throughput_runs
    )

    report: dict[str, Any] = {
        "schema": 1,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": " ".join(
            [Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]
        ),
        "device": str(device),
        "machine": machine(device),
        "modes": list(modes),
        "mode_meaning": {
            "fp32": "float32, TF32 off",
            "tf32": "float32 weights, TF32 allowed in cuDNN and cuBLAS",
            "bf16": "torch.autocast bfloat16, channels_last, TF32 off",
        },
        "batches": list(batches),
        "models": models.info,
        "inputs": {
            "source": inputs.source,
            "n": int(inputs.identifier.shape[0]),
            "note": inputs.note,
            "identifier_shape": list(inputs.identifier.shape),
            "locator_shape": list(inputs.locator.shape) if inputs.locator is not None else None,
            "seconds": inputs_s,
        },
        "equivalence": eq,
        "equivalence_seconds": equivalence_s,
        "timings": timings,
        "seconds_budget": args.seconds_budget,
        "skipped": budget.skipped,
        "qt_imported": any(
            name.split(".")[0] == "PySide6" and module is not None
            for name, module in sys.modules.items()
        ),
    }
    report["elapsed_s"] = time.perf_counter() - budget.start
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
