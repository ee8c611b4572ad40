"""The GPU benchmark's report (``benchmarks/gpu.py``): the machine it ran on and the results
as Markdown tables."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

import torch
from gpu_models import TOP1_MARGIN


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
