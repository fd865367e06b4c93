"""Evaluation metrics in NumPy, shared by the built-in algorithms.

Written here rather than taken from scikit-learn because scikit-learn is not a
core dependency, and because the definitions must match the libraries whose
names they carry: ``binary_error`` thresholds at 0.5 like LightGBM, log losses
clip probabilities at 1e-15 like XGBoost. Every function takes plain arrays and
returns a float; a metric undefined on the data (AUC over a single class) is NaN,
which ``log_metric`` skips with a warning.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "absolute_loss",
    "accuracy",
    "average_precision",
    "binary_error",
    "f_beta",
    "fair_loss",
    "huber_loss",
    "log_loss",
    "macro_scores",
    "mse",
    "multi_error",
    "multi_log_loss",
    "precision_recall",
    "rmse",
    "roc_auc",
    "top_k_accuracy",
]

_EPS = 1e-15


def _ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, ties sharing their average rank (what the Mann-Whitney AUC needs)."""
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    average = ends - (counts - 1) / 2.0
    return np.asarray(average[inverse], dtype=np.float64)


def roc_auc(y: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve of scores for 0/1 labels; NaN with a single class."""
    y = np.asarray(y) == 1
    positives = int(y.sum())
    negatives = y.size - positives
    if positives == 0 or negatives == 0:
        return float("nan")
    ranks = _ranks(np.asarray(score, dtype=np.float64))
    return float((ranks[y].sum() - positives * (positives + 1) / 2.0) / (positives * negatives))


def average_precision(y: np.ndarray, score: np.ndarray) -> float:
    """Area under the precision-recall curve as a step function (scikit-learn's definition)."""
    y = np.asarray(y) == 1
    positives = int(y.sum())
    if positives == 0:
        return float("nan")
    order = np.argsort(-np.asarray(score, dtype=np.float64), kind="mergesort")
    sorted_score = np.asarray(score, dtype=np.float64)[order]
    hits = np.cumsum(y[order])
    # One point per distinct threshold: the last row of each run of tied scores.
    last = np.r_[sorted_score[1:] != sorted_score[:-1], True]
    tp = hits[last].astype(np.float64)
    seen = (np.flatnonzero(last) + 1).astype(np.float64)
    precision = tp / seen
    recall = tp / positives
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def log_loss(y: np.ndarray, p: np.ndarray) -> float:
    """Mean binary cross-entropy of probabilities of class 1."""
    p = np.clip(np.asarray(p, dtype=np.float64), _EPS, 1 - _EPS)
    y = np.asarray(y, dtype=np.float64)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))


def multi_log_loss(y: np.ndarray, probabilities: np.ndarray) -> float:
    """Mean cross-entropy of per-class probabilities for labels 0..k-1."""
    p = np.asarray(probabilities, dtype=np.float64)
    picked = np.clip(p[np.arange(p.shape[0]), np.asarray(y, dtype=np.int64)], _EPS, 1.0)
    return float(-np.mean(np.log(picked)))


def binary_error(y: np.ndarray, p: np.ndarray) -> float:
    """Share of rows whose probability is on the wrong side of 0.5."""
    return float(np.mean((np.asarray(p) > 0.5) != (np.asarray(y) == 1)))


def accuracy(y: np.ndarray, predicted: np.ndarray) -> float:
    """Share of rows whose predicted label is the label."""
    return float(np.mean(np.asarray(y) == np.asarray(predicted)))


def multi_error(y: np.ndarray, probabilities: np.ndarray) -> float:
    """Share of rows whose most probable class is not the label."""
    return 1.0 - accuracy(y, np.argmax(probabilities, axis=1))


def top_k_accuracy(y: np.ndarray, probabilities: np.ndarray, k: int) -> float:
    """Share of rows whose label is among the ``k`` most probable classes."""
    p = np.asarray(probabilities, dtype=np.float64)
    k = min(int(k), p.shape[1])
    # A label is in the top k when fewer than k classes score strictly higher.
    own = p[np.arange(p.shape[0]), np.asarray(y, dtype=np.int64)]
    return float(np.mean((p > own[:, None]).sum(axis=1) < k))


def precision_recall(y: np.ndarray, predicted: np.ndarray) -> tuple[float, float]:
    """Precision and recall of the positive class (0 when undefined, as SageMaker reports)."""
    y = np.asarray(y) == 1
    predicted = np.asarray(predicted) == 1
    tp = float(np.sum(y & predicted))
    precision = tp / float(predicted.sum()) if predicted.any() else 0.0
    recall = tp / float(y.sum()) if y.any() else 0.0
    return precision, recall


def f_beta(precision: float, recall: float, beta: float) -> float:
    """The weighted harmonic mean of precision and recall (F1 when ``beta`` is 1)."""
    b2 = beta * beta
    denominator = b2 * precision + recall
    return 0.0 if denominator == 0 else (1 + b2) * precision * recall / denominator


def macro_scores(
    y: np.ndarray, predicted: np.ndarray, num_classes: int, beta: float
) -> tuple[float, float, float]:
    """Precision, recall and F-beta averaged over classes, each class counting once."""
    y = np.asarray(y, dtype=np.int64)
    predicted = np.asarray(predicted, dtype=np.int64)
    scores = [precision_recall(y == c, predicted == c) for c in range(num_classes)]
    precision = float(np.mean([s[0] for s in scores]))
    recall = float(np.mean([s[1] for s in scores]))
    fb = float(np.mean([f_beta(p, r, beta) for p, r in scores]))
    return precision, recall, fb


def mse(y: np.ndarray, predicted: np.ndarray) -> float:
    """Mean squared error."""
    residual = np.asarray(predicted, dtype=np.float64) - np.asarray(y, dtype=np.float64)
    return float(np.mean(residual * residual))


def rmse(y: np.ndarray, predicted: np.ndarray) -> float:
    """Root mean squared error."""
    return float(np.sqrt(mse(y, predicted)))


def absolute_loss(y: np.ndarray, predicted: np.ndarray) -> float:
    """Mean absolute error."""
    return float(
        np.mean(np.abs(np.asarray(predicted, dtype=np.float64) - np.asarray(y, dtype=np.float64)))
    )


def huber_loss(y: np.ndarray, predicted: np.ndarray, delta: float) -> float:
    """Mean Huber loss: squared within ``delta`` of the label, linear beyond."""
    r = np.abs(np.asarray(predicted, dtype=np.float64) - np.asarray(y, dtype=np.float64))
    return float(np.mean(np.where(r <= delta, 0.5 * r * r, delta * (r - 0.5 * delta))))


def fair_loss(y: np.ndarray, predicted: np.ndarray, c: float) -> float:
    """Mean Fair loss ``c² (|r|/c - log(1 + |r|/c))``, LightGBM's ``fair``."""
    r = np.abs(np.asarray(predicted, dtype=np.float64) - np.asarray(y, dtype=np.float64)) / c
    return float(np.mean(c * c * (r - np.log1p(r))))
