"""The program on a GPU: a film and a batch through ``Predictor``, side by side.

Usage (on a machine with CUDA, from the repository root):
    PYTHONPATH=app python benchmarks/gpu_program.py --out gpu_program.json [--weights weights]
        [--device cuda] [--crops DIR] [--batch 200] [--repeat 10]

``benchmarks/gpu.py`` times the bare networks; this times what the program does with them, as
``benchmarks/run.py`` does on the CPU, with the networks on ``--device`` (torch runtime):

- one 2000 × 2500 DICOM, opened → valve, verdict and heatmap (``Predictor.predict``), against the
  bare network runs that prediction makes, timed interleaved, with the backend's CUDA graphs and
  without them; the same film on the CPU (torch) for the side-by-side row;
- a batch of ``--batch`` 1280 × 1024 DICOMs: the network runs alone, and ``predict_many`` with its
  default streams and with ``--streams`` streams;
- agreement: every file of the batch, the film and the bundled samples, predicted on the device
  and on the CPU: same valve, same verdict, max |Δ probability|, max relative Δ open-set score.

The synthetic radiographs are those of ``benchmarks/run.py`` with real crops pasted in (``--crops``:
a folder of PNG/JPEG crops, default the shared dataset's). Weights: a folder as shipped. Where
the card's view-choice statistics (``identifier.openset_view.safetensors``) did not travel
to the device, a copy of the card without ``view_choice.score`` is used: that score only ranks the
two views of an image without a whole-radiograph field of view; every timed file is a whole
radiograph (0.139 mm pixels), read through its located square alone, so its result is the same.
The JSON says which.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import run as cpu_bench  # benchmarks/run.py: the same test files, timers and network runs
from run import network_inputs, run_networks


def lean_weights(folder: Path, work: Path) -> tuple[Path, str]:
    """``folder`` itself, or a copy whose card drops a view-choice score whose file is absent."""
    card = json.loads((folder / "identifier.json").read_text(encoding="utf-8"))
    spec = (card.get("view_choice") or {}).get("score")
    entry = (card.get("files") or {}).get(str((spec or {}).get("role", "view_score")))
    if not spec or not entry or (folder / entry["path"]).exists():
        return folder, "the weights as shipped"
    lean = work / "weights"
    lean.mkdir()
    for path in folder.iterdir():
        if path.is_file() and path.name != "identifier.json":
            os.symlink(path.resolve(), lean / path.name)
    del card["view_choice"]["score"]
    del card["files"][str(spec.get("role", "view_score"))]
    (lean / "identifier.json").write_text(json.dumps(card, indent=1), encoding="utf-8")
    return lean, (f"the shipped card without view_choice.score ({entry['path']} did not travel); it only ranks "
                  "the two views of a file without a whole-radiograph field of view, and every timed file is a whole radiograph")


def machine(device: str) -> dict:
    import torch

    info = {"python": platform.python_version(), "platform": platform.platform(), "cpu_count": os.cpu_count(),
            "cores_usable": len(os.sched_getaffinity(0)), "torch": torch.__version__, "torch_threads": torch.get_num_threads()}
    if device.startswith("cuda") and torch.cuda.is_available():
        info["device_name"] = torch.cuda.get_device_name(0)
        info["cuda"] = torch.version.cuda
    return info


def compare(a, b) -> dict:
    return {"same_valve": a.predicted == b.predicted, "same_verdict": a.verdict == b.verdict,
            "max_abs_prob_diff": float(np.max(np.abs(np.asarray(a.probabilities) - np.asarray(b.probabilities)))),
            "ood_rel_diff": (abs(a.ood_score - b.ood_score) / max(abs(b.ood_score), 1e-9)
                             if a.ood_score is not None and b.ood_score is not None else None),
            "same_box": a.box == b.box}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", type=Path, default=ROOT / "weights")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--crops", type=Path, help="folder of crops to paste into the test films (default: the shared dataset)")
    parser.add_argument("--samples", type=Path, default=ROOT / "resources" / "samples")
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--streams", type=int, nargs="*", default=[1, 3], help="predict_many streams to time besides the default")
    args = parser.parse_args()
    started = time.perf_counter()

    from valvereader.inference.predictor import load_predictor
    from valvereader.io import load

    work = Path(tempfile.mkdtemp(prefix="vr-gpu-program-"))
    weights, weights_note = lean_weights(args.weights, work)
    result: dict = {"schema": 1, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "device": args.device,
                    "machine": machine(args.device), "weights": weights_note,
                    "crops_pasted": len(cpu_bench.real_crops(50, args.crops))}
    t0 = time.perf_counter()
    gpu = load_predictor(weights, device=args.device, runtime="torch")
    result["model_load_s"] = time.perf_counter() - t0
    cpu = load_predictor(weights, device="cpu", runtime="torch")
    eager = load_predictor(weights, device=args.device, runtime="torch")  # the networks without CUDA graphs
    for backend in (eager._identifier, eager._locator):
        if backend is not None:
            backend.graphs = False
    result["cuda_graphs"] = bool(getattr(gpu._identifier, "graphs", False))
    result["model"] = f"{gpu.model_name} ({gpu.pipeline}, mirror {gpu.mirror})"

    # 1. one 2000 × 2500 film
    (work / "big").mkdir()
    big = cpu_bench.make_files(work / "big", 1, (2500, 2000), seed=1, crops_from=args.crops)[0]
    film = load(big)
    inputs = network_inputs(gpu, film)
    t0 = time.perf_counter()
    gpu.predict(load(big), with_heatmap=True, heatmap_max_side=1024)
    result["film_first_prediction_s"] = time.perf_counter() - t0  # CUDA kernels chosen, memory allocated
    eager.predict(load(big), with_heatmap=True, heatmap_max_side=1024)
    forward, end, cpu_end, forward_eager, end_eager = [], [], [], [], []
    for _ in range(3 * args.repeat):
        forward += cpu_bench.timed(lambda: run_networks(gpu, inputs), 1)
        end += cpu_bench.timed(lambda: gpu.predict(load(big), with_heatmap=True, heatmap_max_side=1024), 1)
        forward_eager += cpu_bench.timed(lambda: run_networks(eager, inputs), 1)
        end_eager += cpu_bench.timed(lambda: eager.predict(load(big), with_heatmap=True, heatmap_max_side=1024), 1)
    for _ in range(max(3, args.repeat // 2)):
        cpu_end += cpu_bench.timed(lambda: cpu.predict(load(big), with_heatmap=True, heatmap_max_side=1024), 1)
    load_times = cpu_bench.timed(lambda: load(big), args.repeat)
    ratios = [e / f for e, f in zip(end, forward)]
    result["film"] = {"forward_ms": 1000 * statistics.median(forward), "end_to_end_ms": 1000 * statistics.median(end),
                      "ratio": statistics.median(end) / statistics.median(forward),
                      "paired_ratio_quartiles": statistics.quantiles(ratios, n=4),
                      "load_ms": 1000 * statistics.median(load_times),
                      "cpu_torch_end_to_end_ms": 1000 * statistics.median(cpu_end),
                      "without_graphs": {"forward_ms": 1000 * statistics.median(forward_eager),
                                         "end_to_end_ms": 1000 * statistics.median(end_eager)},
                      "network_runs": int(inputs[0] is not None) + len(inputs[1])}

    # 2. batch
    (work / "batch").mkdir()
    files = cpu_bench.make_files(work / "batch", args.batch, (1280, 1024), seed=2, crops_from=args.crops)
    tensors = [network_inputs(gpu, load(f)) for f in files[: min(20, len(files))]]

    def model_only(owner=gpu) -> None:
        for i in range(len(files)):
            run_networks(owner, tensors[i % len(tensors)])

    def through(streams: int | None = None, owner=gpu) -> None:
        for _, _, outcome in owner.predict_many(files, with_heatmap=False, streams=streams):
            if isinstance(outcome, Exception):
                raise outcome

    default_streams = gpu._default_streams()
    ways = {"model_only": model_only, "default": through,
            "model_only_without_graphs": lambda: model_only(eager), "default_without_graphs": lambda: through(None, eager)}
    for streams in args.streams:
        ways[f"streams_{streams}"] = lambda streams=streams: through(streams)
    rounds: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(3):
        for name, way in ways.items():
            rounds[name] += cpu_bench.timed(way, 1)
    rate = {k: len(files) / statistics.median(v) for k, v in rounds.items()}
    result["batch"] = {"files": len(files), "shape": [1024, 1280], "images_per_s": rate,
                       "rounds_s": rounds, "default_streams": default_streams,
                       "fraction_of_model_only": {k: rate[k] / rate["model_only"] for k in rate if k != "model_only"}}
    result["batch"]["default_without_graphs_of_model_only_without_graphs"] = rate["default_without_graphs"] / rate["model_only_without_graphs"]

    # 3. agreement, device against CPU, through the whole program
    agree_files = [big] + files[:40] + sorted(args.samples.glob("*.dcm"))
    rows = []
    for path in agree_files:
        try:
            radiograph = load(path)
        except Exception as exc:  # noqa: BLE001 - a sample this machine cannot decode is reported
            rows.append({"file": path.name, "error": f"{type(exc).__name__}: {exc}"})
            continue
        on_gpu = gpu.predict(radiograph, with_heatmap=True)
        row = compare(on_gpu, cpu.predict(radiograph, with_heatmap=True))
        rows.append({"file": path.name, **row, "against_without_graphs": compare(on_gpu, eager.predict(radiograph, with_heatmap=True))})
    compared = [r for r in rows if "error" not in r]
    result["agreement"] = {
        "files": len(compared), "unreadable": [r for r in rows if "error" in r],
        "same_valve": sum(r["same_valve"] for r in compared), "same_verdict": sum(r["same_verdict"] for r in compared),
        "same_box": sum(r["same_box"] for r in compared),
        "max_abs_prob_diff": max((r["max_abs_prob_diff"] for r in compared), default=None),
        "max_ood_rel_diff": max((r["ood_rel_diff"] for r in compared if r["ood_rel_diff"] is not None), default=None),
        "graphs_against_without": {
            "same_valve": sum(r["against_without_graphs"]["same_valve"] for r in compared),
            "same_verdict": sum(r["against_without_graphs"]["same_verdict"] for r in compared),
            "same_box": sum(r["against_without_graphs"]["same_box"] for r in compared),
            "max_abs_prob_diff": max((r["against_without_graphs"]["max_abs_prob_diff"] for r in compared), default=None)},
        "rows": rows}
    result["seconds"] = time.perf_counter() - started
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1), encoding="utf-8")
    f, b, a = result["film"], result["batch"], result["agreement"]
    print(f"film: forward {f['forward_ms']:.1f} ms, open → result {f['end_to_end_ms']:.1f} ms ({f['ratio']:.2f} ×), "
          f"without graphs {f['without_graphs']['forward_ms']:.1f} / {f['without_graphs']['end_to_end_ms']:.1f} ms, "
          f"CPU torch {f['cpu_torch_end_to_end_ms']:.0f} ms; batch {b['images_per_s']}; "
          f"agreement {a['same_valve']}/{a['files']} valves, {a['same_verdict']}/{a['files']} verdicts, "
          f"max |Δp| {a['max_abs_prob_diff']}; graphs against without {a['graphs_against_without']}; {result['seconds']:.0f} s")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
