"""Fitting the locator card's valve probe (``inference.valve_probe``) on training films.

The locator's candidates on films made from the train-split backgrounds and crops
(``phantoms.realfilm``: films with a valve and valve-free films, the latter often with other
shunt parts) are read by the program's own predictor; each candidate's pooled identifier
features are labelled "valve" when its box holds the valve's centre, else "not a valve". A
logistic regression on the standardised features (its L2 strength chosen by 5-fold
cross-validation grouped by background) is written with the standardisation folded in, so
that the program computes ``pooled @ weight + bias``::

    python -m valvereader.training.valve_probe --films runs/probe-films --out locator.valve_probe.safetensors

``--films`` is made first when it holds no ``ground_truth.csv`` (``--seed``, ``--per-background``,
``--negatives``). No validation or test background or crop is read.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

STRENGTHS = (0.003, 0.01, 0.03, 0.1)


def candidate_features(weights: Path | None, truth_csv: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(pooled features (N, C), valve labels (N,), background of each (N,)) of every located
    candidate the predictor reads on the films of ``truth_csv``."""
    from ..inference.predictor import load_predictor
    from ..io import load
    from .film_rule import _box, _holds

    predictor = load_predictor(weights, device="cpu")
    features, labels, groups = [], [], []
    with Path(truth_csv).open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        radiograph = load(Path(truth_csv).parent / row["file"])
        prepare = predictor.prepare(radiograph)
        found, _, views = predictor.regions_read(radiograph, prepare)
        truth = _box(row)
        for i, (view, (_, outputs)) in enumerate(predictor._identify_views(radiograph, views, prepare)):
            box = found[i].box if view is not None else None
            if box is None:
                continue
            features.append(outputs["features"].mean(axis=(2, 3))[0].astype(np.float32))
            labels.append(int(_holds(box.as_tuple(), truth)))
            groups.append(row.get("background", row["file"]))
    if not features:
        raise ValueError(f"no located candidates on the films of {truth_csv}")
    return np.stack(features), np.asarray(labels), np.asarray(groups)


def fit_probe(features: np.ndarray, labels: np.ndarray, groups: np.ndarray,
              strengths: Sequence[float] = STRENGTHS, folds: int = 5) -> tuple[np.ndarray, float, dict]:
    """(weight (C,), bias, report): the logistic regression whose grouped cross-validated
    AUROC is highest, refitted on everything, its standardisation folded into the weight."""
    from sklearn.metrics import roc_auc_score

    from .readouts import fit_grouped_logistic

    if len(set(labels.tolist())) < 2:
        raise ValueError("the probe needs candidates that hold a valve and candidates that do not")
    model, mean, std, scores, best, folds = fit_grouped_logistic(features, labels, groups, strengths, roc_auc_score,
                                                                 higher_is_better=True, folds=folds, max_iter=3000)
    coef = model.coef_[0] / std
    bias = float(model.intercept_[0] - np.sum(model.coef_[0] * mean / std))
    report = {"candidates": len(labels), "valves": int(labels.sum()), "backgrounds": len(set(groups.tolist())),
              "C": best, "cross_validated_auroc": {str(c): round(a, 4) for c, a in scores.items()}, "folds": folds}
    return coef.astype(np.float32), bias, report


def save_probe(path: Path, weight: np.ndarray, bias: float) -> None:
    from safetensors.numpy import save_file

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    save_file({"weight": np.ascontiguousarray(weight, dtype=np.float32), "bias": np.asarray([bias], dtype=np.float32)}, str(path))


def attach_probe(weights: Path, probe: Path, probe_weight: float) -> Path:
    """Name ``probe`` in the locator card of ``weights`` (copied beside it as
    ``locator.valve_probe.safetensors``) with its weight and the identifier it was fitted for."""
    from .readouts import name_in_locator_card

    identifier = json.loads((Path(weights) / "identifier.json").read_text(encoding="utf-8"))

    def update(card: dict) -> None:
        card.setdefault("verification", {}).update(probe_weight=float(probe_weight),
                                                    probe_fitted_for=identifier["files"]["onnx"]["sha256"])

    return name_in_locator_card(weights, probe, "valve_probe", update)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m valvereader.training.valve_probe", description=__doc__.split("\n")[0])
    parser.add_argument("--films", type=Path, required=True, help="folder of training films (made first when empty)")
    parser.add_argument("--out", type=Path, required=True, help="the probe's safetensors file (a JSON report beside it)")
    parser.add_argument("--weights", type=Path, help="weights folder whose locator and identifier read the films (default: shipped)")
    parser.add_argument("--backgrounds", type=Path, default=Path("../shared/data/skull-radiographs"))
    parser.add_argument("--crops", type=Path, default=Path("../shared/data/csf-shuntvalves"))
    parser.add_argument("--crop-split", type=Path, default=Path("docs/evaluation/identifier/split.json"))
    parser.add_argument("--seed", type=int, default=31)
    parser.add_argument("--per-background", type=int, default=2)
    parser.add_argument("--negatives", type=int, default=2)
    args = parser.parse_args(argv)
    truth = args.films / "ground_truth.csv"
    if not truth.is_file():
        from ..phantoms.realfilm import crops_by_part, read_split, write_films

        crops = crops_by_part(args.crops, args.crop_split)
        write_films(args.backgrounds, read_split()["train"], crops["train"], args.films, args.per_background, args.seed, args.negatives)
    features, labels, groups = candidate_features(args.weights, truth)
    weight, bias, report = fit_probe(features, labels, groups)
    save_probe(args.out, weight, bias)
    report.update(films=str(args.films), seed=args.seed, per_background=args.per_background, negatives=args.negatives)
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
