"""Train the locator of a recipe on the radiographs ``composites.prepare`` rendered.

The loop that made locator 2.0: CenterNet (``LocatorNet``, all layers trained) on composites of
train-split crops and rendered phantoms at the locator's input size; AdamW, one-cycle cosine
learning rate, bf16 autocast on CUDA; augmentation on the batch's device (a zoom window holding
the box in half the images, mirror, gamma / contrast / brightness, pixel noise). Validation:
composites of validation-split crops and every eighth phantom, every third epoch; the best
validation epoch is kept. Composites of test-split crops are held out entirely.

A recipe may stop the one-cycle plan early (``stop_after``): locator 2.0 planned 40 epochs and
ran 11, and its schedule was cut there, not shortened, so its reproduction does the same.
"""
from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np


def _log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def locator_parts(meta: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train, validation, held-out test) indices into the rendered radiographs."""
    split = np.asarray(meta["split"])
    source = np.asarray(meta["locator_source"], dtype=np.int64)
    kind = np.asarray(meta["locator_kind"])
    src_split = np.where(source >= 0, split[np.clip(source, 0, None)], "phantom")
    is_val = (src_split == "validation") | ((kind == "phantom") & (np.arange(len(kind)) % 8 == 0))
    is_test = src_split == "test"
    return np.flatnonzero(~is_val & ~is_test), np.flatnonzero(is_val), np.flatnonzero(is_test)


def _zoom_window(b: np.ndarray, rng: np.random.Generator):
    """Per image: a window (x0, y0, wx, wy) holding the box (half of the images), the box in it,
    and whether the image is mirrored."""
    n = len(b)
    win = np.tile(np.array([0.0, 0.0, 1.0, 1.0]), (n, 1))
    for i in range(n):
        if rng.random() < 0.5:
            wx, wy = rng.uniform(0.55, 1.0, 2)
            wx, wy = min(1.0, max(wx, b[i, 2] - b[i, 0] + 0.02)), min(1.0, max(wy, b[i, 3] - b[i, 1] + 0.02))
            x0 = rng.uniform(max(0.0, b[i, 2] - wx), max(max(0.0, b[i, 2] - wx), min(b[i, 0], 1.0 - wx)))
            y0 = rng.uniform(max(0.0, b[i, 3] - wy), max(max(0.0, b[i, 3] - wy), min(b[i, 1], 1.0 - wy)))
            win[i] = (x0, y0, wx, wy)
    nb = np.stack([(b[:, 0] - win[:, 0]) / win[:, 2], (b[:, 1] - win[:, 1]) / win[:, 3],
                   (b[:, 2] - win[:, 0]) / win[:, 2], (b[:, 3] - win[:, 1]) / win[:, 3]], 1)
    flip = rng.random(n) < 0.5
    nb[flip] = np.stack([1 - nb[flip, 2], nb[flip, 1], 1 - nb[flip, 0], nb[flip, 3]], 1)
    return win, np.clip(nb, 0, 1).astype(np.float32), flip


def train_locator(spec: dict, work: Path, device: str, max_steps: int | None = None):
    """Train as ``spec`` (the recipe's ``locator`` entry) says. Returns (model on the CPU, result)."""
    import torch
    import torch.nn.functional as F

    from ..model.locator_net import LocatorNet
    from .locator import (
        box_metrics,
        centre_targets,
        choose_min_score,
        decode_fractions,
        locator_loss,
    )
    from .train import one_cycle_lr

    torch_device = torch.device(device)
    torch.manual_seed(int(spec.get("seed", 1)))
    images = np.load(work / "locator_images.npy", mmap_mode="r")
    boxes = np.load(work / "locator_boxes.npy")
    meta = json.loads((work / "meta.json").read_text(encoding="utf-8"))
    train_idx, val_idx, test_idx = locator_parts(meta)
    model = LocatorNet(pretrained=bool(spec.get("pretrained", True))).to(torch_device)
    lr, batch, epochs = float(spec["lr"]), int(spec["batch"]), int(spec["epochs"])
    stop_after = int(spec.get("stop_after", epochs))
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=float(spec["weight_decay"]))
    steps = math.ceil(len(train_idx) / batch) * epochs
    rng = np.random.default_rng(3)
    gen = torch.Generator().manual_seed(3)
    grid = images.shape[-1] // 8
    amp = torch_device.type == "cuda"
    history, best, best_state, step = [], (-1.0, -1.0), None, 0

    def predict(idx):
        model.eval()
        heats, sizes = [], []
        with torch.no_grad():
            for s in range(0, len(idx), 128):
                xt = torch.from_numpy(np.asarray(images[np.asarray(idx[s:s + 128])])).to(torch_device).unsqueeze(1).float().div_(255)
                with torch.autocast(torch_device.type, dtype=torch.bfloat16, enabled=amp):
                    h, z = model(xt)
                heats.append(h.float().cpu().numpy())
                sizes.append(z.float().cpu().numpy())
        return decode_fractions(np.concatenate(heats), np.concatenate(sizes))

    for epoch in range(min(epochs, stop_after)):
        began = time.time()
        model.train()
        order = train_idx[rng.permutation(len(train_idx))]
        losses = []
        for s in range(0, len(order), batch):
            idx = np.sort(order[s:s + batch])
            if len(idx) < 2 or (max_steps is not None and step >= max_steps):
                continue
            win, nb, flip = _zoom_window(boxes[idx], rng)
            xt = torch.from_numpy(np.asarray(images[idx])).to(torch_device).unsqueeze(1).float().div_(255)
            n = len(idx)
            theta = torch.zeros(n, 2, 3)
            w = torch.from_numpy(win).float()
            theta[:, 0, 0], theta[:, 0, 2] = torch.where(torch.from_numpy(flip), -w[:, 2], w[:, 2]), (w[:, 0] * 2 + w[:, 2]) - 1
            theta[:, 1, 1], theta[:, 1, 2] = w[:, 3], (w[:, 1] * 2 + w[:, 3]) - 1
            grid_t = F.affine_grid(theta.to(torch_device), list(xt.shape), align_corners=False)
            xt = F.grid_sample(xt, grid_t, mode="bilinear", padding_mode="border", align_corners=False)
            gamma = torch.exp(torch.randn(n, 1, 1, 1, generator=gen) * 0.25).to(torch_device)
            contrast = (torch.rand(n, 1, 1, 1, generator=gen) * 0.4 + 0.8).to(torch_device)
            bright = (torch.rand(n, 1, 1, 1, generator=gen) * 0.16 - 0.08).to(torch_device)
            noise = (torch.rand(n, 1, 1, 1, generator=gen) * 0.02).to(torch_device)
            xt = (xt.clamp(0, 1) ** gamma - 0.5) * contrast + 0.5 + bright
            xt = (xt + torch.randn(xt.shape, generator=gen).to(torch_device) * noise).clamp(0, 1)
            heat, zsize, weight = (torch.from_numpy(a).to(torch_device) for a in centre_targets(nb, grid))
            for group in optimizer.param_groups:
                group["lr"] = one_cycle_lr(step, steps, lr, 0.15)
            with torch.autocast(torch_device.type, dtype=torch.bfloat16, enabled=amp):
                logits, size_out = model(xt)
            loss, _, _ = locator_loss(logits.float(), size_out.float(), heat, zsize, weight, float(spec.get("size_weight", 5.0)))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            losses.append(float(loss.detach()))
        record = {"epoch": epoch + 1, "loss": float(np.mean(losses)) if losses else None, "seconds": round(time.time() - began, 2)}
        last = epoch + 1 == min(epochs, stop_after)
        if len(val_idx) and ((epoch + 1) % 3 == 0 or last):
            predicted, _ = predict(val_idx)
            m = box_metrics(predicted, boxes[val_idx])
            record.update(val_found_either=m["found_either"], val_found_centre=m["found_centre"], val_mean_iou=m["mean_iou"])
            if (m["found_either"], m["mean_iou"]) > best:
                best = (m["found_either"], m["mean_iou"])
                best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        history.append(record)
        _log(f"locator: {record}")
    if best_state is not None:
        model.load_state_dict(best_state)
    result: dict[str, Any] = {"history": history, "epochs_planned": epochs, "epochs_done": len(history), "steps": step,
              "train": len(train_idx), "validation": len(val_idx), "held_out_test_composites": len(test_idx),
              "input_size": int(images.shape[-1]), "lr": lr}
    if len(val_idx):
        predicted, scores = predict(val_idx)
        truth = boxes[val_idx]
        tcx, tcy = (truth[:, 0] + truth[:, 2]) / 2, (truth[:, 1] + truth[:, 3]) / 2
        with np.errstate(invalid="ignore"):
            found = (predicted[:, 0] <= tcx) & (tcx <= predicted[:, 2]) & (predicted[:, 1] <= tcy) & (tcy <= predicted[:, 3])
        result["min_score"] = choose_min_score(scores, found)
        result["validation"] = box_metrics(predicted, truth, scores, result["min_score"])
    return model.cpu().float().eval(), result


