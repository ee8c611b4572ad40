"""Leave-one-class-out runs of a linear head on frozen pooled features, with and without outlier
exposure (tools/openset_standins.py report --heads)."""
from __future__ import annotations

import numpy as np


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _softmax(logits: np.ndarray, temperature: float) -> np.ndarray:
    z = logits / temperature
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


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
        return float(-np.log(_softmax(logits, t)[np.arange(len(y)), y] + 1e-12).mean())
    return float(min(np.linspace(0.2, 5.0, 97), key=nll))


def loco_heads(train: dict, known: dict, outliers: np.ndarray, stand_ins: dict[str, np.ndarray]) -> dict:
    """Per held-out class: the known validation crops' accuracy and share confident, and the share
    confident of the held-out class's crops and of each stand-in set, for a plain head and one
    trained with outlier exposure. Protocol per run: Mahalanobis statistics (class means, shared
    Ledoit-Wolf precision of the L2-normalised features) of the run's training crops; temperature
    fitted on its known validation crops; the probability threshold passes 95 % of them; the cap
    keeps 90 % of them confident."""
    from sklearn.covariance import LedoitWolf

    result: dict = {"plain": {}, "outlier_exposure": {}}
    for held in range(8):
        keep, seen = train["label"] != held, known["label"] != held
        classes = [k for k in range(8) if k != held]
        remap = np.vectorize({k: i for i, k in enumerate(classes)}.get)
        x, y = train["feat"][keep].astype(np.float64), remap(train["label"][keep])
        xv, yv = known["feat"][seen].astype(np.float64), remap(known["label"][seen])
        unseen = np.concatenate([train["feat"][~keep], known["feat"][~seen]]).astype(np.float64)
        z = _unit(x)
        means = np.stack([z[y == c].mean(0) for c in range(7)])
        precision = LedoitWolf().fit(z - means[y]).precision_
        values, vectors = np.linalg.eigh((precision + precision.T) / 2)
        whiten = (vectors * np.sqrt(np.clip(values, 0, None))).T

        def score(f: np.ndarray, whiten: np.ndarray = whiten, means: np.ndarray = means @ whiten.T) -> np.ndarray:
            p = _unit(f) @ whiten.T
            return np.sqrt(((p[:, None, :] - means[None]) ** 2).sum(2)).min(1)

        s_known = score(xv)
        for arm, exposure in (("plain", None), ("outlier_exposure", outliers.astype(np.float64))):
            head = _head(x, y, 7, exposure)
            t = _temperature(head(xv), yv)
            p_known = _softmax(head(xv), t).max(1)
            threshold = float(np.quantile(p_known, 0.05))
            cap = float(np.sort(s_known[p_known >= threshold])[int(np.ceil(0.90 * len(s_known))) - 1]) + 1e-9

            def confident(f: np.ndarray, rule: tuple = (head, t, threshold, cap)) -> float:
                reader, temperature, least, most = rule
                return round(float(((_softmax(reader(f), temperature).max(1) >= least) & (score(f) <= most)).mean()), 4)
            result[arm][str(held)] = {"known_accuracy": round(float((head(xv).argmax(1) == yv).mean()), 4),
                                      "known_confident": confident(xv), "held_out_confident": confident(unseen),
                                      **{name: confident(f.astype(np.float64)) for name, f in stand_ins.items()}}
    return result
