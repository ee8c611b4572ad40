"""Fit the identifier's film-region head (``valvereader.inference.film_head``) on regions cut
from training films, and write it beside a shipped identifier.

    python -m valvereader.training.film_head --regions DIR [DIR ...] --weights DIR --version 2.4.0

``--regions``: what ``python -m valvereader.training.film_regions`` wrote (``film_regions.json``
and ``film_regions_<size>.npy`` at the identifier card's input size). The shipped identifier
reads every region as the program reads a view (its mirror reading included); its pooled
features and logits stay as they are. The head is multinomial logistic regression on the
standardised pooled features with the shipped logits as an offset (a correction of them), class
weights inverse to the regions' class counts, L2 weight decay, fitted by L-BFGS. The weight
decay is chosen by 5-fold cross-validation over the training films' backgrounds (a background's
films never on both sides), by the share of true-box regions named right; the head is then
fitted on every region. Nothing from validation or test films is read.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
from pathlib import Path

import numpy as np

HEAD_FILE = "identifier.film_head.safetensors"
BACKGROUNDS = ("the training films' backgrounds are lateral skull radiographs without a valve of the ISBI 2015 cephalometric "
               "challenge (Tri-Service General Hospital, Taiwan): C.-W. Wang et al., Medical Image Analysis 31 (2016) 63-76, "
               "doi:10.1016/j.media.2016.02.004; C.-W. Wang et al., IEEE TMI 34(9), 2015")
LICENCE = "the film head is fitted on films made from research-use radiographs: research use only"
DECAYS = (1e-4, 1e-3, 1e-2, 0.1, 0.3)
FOLDS = 5


def region_features(weights: Path, regions: Path, batch: int = 8) -> dict[str, np.ndarray]:
    """The shipped identifier's outputs for every region: ``pooled`` (N, C: the mean of the view's
    and, with the mirror reading, its mirror image's pooled features) and ``logits`` (N, K), plus
    the regions' labels, backgrounds and variants (0: the true box)."""
    from ..inference.film_head import film_pooled
    from ..inference.predictor import load_predictor

    predictor = load_predictor(weights, device="cpu")
    size = predictor.identifier_card.input_size
    path = regions / f"film_regions_{size}.npy"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: cut the regions at the identifier's input size {size} (film_regions --sizes)")
    meta = json.loads((regions / "film_regions.json").read_text(encoding="utf-8"))
    if list(meta.get("class_ids", predictor.valve_ids)) != list(predictor.valve_ids):
        raise ValueError(f"{regions}: the regions' classes differ from the identifier's")
    images = np.load(path, mmap_mode="r")
    pooled, logits = [], []
    for start in range(0, len(images), batch):
        outputs = predictor._run_identifier(np.asarray(images[start : start + batch], np.float32)[:, None] / 255.0)
        pooled.append(film_pooled(outputs).astype(np.float32))
        logits.append(outputs["logits"].astype(np.float32))
    return {"pooled": np.concatenate(pooled), "logits": np.concatenate(logits), "label": np.asarray(meta["label"]),
            "background": np.asarray(meta["background"]), "variant": np.asarray(meta["variant"])}


