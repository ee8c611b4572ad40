"""The valve locator trained on real skull radiographs (``valvereader.phantoms.realfilm``).

Steps (``python -m valvereader.training.locator_real --help``):

- ``films``: write a part's films as files (DICOM, PNG, JPEG) with a ground-truth CSV, for
  validation and test (read through the program's own loader, as a user's files are);
- ``train``: make the training films in memory (each as the loader would see its file:
  8/12 bits, JPEG artefacts, reversed polarity), add the synthetic radiographs of a
  ground-truth CSV as a minority, and fine-tune a locator from a start checkpoint. The frozen
  stem and blocks 0-4 are computed once per view and cached; an epoch trains the upper blocks
  and heads. A checkpoint is written after every epoch and a run resumes where it stopped.
  Films without a valve train the centre map towards zero everywhere. The epoch kept is the
  one that finds most valves on validation while staying quiet on 95 % of its valve-free
  films (``operating_point``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..preprocess import Preprocess
from .locator import (
    LocatorConfig,
    PreparedSet,
    _predict_from_features,
    _views,
    box_fractions,
    centre_targets,
    decode_fractions,
    locator_loss,
    prepare_set,
    read_ground_truth,
    stride8_features,
)

if TYPE_CHECKING:
    from ..model.locator_net import LocatorNet

CHECKPOINT = "checkpoint.safetensors"
BEST = "best.safetensors"
STATE = "state.json"
SPECIFICITY = 0.95


@dataclass
class RealLocatorConfig(LocatorConfig):
    """A locator run on real films: the locator's settings (a fine-tune's defaults) and how
    many films each background gives; a run resumes only with the same config."""

    epochs: int = 14
    lr: float = 1e-3
    threads: int = 2
    per_background: int = 6
    negatives: int = 2
    machine: float = 0.0  # share of training films processed as another machine's (realfilm.another_machine)


def real_training_set(backgrounds: Path, names: list[str], crops: list, config: RealLocatorConfig,
                      log: Callable[[str], None] = print) -> PreparedSet:
    """Training films made in memory and prepared as at inference (see the module's doc)."""
    from ..phantoms.realfilm import FORMATS, films, roundtrip

    preprocess = Preprocess(size=config.input_size, threshold=0.02, crop_border=True)
    images, boxes, files, kinds = [], [], [], []
    made = films(backgrounds, names, crops, config.per_background, config.seed, config.negatives, machine=config.machine)
    for i, (film, rng) in enumerate(made):
        fmt = str(rng.choice(FORMATS, p=[0.3, 0.2, 0.25, 0.25]))
        pixels = roundtrip(film.pixels, fmt, rng, reverse=fmt in ("png", "jpeg") and rng.random() < 0.15)
        prepared = preprocess(pixels)
        images.append(prepared.pixels.astype(np.float16))
        boxes.append(box_fractions(film.box, prepared))
        files.append(f"{film.truth['background']}#{i}")
        kinds.append("real_" + film.truth["kind"])
        if (i + 1) % 200 == 0:
            log(f"made {i + 1} training films")
    return PreparedSet(np.stack(images), np.stack(boxes).astype(np.float32), files, kinds)


def crops_as_images(crops: list, size: int) -> PreparedSet:
    """Crops around a valve read as whole images, their box the whole crop: a crop opened in
    the program (as the public data set's are) is then located as the valve itself, and the
    identifier reads it whole, as it was trained to."""
    from ..phantoms.composite import load_crop

    preprocess = Preprocess(size=size, threshold=0.02, crop_border=True)
    images = np.stack([preprocess(load_crop(crop)).pixels.astype(np.float16) for crop in crops])
    boxes = np.tile(np.array([[0.02, 0.02, 0.98, 0.98]], np.float32), (len(crops), 1))
    return PreparedSet(images, boxes, [crop.source for crop in crops], ["crop"] * len(crops))


def operating_point(predicted: np.ndarray, scores: np.ndarray, truth: np.ndarray, specificity: float = SPECIFICITY) -> dict[str, float]:
    """Box hits at the lowest peak score that keeps ``specificity`` of the valve-free images
    (NaN truth) without a box. predicted/truth: (N, 4) fractions; scores: (N,) peak scores."""
    negative = np.isnan(truth).any(axis=1)
    positive = ~negative
    threshold = float(np.quantile(scores[negative], specificity)) + 1e-6 if negative.any() else 0.0
    t, p = truth[positive], predicted[positive]
    tcx, tcy = (t[:, 0] + t[:, 2]) / 2, (t[:, 1] + t[:, 3]) / 2
    with np.errstate(invalid="ignore"):
        hit = (p[:, 0] <= tcx) & (tcx <= p[:, 2]) & (p[:, 1] <= tcy) & (tcy <= p[:, 3])
    hit &= ~np.isnan(p).any(axis=1)
    n = max(1, int(positive.sum()))
    return {
        "threshold": threshold,
        "hit_any_score": float(hit.sum() / n),
        "hit_at_threshold": float((hit & (scores[positive] >= threshold)).sum() / n),
        "negatives_quiet": float((scores[negative] < threshold).mean()) if negative.any() else float("nan"),
        "positives": int(positive.sum()),
        "negatives": int(negative.sum()),
    }


def _machine_key(config: RealLocatorConfig) -> list[float]:
    """What processed films add to a cache key (nothing without them, so earlier caches stay valid)."""
    return [config.machine] if config.machine else []


def _cached_features(model: LocatorNet, data: PreparedSet, config: RealLocatorConfig, out_dir: Path,
                     log: Callable[[str], None]) -> tuple[np.ndarray, np.ndarray]:
    digest = hashlib.sha256(json.dumps([data.files, config.input_size, config.variants, config.seed, *_machine_key(config)])
                            .encode()).hexdigest()[:16]
    cached = out_dir / f"features-{digest}.npz"
    if cached.exists():
        with np.load(cached) as saved:
            return saved["features"], saved["boxes"]
    images, boxes = _views(data, config.variants, config.seed)
    features = stride8_features(model, images)
    del images
    np.savez(cached, features=features, boxes=boxes)
    log(f"cached {len(features)} training views")
    return features, boxes


def train(config: RealLocatorConfig, train_set: PreparedSet, val_set: PreparedSet, out_dir: Path, init: Path | None,
          log: Callable[[str], None] = print) -> LocatorNet:
    """Fine-tune a locator; returns the model at the best validation epoch."""
    import torch
    from safetensors.torch import load_file, save_file

    from ..model.locator_net import LocatorNet

    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    model = LocatorNet(pretrained=init is None)
    if init is not None:
        model.load_state_dict({k: v.float() for k, v in load_file(str(init)).items()})
    model.freeze()
    features, boxes = _cached_features(model, train_set, config, out_dir, log)
    heat_t, size_t, weight_t = centre_targets(boxes, features.shape[-1])
    val_features = stride8_features(model, val_set.images)
    n = len(train_set)
    steps = math.ceil(n / config.batch_size)
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr, total_steps=steps * config.epochs, pct_start=0.15)
    history: list[dict] = []
    first, best = 0, (-1.0, -1.0)
    state_path = out_dir / STATE
    if state_path.exists():
        state = json.loads(state_path.read_text())
        if state.get("config") == asdict(config):
            model.load_state_dict(load_file(str(out_dir / CHECKPOINT)), strict=False)
            first, history, best = int(state["epoch"]), list(state["history"]), tuple(state["best"])
            for _ in range(first * steps):
                scheduler.step()  # the same schedule; Adam's moments restart
            log(f"resumed after epoch {first}")
    for epoch in range(first, config.epochs):
        model.train()
        rng = np.random.default_rng([config.seed, 1000 + epoch])
        order = rng.permutation(n) + n * rng.integers(0, config.variants, n)
        total, tick = 0.0, time.time()
        for start in range(0, n, config.batch_size):
            idx = np.sort(order[start : start + config.batch_size])
            logits, size = model.forward_from_stride8(torch.from_numpy(features[idx].astype(np.float32)))
            loss, _, _ = locator_loss(logits, size, torch.from_numpy(heat_t[idx]), torch.from_numpy(size_t[idx]),
                                      torch.from_numpy(weight_t[idx]), config.size_weight)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            total += loss.item()
        val_heat, val_size = _predict_from_features(model, val_features)
        predicted, scores = decode_fractions(val_heat, val_size)
        point = operating_point(predicted, scores, val_set.boxes)
        record = {"epoch": epoch + 1, "loss": total / steps, "seconds": round(time.time() - tick, 1),
                  **{f"val_{k}": v for k, v in point.items()}}
        key = (point["hit_at_threshold"], point["hit_any_score"])
        if key > best:
            best = key
            save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(out_dir / BEST))
        history.append(record)
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(out_dir / CHECKPOINT))
        state_path.write_text(json.dumps({"epoch": epoch + 1, "config": asdict(config), "history": history, "best": list(best)}, indent=1))
        log(json.dumps(record))
    model.load_state_dict(load_file(str(out_dir / BEST)), strict=False)
    return model.eval()


