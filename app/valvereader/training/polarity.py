"""Fitting the locator card's polarity check (``inference.polarity``): is an image file a negative?

Films are made from the train-split skull radiographs and crops (``phantoms.realfilm``, with and
without a valve, some processed as another machine would), given a random tone curve (a gamma,
a flatter contrast, or none), exported as PNG or JPEG, every other one inverted;
the train-split valve crops, as they are, are added as images never to be inverted. A logistic
regression on the standardised ``polarity_features`` (its L2 strength chosen by 5-fold
cross-validation grouped by background) is written with its standardisation::

    python -m valvereader.training.polarity --out runs/polarity/locator.polarity.safetensors

With ``--part validation`` (and another ``--seed``) it makes the same kind of set from the
validation backgrounds and crops and reports how a fitted check (``--check``) reads it: the
threshold is chosen there. No test background or crop is read.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

STRENGTHS = (0.1, 0.3, 1.0, 3.0)


def tone(display: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random tone curve: a gamma 0.5-2 (40 %), a flatter contrast with an offset (20 %) or none."""
    r = rng.random()
    if r < 0.4:
        display = display ** float(np.exp(rng.uniform(np.log(0.5), np.log(2.0))))
    elif r < 0.6:
        display = 0.5 + (display - 0.5) * rng.uniform(0.5, 1.0) + rng.uniform(-0.15, 0.15)
    return np.clip(display, 0.0, 1.0).astype(np.float32)


