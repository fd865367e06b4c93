"""linear-learner: streaming mini-batches, early stopping, regularization, weights, metrics,
checkpoints."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import sparse
from sklearn.metrics import f1_score, precision_score, recall_score, roc_auc_score

from sagelab.algorithms import InMemorySource, TrainingData, get_algorithm
from sagelab.algorithms.testing import (
    FolderCheckpoint,
    RecordingCallbacks,
    StopAfterCheckpoint,
    StopTraining,
    conformance_data,
)
from sagelab.errors import InvalidInput

Linear = get_algorithm("linear-learner")


class _Counting(InMemorySource):
    """Counts the passes and the largest batch a reader asked for."""

    def __init__(self, X: Any, y: Any) -> None:
        super().__init__(X, y)
        self.passes = 0
        self.largest = 0

    def load(self) -> TrainingData:
        raise AssertionError("linear-learner must stream")

    def batches(self, batch_size: int) -> Iterator[TrainingData]:
        self.passes += 1
        self.largest = max(self.largest, batch_size)
        return super().batches(batch_size)


def _train(problem: str, validation: bool = True, **hp: object) -> tuple[Any, RecordingCallbacks]:
    data = conformance_data(problem)
    algorithm = Linear({"predictor_type": problem, **hp})
    callbacks = RecordingCallbacks()
    algorithm.fit(data.train(), data.validation() if validation else None, callbacks)
    return algorithm, callbacks


def test_training_streams_in_bounded_batches() -> None:
    data = conformance_data("binary_classifier")
    train = _Counting(data.X_train, data.y_train)
    algorithm = Linear(
        {
            "predictor_type": "binary_classifier",
            "epochs": 4,
            "mini_batch_size": 10,
            "early_stopping_patience": 100,
        }
    )
    algorithm.fit(train, None, RecordingCallbacks())
    assert train.passes == 1 + 4  # the statistics pass, then one per epoch
    assert train.largest <= 10 * 8  # never more than a shuffle window of mini-batches


def test_per_epoch_and_final_metrics_use_sagemaker_names() -> None:
    _, callbacks = _train(
        "binary_classifier", epochs=3, mini_batch_size=32, early_stopping_patience=10
    )
    assert [s for n, _, s in callbacks.metrics if n == "train:objective_loss"] == [0, 1, 2]
    validation_steps = [s for n, _, s in callbacks.metrics if n == "validation:objective_loss"]
    assert validation_steps == [0, 1, 2, 3]  # per epoch, then the final model's
    assert {
        "validation:binary_classification_accuracy",
        "validation:binary_f_beta",
        "validation:precision",
        "validation:recall",
        "validation:roc_auc_score",
    } <= callbacks.names()


def test_early_stopping_on_validation_loss() -> None:
    _, callbacks = _train(
        "regressor",
        epochs=200,
        mini_batch_size=16,
        learning_rate=0.05,
        early_stopping_patience=2,
        early_stopping_tolerance=0.01,
    )
    losses = [v for n, v, _ in callbacks.metrics if n == "validation:objective_loss"]
    assert len(losses) < 100
    assert losses[-1] == pytest.approx(min(losses[:-1]))  # the best epoch's weights are kept


def test_early_stopping_without_validation_watches_the_training_loss() -> None:
    _, callbacks = _train(
        "regressor", validation=False, epochs=300, mini_batch_size=16, early_stopping_patience=1
    )
    assert len(callbacks.metrics) < 300
    assert not any(n.startswith("validation:") for n in callbacks.names())


def test_evaluate_matches_scikit_learn() -> None:
    algorithm, _ = _train("binary_classifier", epochs=5, mini_batch_size=32, f_beta=1.0)
    data = conformance_data("binary_classifier")
    result = algorithm.evaluate(InMemorySource(data.X_test, data.y_test))
    p = algorithm.predict(data.X_test)
    assert result["test:roc_auc_score"] == pytest.approx(roc_auc_score(data.y_test, p.values))
    assert result["test:binary_f_beta"] == pytest.approx(f1_score(data.y_test, p.labels))
    assert result["test:precision"] == pytest.approx(precision_score(data.y_test, p.labels))
    assert result["test:recall"] == pytest.approx(recall_score(data.y_test, p.labels))


def test_l1_makes_exact_zeros() -> None:
    dense, _ = _train("regressor", epochs=20, mini_batch_size=32, optimizer="sgd")
    lasso, _ = _train("regressor", epochs=20, mini_batch_size=32, optimizer="sgd", l1=0.5)
    assert np.count_nonzero(dense._weights) == dense._weights.size
    assert np.count_nonzero(lasso._weights) < dense._weights.size


def test_weight_decay_shrinks_the_weights() -> None:
    plain, _ = _train("binary_classifier", epochs=10, mini_batch_size=32)
    decayed, _ = _train("binary_classifier", epochs=10, mini_batch_size=32, wd=0.5)
    assert np.abs(decayed._weights).sum() < np.abs(plain._weights).sum()


def test_positive_example_weight_raises_recall() -> None:
    data = conformance_data("binary_classifier")
    plain, _ = _train("binary_classifier", epochs=10, mini_batch_size=16)
    weighted, _ = _train(
        "binary_classifier", epochs=10, mini_batch_size=16, positive_example_weight_mult=20
    )
    p, q = plain.predict(data.X_test), weighted.predict(data.X_test)
    positives = data.y_test == 1
    assert (q.labels[positives] == 1).mean() >= (p.labels[positives] == 1).mean()
    assert q.values.mean() > p.values.mean() + 0.02


def test_balanced_multiclass_weights_and_sgd_train() -> None:
    _, callbacks = _train(
        "multiclass_classifier",
        epochs=10,
        mini_batch_size=16,
        optimizer="sgd",
        balance_multiclass_weights=True,
    )
    assert dict((n, v) for n, v, _ in callbacks.metrics)["validation:multiclass_accuracy"] > 0.8


@pytest.mark.parametrize("loss", ["absolute_loss", "huber_loss"])
def test_robust_regression_losses(loss: str) -> None:
    _, callbacks = _train("regressor", epochs=10, mini_batch_size=32, loss=loss)
    final = dict((n, v) for n, v, _ in callbacks.metrics)
    assert final["validation:rmse"] < 70  # the target's own spread is about 77


def test_sparse_rows_are_scaled_but_not_centered(tmp_path: Path) -> None:
    data = conformance_data("regressor")
    X = sparse.csr_matrix(np.where(data.X_train > 0, data.X_train, 0))
    algorithm = Linear({"predictor_type": "regressor", "epochs": 5, "mini_batch_size": 32})
    algorithm.fit(InMemorySource(X, data.y_train), None, RecordingCallbacks())
    dense = np.where(data.X_test > 0, data.X_test, 0)
    by_sparse = algorithm.predict(sparse.csr_matrix(dense)).values
    np.testing.assert_allclose(by_sparse, algorithm.predict(dense).values, rtol=1e-12)


def test_saved_weights_fold_the_normalization_in(tmp_path: Path) -> None:
    algorithm, _ = _train("multiclass_classifier", epochs=3, mini_batch_size=32)
    algorithm.save(tmp_path)
    W = np.load(tmp_path / "weights.npy", allow_pickle=False)
    b = np.load(tmp_path / "bias.npy", allow_pickle=False)
    X = conformance_data("multiclass_classifier").X_test
    scores = X @ W + b
    assert np.array_equal(algorithm.predict(X).labels, scores.argmax(axis=1))


def test_a_diverging_run_says_how_to_fix_it() -> None:
    data = conformance_data("regressor")
    algorithm = Linear(
        {
            "predictor_type": "regressor",
            "optimizer": "sgd",
            "learning_rate": 1e6,
            "normalize_data": False,
            "normalize_label": False,
            "use_lr_scheduler": False,
            "epochs": 40,
            "early_stopping_patience": 40,
        }
    )
    with pytest.raises(InvalidInput, match="diverged"), np.errstate(all="ignore"):
        algorithm.fit(InMemorySource(data.X_train * 1e3, data.y_train), None, RecordingCallbacks())


# ---------------------------------------------------------------------- checkpoints
#: SGD with momentum and a learning-rate decay that falls mid-epoch, stopping early.
SGD = {
    "predictor_type": "regressor",
    "optimizer": "sgd",
    "momentum": 0.5,
    "learning_rate": 0.05,
    "mini_batch_size": 16,
    "lr_scheduler_step": 7,
    "lr_scheduler_factor": 0.9,
    "epochs": 200,
    "early_stopping_patience": 2,
    "early_stopping_tolerance": 0.01,
}


def _fit(
    hp: dict[str, Any], checkpoint: FolderCheckpoint, callbacks: RecordingCallbacks | None = None
) -> Any:
    data = conformance_data(hp["predictor_type"])
    algorithm = Linear(hp)
    algorithm.fit(
        data.train(), data.validation(), callbacks or RecordingCallbacks(), checkpoint=checkpoint
    )
    return algorithm


def test_sgd_resumes_bit_identical_and_stays_stopped_once_early_stopping_decided(
    tmp_path: Path,
) -> None:
    X = conformance_data("regressor").X_test
    whole, whole_callbacks = FolderCheckpoint(tmp_path / "whole"), RecordingCallbacks()
    expected = _fit(SGD, whole, whole_callbacks)
    stopped_at = whole.saves[-1]
    assert 3 <= stopped_at < SGD["epochs"]  # early stopping decided after that epoch

    k = stopped_at - 1  # a checkpoint inside the patience window
    first = FolderCheckpoint(tmp_path / "resumed")
    with pytest.raises(StopTraining):
        _fit(SGD, first, StopAfterCheckpoint(checkpoint=first, k=k))
    second, callbacks = FolderCheckpoint(tmp_path / "resumed"), RecordingCallbacks()
    resumed = _fit(SGD, second, callbacks)
    assert (second.resumes, second.saves) == ([k], [stopped_at])
    assert callbacks.metrics == [m for m in whole_callbacks.metrics if m[2] >= k]
    assert np.array_equal(resumed.predict(X).values, expected.predict(X).values)

    # From the checkpoint where early stopping decided, even with more epochs to go,
    # there is nothing left to train: only the final metrics are logged, at the same step.
    again, callbacks = FolderCheckpoint(tmp_path / "whole"), RecordingCallbacks()
    final = _fit({**SGD, "epochs": 300}, again, callbacks)
    assert (again.resumes, again.saves) == ([stopped_at], [])
    assert "train:objective_loss" not in callbacks.names()
    assert {s for _, _, s in callbacks.metrics} == {stopped_at}
    assert np.array_equal(final.predict(X).values, expected.predict(X).values)


def test_a_damaged_optimizer_or_rng_state_is_refused(tmp_path: Path) -> None:
    hp = {"predictor_type": "binary_classifier", "epochs": 2, "mini_batch_size": 64}
    _fit(hp, FolderCheckpoint(tmp_path))
    pointer = tmp_path / "checkpoint.json"
    original = json.loads(pointer.read_text())
    for key, value in [
        ("rng", {"bit_generator": "PCG64", "state": "not numbers"}),
        ("optimizer", {"t": "12", "lr": 0.01, "moments": ["W", "b"]}),
        ("stale", -1.5),
    ]:
        pointer.write_text(json.dumps({**original, "State": {**original["State"], key: value}}))
        with pytest.raises(InvalidInput, match="checkpoint is damaged"):
            _fit({**hp, "epochs": 4}, FolderCheckpoint(tmp_path))
