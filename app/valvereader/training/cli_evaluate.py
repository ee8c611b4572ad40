"""`valvereader evaluate`: test a trained run on its held-out images, or cross-validate.

Held-out mode (default) reads ``RUN/split.json`` written by ``valvereader train``: metrics
on the test images; verdict thresholds and the open-set statistics from the training and
validation images only; leave-one-class-out open-set AUROC; figures; one Markdown report.

``--cv K`` trains K models on patient-grouped stratified folds with the run's recipe and
reports mean ± SD (costly: K full trainings). ``--linear-probe`` adds a cheap K-fold
cross-validation of a logistic regression on frozen ImageNet features, and open-set AUROC
from a backbone that never saw any valve.

``--weights DIR --split FILE`` evaluates shipped weights instead of a run folder, so that the
card's numbers can be re-made from a fresh clone: the identifier's safetensors file (checked
against its card's sha256) and the split it was tested on (``docs/evaluation/identifier/split.json``)
become a run folder under ``OUT/run_from_weights``; ``--data DIR`` says where the split's
images are when they are not where it recorded them.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", type=Path, help="run folder of `valvereader train` (model.json, split.json)")
    source.add_argument("--weights", type=Path, help="shipped weights folder (identifier.json): evaluate them on --split")
    parser.add_argument("--split", type=Path, default=None, help="with --weights: the split.json the card's numbers came from")
    parser.add_argument("--data", type=Path, default=None, help="with --weights: the folder holding the split's images")
    parser.add_argument("--out", type=Path, required=True, help="folder for report.md, metrics.json and figures")
    parser.add_argument("--cv", type=int, default=0, metavar="K", help="also cross-validate: train K models on grouped folds")
    parser.add_argument("--cv-epochs", type=int, default=None, help="epochs per fold (default: the run's)")
    parser.add_argument("--linear-probe", action="store_true", help="also K-fold CV (K = --folds) of frozen ImageNet features")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--device", default=None)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--cache-dir", type=Path, default=None,
                        help="folder for the prepared images (default: beside --run; with --weights a temporary "
                             "folder, removed afterwards, so that the report folder stays small)")
    parser.add_argument("--cam-examples", type=int, default=12, help="right and wrong cases in the attention grid")


def run(args: argparse.Namespace) -> int:
    import torch

    from ..errors import ValveReaderError
    from .heldout import evaluate_run

    if args.threads:
        torch.set_num_threads(args.threads)
    # Re-making a shipped model's figures (--weights) would otherwise leave its prepared images
    # (about 1 GB for 1556 crops at 384 px) in the report folder.
    scratch = tempfile.TemporaryDirectory(prefix="valvereader-evaluate-") if args.weights and args.cache_dir is None else None
    try:
        run_folder = args.run if args.run else run_from_weights(args.weights, args.split, args.out / "run_from_weights", args.data)
        results = evaluate_run(
            run_folder, args.out, device=args.device, cache_dir=Path(scratch.name) if scratch else args.cache_dir,
            cam_examples=args.cam_examples, cv_folds=args.cv, cv_epochs=args.cv_epochs,
            linear_probe_folds=args.folds if args.linear_probe else 0,
        )
    except ValveReaderError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        if scratch is not None:
            scratch.cleanup()
    test = results["test"]["metrics"]
    print(json.dumps({k: test[k] for k in ("n", "accuracy", "macro_f1", "ece")}), file=sys.stderr)
    print(f"report written to {args.out / 'report.md'}", file=sys.stderr)
    return 0


def run_from_weights(weights: Path, split: Path | None, folder: Path, data: Path | None = None) -> Path:
    """A run folder (model.safetensors, model.json, split.json) made from shipped weights, for
    ``evaluate_run``. The weights file must match its card's sha256."""
    from safetensors.torch import load_file, save_file

    from ..errors import DatasetError, ModelError
    from ..model.card import ModelCard
    from .train import FINAL, FINAL_CARD

    if split is None:
        raise DatasetError("--weights needs --split: the split.json the card's numbers came from "
                           "(for the shipped identifier: docs/evaluation/identifier/split.json)")
    card_path = Path(weights) / "identifier.json"
    if not card_path.is_file():
        raise ModelError(f"{card_path} missing: --weights takes a folder with the identifier's card")
    card = ModelCard.load(card_path)
    tensors = load_file(str(card.verify("safetensors")))
    try:
        saved = json.loads(Path(split).read_text(encoding="utf-8"))
        paths, sources = list(saved["paths"]), list(saved.get("sources") or [])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DatasetError(f"{split}: not a split.json written by `valvereader train` ({exc})") from exc
    if data is not None:
        if len(sources) != 1:
            raise DatasetError(f"{split}: --data can only stand in for a split of one source folder, it has {len(sources)}")
        prefix = sources[0].rstrip("/") + "/"
        paths = [str(Path(data) / p[len(prefix):]) if p.startswith(prefix) else p for p in paths]
        saved["sources"] = [str(data)]
    missing = [p for p in paths if not Path(p).is_file()]
    if missing:
        raise DatasetError(f"{len(missing)} of the split's {len(paths)} images are missing (first: {missing[0]}); "
                           "give their folder with --data")
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: (v.float() if v.is_floating_point() else v).contiguous() for k, v in tensors.items()}, str(folder / FINAL))
    data_card = card.data
    recipe = dict(data_card.get("training", {}).get("recipe", {}))
    (folder / FINAL_CARD).write_text(json.dumps({
        "arch": data_card["architecture"], "input_size": data_card["input_size"], "class_ids": list(data_card["class_ids"]),
        "preprocessing": {k: data_card["preprocessing"][k] for k in ("size", "threshold", "crop_border")},
        "config": recipe, "history": [], "from_weights": f"{card.title} ({card_path})",
        **({"members": data_card["members"]} if data_card.get("members") else {}),
        # An ensemble's open set may cover its first members' features only: fit it there again.
        **({"openset_features": data_card["openset"]["features"]} if (data_card.get("openset") or {}).get("features") else {}),
    }, indent=1), encoding="utf-8")
    (folder / "split.json").write_text(json.dumps({**saved, "paths": paths}), encoding="utf-8")
    return folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="valvereader evaluate", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
