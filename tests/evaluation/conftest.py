"""Real predictions from small scikit-learn models trained on scikit-learn's data sets."""

from __future__ import annotations

import pytest
from _evalcases import Case
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sagelab.algorithms import Prediction


@pytest.fixture(scope="session")
def binary_case() -> Case:
    """Breast cancer, logistic regression: probabilities of class 1 ('benign')."""
    data = load_breast_cancer()
    X_tr, X_te, y_tr, y_te = train_test_split(
        data.data, data.target, test_size=0.3, random_state=0, stratify=data.target
    )
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.05)).fit(X_tr, y_tr)
    proba = model.predict_proba(X_te)[:, 1]
    coef = model[-1].coef_[0]
    return Case(
        y_te,
        Prediction(values=proba, labels=model.predict(X_te)),
        [str(n) for n in data.target_names],
        {str(n): float(abs(c)) for n, c in zip(data.feature_names, coef, strict=True)},
    )


@pytest.fixture(scope="session")
def multiclass_case() -> Case:
    """Wine on two features only, so the model makes mistakes worth measuring."""
    data = load_wine()
    X = data.data[:, [0, 1]]
    X_tr, X_te, y_tr, y_te = train_test_split(
        X, data.target, test_size=0.4, random_state=0, stratify=data.target
    )
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(X_tr, y_tr)
    proba = model.predict_proba(X_te)
    return Case(
        y_te,
        Prediction(values=proba.max(axis=1), labels=proba.argmax(axis=1), probabilities=proba),
        [str(n) for n in data.target_names],
        {"alcohol": 0.7, "malic_acid": 0.3},
    )


@pytest.fixture(scope="session")
def regression_case() -> Case:
    """Diabetes progression, ridge regression."""
    data = load_diabetes()
    X_tr, X_te, y_tr, y_te = train_test_split(data.data, data.target, test_size=0.3, random_state=0)
    model = Ridge(alpha=0.5).fit(X_tr, y_tr)
    return Case(
        y_te.astype(float),
        Prediction(values=model.predict(X_te)),
        [],
        {str(n): float(abs(c)) for n, c in zip(data.feature_names, model.coef_, strict=True)},
    )
