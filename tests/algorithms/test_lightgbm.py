"""The lightgbm algorithm: metrics per iteration, early stopping, evaluate, threads, checkpoints."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sagelab.algorithms import get_algorithm
from sagelab.algorithms.testing import (
    FolderCheckpoint,
    RecordingCallbacks,
    StopTraining,
    conformance_data,
)
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


# ---------------------------------------------------------------------- checkpoints
#: No row or feature sampling: nothing random that a checkpoint cannot hold.
UNSAMPLED = {"bagging_freq": 0, "feature_fraction": 1.0, "num_threads": 1}


def _fit(
    problem: str,
    hp: dict[str, Any],
    checkpoint: FolderCheckpoint | None = None,
    callbacks: RecordingCallbacks | None = None,
) -> Any:
    data = conformance_data(problem)
    algorithm = LightGBM(hp)
    algorithm.fit(
        data.train(), data.validation(), callbacks or RecordingCallbacks(), checkpoint=checkpoint
    )
    return algorithm


def test_without_sampling_early_stopping_resumes_bit_identical(tmp_path: Path) -> None:
    hp = {"num_boost_round": 500, "learning_rate": 0.5, "objective": "binary", **UNSAMPLED}
    hp["early_stopping_rounds"] = 5
    callbacks = RecordingCallbacks()
    whole = _fit("binary_classifier", hp, callbacks=callbacks)
    losses = [v for n, v, _ in callbacks.metrics if n == "validation:binary_logloss"]
    best = int(np.argmin(losses))
    k = best + 3  # inside the patience window: the best iteration is before the checkpoint
    first = FolderCheckpoint(tmp_path)
    with pytest.raises(StopTraining):
        _fit("binary_classifier", hp, first, RecordingCallbacks(stop_at=k))
    assert first.saves[-1] == k
    second, callbacks = FolderCheckpoint(tmp_path), RecordingCallbacks()
    resumed = _fit("binary_classifier", hp, second, callbacks)
    assert resumed.resume_caveat() is None
    assert second.resumes == [k]
    assert [v for n, v, _ in callbacks.metrics if n == "validation:binary_logloss"] == losses[k:]
    assert resumed._booster.current_iteration() == best + 1
    X = conformance_data("binary_classifier").X_test
    assert np.array_equal(resumed.predict(X).values, whole.predict(X).values)


def test_bagging_resumes_to_a_model_as_good_but_not_the_same(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # SageMaker's defaults: bagging_fraction and feature_fraction 0.9, bagging every iteration.
    data = conformance_data("regressor")
    hp = {"num_boost_round": 40, "num_leaves": 8, "early_stopping_rounds": 0, "num_threads": 1}
    whole = _fit("regressor", hp)
    with pytest.raises(StopTraining):
        _fit("regressor", hp, FolderCheckpoint(tmp_path, every=20), RecordingCallbacks(stop_at=20))
    with caplog.at_level(logging.INFO):
        resumed = _fit("regressor", hp, FolderCheckpoint(tmp_path, every=20))
    assert "bagging_fraction=0.9, feature_fraction=0.9 draw from LightGBM's random" in caplog.text
    p, q = whole.predict(data.X_test).values, resumed.predict(data.X_test).values
    assert not np.array_equal(p, q)
    rmse = [float(np.sqrt(np.mean((v - data.y_test) ** 2))) for v in (p, q)]
    assert abs(rmse[0] - rmse[1]) < 0.05 * rmse[0], rmse


@pytest.mark.parametrize("boosting", ["dart", "rf"])
def test_dart_and_rf_train_without_checkpoints(
    boosting: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    checkpoint = FolderCheckpoint(tmp_path)
    hp = {"num_boost_round": 5, "objective": "binary", "boosting": boosting, "num_threads": 1}
    with caplog.at_level(logging.WARNING):
        _fit("binary_classifier", hp, checkpoint)
    assert checkpoint.saves == [] and not any(tmp_path.iterdir())
    assert f"boosting={boosting!r} does not checkpoint" in caplog.text


def test_a_checkpoint_of_another_algorithm_is_refused(tmp_path: Path) -> None:
    data = conformance_data("binary_classifier")
    get_algorithm("xgboost")({"num_round": 4, "objective": "binary:logistic"}).fit(
        data.train(), None, RecordingCallbacks(), checkpoint=FolderCheckpoint(tmp_path)
    )
    with pytest.raises(InvalidInput, match="written by 'xgboost', not lightgbm"):
        _fit("binary_classifier", {"objective": "binary"}, FolderCheckpoint(tmp_path))
