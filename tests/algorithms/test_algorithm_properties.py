"""Properties: any subset of rows, in any order, predicts what those rows predict together."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sagelab.algorithms import Algorithm, Prediction, get_algorithm
from sagelab.algorithms import _metrics as M
from sagelab.algorithms.testing import RecordingCallbacks, conformance_data, example_hyperparameters

CASES = [
    (name, problem)
    for name in ("xgboost", "lightgbm", "linear-learner")
    for problem in ("binary_classifier", "multiclass_classifier", "regressor")
]


@functools.cache
def _model(name: str, problem: str) -> tuple[Algorithm, Prediction]:
    cls = get_algorithm(name)
    data = conformance_data(problem)
    algorithm = cls(example_hyperparameters(cls, problem))
    algorithm.fit(data.train(), None, RecordingCallbacks())
    return algorithm, algorithm.predict(data.X_test)


@pytest.mark.parametrize(("name", "problem"), CASES)
@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_any_rows_in_any_order_predict_the_same(
    name: str, problem: str, data: st.DataObject
) -> None:
    algorithm, whole = _model(name, problem)
    n = len(whole.values)
    rows = data.draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=n), label="rows")
    X = conformance_data(problem).X_test[rows]
    part = algorithm.predict(X)
    assert np.array_equal(part.values, whole.values[rows])
    if whole.labels is not None:
        assert np.array_equal(part.labels, whole.labels[rows])
    if whole.probabilities is not None:
        assert np.array_equal(part.probabilities, whole.probabilities[rows])


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 1), st.floats(0, 1, allow_nan=False)), min_size=2, max_size=60
    )
)
def test_auc_is_order_free_and_flips_with_the_score(pairs: list[tuple[int, float]]) -> None:
    y = np.array([p[0] for p in pairs])
    s = np.array([p[1] for p in pairs])
    auc = M.roc_auc(y, s)
    if np.isnan(auc):
        assert len(set(y.tolist())) == 1
        return
    order = np.argsort(s, kind="stable")[::-1]
    assert M.roc_auc(y[order], s[order]) == pytest.approx(auc)
    assert M.roc_auc(y, -s) == pytest.approx(1 - auc)
