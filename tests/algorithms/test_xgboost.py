"""The xgboost algorithm: metrics per round, early stopping, objectives, threads, checkpoints."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import sparse

from sagelab.algorithms import InMemorySource, get_algorithm
from sagelab.algorithms.testing import (
    FolderCheckpoint,
    RecordingCallbacks,
    StopTraining,
    conformance_data,
)
from sagelab.errors import InvalidInput

XGBoost = get_algorithm("xgboost")


def _train(
    problem: str, validation: bool = True, **hp: object
) -> tuple[object, RecordingCallbacks]:
    data = conformance_data(problem)
    algorithm = XGBoost(hp)
    callbacks = RecordingCallbacks()
    algorithm.fit(data.train(), data.validation() if validation else None, callbacks)
    return algorithm, callbacks


def test_every_eval_metric_is_logged_each_round_for_both_channels() -> None:
    _, callbacks = _train(
        "binary_classifier", num_round=4, objective="binary:logistic", eval_metric="auc,logloss"
    )
    for name in ("train:auc", "train:logloss", "validation:auc", "validation:logloss"):
        assert [s for n, _, s in callbacks.metrics if n == name] == [0, 1, 2, 3]
    assert callbacks.stop_checks == 4


def test_early_stopping_keeps_the_best_rounds(tmp_path: Path) -> None:
    algorithm, callbacks = _train(
        "binary_classifier",
        num_round=300,
        eta=0.5,
        objective="binary:logistic",
        eval_metric="logloss",
        early_stopping_rounds=5,
    )
    losses = [v for n, v, _ in callbacks.metrics if n == "validation:logloss"]
    assert len(losses) < 300
    best = int(np.argmin(losses))
    assert len(losses) == best + 1 + 5
    algorithm.save(tmp_path)  # type: ignore[attr-defined]
    meta = json.loads((tmp_path / "sagelab-model.json").read_text())
    assert meta["num_boosted_rounds"] == best + 1
    data = conformance_data("binary_classifier")
    evaluated = algorithm.evaluate(data.validation(), "validation")  # type: ignore[attr-defined]
    assert evaluated["validation:logloss"] == pytest.approx(losses[best], rel=1e-6)


def test_evaluate_uses_xgboosts_own_metrics() -> None:
    algorithm, callbacks = _train(
        "multiclass_classifier",
        num_round=5,
        objective="multi:softprob",
        eval_metric="merror,mlogloss",
    )
    data = conformance_data("multiclass_classifier")
    result = algorithm.evaluate(data.validation(), "test")  # type: ignore[attr-defined]
    assert set(result) == {"test:merror", "test:mlogloss"}
    last = [v for n, v, _ in callbacks.metrics if n == "validation:mlogloss"][-1]
    assert result["test:mlogloss"] == pytest.approx(last, rel=1e-6)


def test_softmax_and_softprob_give_the_same_probabilities() -> None:
    data = conformance_data("multiclass_classifier")
    prob, _ = _train("multiclass_classifier", num_round=5, objective="multi:softprob")
    hard, _ = _train("multiclass_classifier", num_round=5, objective="multi:softmax")
    p, q = prob.predict(data.X_test), hard.predict(data.X_test)  # type: ignore[attr-defined]
    np.testing.assert_allclose(p.probabilities, q.probabilities, rtol=1e-5)
    assert np.array_equal(p.labels, q.labels)


def test_logitraw_is_turned_into_probabilities() -> None:
    import xgboost as xgb

    data = conformance_data("binary_classifier")
    raw, _ = _train("binary_classifier", num_round=5, objective="binary:logitraw")
    margins = raw._booster.predict(xgb.DMatrix(data.X_test)).astype(np.float64)  # type: ignore[attr-defined]
    prediction = raw.predict(data.X_test)  # type: ignore[attr-defined]
    np.testing.assert_allclose(prediction.values, 1 / (1 + np.exp(-margins)), rtol=1e-12)
    assert np.array_equal(prediction.labels, (margins > 0).astype(int))


def test_num_class_is_checked_against_the_labels() -> None:
    with pytest.raises(InvalidInput, match=r"integers 0\.\.2-1"):
        _train("multiclass_classifier", num_round=2, objective="multi:softprob", num_class=2)


def test_prediction_threads_can_be_set_for_serving(tmp_path: Path) -> None:
    data = conformance_data("regressor")
    algorithm, _ = _train("regressor", num_round=5, nthread=2)
    algorithm.save(tmp_path)  # type: ignore[attr-defined]
    loaded = XGBoost.load(tmp_path)
    before = loaded.predict(data.X_test)
    loaded.set_prediction_threads(1)  # type: ignore[attr-defined]
    assert np.array_equal(before.values, loaded.predict(data.X_test).values)
    with pytest.raises(InvalidInput, match="integer >= 1"):
        loaded.set_prediction_threads(0)  # type: ignore[attr-defined]


def test_libsvm_style_sparse_rows_treat_absent_entries_as_missing() -> None:
    data = conformance_data("binary_classifier")
    X = sparse.random(200, 30, density=0.2, format="csr", random_state=0)
    y = (np.asarray(X[:, 0].todense()).ravel() > 0).astype(int)
    algorithm = XGBoost({"num_round": 5, "objective": "binary:logistic"})
    algorithm.fit(InMemorySource(X, y), None, RecordingCallbacks())
    assert algorithm.predict(X).labels.tolist() == y.tolist()  # type: ignore[union-attr]
    assert algorithm.predict(sparse.csr_matrix(data.X_test)).values.shape == (len(data.X_test),)


def test_feature_importance_uses_the_feature_names() -> None:
    data = conformance_data("regressor")
    names = [f"col_{i}" for i in range(data.X_train.shape[1])]
    algorithm = XGBoost({"num_round": 5})
    algorithm.fit(InMemorySource(data.X_train, data.y_train, names), None, RecordingCallbacks())
    importance = algorithm.feature_importance()
    assert importance is not None and list(importance) == names
    assert sum(importance.values()) > 0


# ---------------------------------------------------------------------- checkpoints
LOGLOSS = {"objective": "binary:logistic", "eval_metric": "logloss", "nthread": 1}


def _fit(
    hp: dict[str, Any],
    checkpoint: FolderCheckpoint | None = None,
    callbacks: RecordingCallbacks | None = None,
) -> Any:
    data = conformance_data("binary_classifier")
    algorithm = XGBoost(hp)
    algorithm.fit(
        data.train(), data.validation(), callbacks or RecordingCallbacks(), checkpoint=checkpoint
    )
    return algorithm


def _ubj(algorithm: Any) -> bytes:
    return bytes(algorithm._booster.save_raw("ubj"))


def test_resuming_with_a_larger_num_round_trains_on_to_the_longer_run(tmp_path: Path) -> None:
    _fit({**LOGLOSS, "num_round": 10}, FolderCheckpoint(tmp_path, every=5))
    longer, callbacks = FolderCheckpoint(tmp_path, every=5), RecordingCallbacks()
    resumed = _fit({**LOGLOSS, "num_round": 25}, longer, callbacks)
    assert (longer.resumes, longer.saves) == ([10], [15, 20, 25])
    steps = [s for n, _, s in callbacks.metrics if n == "validation:logloss"]
    assert steps == list(range(10, 25))
    assert _ubj(resumed) == _ubj(_fit({**LOGLOSS, "num_round": 25}))  # the very same model file


def test_early_stopping_resumes_with_its_best_round_so_far(tmp_path: Path) -> None:
    hp = {**LOGLOSS, "num_round": 300, "eta": 0.5, "early_stopping_rounds": 5}
    callbacks = RecordingCallbacks()
    whole = _fit(hp, callbacks=callbacks)
    losses = [v for n, v, _ in callbacks.metrics if n == "validation:logloss"]
    best = int(np.argmin(losses))
    k = best + 3  # inside the patience window: the best round is before the checkpoint
    first = FolderCheckpoint(tmp_path)
    with pytest.raises(StopTraining):
        _fit(hp, first, RecordingCallbacks(stop_at=k))  # check_stop comes after each save
    assert first.saves[-1] == k
    second, callbacks = FolderCheckpoint(tmp_path), RecordingCallbacks()
    resumed = _fit(hp, second, callbacks)
    assert second.resumes == [k]
    assert [v for n, v, _ in callbacks.metrics if n == "validation:logloss"] == losses[k:]
    assert resumed._booster.num_boosted_rounds() == best + 1
    assert resumed._booster.best_iteration == best
    assert _ubj(resumed) == _ubj(whole)


def test_subsampling_resumes_to_a_model_as_good_but_not_the_same(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from sklearn.metrics import roc_auc_score

    data = conformance_data("binary_classifier")
    hp = {**LOGLOSS, "num_round": 40, "eta": 0.1, "subsample": 0.7, "colsample_bytree": 0.7}
    whole = _fit(hp)
    with pytest.raises(StopTraining):
        _fit(hp, FolderCheckpoint(tmp_path, every=20), RecordingCallbacks(stop_at=20))
    with caplog.at_level(logging.INFO):
        resumed = _fit(hp, FolderCheckpoint(tmp_path, every=20))
    assert "subsample=0.7, colsample_bytree=0.7 draw from XGBoost's random generator" in caplog.text
    p, q = whole.predict(data.X_test).values, resumed.predict(data.X_test).values
    assert not np.array_equal(p, q)
    auc = roc_auc_score(data.y_test, p), roc_auc_score(data.y_test, q)
    assert abs(auc[0] - auc[1]) < 0.02, auc


def test_a_checkpoint_of_other_settings_or_data_is_refused(tmp_path: Path) -> None:
    _fit({**LOGLOSS, "num_round": 10}, FolderCheckpoint(tmp_path, every=5))
    with pytest.raises(
        InvalidInput,
        match=r"eta=0\.3 \(now 0\.1\)\. .*only early_stopping_rounds, nthread, num_round may",
    ):
        _fit({**LOGLOSS, "num_round": 10, "eta": 0.1}, FolderCheckpoint(tmp_path))
    with pytest.raises(InvalidInput, match="holds 10 rounds of xgboost, more than num_round=5"):
        _fit({**LOGLOSS, "num_round": 5}, FolderCheckpoint(tmp_path))
    with pytest.raises(InvalidInput, match="seed=0 \\(now 1\\)"):
        data = conformance_data("binary_classifier")
        XGBoost({**LOGLOSS, "num_round": 10}, seed=1).fit(
            data.train(), None, RecordingCallbacks(), checkpoint=FolderCheckpoint(tmp_path)
        )
    data = conformance_data("binary_classifier")
    narrower = InMemorySource(data.X_train[:, :-1], data.y_train)
    with pytest.raises(InvalidInput, match="trained on 30 features, but the train channel has 29"):
        XGBoost({**LOGLOSS, "num_round": 10}).fit(
            narrower, None, RecordingCallbacks(), checkpoint=FolderCheckpoint(tmp_path)
        )
