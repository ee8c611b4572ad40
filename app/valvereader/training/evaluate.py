"""Metrics of a classifier on labelled images: accuracy, per-class P/R/F1, uncertainty,
calibration, confusion; and verdict thresholds chosen on validation data.

Everything here takes plain arrays (true class indices, probabilities) so it serves held-out
tests, cross-validation folds and linear probes alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from itertools import pairwise

import numpy as np

from ..prediction import VerdictThresholds


def entropy(probabilities: np.ndarray) -> np.ndarray:
    p = np.clip(probabilities, 1e-12, 1.0)
    return -(p * np.log(p)).sum(axis=1)


def top2_gap(probabilities: np.ndarray) -> np.ndarray:
    s = np.sort(probabilities, axis=1)
    return s[:, -1] - (s[:, -2] if s.shape[1] > 1 else 0.0)


def confusion(true: np.ndarray, predicted: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts (K, K): row = true class, column = predicted class."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (true, predicted), 1)
    return matrix


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, bins: int = 10) -> tuple[float, list[dict]]:
    """ECE over equal-width confidence bins, and the per-bin table of the reliability diagram."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    table, ece, n = [], 0.0, max(1, len(confidence))
    for low, high in pairwise(edges):
        inside = (confidence > low) & (confidence <= high) if low > 0 else (confidence >= low) & (confidence <= high)
        count = int(inside.sum())
        accuracy = float(correct[inside].mean()) if count else float("nan")
        mean_conf = float(confidence[inside].mean()) if count else float("nan")
        if count:
            ece += count / n * abs(accuracy - mean_conf)
        table.append({"low": float(low), "high": float(high), "count": count, "accuracy": accuracy, "confidence": mean_conf})
    return float(ece), table


@dataclass
class ClassMetrics:
    valve_id: str
    support: int
    precision: float
    recall: float
    f1: float
    error_rate: float  # 1 − recall: share of this valve's images given another label
    mean_entropy: float
    mean_max_softmax: float
    mean_top2_gap: float


@dataclass
class Metrics:
    n: int
    accuracy: float
    macro_precision: float
    macro_recall: float
    macro_f1: float
    ece: float
    per_class: list[ClassMetrics]
    confusion: list[list[int]]
    reliability: list[dict]

    def as_dict(self) -> dict:
        return asdict(self)

    def normalised_confusion(self) -> np.ndarray:
        matrix = np.asarray(self.confusion, dtype=np.float64)
        return matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)


def classification_metrics(true: np.ndarray, probabilities: np.ndarray, class_ids: Sequence[str]) -> Metrics:
    """All metrics of one split. Macro averages run over classes present in ``true``."""
    true = np.asarray(true, dtype=np.int64)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    k = len(class_ids)
    predicted = probabilities.argmax(axis=1)
    matrix = confusion(true, predicted, k)
    conf = probabilities.max(axis=1)
    ent, gap = entropy(probabilities), top2_gap(probabilities)
    per_class, present = [], []
    for c, valve_id in enumerate(class_ids):
        tp = matrix[c, c]
        support = int(matrix[c].sum())
        predicted_c = int(matrix[:, c].sum())
        precision = tp / predicted_c if predicted_c else 0.0
        recall = tp / support if support else float("nan")
        f1 = 2 * precision * recall / (precision + recall) if support and (precision + recall) > 0 else (0.0 if support else float("nan"))
        rows = true == c
        per_class.append(ClassMetrics(
            valve_id, support, float(precision), float(recall), float(f1), float(1 - recall) if support else float("nan"),
            float(ent[rows].mean()) if support else float("nan"),
            float(conf[rows].mean()) if support else float("nan"),
            float(gap[rows].mean()) if support else float("nan"),
        ))
        if support:
            present.append(c)
    ece, table = expected_calibration_error(conf, predicted == true)
    pick = [per_class[c] for c in present]
    return Metrics(
        n=len(true),
        accuracy=float(np.mean(predicted == true)) if len(true) else float("nan"),
        macro_precision=float(np.mean([m.precision for m in pick])) if pick else float("nan"),
        macro_recall=float(np.mean([m.recall for m in pick])) if pick else float("nan"),
        macro_f1=float(np.mean([m.f1 for m in pick])) if pick else float("nan"),
        ece=ece,
        per_class=per_class,
        confusion=matrix.tolist(),
        reliability=table,
    )


