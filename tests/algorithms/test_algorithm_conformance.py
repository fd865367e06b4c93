"""Every registered algorithm passes the contract's conformance suite."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from sagelab.algorithms import (
    InMemorySource,
    _registry,
    algorithm_names,
    get_algorithm,
    register_algorithm,
)
from sagelab.algorithms._base import Algorithm
from sagelab.algorithms.testing import (
    Check,
    ConformanceFailure,
    RecordingCallbacks,
    algorithm_checks,
    check_algorithm,
    check_checkpoints,
    check_row_order_invariance,
    conformance_data,
)

CASES = [
    (name, check) for name in algorithm_names() for check in algorithm_checks(get_algorithm(name))
]


@pytest.mark.parametrize(("name", "check"), CASES, ids=[f"{n}-{c.id}" for n, c in CASES])
def test_conformance(name: str, check: Check, tmp_path: Path) -> None:
    check(get_algorithm(name), tmp_path)


def test_the_builtins_are_covered() -> None:
    covered = {name for name, _ in CASES}
    assert {"xgboost", "lightgbm", "linear-learner"} <= covered


def test_capabilities_choose_the_checks() -> None:
    ids = {c.id for c in algorithm_checks(get_algorithm("linear-learner"))}
    assert "streams_data[regressor]" in ids
    assert "sparse_input[binary_classifier]" in ids
    ids = {c.id for c in algorithm_checks(get_algorithm("xgboost"))}
    assert not any(i.startswith("streams_data") for i in ids)
    assert "hostile_artifacts[binary_classifier]" in ids
    for name in ("xgboost", "lightgbm", "linear-learner"):
        ids = {c.id for c in algorithm_checks(get_algorithm(name))}
        assert {"checkpoints[regressor]", "hostile_checkpoints[binary_classifier]"} <= ids
    assert not any("checkpoints" in c.id for c in algorithm_checks(_ShuffleSensitive))


class _ShuffleSensitive(Algorithm):
    """A broken algorithm: a row's prediction depends on the batch (mean-centred)."""

    name = "broken"
    problem_types = ("regressor",)
    hyperparameters = ()
    metrics = ()
    help = "Broken on purpose."

    def fit(self, train, validation, callbacks):  # type: ignore[no-untyped-def]
        self.feature_names = train.feature_names

    def predict(self, X):  # type: ignore[no-untyped-def]
        from sagelab.algorithms import Prediction

        values = np.asarray(X, dtype=float)[:, 0]
        return Prediction(values=values - values.mean())

    def save(self, directory):  # type: ignore[no-untyped-def]
        pass

    @classmethod
    def load(cls, directory):  # type: ignore[no-untyped-def]
        return cls()


def test_the_suite_catches_a_broken_algorithm(tmp_path: Path) -> None:
    with pytest.raises(ConformanceFailure, match=r"shuffling rows|single row"):
        check_row_order_invariance(_ShuffleSensitive, "regressor", tmp_path)
    with pytest.raises(ConformanceFailure) as info:
        check_algorithm(_ShuffleSensitive, tmp_path)
    message = str(info.value)
    assert "declarations" in message  # declares no metrics
    assert "load_refuses_missing_model" in message


def test_a_newly_registered_algorithm_is_picked_up(monkeypatch: pytest.MonkeyPatch) -> None:
    # Registered for this test only: `sagelab algorithms list` elsewhere shows the built-ins.
    table = _registry._ALGORITHMS
    monkeypatch.setattr(table, "_registered", dict(table._registered))
    register_algorithm("xgboost-again", "sagelab.algorithms._xgboost:XGBoostAlgorithm")
    assert "xgboost-again" in algorithm_names()


class _Forgetful(get_algorithm("linear-learner")):  # type: ignore[misc]
    """A broken algorithm: saves checkpoints, but throws them away and starts over."""

    def fit(self, train, validation, callbacks, *, checkpoint=None):  # type: ignore[no-untyped-def]
        if checkpoint is not None:
            shutil.rmtree(checkpoint.directory, ignore_errors=True)
        super().fit(train, validation, callbacks, checkpoint=checkpoint)


class _Restarting(get_algorithm("xgboost")):  # type: ignore[misc]
    """A broken algorithm: resumes, but steps its metrics from 0 again."""

    def fit(self, train, validation, callbacks, *, checkpoint=None):  # type: ignore[no-untyped-def]
        offset = [0]

        class Shifted:
            logger = callbacks.logger

            def log_metric(self, name: str, value: float, step: int | None = None) -> None:
                callbacks.log_metric(name, value, None if step is None else step - offset[0])

            def check_stop(self) -> None:
                callbacks.check_stop()

        if checkpoint is not None:
            reported = checkpoint.resumed

            def resumed(iteration: int) -> None:
                offset[0] = iteration
                reported(iteration)

            checkpoint.resumed = resumed
        super().fit(train, validation, Shifted(), checkpoint=checkpoint)


@pytest.mark.parametrize("broken", [_Forgetful, _Restarting])
def test_the_suite_catches_a_broken_resume(broken: type[Algorithm], tmp_path: Path) -> None:
    with pytest.raises(ConformanceFailure, match=r"resumed at \[\]|metric steps start at 0"):
        check_checkpoints(broken, "binary_classifier", tmp_path)


def test_recording_callbacks_and_data() -> None:
    data = conformance_data("binary_classifier")
    assert set(np.unique(data.y_train)) == {0, 1}
    assert data.X_train.shape[0] > data.X_valid.shape[0] > 0
    callbacks = RecordingCallbacks()
    get_algorithm("xgboost")({"num_round": 3, "objective": "binary:logistic"}).fit(
        InMemorySource(data.X_train, data.y_train), None, callbacks
    )
    assert [step for _, _, step in callbacks.metrics] == [0, 1, 2]
