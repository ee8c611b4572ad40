"""Open-set scores: how unlike the training valves an image's pooled features are.

The shipped score is a Mahalanobis distance (Lee et al. 2018) computed with numpy only:

    z        = pooled features (mean of the last feature map), L2-normalised if ``normalise``
    d_k(z)   = sqrt((z - mean_k)ᵀ · precision · (z - mean_k))
    ood      = min_k d_k(z)            (higher = less like any known valve)

``mean_k`` are the class means of the training features and ``precision`` the inverse of
their shared within-class covariance (Ledoit-Wolf shrinkage, so it exists when there are
fewer images than feature dimensions). Leave-one-class-out runs measure how well a score
separates a valve type the model never saw from the known ones (AUROC).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ModelError

METHOD = "mahalanobis"
FORMULA = (
    "z = mean of the 'features' output over its spatial axes (pooled features); "
    "if normalise == 'l2': z = z / ||z||; "
    "ood_score = min over classes k of sqrt((z - class_means[k]) @ precision @ (z - class_means[k]))"
)



def formula(normalise: str) -> str:
    """The score's formula as the model card states it, for ``normalise`` "none" or "l2"."""
    z = "z = mean of the 'features' output over its spatial axes (pooled features, length C)"
    if normalise == "l2":
        z += ", then z = z / ||z||"
    return z + "; ood_score = min over classes k of sqrt((z - class_means[k]) @ precision @ (z - class_means[k]))"


@dataclass
class OpenSetStats:
    class_means: np.ndarray  # (K, C) float32
    precision: np.ndarray  # (C, C) float32
    normalise: str = "l2"  # "l2" or "none"

    def transform(self, pooled: np.ndarray) -> np.ndarray:
        z = np.asarray(pooled, dtype=np.float64)
        if self.normalise == "l2":
            z = z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)
        return z

    def distances(self, pooled: np.ndarray) -> np.ndarray:
        """(N, K) Mahalanobis distances to every class mean."""
        z = self.transform(pooled)
        means = self.class_means.astype(np.float64)
        precision = self.precision.astype(np.float64)
        out = np.empty((z.shape[0], means.shape[0]))
        for k, mean in enumerate(means):
            diff = z - mean
            out[:, k] = np.sqrt(np.maximum(((diff @ precision) * diff).sum(axis=1), 0.0))
        return out

    def score(self, pooled: np.ndarray) -> np.ndarray:
        """Open-set score per image: distance to the nearest class mean."""
        return self.distances(pooled).min(axis=1)


def fit_mahalanobis(features: np.ndarray, labels: np.ndarray, classes: Sequence[int], normalise: str = "l2") -> OpenSetStats:
    """Class means and shared shrunk precision of ``features`` of ``classes``.

    Raises:
        ModelError: a class without any feature vector.
    """
    from sklearn.covariance import LedoitWolf

    stats = OpenSetStats(np.zeros((0,)), np.zeros((0,)), normalise)
    z = stats.transform(features)
    means, centred = [], []
    for k in classes:
        members = z[labels == k]
        if len(members) == 0:
            raise ModelError(f"class {k} has no training features: cannot fit the open-set statistics")
        means.append(members.mean(axis=0))
        centred.append(members - means[-1])
    estimator = LedoitWolf(assume_centered=True).fit(np.concatenate(centred))
    stats.class_means = np.asarray(means, dtype=np.float32)
    stats.precision = np.asarray(estimator.precision_, dtype=np.float32)
    return stats


def save_openset(path: str | Path, stats: OpenSetStats) -> Path:
    from safetensors.numpy import save_file

    path = Path(path)
    save_file(
        {"class_means": np.ascontiguousarray(stats.class_means, dtype=np.float32),
         "precision": np.ascontiguousarray(stats.precision, dtype=np.float32)},
        str(path),
        metadata={"method": METHOD, "normalise": stats.normalise, "formula": FORMULA},
    )
    return path


def load_openset(path: str | Path) -> OpenSetStats:
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as handle:
        meta = handle.metadata() or {}
        return OpenSetStats(handle.get_tensor("class_means"), handle.get_tensor("precision"), meta.get("normalise", "l2"))


# --- other scores, for comparison ------------------------------------------------------------
def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def max_softmax_score(logits: np.ndarray) -> np.ndarray:
    """1 − max softmax (higher = less sure)."""
    return 1.0 - softmax(logits).max(axis=1)


