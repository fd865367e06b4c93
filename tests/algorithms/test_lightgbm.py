"""The lightgbm algorithm: metrics per iteration, early stopping, evaluate, threads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sagelab.algorithms import get_algorithm
from sagelab.algorithms.testing import RecordingCallbacks, conformance_data
from sagelab.errors import InvalidInput

LightGBM = get_algorithm("lightgbm")


def _train(
    problem: str, validation: bool = True, **hp: object
) -> tuple[object, RecordingCallbacks]:
    data = conformance_data(problem)
    algorithm = LightGBM(hp)
    callbacks = RecordingCallbacks()
    algorithm.fit(data.train(), data.validation() if validation else None, callbacks)
    return algorithm, callbacks


def test_auto_metric_follows_sagemaker() -> None:
    for problem, objective, metric in [
        ("binary_classifier", "binary", "binary_logloss"),
        ("multiclass_classifier", "multiclass", "multi_logloss"),
        ("regressor", "regression", "rmse"),
    ]:
        _, callbacks = _train(problem, num_boost_round=3, objective=objective)
        assert callbacks.names() == {f"train:{metric}", f"validation:{metric}"}


def test_early_stopping_keeps_the_best_iterations() -> None:
    algorithm, callbacks = _train(
        "binary_classifier",
        num_boost_round=500,
        learning_rate=0.5,
        objective="binary",
        early_stopping_rounds=5,
    )
    losses = [v for n, v, _ in callbacks.metrics if n == "validation:binary_logloss"]
    assert len(losses) < 500
    best = int(np.argmin(losses))
    assert len(losses) == best + 1 + 5
    assert algorithm._booster.current_iteration() == best + 1  # type: ignore[attr-defined]


def test_early_stopping_off_and_without_validation_runs_every_round() -> None:
    _, callbacks = _train(
        "regressor", num_boost_round=25, learning_rate=0.9, early_stopping_rounds=0
    )
    assert len([n for n, _, _ in callbacks.metrics if n == "validation:rmse"]) == 25
    _, callbacks = _train("regressor", validation=False, num_boost_round=25)
    assert len(callbacks.metrics) == 25


@pytest.mark.parametrize(
    ("problem", "objective", "metric"),
    [
        ("binary_classifier", "binary", "binary_logloss"),
        ("binary_classifier", "binary", "binary_error"),
        ("binary_classifier", "binary", "auc"),
        ("binary_classifier", "binary", "average_precision"),
        ("multiclass_classifier", "multiclass", "multi_logloss"),
        ("multiclass_classifier", "multiclass", "multi_error"),
        ("regressor", "regression", "rmse"),
        ("regressor", "regression", "l1"),
        ("regressor", "regression", "l2"),
        ("regressor", "regression", "huber"),
        ("regressor", "regression", "fair"),
    ],
)
def test_evaluate_agrees_with_lightgbms_own_metric(
    problem: str, objective: str, metric: str
) -> None:
    algorithm, callbacks = _train(
        problem, num_boost_round=8, objective=objective, metric=metric, early_stopping_rounds=0
    )
    data = conformance_data(problem)
    ours = algorithm.evaluate(data.validation(), "validation")  # type: ignore[attr-defined]
    theirs = [v for n, v, _ in callbacks.metrics if n == f"validation:{metric}"][-1]
    assert ours[f"validation:{metric}"] == pytest.approx(theirs, rel=1e-6, abs=1e-9)


def test_prediction_threads_can_be_set_for_serving(tmp_path: Path) -> None:
    data = conformance_data("multiclass_classifier")
    algorithm, _ = _train("multiclass_classifier", num_boost_round=5, objective="multiclass")
    algorithm.save(tmp_path)  # type: ignore[attr-defined]
    loaded = LightGBM.load(tmp_path)
    before = loaded.predict(data.X_test)
    loaded.set_prediction_threads(1)  # type: ignore[attr-defined]
    assert np.array_equal(before.probabilities, loaded.predict(data.X_test).probabilities)
    with pytest.raises(InvalidInput):
        loaded.set_prediction_threads(-1)  # type: ignore[attr-defined]


def test_regression_objectives_train() -> None:
    data = conformance_data("regressor")
    for objective in ("regression_l1", "huber", "fair", "poisson", "mape", "gamma", "tweedie"):
        algorithm, _ = _train("regressor", num_boost_round=3, objective=objective)
        assert np.isfinite(algorithm.predict(data.X_test).values).all()  # type: ignore[attr-defined]
