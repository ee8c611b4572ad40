"""The training loop: the paper's recipe by default, resumable, one or many processes.

Recipe (Vach et al. 2025 / fastai defaults, adapted): ResNet-34, cross-entropy weighted by
inverse class frequency, Adam, one-cycle learning rate (cosine warm-up to ``max_lr`` then
cosine decay), augmentation after ``Preprocess``, batch 32 with gradient accumulation to 64,
mixed precision on CUDA, fixed seeds. A checkpoint (safetensors + JSON, no pickle) is written
after every epoch; ``resume`` continues from it with the same schedule and data order.
Under ``torchrun`` each process trains on its share of every batch (DistributedDataParallel).
"""

from __future__ import annotations

import csv
import json
import math
import os
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import DatasetError, ModelError
from ..model.architectures import ValveNet, build_model
from .augment import Augment, AugmentConfig

CHECKPOINT = "checkpoint.safetensors"
CHECKPOINT_STATE = "checkpoint.json"
FINAL = "model.safetensors"
FINAL_CARD = "model.json"


@dataclass
class TrainConfig:
    """Everything that decides a training run; written beside every checkpoint."""

    arch: str = "resnet34"
    input_size: int = 512
    epochs: int = 10
    batch_size: int = 32
    accumulate_to: int = 64  # effective batch; gradients accumulate over batch_size chunks
    max_lr: float = 3e-3
    pct_start: float = 0.25
    weight_decay: float = 1e-4
    class_weighting: str = "inverse"  # "inverse" frequency or "none"
    balanced_sampling: bool = False
    label_smoothing: float = 0.0
    seed: int = 0
    pretrained: str | bool = False
    init_from: str | None = None  # a whole ValveNet state dict (.safetensors) to continue from
    amp: bool = True  # on CUDA only
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def as_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["pretrained"] = str(self.pretrained) if not isinstance(self.pretrained, bool) else self.pretrained
        if data["init_from"] is None:  # keeps older checkpoints' configurations comparable
            del data["init_from"]
        return data

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        data = dict(data)
        augment = data.pop("augment", {}) or {}
        if "zoom" in augment:
            augment["zoom"] = tuple(augment["zoom"])
        return cls(augment=AugmentConfig(**augment), **data)


@dataclass
class EpochRecord:
    epoch: int
    train_loss: float
    validation_loss: float
    validation_accuracy: float
    validation_macro_f1: float
    learning_rate: float
    seconds: float


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def inverse_frequency_weights(labels: Sequence[int] | np.ndarray, num_classes: int) -> torch.Tensor:
    """Class weights ``N / (K · n_k)`` in class-id order (weight k belongs to class index k).

    A class absent from ``labels`` gets weight 0: it cannot contribute to the loss anyway.
    """
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=num_classes).astype(np.float64)
    present = counts > 0
    weights = np.zeros(num_classes)
    weights[present] = counts.sum() / (present.sum() * counts[present])
    return torch.tensor(weights, dtype=torch.float32)


def one_cycle_lr(step: int, total_steps: int, max_lr: float, pct_start: float = 0.25, div: float = 25.0, final_div: float = 1e4) -> float:
    """Learning rate at optimiser ``step`` of a cosine one-cycle schedule (as fastai/PyTorch)."""
    warm = max(1, round(pct_start * total_steps))
    start, end = max_lr / div, max_lr / div / final_div
    if step < warm:
        t = step / warm
        return start + (max_lr - start) * (1 - math.cos(math.pi * t)) / 2
    t = min(1.0, (step - warm) / max(1, total_steps - warm))
    return end + (max_lr - end) * (1 + math.cos(math.pi * t)) / 2


def macro_f1(true: np.ndarray, predicted: np.ndarray, num_classes: int) -> float:
    scores = []
    for k in range(num_classes):
        tp = np.sum((predicted == k) & (true == k))
        fp = np.sum((predicted == k) & (true != k))
        fn = np.sum((predicted != k) & (true == k))
        if tp + fp + fn == 0:
            continue
        scores.append(2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores)) if scores else 0.0


