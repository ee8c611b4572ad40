"""Turn what a GPU session (scripts/gpu_session.py) returned into run folders the CPU tools read.

    python scripts/gpu_import.py --results DIR [--runs runs]

For each saved identifier (``identifier_<name>.fp16.safetensors``) it writes
``runs/gpu_<name>/`` with ``model.safetensors`` (fp32), ``model.json`` and ``split.json`` (the
split the session used: runs/identifier/split.json), so that ``valvereader evaluate --run`` and
``python -m valvereader.training.ship`` work on it as on a CPU run. The locator becomes
``runs/gpu_locator/`` with ``locator.{onnx,safetensors,json}`` (via the locator's own
``write_card``, which checks ONNX against torch).
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--results", type=Path, required=True)
    parser.add_argument("--runs", type=Path, default=ROOT / "runs")
    parser.add_argument("--split", type=Path, default=ROOT / "runs/identifier/split.json")
    args = parser.parse_args()
    import torch
    from safetensors.torch import load_file, save_file

    from valvereader.catalogue import VALVE_IDS

    summary = json.loads((args.results / "results.json").read_text(encoding="utf-8"))
    env = summary["environment"]
    session = summary.get("args", {})  # the session's command-line settings (recorded since 2026-11-26)
    hardware = f"{env.get('gpu') or 'CPU'}, torch {env.get('torch')}"
    per_crop = session.get("per_crop", 2)
    # Sessions before region_squares was recorded squared both regions x1.25.
    squares = summary.get("data", {}).get("region_squares", {"true_box": 1.25, "jittered_box": [1.25, 1.25]})
    low, high = squares["jittered_box"]
    jitter_scale = f"{low:g}" if low == high else f"{low:g}-{high:g} (uniform)"
    for path in sorted(args.results.glob("identifier_*.fp16.safetensors")):
        name = path.name[len("identifier_"):-len(".fp16.safetensors")]
        result = summary["results"][name]
        run = args.runs / f"gpu_{name}"
        run.mkdir(parents=True, exist_ok=True)
        save_file({k: (v.float() if v.is_floating_point() else v).contiguous() for k, v in load_file(str(path)).items()},
                  str(run / "model.safetensors"))
        shutil.copyfile(args.split, run / "split.json")
        split_doc = json.loads(args.split.read_text(encoding="utf-8"))
        size = int(result["size"])
        # Sessions before --backbone was recorded trained Lite0 only.
        arch = result.get("backbone") or session.get("backbone") or "efficientnet_lite0"
        config = {"arch": arch, "input_size": size, "epochs": result["epochs_done"],
                  "batch_size": result["recipe"]["batch"], "accumulate_to": result["recipe"]["batch"],
                  "max_lr": result["recipe"]["max_lr"], "pct_start": result["recipe"]["pct_start"],
                  "weight_decay": result["recipe"]["weight_decay"], "class_weighting": "inverse",
                  "balanced_sampling": False, "label_smoothing": result["recipe"]["label_smoothing"],
                  "seed": result["recipe"]["seed"], "pretrained": True, "amp": result.get("amp", "none") != "none",
                  "augment": result["augment"], "initialised_from": session.get("init_from")}
        card = {
            "arch": arch, "input_size": size, "class_ids": list(VALVE_IDS),
            "preprocessing": {"size": size, "threshold": 0.02, "crop_border": True},
            "config": config, "data": list(split_doc["sources"]), "split": str(run / "split.json"),
            "history": [{"epoch": h["epoch"], "train_loss": h.get("loss"), "validation_loss": None, "validation_accuracy": None,
                         "validation_macro_f1": None, "learning_rate": None, "seconds": h["seconds"]} for h in result["history"]],
            "duration_s": result["seconds"], "hardware": hardware,
            "training_data": {
                "real_crops_train": result["train_real"], "composite_regions_train": result["train_regions"],
                "composite_regions_per_epoch": result["per_epoch_regions"],
                "composites": f"every train-split crop pasted {per_crop} times into 1024x1280 phantom radiographs "
                              "(valvereader.phantoms, written as DICOM and read back; seed "
                              f"{session.get('seed', 'not recorded')}); region = the true box made square x{squares['true_box']:g}, "
                              "or a jittered box (centre +-8 %, scale x exp(N(0, 0.12))) made square x"
                              f"{jitter_scale}, then Preprocess"
                              + ("; plus the same two regions of every rendered phantom of a catalogue valve "
                                 f"({summary.get('data', {}).get('phantom_regions', '?')} regions; drawings of the catalogue's "
                                 "geometry, valvereader.phantoms)" if session.get("phantom_regions") else ""),
                "script": "scripts/gpu_session.py", "epochs_planned": result["epochs_planned"],
                "stopped_early": result["stopped_early"],
            },
            "session_metrics": result.get("metrics", {}),
        }
        (run / "model.json").write_text(json.dumps(card, indent=1), encoding="utf-8")
        print(f"{run}: {name} at {size} px, {result['epochs_done']} epochs", file=sys.stderr)
    locator_file = args.results / "locator_best.fp16.safetensors"
    if locator_file.exists():
        from valvereader.model.locator_net import LocatorNet
        from valvereader.training.locator import BACKBONE_ATTRIBUTION, DATA_ATTRIBUTION, LocatorConfig, write_card

        result = summary["results"]["locator"]
        model = LocatorNet(pretrained=False)
        model.load_state_dict({k: v.float() for k, v in load_file(str(locator_file)).items()})
        config = LocatorConfig(input_size=int(result["input_size"]), epochs=int(result["epochs_done"]), batch_size=32,
                               lr=float(result["lr"]), variants=1, threads=0)
        extra = {
            "thresholds": {"min_score": float(result.get("min_score", 0.1))},
            "crop_scale": 1.25,
            "data": {"train_images": result["train"], "validation_images": result["validation"],
                     "source": "composites of train-split crops + rendered phantoms (catalogue and unknown designs), "
                               "1024x1280, scripts/gpu_session.py; composites of test-split crops held out"},
            "data_attribution": DATA_ATTRIBUTION,
            "initialisation": BACKBONE_ATTRIBUTION,
            "licence": "Weights: CC BY 4.0 (trained on composites of the CC BY 4.0 csf-shuntvalves crops; credit as in data_attribution).",
            "training_hardware": hardware,
        }
        metrics = {"training_history": result["history"], "validation": result.get("validation"),
                   "session_test_composites": result.get("test_composites")}
        torch.set_num_threads(2)
        print(write_card(args.runs / "gpu_locator", model, config, metrics, extra), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