def margins(display: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The film inside a wider field: 0-20 % of its size added on each side, white (an
    unexposed, unmasked collimator field) or black (a masked one), half each."""
    h, w = display.shape
    top, bottom = (int(rng.uniform(0.0, 0.2) * h) for _ in range(2))
    left, right = (int(rng.uniform(0.0, 0.2) * w) for _ in range(2))
    value = float(display.max() if rng.random() < 0.5 else display.min())
    return np.pad(display, ((top, bottom), (left, right)), constant_values=value).astype(np.float32)


def polarity_set(backgrounds: Path, crops_dir: Path, crop_split: Path, part: str, per_background: int, seed: int,
                 machine: float = 0.3, limit: int | None = None, margin_share: float = 0.0,
                 features: str | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(features (N, F), inverted labels (N,), group (N,): the background or "crop", kind (N,):
    "film" or "crop") for the ``part`` backgrounds and crops (``limit``: that many backgrounds
    and crops at most, for a smoke run). ``margin_share``: that share of the films, drawn with a
    generator of their own, get a wider field (``margins``) before they are exported."""
    import cv2

    from ..inference.polarity import FEATURES, polarity_features
    from ..phantoms.realfilm import crops_by_part, films, read_split, roundtrip

    features_used = features or FEATURES

    names = read_split()[part]
    crops = crops_by_part(crops_dir, crop_split)[part]
    if limit:
        names, crops = names[:limit], crops[:limit]
    rows: list[np.ndarray] = []
    labels, groups, kinds = [], [], []
    for i, (film, rng) in enumerate(films(backgrounds, names, crops, per_background, seed, negatives=1, machine=machine)):
        fmt = str(rng.choice(["png", "jpeg"]))
        inverted = i % 2 == 1  # every other film
        display = tone(film.pixels, rng)
        if margin_share and (margin_rng := np.random.default_rng([seed, i, 4242])).random() < margin_share:
            display = margins(display, margin_rng)
        rows.append(polarity_features(roundtrip(display, fmt, rng, inverted), features_used))
        labels.append(int(inverted))
        groups.append(film.truth["background"])
        kinds.append("film")
    for crop in crops:
        image = cv2.imread(str(crop.path), cv2.IMREAD_GRAYSCALE)
        if image is None:
            raise ValueError(f"cannot read the crop {crop.path}")
        rows.append(polarity_features(image.astype(np.float32) / 255.0, features_used))
        labels.append(0)
        groups.append("crop:" + crop.source)
        kinds.append("crop")
    return np.stack(rows), np.asarray(labels), np.asarray(groups), np.asarray(kinds)


def fit_check(features: np.ndarray, labels: np.ndarray, groups: np.ndarray, strengths: Sequence[float] = STRENGTHS,
              folds: int = 5) -> tuple[dict[str, np.ndarray], dict]:
    """(tensors mean/scale/weight/bias, report): the logistic regression with the lowest grouped
    cross-validated log-loss, refitted on everything."""
    from sklearn.metrics import log_loss

    from .readouts import fit_grouped_logistic

    if len(set(labels.tolist())) < 2:
        raise ValueError("the check needs images as they are and inverted images")
    model, mean, scale, losses, best, folds = fit_grouped_logistic(
        features, labels, groups, strengths, lambda y, log_odds: log_loss(y, 1.0 / (1.0 + np.exp(-log_odds))), higher_is_better=False,
        folds=folds)
    tensors = {"mean": mean.astype(np.float32), "scale": scale.astype(np.float32), "weight": model.coef_[0].astype(np.float32),
               "bias": np.asarray([model.intercept_[0]], dtype=np.float32)}
    report = {"images": len(labels), "inverted": int(labels.sum()), "groups": len(set(groups.tolist())), "C": best,
              "cross_validated_log_loss": {str(c): round(v, 5) for c, v in losses.items()}, "folds": folds}
    return tensors, report


def read_set(check: Path, features: np.ndarray, labels: np.ndarray, kinds: np.ndarray,
             thresholds: Sequence[float] = (0.5, 0.8, 0.9, 0.95, 0.99)) -> dict:
    """How a fitted check file reads a set: per threshold, images as they are that it would
    invert (films, crops) and inverted films it catches."""
    from safetensors.numpy import load_file

    from ..inference.polarity import PolarityCheck

    t = load_file(str(check))
    p = PolarityCheck(t["mean"], t["scale"], t["weight"], float(t["bias"][0]), 0.5).probabilities(features)
    out: dict = {"films_as_they_are": int(((kinds == "film") & (labels == 0)).sum()),
                 "films_inverted": int(((kinds == "film") & (labels == 1)).sum()), "crops": int((kinds == "crop").sum())}
    for th in thresholds:
        out[str(th)] = {"films_turned_wrongly": int(((p >= th) & (labels == 0) & (kinds == "film")).sum()),
                        "crops_turned": int(((p >= th) & (kinds == "crop")).sum()),
                        "inverted_films_caught": int(((p >= th) & (labels == 1)).sum())}
    return out


def attach_check(weights: Path, check: Path, threshold: float, features: str | None = None) -> Path:
    """Name ``check`` in the locator card of ``weights`` (copied beside it as
    ``locator.polarity.safetensors``) with its threshold and feature set."""
    from ..inference.polarity import FEATURES
    from .readouts import name_in_locator_card

    def update(card: dict) -> None:
        card["polarity"] = {**(card.get("polarity") or {}), "features": features or FEATURES, "threshold": float(threshold)}

    return name_in_locator_card(weights, check, "polarity", update)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m valvereader.training.polarity", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, help="the check's safetensors file (a JSON report beside it)")
    parser.add_argument("--check", type=Path, help="with --part validation: the fitted check to read the set with")
    parser.add_argument("--part", choices=("train", "validation"), default="train")
    parser.add_argument("--backgrounds", type=Path, default=Path("../shared/data/skull-radiographs"))
    parser.add_argument("--crops", type=Path, default=Path("../shared/data/csf-shuntvalves"))
    parser.add_argument("--crop-split", type=Path, default=Path("docs/evaluation/identifier/split.json"))
    parser.add_argument("--seed", type=int, default=601)
    parser.add_argument("--per-background", type=int, default=4)
    parser.add_argument("--margins", type=float, default=0.0, help="share of the films given a wider white or black field")
    parser.add_argument("--features", default=None, help="the feature set (default: the newest, inference.polarity.FEATURES)")
    parser.add_argument("--attach", type=Path, metavar="WEIGHTS", help="after fitting: name the check in this weights folder's locator card")
    parser.add_argument("--threshold", type=float, default=0.9, help="with --attach: the card's threshold")
    args = parser.parse_args(argv)
    features, labels, groups, kinds = polarity_set(args.backgrounds, args.crops, args.crop_split, args.part,
                                                   args.per_background, args.seed, margin_share=args.margins,
                                                   features=args.features)
    if args.part == "validation":
        if args.check is None:
            parser.error("--part validation needs --check")
        report = read_set(args.check, features, labels, kinds)
        report.update(seed=args.seed, per_background=args.per_background, margins=args.margins)
        print(json.dumps(report, indent=1))
        return 0
    if args.out is None:
        parser.error("--out is needed to fit the check")
    from safetensors.numpy import save_file

    tensors, report = fit_check(features, labels, groups)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(args.out))
    from ..inference.polarity import FEATURES

    report.update(seed=args.seed, per_background=args.per_background, margins=args.margins, features=args.features or FEATURES)
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    if args.attach is not None:
        attach_check(args.attach, args.out, args.threshold, args.features)
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
