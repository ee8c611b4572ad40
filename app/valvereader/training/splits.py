"""Patient-grouped, class-stratified splits.

All images of one patient land in the same fold, so a model is never tested on a patient it
was trained on. Images without a patient id are their own group (see ``datasets``): the
csf-shuntvalves crops have no patient ids, so their splits are per image, and reports say so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import DatasetError


@dataclass(frozen=True)
class Split:
    """Indices into the sample list."""

    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray

    def as_dict(self) -> dict[str, list[int]]:
        return {"train": self.train.tolist(), "validation": self.validation.tolist(), "test": self.test.tolist()}

    @classmethod
    def from_dict(cls, data: dict[str, list[int]]) -> Split:
        return cls(*(np.asarray(data[k], dtype=np.int64) for k in ("train", "validation", "test")))


def grouped_stratified_folds(labels: Sequence[int] | np.ndarray, groups: Sequence[str] | np.ndarray, k: int = 5, seed: int = 0) -> list[np.ndarray]:
    """``k`` disjoint index arrays covering every sample; each group lies in exactly one fold.

    Groups are dealt to folds class by class (a group's class is its most common label),
    each to the fold currently holding the fewest images of that class, largest groups first,
    ties broken by a seeded shuffle. With one image per group this is ordinary stratified k-fold.

    Raises:
        DatasetError: fewer groups than folds.
    """
    label_ids = np.asarray(labels)
    group_ids = np.asarray(groups)
    if len(label_ids) != len(group_ids):
        raise DatasetError("labels and groups differ in length")
    names, group_index = np.unique(group_ids, return_inverse=True)
    if len(names) < k:
        raise DatasetError(f"{len(names)} patient groups cannot fill {k} folds: use fewer folds")
    rng = np.random.default_rng(seed)
    members = [np.flatnonzero(group_index == g) for g in range(len(names))]
    group_class = np.array([np.bincount(label_ids[m]).argmax() for m in members])
    fold_of_group = np.full(len(names), -1)
    per_fold_class = np.zeros((k, int(label_ids.max()) + 1 if label_ids.size else 1))
    per_fold_total = np.zeros(k)
    for cls in rng.permutation(np.unique(group_class)):
        candidates = np.flatnonzero(group_class == cls)
        candidates = candidates[rng.permutation(len(candidates))]
        sizes = np.array([len(members[g]) for g in candidates])
        for g in candidates[np.argsort(-sizes, kind="stable")]:
            # Fewest of this class first, then fewest overall, then a random fold.
            order = np.lexsort((rng.random(k), per_fold_total, per_fold_class[:, cls]))
            fold = int(order[0])
            fold_of_group[g] = fold
            per_fold_class[fold] += np.bincount(label_ids[members[g]], minlength=per_fold_class.shape[1])
            per_fold_total[fold] += len(members[g])
    sample_fold = fold_of_group[group_index]
    return [np.flatnonzero(sample_fold == f) for f in range(k)]


def holdout_split(
    labels: Sequence[int] | np.ndarray, groups: Sequence[str] | np.ndarray, test_fraction: float = 0.2, validation_fraction: float = 0.1, seed: int = 0
) -> Split:
    """Train / validation / test, grouped by patient and stratified by class.

    The fractions are of the whole set; they are rounded to whole folds of ``1 / 20``
    (so 0.2 → 4 of 20 folds; fewer folds when there are fewer than 20 groups), which keeps
    the grouping exact.
    """
    if not 0 < test_fraction < 1 or not 0 <= validation_fraction < 1 or test_fraction + validation_fraction >= 1:
        raise DatasetError("test and validation fractions must be in (0, 1) and sum below 1")
    parts = min(20, len(set(groups)))  # fewer parts only for tiny data sets
    folds = grouped_stratified_folds(labels, groups, k=parts, seed=seed)
    n_test = max(1, round(test_fraction * parts))
    n_val = round(validation_fraction * parts)
    test = np.sort(np.concatenate(folds[:n_test]))
    validation = np.sort(np.concatenate(folds[n_test : n_test + n_val])) if n_val else np.array([], dtype=np.int64)
    train = np.sort(np.concatenate(folds[n_test + n_val :]))
    return Split(train, validation, test)


def cross_validation_splits(
    labels: Sequence[int] | np.ndarray, groups: Sequence[str] | np.ndarray, k: int = 5, seed: int = 0, validation_folds_of: int = 10
) -> list[Split]:
    """``k`` splits; split i tests on fold i, validates on a grouped 1/``validation_folds_of``
    of the rest, trains on the remainder."""
    label_ids = np.asarray(labels)
    group_ids = np.asarray(groups)
    folds = grouped_stratified_folds(label_ids, group_ids, k=k, seed=seed)
    splits = []
    for i, test in enumerate(folds):
        rest = np.sort(np.concatenate([f for j, f in enumerate(folds) if j != i]))
        inner = grouped_stratified_folds(label_ids[rest], group_ids[rest], k=validation_folds_of, seed=seed + 1 + i)
        validation = np.sort(rest[inner[0]])
        train = np.sort(rest[np.concatenate(inner[1:])])
        splits.append(Split(train, validation, np.sort(test)))
    return splits