def train_run(config: RealLocatorConfig, backgrounds: Path, names: list[str], crops: list, val_csv: Path, out: Path,
              init: Path | None, with_crops: bool = False, synthetic: Sequence[Path] = (),
              log: Callable[[str], None] = print) -> LocatorNet:
    """The ``train`` step: training films from the ``names`` backgrounds and train-split
    ``crops`` (made once per film settings and kept in ``out``), the synthetic radiographs of
    ``synthetic`` and, ``with_crops``, the crops as whole images; validation on ``val_csv``."""
    out.mkdir(parents=True, exist_ok=True)
    # The films depend only on these (not on the optimiser): made once, reused by later runs.
    films_key = [config.input_size, config.per_background, config.negatives, config.seed, *_machine_key(config)]
    made = out / f"films-{hashlib.sha256(json.dumps(films_key).encode()).hexdigest()[:12]}.npz"
    if made.exists():
        train_set = PreparedSet.load(made)
    else:
        train_set = real_training_set(backgrounds, names, crops, config, log)
        train_set.save(made)
    extras = [prepare_set(read_ground_truth(csv_path), config.input_size) for csv_path in synthetic]
    if with_crops:
        extras.append(crops_as_images(crops, config.input_size))
    for extra in extras:
        train_set = PreparedSet(np.concatenate([train_set.images, extra.images]), np.concatenate([train_set.boxes, extra.boxes]),
                                train_set.files + extra.files, train_set.kinds + extra.kinds)
    val_made = out / "validation.npz"
    val_set = PreparedSet.load(val_made) if val_made.exists() else prepare_set(read_ground_truth(val_csv), config.input_size)
    val_set.save(val_made)
    log(f"training films {len(train_set)}, validation films {len(val_set)}")
    return train(config, train_set, val_set, out, init, log)


