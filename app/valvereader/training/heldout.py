"""Evaluation of a training run: held-out test, thresholds and open-set from validation,
optional cross-validation and linear probe. Writes metrics.json, figures and report.md."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..errors import DatasetError
from ..preprocess import Preprocess
from .datasets import Sample, prepare_all
from .evaluate import Metrics, choose_thresholds, classification_metrics, summarise
from .openset import (
    energy_score,
    fit_mahalanobis,
    leave_one_class_out,
    mahalanobis_scorer,
    save_openset,
    softmax,
)
from .splits import Split, cross_validation_splits, grouped_stratified_folds

OPENSET_FILE = "openset.safetensors"
PREDICTIONS_FILE = "predictions.npz"
# L2-normalised pooled features: in the eight honest leave-one-class-out runs (backbones that never
# saw the held-out valve) the score tells an unseen valve 0.04-0.05 AUROC better than on raw
# features, on both the selection half and the test half (docs/evaluation/openset_scores.json,
# 2026-11-26). The program's scorer (inference.open_set.OpenSetScorer) normalises the same way.
SHIPPED_NORMALISE = "l2"
# The program's view choice (located square or whole image, inference.predictor.Predictor) compares this
# score between views. On raw features it was chosen and validated (docs/evaluation/pipelines.md,
# "View choice"); the L2 score chose worse on validation crops (0.962 against 0.981 with 1.2.0's
# network, docs/evaluation/view_rule/validation_l2_score_not_used_for_views.md), so it keeps its own statistics.
VIEW_NORMALISE = "none"
VIEW_OPENSET_FILE = "openset_view.safetensors"


def _cached_predictions(run: Path, model, images, split: Split, device, predict_arrays) -> dict:
    """Logits and pooled features of each part, cached beside the model (keyed by its mtime)."""
    weights = run / "model.safetensors"
    stamp = str(weights.stat().st_mtime_ns) if weights.is_file() else "checkpoint"
    path = run / PREDICTIONS_FILE
    if path.is_file():
        with np.load(path) as cached:
            if str(cached["stamp"]) == stamp and all(f"{p}_indices" in cached and np.array_equal(cached[f"{p}_indices"], getattr(split, p))
                                                    for p in ("train", "validation", "test")):
                return {p: (cached[f"{p}_logits"], cached[f"{p}_pooled"]) for p in ("train", "validation", "test")}
    outputs, arrays = {}, {"stamp": np.array(stamp)}
    for part in ("train", "validation", "test"):
        indices = getattr(split, part)
        print(f"predicting {part} ({len(indices)} images)", file=sys.stderr)
        outputs[part] = predict_arrays(model, images, indices, device, progress=True)
        arrays.update({f"{part}_indices": indices, f"{part}_logits": outputs[part][0], f"{part}_pooled": outputs[part][1]})
    np.savez(path, **arrays)  # type: ignore[arg-type]  # numpy's stub: a **dict might fill allow_pickle
    return outputs


def load_run_data(run: Path, cache_dir: Path | None = None):
    """(model, card, samples, labels, split, images) of a run folder."""
    from .train import load_trained

    model, card = load_trained(run)
    split_path = run / "split.json"
    if not split_path.is_file():
        raise DatasetError(f"{split_path} missing: evaluate needs the split written by `valvereader train`")
    saved = json.loads(split_path.read_text(encoding="utf-8"))
    samples = [Sample(Path(p), label, g) for p, label, g in zip(saved["paths"], saved["labels"], saved["patient_ids"])]
    class_ids = card["class_ids"]
    labels = np.array([class_ids.index(s.label) for s in samples], dtype=np.int64)
    split = Split.from_dict(saved["split"])
    preprocess = Preprocess(**card["preprocessing"])
    images = np.asarray(prepare_all(samples, preprocess, cache_dir or run.parent / "cache"))
    return model, card, samples, labels, split, images, saved


def _loco_with_logits(logits: np.ndarray, labels: np.ndarray, num_classes: int) -> dict[int, float]:
    """Max-softmax AUROC per held-out class, the held-out class's logit removed."""
    from .openset import auroc

    out = {}
    for c in range(num_classes):
        unseen = labels == c
        if not unseen.any() or unseen.all():
            continue
        rest = np.delete(logits, c, axis=1)
        score = 1 - softmax(rest).max(axis=1)
        out[c] = auroc(score[~unseen], score[unseen])
    return out


