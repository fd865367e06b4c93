"""Binary and multiclass metrics, thresholds and the threshold sweep, by scikit-learn."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from sagelab._imports import require
from sagelab.errors import InvalidInput
from sagelab.evaluation._evaluation import ConfusionMatrix, Evaluation
from sagelab.evaluation._guard import guarded
from sagelab.evaluation._inputs import ClassifierInput

__all__ = [
    "SWEEP_POINTS",
    "THRESHOLD_METHODS",
    "ThresholdChoice",
    "binary_evaluation",
    "multiclass_evaluation",
    "threshold_sweep",
]

#: How ``evaluate`` may be told to choose a binary threshold, besides a number.
THRESHOLD_METHODS = ("optimal-f1", "youden")

#: How many thresholds the sweep table has (0, 0.01, ..., 1 for probabilities).
SWEEP_POINTS = 101

ThresholdChoice = float | Literal["optimal-f1", "youden"] | None

# Below this many cells per chunk, the sweep's indicator matrix stays a few tens of MB.
_SWEEP_CELLS = 32_000_000


def _metrics() -> Any:
    return require("sklearn.metrics", "Evaluating a model", "scikit-learn", "evaluation")


# ---------------------------------------------------------------------------- binary
def binary_evaluation(inp: ClassifierInput, threshold: ThresholdChoice) -> Evaluation:
    """Metrics of a binary classifier at one threshold, plus threshold-free ones and a sweep.

    Raises:
        InvalidInput: a threshold that is neither a number in range nor a known method.
    """
    m = _metrics()
    y, scores = inp.y_true, inp.scores
    if scores is None:  # classifier_input always sets it for binary
        raise InvalidInput("A binary_classifier prediction needs prediction.values.")
    notes: dict[str, str] = {}
    both = len(np.unique(y)) == 2
    is_probability = bool(scores.min() >= 0.0 and scores.max() <= 1.0)
    value, method = _choose_threshold(y, scores, threshold, inp.labels, notes, is_probability)
    y_pred = inp.labels if value is None and inp.labels is not None else scores >= value
    y_pred = np.asarray(y_pred).astype(np.int64)

    only = "" if both else f"y_true holds only class {inp.class_names[int(y[0])]!r}"
    metrics: dict[str, float | None] = {
        "accuracy": guarded(notes, "accuracy", m.accuracy_score, y, y_pred),
        "precision": guarded(
            notes,
            "precision",
            m.precision_score,
            y,
            y_pred,
            zero_division=np.nan,
            undefined="No row is predicted positive, so precision is undefined.",
        ),
        "recall": guarded(
            notes,
            "recall",
            m.recall_score,
            y,
            y_pred,
            zero_division=np.nan,
            undefined="y_true has no positive rows, so recall is undefined.",
        ),
        "specificity": guarded(
            notes,
            "specificity",
            m.recall_score,
            y,
            y_pred,
            pos_label=0,
            zero_division=np.nan,
            undefined="y_true has no negative rows, so specificity is undefined.",
        ),
        "f1": guarded(
            notes,
            "f1",
            m.f1_score,
            y,
            y_pred,
            zero_division=np.nan,
            undefined="There are no positive rows, true or predicted, so F1 is undefined.",
        ),
        "balanced_accuracy": None,
        "mcc": guarded(notes, "mcc", m.matthews_corrcoef, y, y_pred),
        "auc": None,
        "auc_pr": None,
        "log_loss": None,
        "brier_score": None,
    }
    if both:
        metrics["balanced_accuracy"] = guarded(
            notes, "balanced_accuracy", m.balanced_accuracy_score, y, y_pred
        )
        metrics["auc"] = guarded(notes, "auc", m.roc_auc_score, y, scores)
        metrics["auc_pr"] = guarded(notes, "auc_pr", m.average_precision_score, y, scores)
    else:
        for name in ("balanced_accuracy", "auc", "auc_pr"):
            notes[name] = f"{only}; {name} needs both classes."
    if is_probability:
        metrics["log_loss"] = guarded(notes, "log_loss", m.log_loss, y, scores, labels=[0, 1])
        metrics["brier_score"] = guarded(
            notes, "brier_score", m.brier_score_loss, y, scores, labels=[0, 1]
        )
    else:
        reason = (
            f"the scores run from {scores.min():g} to {scores.max():g}, so they are not "
            "probabilities of class 1"
        )
        notes["log_loss"] = f"Log loss needs probabilities in [0, 1]; {reason}."
        notes["brier_score"] = f"The Brier score needs probabilities in [0, 1]; {reason}."

    cm = m.confusion_matrix(y, y_pred, labels=[0, 1])
    return Evaluation(
        problem_type="binary_classifier",
        num_rows=len(y),
        metrics=metrics,
        notes=notes,
        class_names=list(inp.class_names),
        threshold=value,
        threshold_method=method,
        confusion_matrix=ConfusionMatrix(list(inp.class_names), cm.astype(int).tolist()),
        threshold_sweep=threshold_sweep(y, scores),
        y_true=y,
        y_score=scores,
        y_pred=y_pred,
    )


def _choose_threshold(
    y: np.ndarray,
    scores: np.ndarray,
    threshold: ThresholdChoice,
    labels: np.ndarray | None,
    notes: dict[str, str],
    is_probability: bool,
) -> tuple[float | None, str]:
    """The threshold and how it was chosen; ``(None, "model")`` means the model's labels."""
    if threshold is None:
        if labels is not None:
            return None, "model"
        if not is_probability:
            notes["threshold"] = (
                "The scores are not probabilities, yet the default threshold 0.5 was used; "
                "pass a threshold or a method."
            )
        return 0.5, "default"
    if isinstance(threshold, str):
        if threshold not in THRESHOLD_METHODS:
            raise InvalidInput(
                f"Unknown threshold method {threshold!r}. Use a number, "
                f"{' or '.join(repr(t) for t in THRESHOLD_METHODS)}."
            )
        if len(np.unique(y)) < 2:
            notes["threshold"] = (
                f"Cannot choose the {threshold} threshold when y_true holds only one class; "
                "used 0.5."
            )
            return 0.5, "default"
        m = _metrics()
        if threshold == "optimal-f1":
            precision, recall, thresholds = m.precision_recall_curve(
                y, scores, drop_intermediate=False
            )
            with np.errstate(invalid="ignore", divide="ignore"):
                f1 = 2 * precision * recall / (precision + recall)
            best = int(np.nanargmax(f1[: len(thresholds)]))
            return float(thresholds[best]), threshold
        fpr, tpr, thresholds = m.roc_curve(y, scores, drop_intermediate=False)
        finite = np.isfinite(thresholds)  # the first threshold is +inf: nothing positive
        best = int(np.argmax(np.where(finite, tpr - fpr, -np.inf)))
        return float(thresholds[best]), threshold
    if isinstance(threshold, bool) or not isinstance(threshold, int | float | np.number):
        raise InvalidInput(
            f"The threshold should be a number, 'optimal-f1' or 'youden'; got {threshold!r}."
        )
    value = float(threshold)
    if not np.isfinite(value) or (is_probability and not 0.0 <= value <= 1.0):
        raise InvalidInput(
            f"The threshold should be a probability in [0, 1]; got {threshold!r}. Rows whose "
            "score of class 1 is at or above the threshold are predicted positive."
        )
    return value, "fixed"


