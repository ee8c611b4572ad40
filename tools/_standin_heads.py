"""Leave-one-class-out runs of a linear head on frozen pooled features, with and without outlier
exposure (tools/openset_standins.py report --heads)."""
from __future__ import annotations

import numpy as np

from valvereader.inference.cards import softmax
from valvereader.training.openset import fit_mahalanobis, tightest_cap


def _head(x: np.ndarray, y: np.ndarray, classes: int, outliers: np.ndarray | None, weight: float = 0.5, steps: int = 300):
    """A linear layer on standardised features: cross-entropy on the known crops, plus (outlier
    exposure) ``weight`` times the cross-entropy of the outliers against a uniform probability."""
    import torch

    torch.manual_seed(0)
    features = torch.tensor(x, dtype=torch.float32)
    mean, scale = features.mean(0), features.std(0) + 1e-6
    layer = torch.nn.Linear(x.shape[1], classes)
    optimiser = torch.optim.Adam(layer.parameters(), 1e-3, weight_decay=1e-4)
    known, target = (features - mean) / scale, torch.tensor(y)
    other = None if outliers is None else (torch.tensor(outliers, dtype=torch.float32) - mean) / scale
    for _ in range(steps):
        optimiser.zero_grad()
        loss = torch.nn.functional.cross_entropy(layer(known), target)
        if other is not None:
            loss = loss + weight * (-layer(other).log_softmax(1).mean(1)).mean()
        loss.backward()
        optimiser.step()
    return lambda z: layer((torch.tensor(z, dtype=torch.float32) - mean) / scale).detach().numpy().astype(np.float64)


def _temperature(logits: np.ndarray, y: np.ndarray) -> float:
    def nll(t: float) -> float:
        return float(-np.log(softmax(logits, t)[np.arange(len(y)), y] + 1e-12).mean())
    return float(min(np.linspace(0.2, 5.0, 97), key=nll))


def loco_heads(train: dict, known: dict, outliers: np.ndarray, stand_ins: dict[str, np.ndarray]) -> dict:
    """Per held-out class: the known validation crops' accuracy and share confident, and the share
    confident of the held-out class's crops and of each stand-in set, for a plain head and one
    trained with outlier exposure. Protocol per run: the shipped open-set statistics' fit
    (``training.openset.fit_mahalanobis``) on the run's training crops; temperature fitted on its
    known validation crops; the probability threshold passes 95 % of them; the cap keeps 90 % of
    them confident (``tightest_cap``)."""
    result: dict = {"plain": {}, "outlier_exposure": {}}
    for held in range(8):
        keep, seen = train["label"] != held, known["label"] != held
        classes = [k for k in range(8) if k != held]
        remap = np.vectorize({k: i for i, k in enumerate(classes)}.get)
        x, y = train["feat"][keep].astype(np.float64), remap(train["label"][keep])
        xv, yv = known["feat"][seen].astype(np.float64), remap(known["label"][seen])
        sets = {"known": xv, "held_out": np.concatenate([train["feat"][~keep], known["feat"][~seen]]).astype(np.float64),
                **{name: f.astype(np.float64) for name, f in stand_ins.items()}}
        stats = fit_mahalanobis(x, y, list(range(7)))
        scores = {name: stats.score(f) for name, f in sets.items()}  # the same for both heads
        for arm, exposure in (("plain", None), ("outlier_exposure", outliers.astype(np.float64))):
            head = _head(x, y, 7, exposure)
            t = _temperature(head(xv), yv)
            probability = {name: softmax(head(f), t).max(1) for name, f in sets.items()}
            threshold = float(np.quantile(probability["known"], 0.05))
            cap = tightest_cap(scores["known"], probability["known"] >= threshold, 0.90)
            confident = {name: round(float(((probability[name] >= threshold) & (scores[name] < cap)).mean()), 4) for name in sets}
            result[arm][str(held)] = {"known_accuracy": round(float((head(xv).argmax(1) == yv).mean()), 4),
                                      "known_confident": confident.pop("known"), "held_out_confident": confident.pop("held_out"),
                                      **confident}
    return result
