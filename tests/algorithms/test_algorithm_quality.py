"""The built-in algorithms are as good as their references on fixed splits of real data."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import accuracy_score, mean_squared_error, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sagelab.algorithms import InMemorySource, get_algorithm
from sagelab.algorithms.testing import RecordingCallbacks


def _split(loader: Any, stratify: bool) -> tuple[np.ndarray, ...]:
    X, y = loader(return_X_y=True)
    return tuple(
        train_test_split(X, y, test_size=0.25, random_state=0, stratify=y if stratify else None)
    )


def _fit(name: str, hyperparameters: dict[str, Any], Xtr: Any, ytr: Any, seed: int = 0) -> Any:
    algorithm = get_algorithm(name)(hyperparameters, seed=seed)
    callbacks = RecordingCallbacks()
    algorithm.fit(InMemorySource(Xtr, ytr), None, callbacks)
    return algorithm


def test_xgboost_equals_a_direct_xgboost_train() -> None:
    import xgboost as xgb

    Xtr, Xte, ytr, yte = _split(load_breast_cancer, stratify=True)
    ours = _fit(
        "xgboost",
        {
            "num_round": 40,
            "eta": 0.1,
            "max_depth": 4,
            "subsample": 0.8,
            "colsample_bytree": 0.8,
            "objective": "binary:logistic",
            "eval_metric": "auc",
            "nthread": 2,
        },
        Xtr,
        ytr,
        seed=7,
    )
    direct = xgb.train(
        {
            "objective": "binary:logistic",
            "eta": 0.1,
            "max_depth": 4,
            "subsample": 0.8,
            "colsample_bytree": 0.8,
            "seed": 7,
            "nthread": 2,
        },
        xgb.DMatrix(Xtr, label=ytr),
        num_boost_round=40,
    )
    p_ours = ours.predict(Xte).values
    p_direct = direct.predict(xgb.DMatrix(Xte)).astype(np.float64)
    assert np.array_equal(p_ours, p_direct)
    assert roc_auc_score(yte, p_ours) == roc_auc_score(yte, p_direct)
    assert roc_auc_score(yte, p_ours) > 0.98


def test_lightgbm_equals_a_direct_lightgbm_train() -> None:
    import lightgbm as lgb

    Xtr, Xte, ytr, yte = _split(load_breast_cancer, stratify=True)
    hp = {"num_boost_round": 30, "objective": "binary", "num_leaves": 16, "num_threads": 2}
    ours = _fit("lightgbm", hp, Xtr, ytr, seed=3)
    params = {
        "objective": "binary",
        "num_leaves": 16,
        "learning_rate": 0.1,
        "feature_fraction": 0.9,
        "bagging_fraction": 0.9,
        "bagging_freq": 1,
        "max_depth": 6,
        "min_data_in_leaf": 3,
        "seed": 3,
        "num_threads": 2,
        "deterministic": True,
        "force_row_wise": True,
        "verbosity": -1,
    }
    direct = lgb.train(params, lgb.Dataset(Xtr, ytr, params=params), num_boost_round=30)
    p_ours = ours.predict(Xte).values
    p_direct = direct.predict(Xte)
    np.testing.assert_allclose(p_ours, p_direct, rtol=1e-12)
    assert roc_auc_score(yte, p_ours) == pytest.approx(roc_auc_score(yte, p_direct), abs=1e-12)


def test_linear_learner_matches_logistic_regression_on_breast_cancer() -> None:
    Xtr, Xte, ytr, yte = _split(load_breast_cancer, stratify=True)
    reference = make_pipeline(StandardScaler(), LogisticRegression()).fit(Xtr, ytr)
    auc_reference = roc_auc_score(yte, reference.predict_proba(Xte)[:, 1])
    ours = _fit(
        "linear-learner",
        {"predictor_type": "binary_classifier", "mini_batch_size": 32, "epochs": 30},
        Xtr,
        ytr,
    )
    auc = roc_auc_score(yte, ours.predict(Xte).values)
    assert abs(auc - auc_reference) <= 0.01, (auc, auc_reference)


def test_linear_learner_matches_linear_regression_on_diabetes() -> None:
    Xtr, Xte, ytr, yte = _split(load_diabetes, stratify=False)
    reference = LinearRegression().fit(Xtr, ytr)
    rmse_reference = mean_squared_error(yte, reference.predict(Xte)) ** 0.5
    ours = _fit(
        "linear-learner",
        {"predictor_type": "regressor", "mini_batch_size": 32, "epochs": 50},
        Xtr,
        ytr,
    )
    rmse = mean_squared_error(yte, ours.predict(Xte).values) ** 0.5
    assert rmse <= 1.02 * rmse_reference, (rmse, rmse_reference)


def test_linear_learner_multiclass_matches_logistic_regression_on_wine() -> None:
    Xtr, Xte, ytr, yte = _split(load_wine, stratify=True)
    reference = make_pipeline(StandardScaler(), LogisticRegression()).fit(Xtr, ytr)
    accuracy_reference = accuracy_score(yte, reference.predict(Xte))
    ours = _fit(
        "linear-learner",
        {"predictor_type": "multiclass_classifier", "mini_batch_size": 16, "epochs": 30},
        Xtr,
        ytr,
    )
    accuracy = accuracy_score(yte, ours.predict(Xte).labels)
    assert accuracy >= accuracy_reference - 0.05, (accuracy, accuracy_reference)