def write_locator_run(folder: Path, model, result: dict, spec: dict, hardware: str) -> Path:
    """``locator.{onnx,safetensors,json}`` in ``folder`` (the locator's own card writer, which
    checks ONNX against torch), weights rounded to half precision as the shipped locator's were."""
    from .locator import BACKBONE_ATTRIBUTION, DATA_ATTRIBUTION, LocatorConfig, write_card

    model.load_state_dict({k: v.half().float() if v.is_floating_point() else v for k, v in model.state_dict().items()})
    config = LocatorConfig(input_size=result["input_size"], epochs=result["epochs_done"], batch_size=int(spec["batch"]),
                           lr=result["lr"], weight_decay=float(spec["weight_decay"]), variants=1, threads=0)
    extra = {
        "thresholds": {"min_score": float(result.get("min_score", 0.1))},
        "crop_scale": float(spec.get("crop_scale", 1.25)),
        "data": {"train_images": result["train"], "validation_images": result["validation"],
                 "source": "composites of train-split crops + rendered phantoms (catalogue and unknown designs); "
                           "composites of test-split crops held out"},
        "data_attribution": DATA_ATTRIBUTION, "initialisation": BACKBONE_ATTRIBUTION,
        "licence": "Weights: CC BY 4.0 (trained on composites of the CC BY 4.0 csf-shuntvalves crops; credit as in data_attribution).",
        "training_hardware": hardware,
    }
    metrics = {"training_history": result["history"], "validation": result.get("validation")}
    return write_card(folder, model, config, metrics, extra)
