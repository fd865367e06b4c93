"""``evaluate``: one entry point from (problem type, truth, prediction) to an Evaluation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sagelab.errors import InvalidInput
from sagelab.evaluation._classification import (
    ThresholdChoice,
    binary_evaluation,
    multiclass_evaluation,
)
from sagelab.evaluation._evaluation import Evaluation
from sagelab.evaluation._inputs import check_problem_type, classifier_input, regression_input
from sagelab.evaluation._regression import regression_evaluation

__all__ = ["evaluate"]


def evaluate(
    problem_type: str,
    y_true: Any,
    prediction: Any,
    *,
    threshold: ThresholdChoice = None,
    class_names: Sequence[Any] | None = None,
) -> Evaluation:
    """Compare a model's predictions with the truth, using scikit-learn's metrics.

    Args:
        problem_type: ``binary_classifier``, ``multiclass_classifier`` or ``regressor``.
        y_true: the true target per row. Classifiers: class indices ``0..k-1`` (the way
            training encoded them), or class names when ``class_names`` is given.
        prediction: what the model's ``predict(X)`` returned (a
            :class:`~sagelab.algorithms.Prediction`); a bare array is read as the scores of
            class 1 (binary), probabilities or labels (multiclass), values (regression).
        threshold: binary only. A row is predicted positive when its score of class 1 is
            at or above the threshold. A number fixes it; ``"optimal-f1"`` picks the score
            that maximises F1 on these rows; ``"youden"`` the one that maximises
            TPR − FPR (Youden's J). ``None`` uses the prediction's own labels when it has
            them, else 0.5. Choosing on the evaluated rows flatters the metrics: choose on
            validation data and pass the number when evaluating on test data.
        class_names: display names of the classes in index order (binary: negative,
            positive).

    Returns:
        The metrics, the threshold and how it was chosen, the confusion matrix, the
        threshold sweep (binary), the per-class table (multiclass), the residual summary
        (regression).

    Raises:
        InvalidInput: an unknown problem type, a threshold for a non-binary problem, a
            length mismatch, NaN or infinite values, labels outside the classes.
        ImportError: scikit-learn is not installed.
    """
    kind = check_problem_type(problem_type)
    if threshold is not None and kind != "binary_classifier":
        raise InvalidInput(
            f"A threshold applies only to binary_classifier; got threshold={threshold!r} for "
            f"{kind}. Leave it out."
        )
    if kind == "regressor":
        if class_names is not None:
            raise InvalidInput(
                "class_names applies only to classifiers; leave it out for a regressor."
            )
        return regression_evaluation(*regression_input(y_true, prediction))
    inp = classifier_input(kind, y_true, prediction, class_names)
    if kind == "binary_classifier":
        return binary_evaluation(inp, threshold)
    return multiclass_evaluation(inp)
