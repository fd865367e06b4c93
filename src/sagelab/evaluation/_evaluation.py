"""The result of an evaluation: metrics, the threshold, tables, and a short summary."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["ConfusionMatrix", "Evaluation", "format_metric"]

# The metrics a summary shows first, per problem type; the rest follow in table order.
_HEADLINE = {
    "binary_classifier": (
        "accuracy",
        "precision",
        "recall",
        "specificity",
        "f1",
        "auc",
        "auc_pr",
        "log_loss",
    ),
    "multiclass_classifier": (
        "accuracy",
        "balanced_accuracy",
        "f1_macro",
        "f1_micro",
        "f1_weighted",
        "log_loss",
        "auc",
    ),
    "regressor": ("rmse", "mae", "mape", "r2"),
}


@dataclass(frozen=True)
class ConfusionMatrix:
    """Counts of true class (rows) against predicted class (columns).

    Attributes:
        labels: the class names, in row and column order.
        matrix: ``matrix[i][j]`` rows of true class ``labels[i]`` predicted as ``labels[j]``.
    """

    labels: list[str]
    matrix: list[list[int]]

    def as_dict(self) -> dict[str, Any]:
        return {
            "labels": list(self.labels),
            "matrix": [list(row) for row in self.matrix],
            "rows": "true class",
            "columns": "predicted class",
        }


@dataclass
class Evaluation:
    """How well a model's predictions match the truth, as :func:`evaluate` computed it.

    Metric names follow SageMaker's built-in algorithms where they have one (``accuracy``,
    ``precision``, ``recall``, ``f1``, ``auc``, ``rmse``, ``mae``, ``mape``, ``r2``...).
    A metric that cannot be computed for this data is ``None``, and :attr:`notes` says why.

    Attributes:
        problem_type: ``binary_classifier``, ``multiclass_classifier`` or ``regressor``.
        num_rows: how many rows were evaluated.
        metrics: metric name to value (``None`` when undefined for this data).
        notes: why a metric is ``None`` or what was left out of it, by metric name;
            also ``"threshold"`` (a threshold not chosen as asked) and ``"averages"``
            (multiclass: classes never predicted or absent from ``y_true``).
        class_names: classifiers: the class names in index order; the positive class of
            a binary classifier is ``class_names[1]``.
        threshold: binary: the score at or above which a row is predicted positive
            (``None`` when the model's own labels were used).
        threshold_method: binary: ``"fixed"``, ``"default"`` (0.5), ``"model"`` (the
            prediction's own labels), ``"optimal-f1"`` or ``"youden"``.
        confusion_matrix: classifiers: true against predicted class.
        threshold_sweep: binary: one row per threshold with the counts and rates there.
        per_class: multiclass: precision, recall, F1 and support of each class.
        residuals: regression: a summary of ``y_true - y_pred``.
        y_true: the targets (class indices for classifiers), kept for the report's plots.
        y_score: binary: the score of class 1; regression: the predicted values.
        y_pred: classifiers: the predicted class indices.
        probabilities: multiclass: rows × classes, when the model gave them.
    """

    problem_type: str
    num_rows: int
    metrics: dict[str, float | None]
    notes: dict[str, str] = field(default_factory=dict)
    class_names: list[str] = field(default_factory=list)
    threshold: float | None = None
    threshold_method: str | None = None
    confusion_matrix: ConfusionMatrix | None = None
    threshold_sweep: list[dict[str, float | int | None]] = field(default_factory=list)
    per_class: list[dict[str, Any]] = field(default_factory=list)
    residuals: dict[str, float] | None = None
    y_true: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False, compare=False)
    y_score: np.ndarray | None = field(default=None, repr=False, compare=False)
    y_pred: np.ndarray | None = field(default=None, repr=False, compare=False)
    probabilities: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def is_classifier(self) -> bool:
        return self.problem_type != "regressor"

    def as_dict(self) -> dict[str, Any]:
        """Everything but the per-row arrays, ready for ``json.dumps`` (NaN never appears).

        Keys: ``problem_type``, ``num_rows``, ``metrics``, ``notes``; classifiers add
        ``class_names`` and ``confusion_matrix``; binary adds ``threshold`` (``value``,
        ``method``) and ``threshold_sweep``; multiclass adds ``per_class``; regression adds
        ``residuals``.
        """
        out: dict[str, Any] = {
            "problem_type": self.problem_type,
            "num_rows": self.num_rows,
            "metrics": {k: _json_number(v) for k, v in self.metrics.items()},
            "notes": dict(self.notes),
        }
        if self.is_classifier:
            out["class_names"] = list(self.class_names)
            if self.confusion_matrix is not None:
                out["confusion_matrix"] = self.confusion_matrix.as_dict()
        if self.problem_type == "binary_classifier":
            out["threshold"] = {
                "value": _json_number(self.threshold),
                "method": self.threshold_method,
            }
            out["threshold_sweep"] = [
                {k: _json_number(v) for k, v in row.items()} for row in self.threshold_sweep
            ]
        if self.problem_type == "multiclass_classifier":
            out["per_class"] = [
                {k: _json_number(v) for k, v in row.items()} for row in self.per_class
            ]
        if self.residuals is not None:
            out["residuals"] = {k: _json_number(v) for k, v in self.residuals.items()}
        return out

    def summary(self) -> str:
        """A few lines for a terminal: what was evaluated, the threshold, the headline metrics."""
        lines = [f"{self.problem_type} evaluated on {self.num_rows} rows"]
        if self.problem_type == "binary_classifier":
            positives = int(np.sum(self.y_true == 1)) if self.y_true.size else 0
            lines[0] += f" ({positives} of class {self.class_names[1]!r})"
            if self.threshold_method == "model":
                lines.append("threshold: the model's own predicted labels")
            else:
                lines.append(f"threshold: {self.threshold:.4g} ({self.threshold_method})")
        elif self.problem_type == "multiclass_classifier":
            lines[0] += f", {len(self.class_names)} classes"
        headline = _HEADLINE[self.problem_type]
        width = max(len(name) for name in headline)
        for name in headline:
            if name in self.metrics:
                lines.append(f"  {name:<{width}}  {format_metric(self.metrics[name])}")
        for name, note in self.notes.items():
            lines.append(f"note ({name}): {note}")
        return "\n".join(lines)


def format_metric(value: float | int | None) -> str:
    """A metric for people: 4 significant digits, ``n/a`` when undefined."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, int):
        return str(value)
    return f"{value:.4g}"


def _json_number(value: Any) -> Any:
    """Plain Python numbers; NaN and infinity become None (JSON has neither)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
