"""Fine-tune the shipped identifier (runs/identifier) on real train-split crops PLUS the valve
regions of the synthetic radiographs in runs/locator/data_train (composites of train/validation
crops, and rendered phantoms; catalogue valve ids only, unknown_* skipped).

The region of a synthetic radiograph is what the program classifies at inference: the
ground-truth box made square, scaled by the locator's crop_scale (1.25), min 32 px, clipped,
then Preprocess(320). Validation = the identifier's validation crops + data_val regions.
The real test crops (runs/identifier/split.json) and runs/locator/data_test are never used.

    python scripts/finetune_composites.py [--epochs 2] [--max-lr 3e-4] [--threads 2]
"""
from __future__ import annotations

import argparse
import csv
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

from valvereader.catalogue import VALVE_IDS
from valvereader.geometry import Box
from valvereader.io import load
from valvereader.preprocess import Preprocess
from valvereader.training.datasets import label_indices, prepare_all, read_samples
from valvereader.training.train import TrainConfig, save_model, train_model

ROOT = Path(__file__).resolve().parent.parent


def regions(csv_path: Path, preprocess: Preprocess, scale: float, cache: Path) -> tuple[np.ndarray, list[str], list[str]]:
    """Prepared ground-truth regions of the catalogue valves in a phantom ground-truth CSV."""
    with csv_path.open(newline="", encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle) if (r.get("valve_id") or "").strip() in VALVE_IDS
                and all(r.get(k) not in ("", None) for k in ("box_x0", "box_y0", "box_x1", "box_y1"))]
    if cache.is_file():
        data = np.load(cache)
        if len(data) == len(rows):
            return data, [r["valve_id"].strip() for r in rows], [r["kind"] for r in rows]
    out = np.empty((len(rows), preprocess.size, preprocess.size), dtype=np.float32)
    for i, row in enumerate(rows):
        radiograph = load(csv_path.parent / row["file"])
        box = Box(*(round(float(row[k])) for k in ("box_x0", "box_y0", "box_x1", "box_y1")))
        region = box.square(scale, minimum=32).clip(radiograph.shape)
        out[i] = preprocess(radiograph.pixels, region).pixels
        if i % 100 == 0:
            print(f"{csv_path.parent.name}: {i}/{len(rows)}", file=sys.stderr, flush=True)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.save(cache, out)
    return out, [r["valve_id"].strip() for r in rows], [r["kind"] for r in rows]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base", type=Path, default=ROOT / "runs/identifier")
    parser.add_argument("--out", type=Path, default=ROOT / "runs/identifier_ft")
    parser.add_argument("--train-truth", type=Path, default=ROOT / "runs/locator/data_train/ground_truth.csv")
    parser.add_argument("--val-truth", type=Path, default=ROOT / "runs/locator/data_val/ground_truth.csv")
    parser.add_argument("--crop-scale", type=float, default=1.25)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--max-lr", type=float, default=3e-4)
    parser.add_argument("--pct-start", type=float, default=0.2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--real-crops", type=int, default=0,
                        help="train on a random subset of this many real train-split crops (0 = all); for a CPU budget")
    parser.add_argument("--prepare-only", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    began = time.time()
    base_card = json.loads((args.base / "model.json").read_text(encoding="utf-8"))
    split_doc = json.loads((args.base / "split.json").read_text(encoding="utf-8"))
    size = int(base_card["input_size"])
    pre = base_card["preprocessing"]
    preprocess = Preprocess(size, pre["threshold"], pre["crop_border"])
    # Real crops, in the base run's order (its cache is reused).
    crops = [s for source in split_doc["sources"] for s in read_samples(source)]
    if [str(s.path) for s in crops] != split_doc["paths"]:
        print("error: the real crops differ from runs/identifier/split.json", file=sys.stderr)
        return 2
    crop_images = np.asarray(prepare_all(crops, preprocess, ROOT / "runs/cache"))
    crop_labels = label_indices(crops, VALVE_IDS)
    split = split_doc["split"]
    tr_img, tr_lab, tr_kind = regions(args.train_truth, preprocess, args.crop_scale, args.out / "regions_train.npy")
    va_img, va_lab, va_kind = regions(args.val_truth, preprocess, args.crop_scale, args.out / "regions_val.npy")
    print(f"regions: train {len(tr_lab)} ({tr_kind.count('composite')} composites), validation {len(va_lab)} "
          f"({va_kind.count('composite')} composites); {time.time() - began:.0f} s", file=sys.stderr)
    if args.prepare_only:
        return 0
    images = np.concatenate([crop_images, tr_img, va_img])
    index = {c: i for i, c in enumerate(VALVE_IDS)}
    labels = np.concatenate([crop_labels, [index[v] for v in tr_lab], [index[v] for v in va_lab]]).astype(np.int64)
    n0, n1 = len(crop_images), len(crop_images) + len(tr_lab)
    real_train = np.asarray(split["train"])
    if 0 < args.real_crops < len(real_train):
        real_train = np.sort(np.random.default_rng(0).choice(real_train, args.real_crops, replace=False))
    train_idx = np.concatenate([real_train, np.arange(n0, n1)])
    val_idx = np.concatenate([np.asarray(split["validation"]), np.arange(n1, len(images))])
    config = TrainConfig.from_dict(base_card["config"])
    config.epochs, config.max_lr, config.pct_start = args.epochs, args.max_lr, args.pct_start
    config.pretrained, config.init_from = False, str(args.base / "model.safetensors")
    # Open-set statistics and test metrics (valvereader evaluate) use the real-crop split of the base run.
    args.out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(args.base / "split.json", args.out / "split.json")
    model, history = train_model(config, images, labels, train_idx, val_idx, args.out, VALVE_IDS, progress=False)
    card = dict(base_card)
    card.update({
        "config": config.as_dict(),
        "data": list(split_doc["sources"]),
        "finetune_data": {"real_crops_train": int(len(real_train)), "synthetic_regions_train": len(tr_lab),
                          "synthetic_train_source": str(args.train_truth), "synthetic_validation_source": str(args.val_truth),
                          "synthetic_regions_validation": len(va_lab), "crop_scale": args.crop_scale},
        "split": str(args.out / "split.json"),
        "history": [vars(r) for r in history],
        "duration_s": round(time.time() - began, 1),
        "hardware": f"CPU, torch {torch.__version__}, {torch.get_num_threads()} threads",
    })
    print(f"model written to {save_model(args.out, model, card)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