BACKGROUND_CREDIT = {
    "dataset": "ISBI 2015 cephalometric challenge radiographs (300 lateral skull radiographs, no valve)",
    "source": "Tri-Service General Hospital, Taiwan; released by the challenge organisers for research",
    "papers": [
        ("C.-W. Wang et al., A benchmark for comparison of dental radiography analysis algorithms, Medical Image Analysis 31 "
        "(2016) 63-76, doi:10.1016/j.media.2016.02.004"),
        ("C.-W. Wang et al., Evaluation and comparison of anatomical landmark detection methods for cephalometric X-ray "
        "images: a grand challenge, IEEE TMI 34(9), 2015"),
    ],
    "licence": "none stated; research use only",
    "use": "backgrounds of training films (train split of realfilm_split.csv) and whole valve-free films as negatives",
}


def ship(run: Path, out: Path, verification: dict, crop_scale: float, version: str, extra_metrics: dict | None = None,
         recipe: str | None = None, input_size: int | None = None) -> Path:
    """Write the best epoch of ``run`` as a locator card (``out``/locator.*) with its
    verification rule (``training.film_rule fit``), history and data credits; ``recipe``: the
    committed recipe that made it (``valvereader train --recipe``), named in the card;
    ``input_size``: the size the network is exported and read at, where it is not the size it
    was trained at (the network is fully convolutional)."""
    from ..model.locator_net import load_locator
    from .attribution import DATASET_CREDIT
    from .locator import INTENDED_USE, write_card

    state = json.loads((run / STATE).read_text())
    config = RealLocatorConfig(**state["config"])
    read = replace(config, input_size=int(input_size)) if input_size else config
    model = load_locator(run / BEST)
    rule = {k: v for k, v in verification.items() if k != "validation"}
    metrics = {"training_history": state["history"], "verification_validation": verification.get("validation", {}),
               **(extra_metrics or {})}
    extra = {
        "version": version,
        "thresholds": {"min_score": float(rule.get("min_score", 0.05))},
        "verification": rule,
        "crop_scale": crop_scale,
        "training": {**asdict(config), "recipe": (f"valvereader train --recipe {recipe} (app/valvereader/training/recipes/{recipe}.json)"
                                                  if recipe else "python -m valvereader.training.locator_real train (see docs/training.md)"),
                     "frozen": "stem and blocks 0-4 at the starting locator's weights; blocks 5-10 and heads trained",
                     **({"read_at": f"trained at {config.input_size} px; exported and read at {read.input_size} px"}
                        if read.input_size != config.input_size else {})},
        "data": {"train": f"{len(state['history'])} epochs over films made from the train "
                          "split of realfilm_split.csv with train-split crops, plus valve-free films"},
        "data_attribution": {"valve_crops": DATASET_CREDIT, "backgrounds": BACKGROUND_CREDIT},
        "intended_use": INTENDED_USE,
        "licence": "Research use only: trained on radiographs released for research without a stated licence, and on the "
                   "CC BY 4.0 csf-shuntvalves crops (credit as in data_attribution).",
    }
    return write_card(out, model, read, metrics, extra)