def energy_score(logits: np.ndarray) -> np.ndarray:
    """−logsumexp(logits) (Liu et al. 2020; higher = less like the training data)."""
    m = logits.max(axis=1)
    return -(m + np.log(np.exp(logits - m[:, None]).sum(axis=1)))


def knn_distances(pooled: np.ndarray, bank_rows: np.ndarray, ks: Sequence[int] = (1,)) -> dict[int, np.ndarray]:
    """Deep nearest neighbours (Sun et al. 2022), higher = stranger: for each k, 1 − the cosine
    similarity of every L2-normalised feature to its k-th nearest in ``pooled[bank_rows]``. A
    bank row leaves itself out (its own similarity would always be the nearest)."""
    bank_rows = np.asarray(bank_rows)
    unit = pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
    sims = unit @ unit[bank_rows].T
    sims[bank_rows, np.arange(len(bank_rows))] = -np.inf
    return {k: 1 - (-np.partition(-sims, k - 1, axis=1)[:, k - 1]) for k in ks}


def standardised(score: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``score`` in units of its spread over ``rows`` (the training images), to add scores."""
    reference = score[rows]
    return (score - reference.mean()) / (reference.std() + 1e-9)


def auroc(known: np.ndarray, unknown: np.ndarray) -> float:
    """Probability that an unknown image scores above a known one (ties count half)."""
    from sklearn.metrics import roc_auc_score

    y = np.r_[np.zeros(len(known)), np.ones(len(unknown))]
    return float(roc_auc_score(y, np.r_[known, unknown]))


def joined_aurocs(fit: Sequence[np.ndarray], fit_labels: np.ndarray, known: Sequence[np.ndarray],
                  unknown: Sequence[np.ndarray], known_logits: Sequence[np.ndarray], unknown_logits: Sequence[np.ndarray],
                  classes: Sequence[int]) -> dict[str, float]:
    """Unseen-valve AUROC of networks joined as an ensemble joins its members: each network's
    pooled features side by side (one list entry per network), the shipped score (Mahalanobis
    on the L2-normalised vector) fitted on ``fit`` of the known ``classes``; the networks'
    logits averaged for max softmax. One network is a list of one."""
    def side_by_side(parts: Sequence[np.ndarray]) -> np.ndarray:
        return np.concatenate([np.asarray(p, dtype=np.float64) for p in parts], axis=1)

    def mean(parts: Sequence[np.ndarray]) -> np.ndarray:
        return np.mean([np.asarray(p, dtype=np.float64) for p in parts], axis=0)

    stats = fit_mahalanobis(side_by_side(fit), np.asarray(fit_labels), classes, normalise="l2")
    return {"mahalanobis_l2": auroc(stats.score(side_by_side(known)), stats.score(side_by_side(unknown))),
            "max_softmax": auroc(max_softmax_score(mean(known_logits)), max_softmax_score(mean(unknown_logits)))}


def leave_one_class_out(
    train_features: np.ndarray,
    train_labels: np.ndarray,
    test_features: np.ndarray,
    test_labels: np.ndarray,
    num_classes: int,
    scorers: dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray, list[int]], np.ndarray]],
) -> dict[str, dict[int, float]]:
    """AUROC per held-out class for each scorer.

    For each class c, a scorer gets (train features, train labels, test features, known classes
    without c) after c's training images are removed, and returns one score per test image; the
    AUROC compares test images of c (unseen) with test images of the other classes (known).
    """
    results: dict[str, dict[int, float]] = {name: {} for name in scorers}
    for held_out in range(num_classes):
        keep = train_labels != held_out
        known = [k for k in range(num_classes) if k != held_out]
        unseen = test_labels == held_out
        if not unseen.any() or unseen.all():
            continue
        for name, scorer in scorers.items():
            scores = scorer(train_features[keep], train_labels[keep], test_features, known)
            results[name][held_out] = auroc(scores[~unseen], scores[unseen])
    return results


def mahalanobis_scorer(normalise: str = "l2") -> Callable[[np.ndarray, np.ndarray, np.ndarray, list[int]], np.ndarray]:
    def score(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, known: list[int]) -> np.ndarray:
        return fit_mahalanobis(train_x, train_y, known, normalise).score(test_x)

    return score
