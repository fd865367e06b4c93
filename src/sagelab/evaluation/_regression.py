"""Regression metrics and a residual summary, by scikit-learn."""

from __future__ import annotations

import numpy as np

from sagelab._imports import require
from sagelab.evaluation._evaluation import Evaluation
from sagelab.evaluation._guard import guarded

__all__ = ["regression_evaluation"]


def regression_evaluation(y_true: np.ndarray, y_pred: np.ndarray) -> Evaluation:
    """RMSE, MAE, MAPE, R² and friends, and the residuals ``y_true - y_pred`` summarised.

    MAPE is a fraction (0.05 means 5 %), computed over the rows whose true value is not
    zero: a zero would divide by zero (scikit-learn would divide by its tiny epsilon and
    report an enormous number instead). The rows skipped are counted in ``notes["mape"]``;
    when every true value is zero, MAPE is ``None``.
    """
    m = require("sklearn.metrics", "Evaluating a model", "scikit-learn", "evaluation")
    notes: dict[str, str] = {}
    n = len(y_true)
    metrics: dict[str, float | None] = {
        "rmse": guarded(notes, "rmse", m.root_mean_squared_error, y_true, y_pred),
        "mse": guarded(notes, "mse", m.mean_squared_error, y_true, y_pred),
        "mae": guarded(notes, "mae", m.mean_absolute_error, y_true, y_pred),
        "mape": None,
        "r2": None,
        "explained_variance": None,
        "median_absolute_error": guarded(
            notes, "median_absolute_error", m.median_absolute_error, y_true, y_pred
        ),
        "max_error": guarded(notes, "max_error", m.max_error, y_true, y_pred),
    }
    nonzero = y_true != 0
    zeros = int(n - nonzero.sum())
    if zeros == n:
        notes["mape"] = "Every true value is 0, so no percentage error can be computed."
    else:
        metrics["mape"] = guarded(
            notes, "mape", m.mean_absolute_percentage_error, y_true[nonzero], y_pred[nonzero]
        )
        if zeros:
            notes["mape"] = (
                f"Skipped {zeros} of {n} rows whose true value is 0 (a percentage of 0 is "
                f"undefined); MAPE is over the other {n - zeros}."
            )
    if n < 2:
        for name in ("r2", "explained_variance"):
            notes[name] = f"{name} needs at least 2 rows; got {n}."
    elif np.all(y_true == y_true[0]):
        for name in ("r2", "explained_variance"):
            notes[name] = (
                f"Every true value is {y_true[0]:g}: with no variance to explain, {name} is "
                "undefined."
            )
    else:
        metrics["r2"] = guarded(notes, "r2", m.r2_score, y_true, y_pred)
        metrics["explained_variance"] = guarded(
            notes, "explained_variance", m.explained_variance_score, y_true, y_pred
        )

    residuals = y_true - y_pred
    q = np.quantile(residuals, [0.05, 0.25, 0.5, 0.75, 0.95])
    summary = {
        "mean": float(residuals.mean()),
        "std": float(residuals.std()),
        "min": float(residuals.min()),
        "p05": float(q[0]),
        "p25": float(q[1]),
        "median": float(q[2]),
        "p75": float(q[3]),
        "p95": float(q[4]),
        "max": float(residuals.max()),
    }
    return Evaluation(
        problem_type="regressor",
        num_rows=n,
        metrics=metrics,
        notes=notes,
        residuals=summary,
        y_true=y_true,
        y_score=y_pred,
    )