def threshold_sweep(y: np.ndarray, scores: np.ndarray) -> list[dict[str, float | int | None]]:
    """Counts and rates at :data:`SWEEP_POINTS` thresholds, a row predicted positive at ``>=``.

    Thresholds are 0, 0.01, ..., 1 for probabilities, else evenly spaced over the scores.
    The counts come from scikit-learn's ``multilabel_confusion_matrix``, one column of
    predictions per threshold, in chunks so that memory stays bounded. A rate whose
    denominator is zero is ``None``.
    """
    m = _metrics()
    if scores.min() >= 0.0 and scores.max() <= 1.0:
        grid = np.arange(SWEEP_POINTS) / (SWEEP_POINTS - 1)
    else:
        grid = np.linspace(scores.min(), scores.max(), SWEEP_POINTS)
    truth = (y == 1).astype(np.int8)[:, None]
    chunk = max(1, _SWEEP_CELLS // max(1, len(y)))
    parts = []
    for start in range(0, len(grid), chunk):
        thresholds = grid[start : start + chunk]
        predicted = (scores[:, None] >= thresholds[None, :]).astype(np.int8)
        parts.append(
            m.multilabel_confusion_matrix(np.broadcast_to(truth, predicted.shape), predicted)
        )
    counts = np.concatenate(parts)  # per threshold: [[tn, fp], [fn, tp]]
    rows: list[dict[str, float | int | None]] = []
    for t, ((tn, fp), (fn, tp)) in zip(grid, counts.tolist(), strict=True):
        recall = _ratio(tp, tp + fn)
        specificity = _ratio(tn, tn + fp)
        rows.append(
            {
                "threshold": float(t),
                "tp": tp,
                "fp": fp,
                "tn": tn,
                "fn": fn,
                "precision": _ratio(tp, tp + fp),
                "recall": recall,
                "f1": _ratio(2 * tp, 2 * tp + fp + fn),
                "specificity": specificity,
                "tpr": recall,
                "fpr": None if specificity is None else 1.0 - specificity,
                "accuracy": _ratio(tp + tn, tp + tn + fp + fn),
            }
        )
    return rows


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


# ---------------------------------------------------------------------------- multiclass
def multiclass_evaluation(inp: ClassifierInput) -> Evaluation:
    """Averaged and per-class metrics of a multiclass classifier, with its confusion matrix."""
    m = _metrics()
    y, proba, names = inp.y_true, inp.probabilities, inp.class_names
    k = len(names)
    classes = list(range(k))
    if inp.labels is not None:
        y_pred = inp.labels
    elif proba is not None:
        y_pred = np.argmax(proba, axis=1)
    else:  # classifier_input refuses a prediction with neither
        raise InvalidInput("A multiclass_classifier prediction needs probabilities or labels.")
    notes: dict[str, str] = {}
    absent = [names[c] for c in classes if not np.any(y == c)]
    never = [names[c] for c in classes if not np.any(y_pred == c)]

    metrics: dict[str, float | None] = {
        "accuracy": guarded(notes, "accuracy", m.accuracy_score, y, y_pred),
        "balanced_accuracy": None,
    }
    if absent:
        notes["balanced_accuracy"] = (
            f"Class(es) {', '.join(map(repr, absent))} never occur in y_true; "
            "balanced accuracy needs every class."
        )
    else:
        metrics["balanced_accuracy"] = guarded(
            notes, "balanced_accuracy", m.balanced_accuracy_score, y, y_pred
        )
    for stat, fn in (
        ("precision", m.precision_score),
        ("recall", m.recall_score),
        ("f1", m.f1_score),
    ):
        for average in ("macro", "micro", "weighted"):
            name = f"{stat}_{average}"
            metrics[name] = guarded(
                notes, name, fn, y, y_pred, labels=classes, average=average, zero_division=0.0
            )
    if never or absent:
        notes["averages"] = (
            "Averages count an undefined per-class value as 0"
            + (f"; never predicted: {', '.join(map(repr, never))}" if never else "")
            + (f"; absent from y_true: {', '.join(map(repr, absent))}" if absent else "")
            + "."
        )
    metrics["log_loss"] = None
    metrics["auc"] = None
    per_class_auc: list[float | None] = [None] * k
    if proba is None:
        for name in ("log_loss", "auc"):
            notes[name] = f"{name} needs class probabilities; the prediction has labels only."
    else:
        metrics["log_loss"] = guarded(notes, "log_loss", m.log_loss, y, proba, labels=classes)
        if absent:
            notes["auc"] = (
                f"Class(es) {', '.join(map(repr, absent))} never occur in y_true; the "
                "one-vs-rest AUC needs every class."
            )
        elif k == 2:
            metrics["auc"] = guarded(notes, "auc", m.roc_auc_score, y, proba[:, 1])
        else:
            metrics["auc"] = guarded(
                notes, "auc", m.roc_auc_score, y, proba, multi_class="ovr", labels=classes
            )
        for c in classes:
            if np.any(y == c) and not np.all(y == c):
                per_class_auc[c] = guarded({}, "auc", m.roc_auc_score, y == c, proba[:, c])

    precision, recall, f1, support = m.precision_recall_fscore_support(
        y, y_pred, labels=classes, zero_division=np.nan
    )
    per_class = [
        {
            "class": names[c],
            "precision": _finite(precision[c]),
            "recall": _finite(recall[c]),
            "f1": _finite(f1[c]),
            "auc": per_class_auc[c],
            "support": int(support[c]),
            "predicted": int(np.sum(y_pred == c)),
        }
        for c in classes
    ]
    cm = m.confusion_matrix(y, y_pred, labels=classes)
    return Evaluation(
        problem_type="multiclass_classifier",
        num_rows=len(y),
        metrics=metrics,
        notes=notes,
        class_names=list(names),
        confusion_matrix=ConfusionMatrix(list(names), cm.astype(int).tolist()),
        per_class=per_class,
        y_true=y,
        y_pred=np.asarray(y_pred, dtype=np.int64),
        probabilities=proba,
    )


def _finite(value: Any) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None
