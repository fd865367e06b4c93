"""Holdout splits and folds: stratified for classifiers, time-ordered on request, seeded."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine

from sagelab.errors import InvalidInput
from sagelab.training._split import holdout_split, kfold_assignments


@pytest.mark.parametrize("loader", [load_breast_cancer, load_wine])
def test_classifier_holdout_keeps_each_class_share(loader) -> None:  # type: ignore[no-untyped-def]
    y = loader().target.astype(float)
    problem = "binary_classifier" if len(np.unique(y)) == 2 else "multiclass_classifier"
    split = holdout_split(y, fraction=0.2, problem_type=problem, seed=0)
    assert split.method == "stratified"
    for cls in np.unique(y):
        members = y == cls
        held = int((split.validation & members).sum())
        assert held == round(members.sum() * 0.2)


def test_regression_holdout_is_random_and_seeded() -> None:
    y = load_diabetes().target.astype(float)
    a = holdout_split(y, fraction=0.25, problem_type="regressor", seed=3)
    b = holdout_split(y, fraction=0.25, problem_type="regressor", seed=3)
    c = holdout_split(y, fraction=0.25, problem_type="regressor", seed=4)
    assert a.method == "random" and int(a.validation.sum()) == round(len(y) * 0.25)
    assert np.array_equal(a.validation, b.validation)
    assert not np.array_equal(a.validation, c.validation)
    # Not the last rows: a random sample.
    assert a.validation[: len(y) // 2].any()


def test_time_split_holds_out_the_latest_rows_and_keeps_ties_together() -> None:
    days = pa.array(np.array([5, 1, 9, 3, 9, 7, 2, 8, 6, 4], dtype="datetime64[D]"))
    y = np.arange(10, dtype=float)
    split = holdout_split(
        y, fraction=0.2, problem_type="regressor", seed=0, split_values=days, split_by="day"
    )
    # The two latest rows share day 9: both are held out, nothing else is.
    assert split.validation.tolist() == [
        False, False, True, False, True, False, False, False, False, False,
    ]  # fmt: skip
    assert split.as_dict()["Cutoff"] == "1970-01-09"
    ties = pa.array([1, 1, 1, 1, 1])
    with pytest.raises(InvalidInput, match="held out no rows"):
        holdout_split(
            y[:5], fraction=0.2, problem_type="regressor", seed=0, split_values=ties, split_by="d"
        )


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1])
def test_bad_fractions(fraction: float) -> None:
    with pytest.raises(InvalidInput, match=r"\(0, 1\)"):
        holdout_split(np.zeros(10), fraction=fraction, problem_type="regressor", seed=0)


def test_stratified_folds_are_balanced() -> None:
    y = load_wine().target.astype(float)
    folds = kfold_assignments(y, k=5, problem_type="multiclass_classifier", seed=0)
    sizes = np.bincount(folds)
    assert sizes.max() - sizes.min() <= 1
    for cls in np.unique(y):
        per_fold = np.bincount(folds[y == cls], minlength=5)
        assert per_fold.max() - per_fold.min() <= 1
    with pytest.raises(InvalidInput, match="at least 2 folds"):
        kfold_assignments(y, k=1, problem_type="regressor", seed=0)
    with pytest.raises(InvalidInput, match="at least 500 rows"):
        kfold_assignments(y, k=500, problem_type="regressor", seed=0)


@settings(max_examples=50, deadline=None)
@given(
    labels=st.lists(st.integers(0, 3), min_size=4, max_size=200) | st.permutations([0, 1, 2, 3]),
    fraction=st.floats(0.05, 0.95),
    seed=st.integers(0, 2**31),
)
def test_holdout_invariants(labels: list[int], fraction: float, seed: int) -> None:
    """Both sides are non-empty, a split is a function of (labels, seed), every class keeps
    a row in train."""
    y = np.asarray(labels, dtype=float)
    if len(np.unique(y)) < 2:
        return
    if np.bincount(y.astype(int)).max() < 2:
        with pytest.raises(InvalidInput, match="single row"):
            holdout_split(y, fraction=fraction, problem_type="multiclass_classifier", seed=seed)
        return
    split = holdout_split(y, fraction=fraction, problem_type="multiclass_classifier", seed=seed)
    again = holdout_split(y, fraction=fraction, problem_type="multiclass_classifier", seed=seed)
    assert np.array_equal(split.validation, again.validation)
    assert split.validation.any() and (~split.validation).any()
    assert set(np.unique(y[~split.validation])) == set(np.unique(y))