TEMPERATURE_BOUNDS = (0.05, 20.0)


def negative_log_likelihood(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of the true labels under softmax(logits / temperature)."""
    scaled = np.asarray(logits, dtype=np.float64) / float(temperature)
    labels = np.asarray(labels, dtype=int)
    # -energy is logsumexp, the softmax's log normaliser.
    return float(np.mean(-energy_score(scaled) - scaled[np.arange(len(labels)), labels]))


def fit_temperature(logits: np.ndarray, labels: np.ndarray, bounds: tuple[float, float] = TEMPERATURE_BOUNDS,
                    tolerance: float = 1e-5) -> float:
    """Temperature scaling: the single T > 0 minimising the NLL of softmax(logits / T).

    Golden-section search on log T within ``bounds`` (the NLL is convex in 1/T, so unimodal in
    log T). Fit it on validation logits only; argmax (accuracy) does not change with T.
    """
    lo, hi = np.log(bounds[0]), np.log(bounds[1])
    ratio = (np.sqrt(5.0) - 1.0) / 2.0

    def loss(log_t: float) -> float:
        return negative_log_likelihood(logits, labels, float(np.exp(log_t)))

    a, b = lo + (1 - ratio) * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = loss(a), loss(b)
    while hi - lo > tolerance:
        if fa <= fb:
            hi, b, fb = b, a, fa
            a = lo + (1 - ratio) * (hi - lo)
            fa = loss(a)
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = loss(b)
    best = (lo + hi) / 2.0
    # The search stays inside the bounds; prefer an end point if the loss is lower there.
    candidates = [(loss(x), x) for x in (np.log(bounds[0]), best, np.log(bounds[1]))]
    return float(np.exp(min(candidates)[1]))


def _named(per_class: dict[int, float], class_ids: Sequence[str]) -> dict[str, float]:
    return {class_ids[c]: round(v, 4) for c, v in per_class.items()}


def _mean(per_class: dict[int, float]) -> float:
    return float(np.mean(list(per_class.values()))) if per_class else float("nan")


def frozen_features(arch: str, images: np.ndarray, cache: Path | None, device) -> np.ndarray:
    """Pooled ImageNet features (no valve training) of all images, cached as .npy."""
    import torch

    from ..model.architectures import build_model
    from .train import predict_arrays

    path = None
    if cache is not None:
        path = cache / f"frozen-{arch}-{len(images)}-{images.shape[1]}-{float(images[:4].sum()):.4f}.npy"
        if path.is_file():
            return np.load(path)
    model = build_model(arch, 2, pretrained=True)
    _, pooled = predict_arrays(model, images, np.arange(len(images)), torch.device(device or "cpu"), progress=True)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, pooled.astype(np.float32))
    return pooled


def _logistic(train_x, train_y, classes):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=0.5, max_iter=2000, class_weight="balanced")).fit(train_x, train_y)


def linear_probe(features, labels, groups, class_ids, folds: int, seed: int = 0) -> dict:
    """K-fold grouped CV of a logistic regression on frozen features, and its LOCO AUROC."""
    k = len(class_ids)
    runs: list[Metrics] = []
    loco: dict[str, list[dict[int, float]]] = {"max_softmax": [], "mahalanobis_l2": []}
    for fold, test in enumerate(grouped_stratified_folds(labels, groups, k=folds, seed=seed)):
        train = np.setdiff1d(np.arange(len(labels)), test)
        model = _logistic(features[train], labels[train], k)
        probabilities = np.zeros((len(test), k))
        probabilities[:, model.classes_] = model.predict_proba(features[test])
        runs.append(classification_metrics(labels[test], probabilities, class_ids))

        def msp(train_x, train_y, test_x, known):
            fitted = _logistic(train_x, train_y, len(known))
            return 1 - fitted.predict_proba(test_x).max(axis=1)

        if fold == 0:  # one fold is enough for the open-set comparison and keeps this cheap
            result = leave_one_class_out(features[train], labels[train], features[test], labels[test], k,
                                         {"max_softmax": msp, "mahalanobis_l2": mahalanobis_scorer("l2")})
            for name, per_class in loco.items():
                per_class.append(result[name])
    return {
        "protocol": f"{folds}-fold stratified CV grouped by patient id (one group per image where none), "
        "logistic regression on frozen ImageNet pooled features",
        "folds": [m.as_dict() for m in runs],
        "summary": summarise(runs),
        "loco_auroc_frozen": {name: {"per_class": _named(v[0], class_ids), "mean": round(_mean(v[0]), 4)} for name, v in loco.items()},
    }


def cross_validate(run: Path, card, images, labels, groups, class_ids, folds: int, epochs: int | None, device) -> dict:
    """Train ``folds`` models with the run's recipe on grouped folds; metrics per fold and mean ± SD."""
    import torch

    from .train import TrainConfig, predict_arrays, train_model

    config = TrainConfig.from_dict(card["config"])
    budget = ""
    if epochs and epochs != config.epochs:
        budget = f" (the run itself trained {config.epochs}: a shorter budget, not the run's model)"
        config = replace(config, epochs=epochs)
    runs = []
    for i, s in enumerate(cross_validation_splits(labels, groups, k=folds, seed=0)):
        folder = run / "cv" / f"fold{i + 1}"
        resume = (folder / "checkpoint.json").is_file()
        model, _ = train_model(config, images, labels, s.train, s.validation, folder, class_ids, resume=resume, device=device)
        logits, _ = predict_arrays(model, images, s.test, torch.device("cpu"))
        runs.append(classification_metrics(labels[s.test], softmax(logits), class_ids))
    return {"protocol": f"{folds}-fold stratified CV grouped by patient, {config.epochs} epochs each{budget}",
            "folds": [m.as_dict() for m in runs], "summary": summarise(runs)}


def evaluate_run(run: Path, out: Path, device=None, cache_dir=None, cam_examples: int = 12, cv_folds: int = 0,
                 cv_epochs: int | None = None, linear_probe_folds: int = 0) -> dict:
    import torch

    from .figures import (
        class_activation_maps,
        plot_attention_grid,
        plot_confusion,
        plot_reliability,
    )
    from .report import write_report
    from .train import predict_arrays

    run, out = Path(run), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model, card, samples, labels, split, images, saved = load_run_data(run, cache_dir)
    class_ids = card["class_ids"]
    k = len(class_ids)
    torch_device = torch.device(device or "cpu")
    model = model.to(torch_device)
    outputs = _cached_predictions(run, model, images, split, torch_device, predict_arrays)
    results: dict = {"run": str(run), "grouping": saved.get("grouping"), "class_ids": class_ids,
                     "split_sizes": {p: len(getattr(split, p)) for p in ("train", "validation", "test")}}
    # Open-set statistics from the training images; thresholds from validation only. An ensemble
    # may fit them on the features of its first members only (model.json "openset_features").
    channels = card.get("openset_features")
    pooled = {p: outputs[p][1][:, slice(*channels)] if channels else outputs[p][1] for p in outputs}
    stats = fit_mahalanobis(pooled["train"], labels[split.train], range(k), normalise=SHIPPED_NORMALISE)
    save_openset(run / OPENSET_FILE, stats)
    if VIEW_NORMALISE != SHIPPED_NORMALISE:
        save_openset(run / VIEW_OPENSET_FILE, fit_mahalanobis(pooled["train"], labels[split.train], range(k), normalise=VIEW_NORMALISE))
    ood = {p: stats.score(pooled[p]) for p in outputs}
    # Temperature scaling fitted on the validation logits only; every probability below
    # (metrics, figures, thresholds, verdicts) is softmax(logits / T).
    val_true, test_true = labels[split.validation], labels[split.test]
    temperature = fit_temperature(outputs["validation"][0], val_true)

    def probabilities(part: str) -> np.ndarray:
        return softmax(outputs[part][0] / temperature)

    test_ece_before = classification_metrics(test_true, softmax(outputs["test"][0]), class_ids).ece
    for part in ("validation", "test"):
        metrics = classification_metrics(labels[getattr(split, part)], probabilities(part), class_ids)
        results[part] = {"metrics": metrics.as_dict(), "ood_score_quantiles": np.quantile(ood[part], [0.5, 0.95, 0.99]).round(4).tolist()}
        title = f"{card['arch']} {card['input_size']} px, {part} (n={metrics.n}, T={temperature:.2f})"
        plot_confusion(metrics.normalised_confusion(), class_ids, out / f"confusion_{part}.png", title)
        plot_reliability(metrics.reliability, metrics.ece, out / f"reliability_{part}.png", title)
    results["calibration"] = {
        "method": "temperature scaling", "temperature": temperature, "fitted_on": "validation",
        "validation_nll_before": negative_log_likelihood(outputs["validation"][0], val_true),
        "validation_nll_after": negative_log_likelihood(outputs["validation"][0], val_true, temperature),
        "test_ece_before": float(test_ece_before), "test_ece_after": float(results["test"]["metrics"]["ece"]),
    }
    thresholds, effect = choose_thresholds(probabilities("validation"), val_true, ood["validation"])
    test_probs = probabilities("test")
    verdicts = [thresholds.verdict(float(c), float(o)) for c, o in zip(test_probs.max(1), ood["test"])]
    test_correct = test_probs.argmax(1) == test_true
    names = np.array([v.value for v in verdicts])
    results["thresholds"] = {"values": vars(thresholds), "chosen_on": "validation", "probabilities": f"softmax(logits / {temperature:.4f})",
                             "effect_on_validation": effect,
                             "effect_on_test": {"confident_share": float(np.mean(names == "confident")),
                                                "confident_accuracy": float(test_correct[names == "confident"].mean()) if np.any(names == "confident") else None,
                                                "review_share": float(np.mean(names == "review")),
                                                "unknown_share": float(np.mean(names == "unknown"))}}
    # Leave-one-class-out on the trained model's features (its backbone saw every class, so
    # this is optimistic) and, with --linear-probe, on features that never saw a valve.
    train_pooled, test_pooled = pooled["train"], pooled["test"]
    loco = leave_one_class_out(train_pooled, labels[split.train], test_pooled, labels[split.test], k,
                               {"mahalanobis_l2": mahalanobis_scorer("l2"), "mahalanobis_raw": mahalanobis_scorer("none")})
    loco["max_softmax_drop_class"] = _loco_with_logits(outputs["test"][0] / temperature, labels[split.test], k)
    results["openset"] = {
        "method": "mahalanobis", "normalise": SHIPPED_NORMALISE, "features": list(channels) if channels else None,
        "view_normalise": VIEW_NORMALISE if VIEW_NORMALISE != SHIPPED_NORMALISE else None,
        "loco_auroc_finetuned": {name: {"per_class": _named(v, class_ids), "mean": round(_mean(v), 4)} for name, v in loco.items()},
        "energy_auroc_note": "energy and max softmax are reported for comparison only",
    }
    _ = energy_score  # kept importable for comparisons in notebooks
    # Attention grid: the least confident right answers and all wrong ones (up to the limit).
    test_idx = split.test
    conf = test_probs.max(1)
    wrong = np.flatnonzero(~test_correct)[: cam_examples // 2]
    right = np.flatnonzero(test_correct)[np.argsort(conf[test_correct])][: cam_examples - len(wrong)]
    chosen = np.r_[wrong, right].astype(int)
    if len(chosen):
        with torch.no_grad():
            x = torch.from_numpy(np.asarray(images[test_idx[chosen]], dtype=np.float32)).unsqueeze(1).to(torch_device)
            _, feats = model(x)
        predicted = test_probs.argmax(1)[chosen]
        cams = class_activation_maps(model.classifier.weight.detach().cpu().numpy(), feats.cpu().numpy(), predicted)
        titles = [("WRONG " if not test_correct[i] else "") + f"true {class_ids[labels[test_idx[i]]][:18]}\npred {class_ids[predicted[j]][:18]} {conf[i]:.2f}"
                  for j, i in enumerate(chosen)]
        plot_attention_grid(np.asarray(images[test_idx[chosen]]), cams, titles, out / "attention_test.png")
    if linear_probe_folds:
        groups = [s.patient_id for s in samples]
        frozen = frozen_features(card["arch"], images, cache_dir or run.parent / "cache", device)
        results["linear_probe"] = linear_probe(frozen, labels, groups, class_ids, linear_probe_folds)
    if cv_folds:
        groups = [s.patient_id for s in samples]
        results["cross_validation"] = cross_validate(run, card, images, labels, groups, class_ids, cv_folds, cv_epochs, device)
    results["card"] = {k2: card[k2] for k2 in ("arch", "input_size", "preprocessing", "config", "history", "duration_s", "hardware") if k2 in card}
    (out / "metrics.json").write_text(json.dumps(results, indent=1, default=float), encoding="utf-8")
    write_report(results, out / "report.md")
    return results
