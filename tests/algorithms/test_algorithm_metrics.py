"""The NumPy metrics equal scikit-learn's on real predictions, ties included."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as sk

from sagelab.algorithms import _metrics as M


@pytest.fixture
def binary() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    score = np.clip(np.round(y * 0.3 + rng.normal(0.35, 0.25, 300), 1), 0.05, 0.95)  # ties
    return y, score


def test_binary_metrics(binary: tuple[np.ndarray, np.ndarray]) -> None:
    y, p = binary
    assert M.roc_auc(y, p) == pytest.approx(sk.roc_auc_score(y, p))
    assert M.average_precision(y, p) == pytest.approx(sk.average_precision_score(y, p))
    assert M.log_loss(y, p) == pytest.approx(sk.log_loss(y, p))
    labels = (p > 0.5).astype(int)
    precision, recall = M.precision_recall(y, labels)
    assert precision == pytest.approx(sk.precision_score(y, labels))
    assert recall == pytest.approx(sk.recall_score(y, labels))
    assert M.f_beta(precision, recall, 2.0) == pytest.approx(sk.fbeta_score(y, labels, beta=2.0))
    assert M.binary_error(y, p) == pytest.approx(1 - sk.accuracy_score(y, labels))


def test_undefined_metrics_are_nan_or_zero() -> None:
    assert np.isnan(M.roc_auc(np.ones(4), np.arange(4.0)))
    assert M.precision_recall(np.zeros(3), np.zeros(3)) == (0.0, 0.0)


def test_multiclass_metrics() -> None:
    rng = np.random.default_rng(1)
    P = rng.dirichlet(np.ones(4), 200)
    y = rng.integers(0, 4, 200)
    labels = P.argmax(axis=1)
    assert M.multi_log_loss(y, P) == pytest.approx(sk.log_loss(y, P, labels=range(4)))
    assert M.top_k_accuracy(y, P, 2) == pytest.approx(sk.top_k_accuracy_score(y, P, k=2))
    mp, mr, mf = M.macro_scores(y, labels, 4, 1.0)
    assert mp == pytest.approx(sk.precision_score(y, labels, average="macro"))
    assert mr == pytest.approx(sk.recall_score(y, labels, average="macro"))
    assert mf == pytest.approx(sk.f1_score(y, labels, average="macro"))


def test_regression_metrics() -> None:
    rng = np.random.default_rng(2)
    y, p = rng.normal(size=100), rng.normal(size=100)
    assert M.mse(y, p) == pytest.approx(sk.mean_squared_error(y, p))
    assert M.rmse(y, p) == pytest.approx(sk.root_mean_squared_error(y, p))
    assert M.absolute_loss(y, p) == pytest.approx(sk.mean_absolute_error(y, p))
    assert M.huber_loss(y, p, 10.0) == pytest.approx(0.5 * sk.mean_squared_error(y, p))
