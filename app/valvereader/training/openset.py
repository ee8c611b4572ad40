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
from ..inference.open_set import PACKED, pack_symmetric, precision_matrix

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
         PACKED: pack_symmetric(stats.precision)},
        str(path),
        metadata={"method": METHOD, "normalise": stats.normalise, "formula": FORMULA},
    )
    return path


def load_openset(path: str | Path) -> OpenSetStats:
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as handle:
        meta = handle.metadata() or {}
        names = list(handle.keys())
        arrays = {key: handle.get_tensor(key) for key in names}
    return OpenSetStats(arrays["class_means"], precision_matrix(arrays).astype(np.float32), meta.get("normalise", "l2"))


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


# --- the verdict's operating point ---------------------------------------------------------
def members_joined(reference: Sequence[np.ndarray], scores: Sequence[np.ndarray]) -> np.ndarray:
    """One score from per-member scores of the same images: each member's score put on the scale
    of its own ``reference`` (known validation crops: 0 at their median, 1 at their 90th
    percentile), then averaged over the members."""
    joined = []
    for ref, score in zip(reference, scores):
        ref = np.asarray(ref, dtype=np.float64)
        median, upper = np.median(ref), np.quantile(ref, 0.9)
        joined.append((np.asarray(score, dtype=np.float64) - median) / max(upper - median, 1e-12))
    return np.mean(joined, axis=0)


def confident_shares(known_ood: np.ndarray, known_sure: np.ndarray, unknown_ood: np.ndarray, unknown_sure: np.ndarray,
                     quantiles: Sequence[float]) -> list[tuple[float, float, float]]:
    """For each quantile q of ``known_ood``, the cap t = that quantile; a crop is confident when it
    is sure (``*_sure``: the probability rule passed) and its score is below t, as in the verdict
    rule. Returns (t, share of known crops confident, share of unknown crops confident) per q;
    q >= 1 is no cap."""
    known_ood = np.asarray(known_ood, dtype=np.float64)
    unknown_ood = np.asarray(unknown_ood, dtype=np.float64)
    out = []
    for q in quantiles:
        cap = float(np.quantile(known_ood, q)) if q < 1 else float("inf")
        out.append((cap, float(np.mean(known_sure & (known_ood < cap))),
                    float(np.mean(unknown_sure & (unknown_ood < cap))) if len(unknown_ood) else float("nan")))
    return out


def tightest_cap(ood: np.ndarray, sure: np.ndarray, keep: float) -> float:
    """The lowest open-set cap under which at least ``keep`` of the crops stay confident (sure and
    ood below the cap): midway between the score of the last crop kept and the next one.

    Raises:
        ValueError: fewer than ``keep`` of the crops are sure at all.
    """
    ood = np.asarray(ood, dtype=np.float64)
    sure = np.asarray(sure, dtype=bool)
    need = int(np.ceil(keep * len(ood) - 1e-9))
    candidates = np.sort(ood[sure])
    if need > len(candidates):
        raise ValueError(f"only {len(candidates)} of {len(ood)} crops pass the probability rule: "
                         f"no open-set cap keeps {keep:.0%} of them confident")
    if need == 0:
        return float(candidates[0]) if len(candidates) else 0.0
    last = candidates[need - 1]
    above = candidates[need] if need < len(candidates) else last + 1.0
    return float((last + above) / 2)


def verdict_section(thresholds: dict) -> str:
    """The model card's "Verdict thresholds" section (markdown, ending in a blank line) from
    the card's ``thresholds``: the values, the rule, how they were chosen and what they give."""
    t = thresholds
    head = (f"confident ≥ {t['confident']} (max softmax), unknown below {t['unknown_confidence']}; open-set score: "
            f"never confident at or above {t.get('ood_review')}, unknown ≥ {t.get('ood_unknown')}")
    if t.get("between_ratio") is not None:
        head += f"; between two catalogue valves: distance ratio ≥ {t['between_ratio']} past the cap"
    lines = ["## Verdict thresholds (chosen on validation)", "", head + ".", ""]
    if t.get("rule"):
        lines += [f"Rule: {t['rule']}", ""]
    measured = t.get("measured") or {}
    if not measured:
        return "\n".join(lines) + "\n"
    lines += [f"How they were chosen: {t['protocol']}", ""] if t.get("protocol") else []

    def pct(x: float | None) -> str:
        return "–" if x is None else f"{100 * x:.1f} %"

    lines += ["| known valves | thresholds | confident | right when confident | review | unknown | accuracy |",
              "|---|---|---:|---:|---:|---:|---:|"]
    previous = measured.get("with_previous_thresholds") or {}
    old = previous.get("thresholds") or {}
    for label, key, rules in (("validation", "validation_known", "shipped"), ("test", "test_known", "shipped")):
        for name, block in ((rules, measured), (f"previous (cap {old.get('ood_review', 0):.1f})", previous)):
            m = block.get(key)
            if m:
                lines.append(f"| {label} ({m['n']}) | {name} | {pct(m['confident'])} | {pct(m['right_when_confident'])} | "
                             f"{pct(m['review'])} | {pct(m['unknown'])} | {m['accuracy']:.3f} |")
    lines += ["", ("Unseen valve types (leave-one-class-out runs, each held-out valve's crops; the cap applied as the same "
              "quantile of each run's known validation crops): share called confident."), "",
              "| held-out valve | validation part | test part | test part past ood_unknown |", "|---|---:|---:|---:|"]
    val, test = measured.get("loco_unseen_confident_validation") or {}, measured.get("loco_unseen_confident_test") or {}
    past = measured.get("loco_unseen_past_ood_unknown_test") or {}
    for valve in val:
        lines.append(f"| {valve} | {pct(val[valve])} | {pct(test.get(valve))} | {pct(past.get(valve))} |")
    if measured.get("note"):
        lines += ["", measured["note"]]
    for key in ("outside_check_of_previous", "stand_ins", "outlier_exposure"):
        if t.get(key):
            lines += ["", t[key]]
    if t.get("curve"):
        lines += ["", (f"The trade-off (every cap from the 70th to the 99th percentile of the known validation crops' "
                      f"score): {t['curve']}.")]
    return "\n".join(lines) + "\n\n"
