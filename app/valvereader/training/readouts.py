"""What the locator card's linear read-outs share: the valve probe (``training.valve_probe``) and
the polarity check (``training.polarity``) are logistic regressions on standardised features,
their L2 strength chosen by cross-validation grouped (by background), and each file is copied
beside the locator card and named in its ``files``."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np


def fit_grouped_logistic(features: np.ndarray, labels: np.ndarray, groups: np.ndarray, strengths: Sequence[float],
                         score: Callable[[np.ndarray, np.ndarray], float], higher_is_better: bool, folds: int = 5,
                         max_iter: int = 5000) -> tuple[Any, np.ndarray, np.ndarray, dict[float, float], float, int]:
    """(the model refitted on everything, feature mean, feature scale, held-out ``score(labels,
    log-odds)`` per strength, the strength chosen, the folds used). The features are
    standardised first (``(x - mean) / scale``); the best score wins, a tie the smaller C."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold

    mean, scale = features.mean(axis=0), features.std(axis=0) + 1e-6
    z = (features - mean) / scale
    folds = min(folds, len(set(groups.tolist())))
    scores = {}
    for c in strengths:
        held_out = np.zeros(len(labels))
        for train, test in GroupKFold(folds).split(z, labels, groups):
            held_out[test] = LogisticRegression(C=c, max_iter=max_iter).fit(z[train], labels[train]).decision_function(z[test])
        scores[c] = float(score(labels, held_out))
    sign = 1.0 if higher_is_better else -1.0
    best = max(strengths, key=lambda c: (sign * scores[c], -c))
    return LogisticRegression(C=best, max_iter=max_iter).fit(z, labels), mean, scale, scores, best, folds


def name_in_locator_card(weights: Path, source: Path, role: str, update: Callable[[dict], None]) -> Path:
    """Copy ``source`` beside the locator card of ``weights`` as ``locator.<role>.safetensors``,
    name it under ``files.<role>`` with its sha256, let ``update`` change the card's other
    sections, and write the card; returns its path."""
    import shutil

    from ..model.card import sha256_of

    weights = Path(weights)
    target = weights / f"locator.{role}.safetensors"
    if Path(source).resolve() != target.resolve():
        shutil.copy2(source, target)
    card_path = weights / "locator.json"
    card = json.loads(card_path.read_text(encoding="utf-8"))
    card.setdefault("files", {})[role] = {"path": target.name, "sha256": sha256_of(target)}
    update(card)
    card_path.write_text(json.dumps(card, indent=1) + "\n", encoding="utf-8")
    return card_path