# --- distributed ----------------------------------------------------------------------------
def _distributed() -> tuple[int, int]:
    """(rank, world size); initialises the process group under torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    import torch.distributed as dist

    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend=backend)
    return dist.get_rank(), dist.get_world_size()


def pick_device(name: str | None = None) -> torch.device:
    if name:
        return torch.device(name)
    if torch.cuda.is_available():
        local = int(os.environ.get("LOCAL_RANK", "0"))
        return torch.device("cuda", local)
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


# --- checkpoints (safetensors + JSON, never pickle) -----------------------------------------
def save_checkpoint(folder: Path, model: nn.Module, optimizer: torch.optim.Optimizer, state: dict) -> None:
    from safetensors.torch import save_file

    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    opt = optimizer.state_dict()
    for index, values in opt["state"].items():
        for name, value in values.items():
            tensors[f"optimizer.{index}.{name}"] = torch.as_tensor(value).detach().cpu().contiguous()
    state = dict(state, param_groups=opt["param_groups"])
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / (CHECKPOINT + ".partial")
    save_file(tensors, str(partial))
    partial.replace(folder / CHECKPOINT)
    (folder / CHECKPOINT_STATE).write_text(json.dumps(state, indent=1), encoding="utf-8")


def load_checkpoint(folder: Path, model: nn.Module, optimizer: torch.optim.Optimizer) -> dict:
    """Restore model and optimiser; returns the saved state (epoch, config, history...)."""
    from safetensors.torch import load_file

    path, meta = folder / CHECKPOINT, folder / CHECKPOINT_STATE
    if not path.is_file() or not meta.is_file():
        raise ModelError(f"no checkpoint to resume in {folder}: start without --resume")
    state = json.loads(meta.read_text(encoding="utf-8"))
    tensors = load_file(str(path))
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    per_param: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("optimizer."):
            _, index, name = key.split(".", 2)
            per_param.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": per_param, "param_groups": state["param_groups"]})
    return state


def save_model(folder: Path, model: ValveNet, card: dict) -> Path:
    """The trained weights (fp32 safetensors) and a JSON description beside them."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, str(folder / FINAL))
    (folder / FINAL_CARD).write_text(json.dumps(card, indent=1), encoding="utf-8")
    return folder / FINAL


def load_trained(folder: Path, device: str | torch.device = "cpu") -> tuple[ValveNet, dict]:
    """A model saved by :func:`save_model` (or the last checkpoint) and its description."""
    from safetensors.torch import load_file

    folder = Path(folder)
    card_path = folder / FINAL_CARD
    if not card_path.is_file():
        raise ModelError(f"no trained model in {folder} (expected {FINAL_CARD} and {FINAL})")
    card = json.loads(card_path.read_text(encoding="utf-8"))
    model = build_model(card["arch"], len(card["class_ids"]), members=card.get("members"))
    weights = folder / FINAL
    if weights.is_file():
        model.load_state_dict(load_file(str(weights)))
    else:
        tensors = load_file(str(folder / CHECKPOINT))
        model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    return model.to(device).eval(), card


