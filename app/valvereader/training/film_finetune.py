"""Fine-tune a shipped identifier's members on real crops plus regions cut from real films.

    python -m valvereader.training.film_finetune --weights weights --regions runs/film_regions \\
        --crops-split docs/evaluation/identifier/split.json --out runs/identifier_rf --epochs 1 --max-lr 2e-4

Each member of the shipped ensemble (``identifier.safetensors``: ``members.{i}.*``) starts from
its shipped weights. An epoch reads every train-split crop (a JPEG copy, as the shipped members
read them) and ``--region-ratio`` × as many regions of real-background train films
(:mod:`valvereader.training.film_regions`; several ``--regions`` folders are read as one
set), drawn without replacement; the recipe's
augmentation, cross-entropy weighted by inverse class frequency with label smoothing, Adam with
a cosine decay from ``--max-lr``. With ``--distill W`` the crops also keep the shipped member's
answers: W × T² × KL(shipped ‖ fine-tuned) at temperature ``--distill-temperature`` T on every
crop of a batch (the shipped member reads the same augmented crop), so that what the regions
teach does not cost the crops. The stem and the first ``--freeze-blocks`` blocks stay as
shipped, and every batch-norm layer keeps its shipped statistics (the pooled features, which the
open-set score reads, stay on the scale they were fitted on). Progress is checkpointed every
``--checkpoint-steps`` steps; a run started again resumes there.

Each member is written as a run folder (``member_{size}/``: model.json, model.safetensors,
split.json) for ``valvereader.training.ensemble``.
"""
from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from pathlib import Path

import numpy as np

REAL = "real_{size}.npy"


def _log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def shipped_members(weights: Path) -> tuple[dict, list[dict]]:
    """(card, per-member state dicts as float32) of a shipped ensemble identifier."""
    from safetensors.torch import load_file

    card = json.loads((weights / "identifier.json").read_text(encoding="utf-8"))
    state = load_file(str(weights / card["files"]["safetensors"]["path"]))
    members = []
    for i in range(len(card["members"])):
        prefix = f"members.{i}."
        members.append({k[len(prefix):]: (v.float() if v.is_floating_point() else v) for k, v in state.items() if k.startswith(prefix)})
    return card, members


def frozen_names(model, freeze_blocks: int) -> list[str]:
    """Parameter names left as shipped: the stem and blocks ``0 .. freeze_blocks - 1``."""
    names = []
    for name, _ in model.named_parameters():
        parts = name.split(".")
        if "_conv_stem" in parts or "_bn0" in parts and "_blocks" not in parts or "_blocks" in parts and int(parts[parts.index("_blocks") + 1]) < freeze_blocks:
            names.append(name)
    return names


def prepare_real(split_json: Path, work: Path, sizes: list[int], class_ids: list[str], part: str = "train",
                 max_side: int = 448, quality: int = 90) -> np.ndarray:
    """The ``part`` crops as the shipped members read them (JPEG copy, longest side ``max_side``,
    then Preprocess), saved once as ``real_{size}.npy`` (+ labels); returns the labels."""
    from ..preprocess import Preprocess
    from .composites import copy_crop, load_grey

    labels_path = work / f"real_{part}_labels.npy"
    if labels_path.is_file() and all((work / f"real_{part}_{s}.npy").is_file() for s in sizes):
        return np.load(labels_path)
    split = json.loads(Path(split_json).read_text(encoding="utf-8"))
    idx = split["split"][part]
    copies = work / "crop_copies"
    images, labels = [], []
    for i in idx:
        source = Path(split["paths"][i])
        target = copies / source.parent.name / (source.stem + ".jpg")
        if not target.is_file():
            copy_crop(source, target, max_side, quality)
        images.append(load_grey(target))
        labels.append(class_ids.index(split["labels"][i]))
    for size in sizes:
        pre = Preprocess(size, 0.02, True)
        np.save(work / f"real_{part}_{size}.npy", np.stack([np.round(pre(img).pixels * 255).astype(np.uint8) for img in images]))
    np.save(labels_path, np.asarray(labels, np.int64))
    return np.asarray(labels, np.int64)


def read_regions(folders: list[Path], size: int) -> tuple[np.ndarray, np.ndarray]:
    """(regions (N, size, size) uint8, labels (N,)) of ``film_regions`` folders read as one set,
    in the order given; a folder without regions at ``size`` is an error that names it."""
    images, labels = [], []
    for folder in folders:
        path = folder / f"film_regions_{size}.npy"
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: cut the regions at {size} px (film_regions --sizes)")
        meta = json.loads((folder / "film_regions.json").read_text(encoding="utf-8"))
        array = np.load(path)
        if len(array) != len(meta["label"]):
            raise ValueError(f"{folder}: {len(array)} regions but {len(meta['label'])} labels")
        images.append(array)
        labels.append(np.asarray(meta["label"], np.int64))
    return np.concatenate(images), np.concatenate(labels)


