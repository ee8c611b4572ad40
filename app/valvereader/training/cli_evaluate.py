"""`valvereader evaluate`: test a trained run on its held-out images, or cross-validate.

Held-out mode (default) reads ``RUN/split.json`` written by ``valvereader train``: metrics
on the test images; verdict thresholds and the open-set statistics from the training and
validation images only; leave-one-class-out open-set AUROC; figures; one Markdown report.

``--cv K`` trains K models on patient-grouped stratified folds with the run's recipe and
reports mean ± SD (costly: K full trainings). ``--linear-probe`` adds a cheap K-fold
cross-validation of a logistic regression on frozen ImageNet features, and open-set AUROC
from a backbone that never saw any valve.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", type=Path, required=True, help="run folder of `valvereader train` (model.json, split.json)")
    parser.add_argument("--out", type=Path, required=True, help="folder for report.md, metrics.json and figures")
    parser.add_argument("--cv", type=int, default=0, metavar="K", help="also cross-validate: train K models on grouped folds")
    parser.add_argument("--cv-epochs", type=int, default=None, help="epochs per fold (default: the run's)")
    parser.add_argument("--linear-probe", action="store_true", help="also K-fold CV (K = --folds) of frozen ImageNet features")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--device", default=None)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--cache-dir", type=Path, default=None)
    parser.add_argument("--cam-examples", type=int, default=12, help="right and wrong cases in the attention grid")


def run(args: argparse.Namespace) -> int:
    import torch

    from ..errors import ValveReaderError
    from .heldout import evaluate_run

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        results = evaluate_run(
            args.run, args.out, device=args.device, cache_dir=args.cache_dir, cam_examples=args.cam_examples,
            cv_folds=args.cv, cv_epochs=args.cv_epochs, linear_probe_folds=args.folds if args.linear_probe else 0,
        )
    except ValveReaderError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    test = results["test"]["metrics"]
    print(json.dumps({k: test[k] for k in ("n", "accuracy", "macro_f1", "ece")}), file=sys.stderr)
    print(f"report written to {args.out / 'report.md'}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="valvereader evaluate", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
