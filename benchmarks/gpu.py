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
import json
import math
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

STARTED = time.perf_counter()
ROOT = Path(__file__).resolve().parents[1]

try:  # valvereader from the repository when it is not installed
    import valvereader  # noqa: F401
except ImportError:
    sys.path.insert(0, str(ROOT / "app"))

import torch

sys.path.insert(0, str(ROOT / "benchmarks"))  # its networks, inputs and report beside it
MODES = ("fp32", "tf32", "bf16")


from gpu_models import (  # read_state_dict, synthetic_inputs: this script is the one entry
    TOP1_MARGIN,
    Inputs,
    Models,
    expand,
    load_models,
    make_inputs,
    read_state_dict,  # noqa: F401
    synthetic_inputs,  # noqa: F401
)
from gpu_report import machine, markdown


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
            x = p.put(expand(inputs.identifier, batch))
            stats = measure(lambda: p.identify(x), device, throughput_runs, cap(), warmup)
            stats["images_per_s"] = batch / (stats["median_ms"] / 1e3)
            per_image_s[mode] = stats["median_ms"] / 1e3 / batch
            return stats

        return run

    def copy_time() -> dict[str, Any] | None:
        if not cuda:
            return None
        batch = max(batches)
        host = expand(inputs.identifier, batch)
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
