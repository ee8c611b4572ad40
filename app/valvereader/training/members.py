"""Train one identifier network (a member of the shipped ensemble) on real crops + composite regions.

The loop of the shipped identifier's members: each epoch reads every train-split crop and
``region_ratio`` × as many composite regions drawn without replacement from the pool
(``composites.prepare``); Adam, one-cycle cosine learning rate, cross-entropy weighted by inverse
class frequency with label smoothing, the recipe's augmentation on the batch's device; bf16
autocast on CUDA; every batch full (an epoch's remainder waits for the next epoch), so that no
run meets a new batch shape. Validation crops and the validation composites' true-box regions
are read at the end; the test split is left to ``valvereader evaluate``.

The result is a run folder (``model.safetensors``, ``model.json``, ``split.json``) that
``valvereader.training.ensemble``, ``valvereader evaluate`` and the ship step read like any run.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from .composites import REGION_SQUARES


def _log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def regions_per_epoch(real: int, pool: int, ratio: float) -> int:
    """Composite regions an epoch draws (without replacement): ``ratio`` × the real crops, at
    most the whole pool."""
    return min(pool, round(max(0.0, ratio) * real))


def member_items(meta: dict, phantom_regions: bool = False) -> dict[str, np.ndarray]:
    """Indices a member trains and is validated on: real crops by split part; composite regions
    made from train-split crops (plus catalogue phantoms' regions when asked); the true-box
    regions (variant 0) of composites made from validation-split crops."""
    split = np.asarray(meta["split"])
    src = np.asarray(meta["region_source"], dtype=np.int64)
    var = np.asarray(meta["region_variant"], dtype=np.int64)
    kinds = np.asarray(meta.get("region_kind") or ["composite"] * len(src))
    real_train, real_val = np.flatnonzero(split == "train"), np.flatnonzero(split == "validation")
    train_regions = np.flatnonzero(np.isin(src, real_train))
    if phantom_regions:
        train_regions = np.concatenate([train_regions, np.flatnonzero(src < 0)])
    val_regions = np.flatnonzero(np.isin(src, real_val) & (var == 0) & (kinds == "composite"))
    return {"train_real": real_train, "train_regions": train_regions, "val_real": real_val, "val_regions": val_regions}


def train_member(member: dict, recipe: dict, work: Path, class_ids: list[str], device: str, max_steps: int | None = None):
    """Train the member ``member`` (``arch``, ``input_size``, ``epochs``, optional overrides of the
    recipe's ``optimiser``) on the data prepared in ``work``. Returns (model on the CPU, result)."""
    import torch
    from torch import nn

    from ..model.architectures import build_model
    from .augment import Augment, AugmentConfig
    from .train import inverse_frequency_weights, macro_f1, one_cycle_lr

    opt = {**recipe["optimiser"], **member.get("optimiser", {})}
    torch_device = torch.device(device)
    torch.manual_seed(opt["seed"])
    size = int(member["input_size"])
    real = np.load(work / f"real_{size}.npy", mmap_mode="r")
    regions = np.load(work / f"regions_{size}.npy", mmap_mode="r")
    meta = json.loads((work / "meta.json").read_text(encoding="utf-8"))
    labels = np.asarray(meta["labels"], dtype=np.int64)
    region_lab = np.asarray(meta["region_label"], dtype=np.int64)
    items_of = member_items(meta, bool(recipe.get("phantom_regions", False)))
    train_real, train_reg = items_of["train_real"], items_of["train_regions"]
    num_classes = len(class_ids)
    model = build_model(member["arch"], num_classes, pretrained=bool(recipe.get("pretrained", True)))
    model = model.to(torch_device).to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=opt["max_lr"], weight_decay=opt["weight_decay"])
    weights = inverse_frequency_weights(np.concatenate([labels[train_real], region_lab[train_reg]]), num_classes)
    criterion = nn.CrossEntropyLoss(weight=weights.to(torch_device), label_smoothing=opt["label_smoothing"])
    augment_config = AugmentConfig(**{k: tuple(v) if k == "zoom" else v  # type: ignore[arg-type]  # the recipe's JSON
                                      for k, v in recipe.get("augment", {}).items()})
    augment = Augment(augment_config, torch.Generator().manual_seed(opt["seed"] + 11))
    per_epoch_regions = regions_per_epoch(len(train_real), len(train_reg), opt.get("region_ratio", 1.0))
    batch = int(opt["batch"])
    epochs = int(member["epochs"])
    steps_per_epoch = max(1, (len(train_real) + per_epoch_regions) // batch)
    total = steps_per_epoch * epochs
    amp = torch_device.type == "cuda"
    rng = np.random.default_rng(opt["seed"] + 5)
    history, step, began_all = [], 0, time.time()
    for epoch in range(epochs):
        began = time.time()
        model.train()
        picked = rng.choice(train_reg, per_epoch_regions, replace=False) if per_epoch_regions else np.zeros(0, np.int64)
        items = np.concatenate([np.stack([np.zeros(len(train_real), np.int64), train_real], 1),
                                np.stack([np.ones(len(picked), np.int64), picked], 1)])
        items = items[rng.permutation(len(items))]
        losses = []
        for start in range(0, len(items), batch):
            chunk = items[start:start + batch]
            if len(chunk) < 2 or (len(chunk) < batch and start > 0):
                continue
            if max_steps is not None and step >= max_steps:
                break
            r_idx = np.sort(chunk[chunk[:, 0] == 0, 1])
            g_idx = np.sort(chunk[chunk[:, 0] == 1, 1])
            x = np.concatenate([real[r_idx], regions[g_idx]]) if len(g_idx) else np.asarray(real[r_idx])
            y = np.concatenate([labels[r_idx], region_lab[g_idx]])
            xt = torch.from_numpy(x).to(torch_device, non_blocking=True).unsqueeze(1).float().div_(255)
            xt = augment(xt).contiguous(memory_format=torch.channels_last)
            yt = torch.from_numpy(y).to(torch_device)
            for group in optimizer.param_groups:
                group["lr"] = one_cycle_lr(step, total, opt["max_lr"], opt["pct_start"])
            with torch.autocast(torch_device.type, dtype=torch.bfloat16, enabled=amp):
                logits, _ = model(xt)
            loss = criterion(logits.float(), yt)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            losses.append(float(loss.detach()))
        history.append({"epoch": epoch + 1, "loss": float(np.mean(losses)) if losses else None, "seconds": round(time.time() - began, 2)})
        _log(f"{member['name']}: epoch {epoch + 1}/{epochs} loss {history[-1]['loss']} ({history[-1]['seconds']:.1f} s)")
        if max_steps is not None and step >= max_steps:
            break
    model.eval()
    metrics = {}
    for key, array, lab in (("val_real", real, labels), ("val_regions", regions, region_lab)):
        idx = items_of[key]
        if len(idx):
            logits = _logits(model, array, idx, torch_device, amp)
            pred, true = logits.argmax(1), lab[idx]
            metrics[key] = {"n": len(idx), "accuracy": float(np.mean(pred == true)), "macro_f1": macro_f1(true, pred, num_classes)}
    result = {"name": member["name"], "arch": member["arch"], "size": size, "epochs": epochs, "epochs_done": len(history),
              "steps": step, "history": history, "train_real": len(train_real), "train_regions": len(train_reg),
              "per_epoch_regions": per_epoch_regions, "optimiser": opt, "augment": augment_config.as_dict(),
              "amp": "bf16" if amp else "none", "seconds": round(time.time() - began_all, 1), "metrics": metrics}
    return model.cpu(), result


def _logits(model, array, idx: np.ndarray, device, amp: bool) -> np.ndarray:
    import torch

    out = []
    with torch.no_grad():
        for s in range(0, len(idx), 128):
            part = np.asarray(idx[s:s + 128])
            xt = torch.from_numpy(np.asarray(array[part])).to(device).unsqueeze(1).float().div_(255)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                logits, _ = model(xt.contiguous(memory_format=torch.channels_last))
            out.append(logits.float().cpu().numpy())
    return np.concatenate(out)


def write_member_run(folder: Path, model, result: dict, recipe: dict, split_doc: dict, class_ids: list[str], hardware: str) -> Path:
    """The member as a run folder. The weights are rounded to half precision and stored as fp32,
    as the shipped members were."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    state = {k: (v.detach().cpu().half().float() if v.is_floating_point() else v.detach().cpu()).contiguous()
             for k, v in model.state_dict().items()}
    save_file(state, str(folder / "model.safetensors"))
    (folder / "split.json").write_text(json.dumps(split_doc), encoding="utf-8")
    opt, comp = result["optimiser"], recipe["composites"]
    squares = {**REGION_SQUARES, **recipe.get("region_squares", {})}
    low, high = squares["jittered_box"]
    config = {"arch": result["arch"], "input_size": result["size"], "epochs": result["epochs_done"],
              "batch_size": opt["batch"], "accumulate_to": opt["batch"], "max_lr": opt["max_lr"], "pct_start": opt["pct_start"],
              "weight_decay": opt["weight_decay"], "class_weighting": "inverse", "balanced_sampling": False,
              "label_smoothing": opt["label_smoothing"], "seed": opt["seed"], "pretrained": bool(recipe.get("pretrained", True)),
              "amp": result["amp"] != "none", "augment": result["augment"]}
    card = {
        "arch": result["arch"], "input_size": result["size"], "class_ids": list(class_ids),
        "preprocessing": {"size": result["size"], "threshold": 0.02, "crop_border": True},
        "config": config, "data": list(split_doc["sources"]), "split": str(folder / "split.json"),
        "history": [{"epoch": h["epoch"], "train_loss": h["loss"], "validation_loss": None, "validation_accuracy": None,
                     "validation_macro_f1": None, "learning_rate": None, "seconds": h["seconds"]} for h in result["history"]],
        "duration_s": result["seconds"], "hardware": hardware,
        "training_data": {
            "real_crops_train": result["train_real"], "composite_regions_train": result["train_regions"],
            "composite_regions_per_epoch": result["per_epoch_regions"],
            "composites": (f"every train-split crop pasted {comp['per_crop']} times into {comp['shape'][0]}x{comp['shape'][1]} "
                           f"phantom radiographs (valvereader.phantoms, written as DICOM and read back; seed {comp['seed']}); "
                           f"region = the true box made square x{squares['true_box']:g}, or a jittered box "
                           f"(centre +-8 %, scale x exp(N(0, 0.12))) made square x{low:g}-{high:g} (uniform), then Preprocess"),
            "recipe": recipe.get("name", ""), "epochs_planned": result["epochs"],
        },
        "recipe_metrics": result["metrics"],
    }
    (folder / "model.json").write_text(json.dumps(card, indent=1), encoding="utf-8")
    return folder