def main(argv: Sequence[str] | None = None) -> int:
    from ..phantoms.realfilm import crops_by_part, read_split, write_films

    parser = argparse.ArgumentParser(prog="python -m valvereader.training.locator_real", description=__doc__.split("\n")[0])
    parser.add_argument("--backgrounds", type=Path, default=Path("../shared/data/skull-radiographs"))
    parser.add_argument("--crops", type=Path, default=Path("../shared/data/csf-shuntvalves"))
    parser.add_argument("--crop-split", type=Path, default=Path("docs/evaluation/identifier/split.json"))
    steps = parser.add_subparsers(dest="step", required=True)
    make = steps.add_parser("films", help="write a part's films as files with ground_truth.csv")
    make.add_argument("--part", choices=("validation", "test"), required=True)
    make.add_argument("--out", type=Path, required=True)
    make.add_argument("--per-background", type=int, default=3)
    make.add_argument("--negatives", type=int, default=1)
    make.add_argument("--seed", type=int, default=7)
    fit = steps.add_parser("train", help="fine-tune on in-memory training films (+ synthetic radiographs)")
    fit.add_argument("--val", type=Path, required=True, help="ground_truth.csv of the validation films")
    fit.add_argument("--synthetic", type=Path, nargs="*", default=[], help="ground-truth CSVs of synthetic radiographs (a minority)")
    fit.add_argument("--init", type=Path, help="start from this locator safetensors (default: ImageNet)")
    fit.add_argument("--out", type=Path, default=Path("runs/locator_real"))
    fit.add_argument("--crops-as-images", action="store_true", help="add the train-split crops as images whose box is the whole crop")
    for key, value in asdict(RealLocatorConfig()).items():
        fit.add_argument(f"--{key.replace('_', '-')}", type=type(value), default=value)
    shipping = steps.add_parser("ship", help="write a run's best epoch as locator.* with its verification rule")
    shipping.add_argument("--run", type=Path, required=True)
    shipping.add_argument("--verification", type=Path, required=True, help="JSON from training.film_rule fit")
    shipping.add_argument("--weights", type=Path, required=True, help="folder for locator.onnx/.safetensors/.json")
    shipping.add_argument("--crop-scale", type=float, default=1.0)
    shipping.add_argument("--version", default="3.0")
    shipping.add_argument("--input-size", type=int, help="export and read the network at this size (default: as trained)")
    args = parser.parse_args(argv)
    if args.step == "ship":
        print(ship(args.run, args.weights, json.loads(args.verification.read_text()), args.crop_scale, args.version,
                   input_size=args.input_size))
        return 0
    split = read_split()
    crops = crops_by_part(args.crops, args.crop_split)
    if args.step == "films":
        print(write_films(args.backgrounds, split[args.part], crops[args.part], args.out, args.per_background, args.seed, args.negatives))
        return 0
    config = RealLocatorConfig(**{k: getattr(args, k) for k in asdict(RealLocatorConfig())})
    train_run(config, args.backgrounds, split["train"], crops["train"], args.val, args.out, args.init,
              with_crops=args.crops_as_images, synthetic=args.synthetic)
    return 0


if __name__ == "__main__":
    sys.exit(main())