# --- evaluation helper ----------------------------------------------------------------------
@torch.no_grad()
def predict_arrays(
    model: ValveNet, images: np.ndarray, indices: Sequence[int] | np.ndarray, device: torch.device, batch_size: int = 32, progress: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """(logits (n, K), pooled features (n, C)) of ``images[indices]`` in eval mode."""
    model.eval()
    logits, pooled = [], []
    starts = range(0, len(indices), batch_size)
    if progress:
        from tqdm import tqdm

        starts = tqdm(starts, desc="predicting", unit="batch", file=sys.stderr)
    for start in starts:
        chunk = np.asarray(indices[start : start + batch_size])
        x = torch.from_numpy(np.asarray(images[chunk], dtype=np.float32)).unsqueeze(1).to(device)
        out, features = model(x)
        logits.append(out.float().cpu().numpy())
        pooled.append(features.float().mean((2, 3)).cpu().numpy())
    k = model.num_classes
    return (np.concatenate(logits) if logits else np.zeros((0, k))), (np.concatenate(pooled) if pooled else np.zeros((0, model.num_features)))


# --- training -------------------------------------------------------------------------------
def _epoch_order(train: np.ndarray, labels: np.ndarray, config: TrainConfig, epoch: int) -> np.ndarray:
    rng = np.random.default_rng(config.seed * 1000 + epoch)
    if not config.balanced_sampling:
        return train[rng.permutation(len(train))]
    counts = np.bincount(labels[train])
    p = 1.0 / counts[labels[train]]
    return rng.choice(train, size=len(train), replace=True, p=p / p.sum())


def _batches(order: np.ndarray, per_process: int, world: int, rank: int) -> list[np.ndarray]:
    """This process's batches of one epoch. A last batch too small for batch norm (fewer than
    two images per process) is dropped, on every process alike."""
    step = per_process * world
    batches = [order[i : i + step] for i in range(0, len(order), step)]
    if len(batches) > 1 and len(batches[-1]) < 2 * world:
        batches.pop()
    return [batch[rank::world] for batch in batches]


def train_model(
    config: TrainConfig,
    images: np.ndarray,
    labels: np.ndarray,
    train_indices: np.ndarray,
    validation_indices: np.ndarray,
    out_dir: Path,
    class_ids: Sequence[str],
    resume: bool = False,
    device: str | None = None,
    progress: bool = True,
    log: Callable[[str], None] = lambda text: print(text, file=sys.stderr),
) -> tuple[ValveNet, list[EpochRecord]]:
    """Train on ``images[train_indices]`` (prepared (N, S, S) float32 in 0..1).

    Writes ``metrics.csv`` / ``metrics.jsonl`` and a checkpoint in ``out_dir`` after every
    epoch; returns the final model (eval mode, on CPU) and the epoch history.

    Raises:
        DatasetError: no training images, or images not of size ``config.input_size``.
        ModelError: ``resume`` without a checkpoint, or a checkpoint of another configuration.
    """
    out_dir = Path(out_dir)
    if len(train_indices) == 0:
        raise DatasetError("no training images")
    if images.shape[1:] != (config.input_size, config.input_size):
        raise DatasetError(f"images are {images.shape[1:]}, the configuration expects {config.input_size} px")
    rank, world = _distributed()
    torch_device = pick_device(device)
    seed_everything(config.seed + rank)
    num_classes = len(class_ids)
    model = build_model(config.arch, num_classes, pretrained=config.pretrained)
    if config.init_from:
        from safetensors.torch import load_file

        try:
            model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in load_file(config.init_from).items()})
        except (OSError, RuntimeError) as exc:
            raise ModelError(f"cannot start from {config.init_from}: {exc}") from exc
    model = model.to(torch_device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.max_lr, weight_decay=config.weight_decay)
    weights = inverse_frequency_weights(labels[train_indices], num_classes) if config.class_weighting == "inverse" else None
    criterion = nn.CrossEntropyLoss(weight=None if weights is None else weights.to(torch_device), label_smoothing=config.label_smoothing)
    use_amp = config.amp and torch_device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    history: list[EpochRecord] = []
    start_epoch, step = 0, 0
    if resume:
        state = load_checkpoint(out_dir, model, optimizer)
        if state.get("config") != json.loads(json.dumps(config.as_dict())):
            raise ModelError(f"the checkpoint in {out_dir} was made with another configuration; resume with the same options")
        start_epoch, step = int(state["epoch"]), int(state["step"])
        history = [EpochRecord(**r) for r in state.get("history", [])]
        log(f"resuming after epoch {start_epoch} (optimiser step {step})")
    trained_model: nn.Module = model
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        trained_model = DistributedDataParallel(model, device_ids=[torch_device.index] if torch_device.type == "cuda" else None)
    per_process = max(1, config.batch_size)
    accumulation = max(1, config.accumulate_to // (per_process * world))
    batches_per_epoch = len(_batches(np.asarray(train_indices), per_process, world, rank))
    steps_per_epoch = math.ceil(batches_per_epoch / accumulation)
    total_steps = steps_per_epoch * config.epochs
    out_dir.mkdir(parents=True, exist_ok=True)
    for epoch in range(start_epoch, config.epochs):
        began = time.time()
        trained_model.train()
        # Reseed per epoch so dropout draws the same after --resume as in a straight run.
        torch.manual_seed(config.seed * 1000 + epoch * 17 + rank)
        augment = Augment(config.augment, torch.Generator().manual_seed(config.seed * 7919 + epoch * 31 + rank))
        order = _epoch_order(np.asarray(train_indices), labels, config, epoch)
        batches = _batches(order, per_process, world, rank)
        iterator = batches
        if progress and rank == 0:
            from tqdm import tqdm

            iterator = tqdm(batches, desc=f"epoch {epoch + 1}/{config.epochs}", unit="batch", file=sys.stderr)
        losses = []
        for number, batch in enumerate(iterator):
            if len(batch) == 0:
                continue
            x = torch.from_numpy(np.asarray(images[np.sort(batch)], dtype=np.float32)).unsqueeze(1)
            y = torch.from_numpy(labels[np.sort(batch)])
            x, y = augment(x.to(torch_device)), y.to(torch_device)
            with torch.autocast(torch_device.type, dtype=torch.float16, enabled=use_amp):
                logits, _ = trained_model(x)
                loss = criterion(logits.float(), y) / accumulation
            scaler.scale(loss).backward()
            losses.append(float(loss.detach()) * accumulation)
            if (number + 1) % accumulation == 0 or number + 1 == len(batches):
                lr = one_cycle_lr(step, total_steps, config.max_lr, config.pct_start)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                scaler.step(optimizer)
                scaler.update()
                optimizer.zero_grad(set_to_none=True)
                step += 1
            if progress and rank == 0 and hasattr(iterator, "set_postfix"):
                iterator.set_postfix(loss=f"{np.mean(losses[-10:]):.3f}")
        record = _validate(model, images, labels, validation_indices, criterion, torch_device, epoch, losses, optimizer, began)
        history.append(record)
        if rank == 0:
            _append_metrics(out_dir, record)
            state = {"epoch": epoch + 1, "step": step, "config": config.as_dict(), "class_ids": list(class_ids), "history": [asdict(r) for r in history]}
            save_checkpoint(out_dir, model, optimizer, state)
            log(
                f"epoch {epoch + 1}: train loss {record.train_loss:.4f}, validation loss {record.validation_loss:.4f}, "
                f"accuracy {record.validation_accuracy:.4f}, macro-F1 {record.validation_macro_f1:.4f} ({record.seconds:.0f} s)"
            )
    if world > 1:
        import torch.distributed as dist

        dist.barrier()
        dist.destroy_process_group()
    return model.cpu().eval(), history


def _validate(model, images, labels, indices, criterion, device, epoch, losses, optimizer, began) -> EpochRecord:
    lr = float(optimizer.param_groups[0]["lr"])
    train_loss = float(np.mean(losses)) if losses else float("nan")
    if len(indices) == 0:
        return EpochRecord(epoch + 1, train_loss, float("nan"), float("nan"), float("nan"), lr, time.time() - began)
    logits, _ = predict_arrays(model, images, indices, device)
    true = labels[np.asarray(indices)]
    loss = float(criterion.to("cpu")(torch.from_numpy(logits), torch.from_numpy(true))) if logits.size else float("nan")
    criterion.to(device)
    predicted = logits.argmax(1)
    return EpochRecord(
        epoch + 1, train_loss, loss, float(np.mean(predicted == true)), macro_f1(true, predicted, logits.shape[1]), lr, time.time() - began
    )


def _append_metrics(out_dir: Path, record: EpochRecord) -> None:
    row = asdict(record)
    with (out_dir / "metrics.jsonl").open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(row) + "\n")
    path = out_dir / "metrics.csv"
    new = not path.exists()
    with path.open("a", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow(row)