def summarise(runs: Sequence[Metrics]) -> dict[str, dict[str, float]]:
    """Mean ± SD over splits of the headline metrics and of each class's recall and F1."""
    out: dict[str, dict[str, float]] = {}
    for name in ("accuracy", "macro_precision", "macro_recall", "macro_f1", "ece"):
        values = np.array([getattr(m, name) for m in runs], dtype=np.float64)
        out[name] = {"mean": float(np.nanmean(values)), "sd": float(np.nanstd(values, ddof=1)) if len(values) > 1 else 0.0}
    for c, row in enumerate(runs[0].per_class if runs else []):
        for field in ("precision", "recall", "f1"):
            values = np.array([m.per_class[c].__dict__[field] for m in runs], dtype=np.float64)
            out[f"{row.valve_id}.{field}"] = {"mean": float(np.nanmean(values)), "sd": float(np.nanstd(values, ddof=1)) if len(values) > 1 else 0.0}
    return out


def choose_thresholds(
    probabilities: np.ndarray,
    true: np.ndarray,
    ood_scores: np.ndarray | None = None,
    target_precision: float = 0.99,
    ood_review_quantile: float = 0.95,
    ood_unknown_quantile: float = 0.995,
) -> tuple[VerdictThresholds, dict[str, float]]:
    """Verdict thresholds from validation data (never from the test set).

    confident: the lowest max-softmax above which validation predictions are right at least
    ``target_precision`` of the time (at least 0.5). unknown_confidence: below the 1st
    percentile of correct predictions' confidence, at most 0.5. ood_review / ood_unknown:
    quantiles of the known valves' open-set scores, so about 5 % / 0.5 % of known valves are
    sent to review / called unknown.
    """
    conf = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == true
    order = np.argsort(-conf)
    running = np.cumsum(correct[order]) / np.arange(1, len(order) + 1)
    sorted_conf = conf[order]
    # Only cut between different confidences, so tied images fall on the same side.
    group_end = np.r_[sorted_conf[:-1] > sorted_conf[1:], True]
    ok = np.flatnonzero((running >= target_precision) & group_end)
    # Lowest confidence such that everything at or above it is still precise enough.
    confident = float(conf[order][ok[-1]]) if ok.size else 0.99
    confident = float(min(0.99, max(0.5, confident)))
    unknown = float(min(0.5, np.quantile(conf[correct], 0.01))) if correct.any() else 0.5
    unknown = min(unknown, confident - 1e-3)
    review, unknown_ood = None, None
    if ood_scores is not None and len(ood_scores):
        review = float(np.quantile(ood_scores, ood_review_quantile))
        unknown_ood = float(np.quantile(ood_scores, ood_unknown_quantile))
    thresholds = VerdictThresholds(confident, unknown, review, unknown_ood)
    verdicts = [thresholds.verdict(float(c), None if ood_scores is None else float(o))
                for c, o in zip(conf, ood_scores if ood_scores is not None else [None] * len(conf))]
    names = np.array([v.value for v in verdicts])
    effect = {
        "validation_images": len(conf),
        "confident_share": float(np.mean(names == "confident")) if len(names) else float("nan"),
        "confident_accuracy": float(correct[names == "confident"].mean()) if np.any(names == "confident") else float("nan"),
        "review_share": float(np.mean(names == "review")) if len(names) else float("nan"),
        "unknown_share": float(np.mean(names == "unknown")) if len(names) else float("nan"),
    }
    return thresholds, effect