def cosine_lr(step: int, total: int, max_lr: float, warmup: int = 5) -> float:
    if step < warmup:
        return max_lr * (step + 1) / warmup
    t = (step - warmup) / max(1, total - warmup)
    return max_lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, t))))


def finetune_member(index: int, state: dict, member: dict, class_ids: list[str], real: np.ndarray, real_labels: np.ndarray,
                    regions: np.ndarray, region_labels: np.ndarray, out: Path, args) -> tuple:
    """Fine-tune member ``index`` (resuming from ``out/checkpoint.pt``). Returns (model, result)."""
    import torch
    from torch import nn

    from ..model.architectures import build_model
    from .augment import Augment, AugmentConfig
    from .train import inverse_frequency_weights

    torch.manual_seed(args.seed + index)
    model = build_model(member["arch"], len(class_ids), pretrained=False)
    model.load_state_dict(state)
    frozen = set(frozen_names(model, args.freeze_blocks))
    for name, param in model.named_parameters():
        param.requires_grad_(name not in frozen)
    trainable = [p for p in model.parameters() if p.requires_grad]
    teacher = None
    if args.distill > 0:  # the shipped member, fixed, for the crops' answers
        teacher = build_model(member["arch"], len(class_ids), pretrained=False)
        teacher.load_state_dict(state)
        teacher.eval().requires_grad_(False)
    optimizer = torch.optim.Adam(trainable, lr=args.max_lr, weight_decay=1e-4)
    weights = inverse_frequency_weights(np.concatenate([real_labels, region_labels]), len(class_ids))
    criterion = nn.CrossEntropyLoss(weight=weights, label_smoothing=0.05)
    augment = Augment(AugmentConfig(max_rotation=90.0, zoom=(0.8, 1.3)), torch.Generator().manual_seed(args.seed + 11 + index))
    per_epoch = min(len(regions), round(args.region_ratio * len(real)))
    rng = np.random.default_rng(args.seed + 5 + index)
    plans = []
    for _ in range(args.epochs):
        picked = rng.choice(len(regions), per_epoch, replace=False)
        items = np.concatenate([np.stack([np.zeros(len(real), np.int64), np.arange(len(real))], 1),
                                np.stack([np.ones(per_epoch, np.int64), picked], 1)])
        plans.append(items[rng.permutation(len(items))])
    steps_per_epoch = len(plans[0]) // args.batch
    total = steps_per_epoch * args.epochs
    checkpoint = out / "checkpoint.pt"
    step, history = 0, []
    if checkpoint.is_file():
        saved = torch.load(checkpoint, weights_only=True)
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        step, history = int(saved["step"]), json.loads(saved["history"])
        if augment.generator is not None:
            augment.generator.manual_seed(args.seed + 11 + index + step)
        _log(f"member {index}: resumed at step {step}/{total}")
    model.train()
    for module in model.modules():  # every batch norm keeps its shipped statistics
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eval()
    began, losses = time.time(), []
    stop = min(total, args.max_steps) if args.max_steps else total
    while step < stop:
        epoch, k = divmod(step, steps_per_epoch)
        chunk = plans[epoch][k * args.batch:(k + 1) * args.batch]
        x = np.stack([real[i] if kind == 0 else regions[i] for kind, i in chunk])
        y = np.asarray([real_labels[i] if kind == 0 else region_labels[i] for kind, i in chunk])
        xt = augment(torch.from_numpy(x).unsqueeze(1).float().div_(255))
        for group in optimizer.param_groups:
            group["lr"] = cosine_lr(step, total, args.max_lr)
        logits, _ = model(xt)
        loss = criterion(logits, torch.from_numpy(y))
        crop_rows = torch.from_numpy(chunk[:, 0] == 0)
        if teacher is not None and bool(crop_rows.any()):
            t = float(args.distill_temperature)
            with torch.no_grad():
                target = torch.softmax(teacher(xt[crop_rows])[0] / t, dim=1)
            kl = nn.functional.kl_div(torch.log_softmax(logits[crop_rows] / t, dim=1), target, reduction="batchmean")
            loss = loss + float(args.distill) * t * t * kl
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        step += 1
        losses.append(float(loss.detach()))
        if step % 10 == 0:
            _log(f"member {index}: step {step}/{total} loss {np.mean(losses[-10:]):.4f} ({(time.time() - began) / len(losses):.2f} s/step)")
        if step % steps_per_epoch == 0:
            history.append({"epoch": step // steps_per_epoch, "loss": float(np.mean(losses)) if losses else None,
                            "seconds": round(time.time() - began, 1)})
        if step % args.checkpoint_steps == 0 or step == stop:
            torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step,
                        "history": json.dumps(history)}, checkpoint)
    if step % steps_per_epoch and (not history or history[-1]["epoch"] < args.epochs):  # stopped inside an epoch
        history.append({"epoch": step / steps_per_epoch, "loss": float(np.mean(losses)) if losses else None,
                        "seconds": round(time.time() - began, 1)})
    model.eval()
    result = {"name": f"member_{member['input_size']}", "arch": member["arch"], "size": int(member["input_size"]),
              "epochs": args.epochs, "epochs_done": len(history), "steps": step, "history": history,
              "train_real": len(real), "train_regions": len(regions), "per_epoch_regions": per_epoch,
              "optimiser": {"batch": args.batch, "max_lr": args.max_lr, "pct_start": 0.0, "weight_decay": 1e-4,
                            "label_smoothing": 0.05, "seed": args.seed},
              "augment": augment.config.as_dict(), "amp": "none", "seconds": round(sum(h["seconds"] for h in history), 1),
              "metrics": {}, "frozen": f"stem and blocks 0-{args.freeze_blocks - 1}; batch-norm statistics as shipped",
              "distill": {"weight": args.distill, "temperature": args.distill_temperature} if args.distill > 0 else None}
    return model, result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m valvereader.training.film_finetune", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", type=Path, default=Path("weights"), help="the shipped identifier's folder")
    parser.add_argument("--regions", type=Path, nargs="+", required=True,
                        help="film_regions folders (train part), read as one set")
    parser.add_argument("--crops-split", type=Path, required=True, help="the identifier's split.json")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--max-lr", type=float, default=2e-4)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--region-ratio", type=float, default=1.0)
    parser.add_argument("--freeze-blocks", type=int, default=8)
    parser.add_argument("--distill", type=float, default=0.0, help="weight of the shipped member's answers on the crops (0: none)")
    parser.add_argument("--distill-temperature", type=float, default=2.0)
    parser.add_argument("--checkpoint-steps", type=int, default=10)
    parser.add_argument("--max-steps", type=int, default=0,
                        help="end a member at this step of its plan (the learning rate as the plan has it there)")
    parser.add_argument("--members", default="", help="comma-separated member indices (default: all)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    import torch

    from .members import write_member_run

    card, states = shipped_members(args.weights)
    class_ids = list(card["class_ids"])
    split_doc = json.loads(args.crops_split.read_text(encoding="utf-8"))
    metas = [json.loads((folder / "film_regions.json").read_text(encoding="utf-8")) for folder in args.regions]
    meta = metas[0]
    sizes = sorted({int(m["input_size"]) for m in card["members"]})
    args.out.mkdir(parents=True, exist_ok=True)
    real_labels = prepare_real(args.crops_split, args.out, sizes, class_ids)
    chosen = [int(i) for i in args.members.split(",")] if args.members else range(len(card["members"]))
    recipe = {"composites": {"per_crop": 0, "seed": meta["seed"], "shape": [0, 0]}}  # a fine-tune, not a recipe's run
    for index in chosen:
        member = card["members"][index]
        size = int(member["input_size"])
        folder = args.out / f"member_{size}"
        if (folder / "model.safetensors").is_file():
            _log(f"member {index}: done already ({folder})")
            continue
        folder.mkdir(parents=True, exist_ok=True)
        real = np.load(args.out / f"real_train_{size}.npy")
        regions, region_labels = read_regions(args.regions, size)
        model, result = finetune_member(index, states[index], member, class_ids, real, real_labels, regions, region_labels, folder, args)
        hardware = f"CPU ({platform.processor() or platform.machine()}), torch {torch.__version__}, {torch.get_num_threads()} threads"
        write_member_run(folder, model, result, recipe, split_doc, class_ids, hardware)
        extra = json.loads((folder / "model.json").read_text(encoding="utf-8"))
        start = f"member {index} of identifier {card['version']}"
        extra["training_data"]["regions"] = "film regions"
        extra["training_data"]["starting_point"] = start
        extra["training_data"]["composites"] = (
            f"starting point: {start} (weights/identifier.safetensors); regions of real "
            f"skull radiographs (train-split backgrounds) with train-split crops blended in: {len(regions)} regions "
            f"({' + '.join(str(m['per_background']) for m in metas)} films per background, the true box and a jittered box squared at crop_scale "
            f"{meta['crop_scale']:g}), {result['per_epoch_regions']} per epoch; {result['frozen']}"
            + (f"; the crops distilled from the shipped member (weight {args.distill:g}, temperature {args.distill_temperature:g})"
               if args.distill > 0 else ""))
        (folder / "model.json").write_text(json.dumps(extra, indent=1), encoding="utf-8")
        _log(f"member {index} written to {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
