"""Patient-grouped stratified splits: no patient in two folds, classes spread evenly."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from valvereader.training.splits import (
    cross_validation_splits,
    grouped_stratified_folds,
    holdout_split,
)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 12), st.integers(0, 3)), min_size=10, max_size=80),
    st.integers(2, 5),
    st.integers(0, 1000),
)
def test_no_patient_appears_in_two_folds(rows, k, seed) -> None:
    groups = [f"p{g}" for g, _ in rows]
    labels = [label for _, label in rows]
    if len(set(groups)) < k:
        return
    folds = grouped_stratified_folds(labels, groups, k=k, seed=seed)
    seen: dict[str, int] = {}
    for number, fold in enumerate(folds):
        for i in fold:
            assert seen.setdefault(groups[i], number) == number
    assert sorted(np.concatenate(folds).tolist()) == list(range(len(rows)))


def test_images_without_patient_ids_are_split_per_image_and_stratified() -> None:
    labels = np.repeat(np.arange(4), [40, 20, 10, 5])
    groups = [f"image:{i}" for i in range(len(labels))]
    folds = grouped_stratified_folds(labels, groups, k=5, seed=0)
    for fold in folds:
        counts = np.bincount(labels[fold], minlength=4)
        assert np.all(np.abs(counts - np.array([8, 4, 2, 1])) <= 1)


def test_holdout_split_is_disjoint_and_keeps_patients_together() -> None:
    rng = np.random.default_rng(0)
    groups = [f"p{g}" for g in rng.integers(0, 60, 300)]
    labels = [int(g[1:]) % 3 for g in groups]
    split = holdout_split(labels, groups, test_fraction=0.2, validation_fraction=0.1, seed=1)
    parts = [set(split.train), set(split.validation), set(split.test)]
    assert not (parts[0] & parts[1]) and not (parts[0] & parts[2]) and not (parts[1] & parts[2])
    assert sum(len(p) for p in parts) == 300
    patients = [{groups[i] for i in p} for p in parts]
    assert not (patients[0] & patients[2]) and not (patients[0] & patients[1]) and not (patients[1] & patients[2])
    assert 0.1 < len(split.test) / 300 < 0.3


def test_cross_validation_tests_every_image_once() -> None:
    labels = np.repeat(np.arange(3), 20)
    groups = [f"p{i // 2}" for i in range(60)]
    splits = cross_validation_splits(labels, groups, k=5, seed=0)
    tested = np.concatenate([s.test for s in splits])
    assert sorted(tested.tolist()) == list(range(60))
    for s in splits:
        assert not set(s.train) & set(s.test) and not set(s.validation) & set(s.test)
        assert not {groups[i] for i in s.train} & {groups[i] for i in s.test}