def fit_head(pooled: np.ndarray, logits: np.ndarray, labels: np.ndarray, decay: float,
             iterations: int = 300) -> tuple[np.ndarray, np.ndarray]:
    """(weight (K, C), bias (K,)) of the correction: softmax(logits + pooled @ weight.T + bias)
    fitted to ``labels`` (class-weighted cross-entropy + ``decay`` × the squared weights of the
    standardised features; the standardisation is folded into the returned weight and bias)."""
    import torch

    mean, scale = pooled.mean(axis=0), pooled.std(axis=0) + 1e-6
    x = torch.tensor((pooled - mean) / scale, dtype=torch.float32)
    offset = torch.tensor(logits, dtype=torch.float32)
    y = torch.tensor(labels, dtype=torch.long)
    classes = logits.shape[1]
    counts = torch.bincount(y, minlength=classes).float()
    class_weight = counts.sum() / (classes * counts.clamp(min=1))
    weight = torch.zeros(x.shape[1], classes, requires_grad=True)
    bias = torch.zeros(classes, requires_grad=True)
    optimiser = torch.optim.LBFGS([weight, bias], max_iter=iterations, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        loss = torch.nn.functional.cross_entropy(x @ weight + bias + offset, y, weight=class_weight) + decay * (weight**2).sum()
        loss.backward()
        return loss

    optimiser.step(closure)
    w = weight.detach().numpy() / scale[:, None]  # (C, K) on the raw pooled features
    b = bias.detach().numpy() - mean @ w
    return np.ascontiguousarray(w.T.astype(np.float32)), b.astype(np.float32)


def named_right(pooled: np.ndarray, logits: np.ndarray, labels: np.ndarray, head: tuple[np.ndarray, np.ndarray] | None) -> np.ndarray:
    """Per region: whether the (corrected) logits name its valve."""
    from ..inference.film_head import FilmHead

    if head is not None:
        logits = FilmHead(*head).corrected(logits, pooled)
    return np.asarray(logits.argmax(axis=1) == labels)


def _folds(backgrounds: np.ndarray, seed: int) -> np.ndarray:
    names = np.unique(backgrounds)
    fold_of = dict(zip(names, np.random.default_rng(seed).integers(0, FOLDS, len(names))))
    return np.array([fold_of[b] for b in backgrounds])


def joined(sets: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Several region sets as one; ``source`` numbers each region's set."""
    keys = ("pooled", "logits", "label", "background", "variant")
    data = {key: np.concatenate([s[key] for s in sets]) for key in keys}
    data["source"] = np.concatenate([np.full(len(s["label"]), i) for i, s in enumerate(sets)])
    return data


def _out_of_fold(data: dict[str, np.ndarray], folds: np.ndarray, decay: float) -> np.ndarray:
    """Each region's corrected logits from the head fitted at ``decay`` on the other folds."""
    from ..inference.film_head import FilmHead

    held_out = np.zeros(data["logits"].shape, dtype=np.float32)
    for k in range(FOLDS):
        train, held = folds != k, folds == k
        head = fit_head(data["pooled"][train], data["logits"][train], data["label"][train], decay)
        held_out[held] = FilmHead(*head).corrected(data["logits"][held], data["pooled"][held])
    return held_out


def cross_validate(sets: list[dict[str, np.ndarray]], decays: tuple[float, ...] = DECAYS,
                   seed: int = 0) -> tuple[dict, np.ndarray]:
    """Cross-validation by background (each set's backgrounds in 5 folds): for each decay, the
    share of held-out true-box regions named right in each set; the chosen decay is the best on
    the first set (a tie goes to the larger decay). Returns that choice and, at the chosen decay,
    every region's held-out corrected logits (what :func:`fit_temperature` reads)."""
    data = joined(sets)
    folds = np.concatenate([_folds(s["background"], seed) for s in sets])
    true_box = data["variant"] == 0
    scores: dict[str, list[float]] = {}
    held_out: dict[float, np.ndarray] = {}
    for decay in decays:
        held_out[decay] = _out_of_fold(data, folds, decay)
        right = held_out[decay].argmax(axis=1) == data["label"]
        scores[repr(decay)] = [round(float(right[true_box & (data["source"] == i)].mean()), 4) for i in range(len(sets))]
    best = max(decays, key=lambda d: (scores[repr(d)][0], d))
    plain = named_right(data["pooled"], data["logits"], data["label"], None)
    without = [round(float(plain[true_box & (data["source"] == i)].mean()), 4) for i in range(len(sets))]
    if len(sets) == 1:  # one set: plain numbers
        choice = {"decay": best, "cross_validation": {k: v[0] for k, v in scores.items()}, "without_head": without[0],
                  "folds": FOLDS, "seed": seed}
    else:
        choice = {"decay": best, "cross_validation": scores, "without_head": without, "folds": FOLDS, "seed": seed}
    return choice, held_out[best]


def choose_decay(sets: list[dict[str, np.ndarray]], decays: tuple[float, ...] = DECAYS, seed: int = 0) -> dict:
    """:func:`cross_validate`'s choice alone."""
    return cross_validate(sets, decays, seed)[0]


def fit_temperature(held_out: np.ndarray, labels: np.ndarray) -> float:
    """The film-region temperature: the T that gives held-out corrected logits (N, K; the head
    fitted on the other folds, :func:`cross_validate`) divided by T the least cross-entropy."""
    import torch

    logits, target = torch.tensor(held_out, dtype=torch.float64), torch.tensor(labels, dtype=torch.long)
    log_t = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    optimiser = torch.optim.LBFGS([log_t], max_iter=100, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        loss = torch.nn.functional.cross_entropy(logits / torch.exp(log_t), target)
        loss.backward()
        return loss

    optimiser.step(closure)
    return round(float(torch.exp(log_t.detach())), 4)


def write_head(weights: Path, head: tuple[np.ndarray, np.ndarray], section: dict, version: str | None,
               recipe: str | None = None) -> Path:
    """Write the head's safetensors beside the card and name it there (``files.film_head`` with
    its sha256, the ``film_head`` section; ``version`` replaces the card's and the card's
    ``training.reshipped`` says so; ``recipe`` becomes its ``training.reproduce``); the card's
    Markdown twin, where it has one, is rewritten."""
    from safetensors.numpy import save_file

    from ..model.card import sha256_of
    from .ship import _rewrite_card

    path = weights / HEAD_FILE
    save_file({"weight": head[0], "bias": head[1]}, str(path))
    digest = sha256_of(path)

    def edit(data: dict) -> None:
        data.setdefault("files", {})["film_head"] = {"path": HEAD_FILE, "sha256": digest}
        network = ((data.get("files") or {}).get("onnx") or {}).get("sha256")
        data["film_head"] = {**section, **({"fitted_for": network} if network else {})}  # the network whose features it reads
        reshipped(data, version, "the film-region head added (see 'Regions cut from a film')", recipe)

    _rewrite_card(weights / "identifier.json", edit)
    return path


def reshipped(data: dict, version: str | None, change: str, recipe: str | None = None) -> None:
    """A card's data shipped again as ``version`` with ``change`` (its ``training.reshipped``
    says so; nothing where the version is the card's own), ``recipe`` its ``training.reproduce``."""
    if version and str(version) != data.get("version"):
        training = data.setdefault("training", {})
        step = f"as {version} on {datetime.date.today().isoformat()}: every file of {data.get('version')} unchanged, {change}"
        training["reshipped"] = f"{training['reshipped']}; {step}" if training.get("reshipped") else step
        data["version"] = str(version)
    if recipe:
        data.setdefault("training", {})["reproduce"] = (
            f"valvereader train --recipe {recipe} --data csf-shuntvalves --out OUT, then the recipe's after lines "
            f"(app/valvereader/training/recipes/{recipe}.json)")


def _described(folder: Path, count: int) -> str:
    """What a region set is, from its film_regions.json."""
    meta = json.loads((folder / "film_regions.json").read_text(encoding="utf-8"))
    if meta.get("part") == "synthetic":
        return (f"{count} regions of {meta.get('backgrounds')} synthetic radiographs (drawn skulls with train-split crops "
                f"or drawn catalogue valves; film_regions --synthetic, regions seed {meta.get('seed')})")
    return (f"{count} regions of {meta.get('backgrounds')} train-split skull radiographs with {meta.get('crops')} train-split "
            f"crops blended in (film_regions, seed {meta.get('seed')}, {meta.get('per_background')} films each; the true box "
            f"and a jittered box per film)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m valvereader.training.film_head", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--regions", type=Path, required=True, nargs="+",
                        help="film_regions' output folders (train part); the weight decay is chosen for the first")
    parser.add_argument("--weights", type=Path, required=True, help="the identifier's folder: read, and the head written there")
    parser.add_argument("--version", default=None, help="the card's new version")
    parser.add_argument("--recipe", default=None, help="the committed recipe that makes this card (its training.reproduce)")
    parser.add_argument("--decays", default=",".join(repr(d) for d in DECAYS), help="weight decays tried by cross-validation")
    parser.add_argument("--temperature", default=None, metavar="fit|T",
                        help="divide a film region's corrected logits by T: 'fit' chooses it out of fold over the backgrounds "
                             "(least cross-entropy); default none (T = 1)")
    args = parser.parse_args(argv)
    began = time.time()
    try:
        sets = [region_features(args.weights, folder) for folder in args.regions]
        decays = tuple(float(d) for d in args.decays.split(","))
        choice, held_out = cross_validate(sets, decays)
        data = joined(sets)
        head = fit_head(data["pooled"], data["logits"], data["label"], choice["decay"])
        temperature = None
        if args.temperature == "fit":
            temperature = fit_temperature(held_out, data["label"])
        elif args.temperature is not None:
            from ..inference.film_head import FilmHead

            temperature = float(args.temperature)
            FilmHead(*head, temperature)  # refuses a temperature that is not a positive number
        section = {
            "formula": "for a region covering less than 80 % of its image (a located or reader's box on a film): "
                       "logits = logits + pooled @ weight.T + bias, pooled = the mean over the spatial axes of 'features' "
                       "(with the mirror reading, the mean of the view's and its mirror image's); the open-set score is unchanged",
            "fitted_on": "; ".join(_described(folder, len(s["label"])) for folder, s in zip(args.regions, sets)),
            "method": "logistic regression on the standardised pooled features, the shipped logits as offset, "
                      "inverse-frequency class weights, L2 weight decay chosen by cross-validation over backgrounds, L-BFGS",
            "backgrounds": BACKGROUNDS,
            "licence": LICENCE,
            "weight_decay": choice["decay"],
            **({"temperature": temperature,
                "temperature_fitted": "out of fold over the backgrounds: 5 folds, the head at the chosen weight decay, "
                                      "the least cross-entropy of the held-out regions" if args.temperature == "fit" else "given"}
               if temperature is not None else {}),
            "cross_validation": {"true_box_named_right": choice["cross_validation"], "without_head": choice["without_head"],
                                 "folds": choice["folds"], "grouped_by": "background",
                                 **({"sets": "per set, in the order of fitted_on; the decay chosen on the first"} if len(sets) > 1 else {})},
        }
        path = write_head(args.weights, head, section, args.version, args.recipe)
    except (OSError, ValueError, KeyError) as exc:
        print(f"film_head: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({"head": str(path), **choice, **({"temperature": temperature} if temperature is not None else {}),
                      "seconds": round(time.time() - began, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
