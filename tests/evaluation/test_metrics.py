"""Metrics equal scikit-learn's own calls on real predictions; thresholds are what they claim."""

from __future__ import annotations

import json

import numpy as np
import pytest
from _evalcases import Case
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from sagelab.algorithms import Prediction
from sagelab.evaluation import SWEEP_POINTS, Evaluation, evaluate


def _f1_at(y: np.ndarray, scores: np.ndarray, threshold: float) -> float:
    return float(skm.f1_score(y, (scores >= threshold).astype(int), zero_division=0.0))


# ---------------------------------------------------------------------------- binary
def test_binary_metrics_equal_sklearn_at_a_fixed_threshold(binary_case: Case) -> None:
    y, scores = binary_case.y_true, binary_case.prediction.values
    ev = evaluate("binary_classifier", y, binary_case.prediction, threshold=0.3)
    pred = (scores >= 0.3).astype(int)

    assert ev.threshold == 0.3 and ev.threshold_method == "fixed"
    expected = {
        "accuracy": skm.accuracy_score(y, pred),
        "precision": skm.precision_score(y, pred),
        "recall": skm.recall_score(y, pred),
        "specificity": skm.recall_score(y, pred, pos_label=0),
        "f1": skm.f1_score(y, pred),
        "balanced_accuracy": skm.balanced_accuracy_score(y, pred),
        "mcc": skm.matthews_corrcoef(y, pred),
        "auc": skm.roc_auc_score(y, scores),
        "auc_pr": skm.average_precision_score(y, scores),
        "log_loss": skm.log_loss(y, scores),
        "brier_score": skm.brier_score_loss(y, scores),
    }
    assert ev.metrics == pytest.approx(expected, rel=1e-12)
    assert ev.confusion_matrix is not None
    assert ev.confusion_matrix.matrix == skm.confusion_matrix(y, pred).tolist()
    assert ev.confusion_matrix.labels == ["0", "1"]
    assert ev.notes == {}


def test_binary_default_uses_the_models_own_labels(binary_case: Case) -> None:
    ev = evaluate("binary_classifier", binary_case.y_true, binary_case.prediction)
    assert ev.threshold is None and ev.threshold_method == "model"
    labels = binary_case.prediction.labels
    assert ev.metrics["accuracy"] == skm.accuracy_score(binary_case.y_true, labels)
    assert "model's own" in ev.summary()


def test_binary_default_without_labels_is_half(binary_case: Case) -> None:
    bare = Prediction(values=binary_case.prediction.values)
    ev = evaluate("binary_classifier", binary_case.y_true, bare)
    assert (ev.threshold, ev.threshold_method) == (0.5, "default")
    # a bare array of scores is read the same way
    same = evaluate("binary_classifier", binary_case.y_true, binary_case.prediction.values)
    assert same.metrics == ev.metrics
    # and so are both columns of predict_proba
    p = binary_case.prediction.values
    both_columns = evaluate("binary_classifier", binary_case.y_true, np.column_stack([1 - p, p]))
    assert both_columns.metrics == ev.metrics


def test_optimal_f1_threshold_is_the_best_on_the_sweep_and_on_every_score(
    binary_case: Case,
) -> None:
    y, scores = binary_case.y_true, binary_case.prediction.values
    ev = evaluate("binary_classifier", y, binary_case.prediction, threshold="optimal-f1")
    assert ev.threshold_method == "optimal-f1" and ev.threshold is not None

    best = _f1_at(y, scores, ev.threshold)
    assert ev.metrics["f1"] == pytest.approx(best)
    sweep_f1 = [row["f1"] for row in ev.threshold_sweep if row["f1"] is not None]
    assert best >= max(sweep_f1)
    # exhaustively: no score used as a threshold does better
    assert best == pytest.approx(max(_f1_at(y, scores, t) for t in np.unique(scores)))


def test_youden_threshold_maximises_tpr_minus_fpr(binary_case: Case) -> None:
    y, scores = binary_case.y_true, binary_case.prediction.values
    ev = evaluate("binary_classifier", y, binary_case.prediction, threshold="youden")
    assert ev.threshold is not None

    def youden(t: float) -> float:
        pred = (scores >= t).astype(int)
        return float(skm.recall_score(y, pred) - (1 - skm.recall_score(y, pred, pos_label=0)))

    assert youden(ev.threshold) == pytest.approx(max(youden(t) for t in np.unique(scores)))
    assert ev.metrics["recall"] + ev.metrics["specificity"] - 1 == pytest.approx(  # type: ignore[operator]
        youden(ev.threshold)
    )


def test_threshold_sweep_rows_equal_sklearn(binary_case: Case) -> None:
    y, scores = binary_case.y_true, binary_case.prediction.values
    ev = evaluate("binary_classifier", y, binary_case.prediction)
    sweep = ev.threshold_sweep
    assert len(sweep) == SWEEP_POINTS
    assert [row["threshold"] for row in sweep] == pytest.approx(np.linspace(0, 1, SWEEP_POINTS))
    for row in [*sweep[::7], sweep[-1]]:
        t = float(row["threshold"])  # type: ignore[arg-type]
        pred = (scores >= t).astype(int)
        tn, fp, fn, tp = skm.confusion_matrix(y, pred, labels=[0, 1]).ravel()
        assert (row["tn"], row["fp"], row["fn"], row["tp"]) == (tn, fp, fn, tp)
        assert row["recall"] == pytest.approx(skm.recall_score(y, pred))
        assert row["tpr"] == row["recall"]
        assert row["specificity"] == pytest.approx(skm.recall_score(y, pred, pos_label=0))
        assert row["fpr"] == pytest.approx(1 - row["specificity"])  # type: ignore[operator]
        assert row["f1"] == pytest.approx(skm.f1_score(y, pred, zero_division=0.0))
        assert row["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
        if tp + fp:
            assert row["precision"] == pytest.approx(skm.precision_score(y, pred))
        else:
            assert row["precision"] is None  # undefined, not a made-up 0


def test_binary_class_names_label_the_matrix_and_map_string_targets(binary_case: Case) -> None:
    names = binary_case.class_names  # ['malignant', 'benign']
    as_text = np.array([names[i] for i in binary_case.y_true], dtype=object)
    by_name = evaluate("binary_classifier", as_text, binary_case.prediction, class_names=names)
    by_index = evaluate("binary_classifier", binary_case.y_true, binary_case.prediction)
    assert by_name.metrics == by_index.metrics
    assert by_name.confusion_matrix is not None
    assert by_name.confusion_matrix.labels == names
    assert "'benign'" in by_name.summary()


def test_scores_that_are_not_probabilities_skip_log_loss_with_a_reason(
    binary_case: Case,
) -> None:
    logits = np.log(binary_case.prediction.values / (1 - binary_case.prediction.values))
    ev = evaluate("binary_classifier", binary_case.y_true, logits, threshold=0.0)
    assert ev.metrics["log_loss"] is None and "probabilities" in ev.notes["log_loss"]
    assert ev.metrics["auc"] == pytest.approx(
        skm.roc_auc_score(binary_case.y_true, binary_case.prediction.values)
    )
    sweep = [row["threshold"] for row in ev.threshold_sweep]
    assert sweep[0] == pytest.approx(logits.min()) and sweep[-1] == pytest.approx(logits.max())


def test_a_single_class_gives_none_with_reasons_not_a_crash(binary_case: Case) -> None:
    y, scores = binary_case.y_true, binary_case.prediction.values
    positives = y == 1
    ev = evaluate("binary_classifier", y[positives], scores[positives], threshold="optimal-f1")
    for name in ("auc", "auc_pr", "balanced_accuracy", "specificity"):
        assert ev.metrics[name] is None, name
        assert ev.notes[name], name
    assert "only class '1'" in ev.notes["auc"]
    assert ev.threshold_method == "default" and "one class" in ev.notes["threshold"]
    assert ev.metrics["recall"] == pytest.approx(float(np.mean(scores[positives] >= 0.5)))
    json.dumps(ev.as_dict(), allow_nan=False)


# ---------------------------------------------------------------------------- multiclass
def test_multiclass_metrics_equal_sklearn(multiclass_case: Case) -> None:
    y, proba = multiclass_case.y_true, multiclass_case.prediction.probabilities
    assert proba is not None
    pred = proba.argmax(axis=1)
    ev = evaluate(
        "multiclass_classifier",
        y,
        multiclass_case.prediction,
        class_names=multiclass_case.class_names,
    )
    assert 0.5 < ev.metrics["accuracy"] < 1  # type: ignore[operator]  # a model with mistakes
    expected: dict[str, float] = {
        "accuracy": skm.accuracy_score(y, pred),
        "balanced_accuracy": skm.balanced_accuracy_score(y, pred),
        "log_loss": skm.log_loss(y, proba),
        "auc": skm.roc_auc_score(y, proba, multi_class="ovr"),
    }
    for stat, fn in (
        ("precision", skm.precision_score),
        ("recall", skm.recall_score),
        ("f1", skm.f1_score),
    ):
        for average in ("macro", "micro", "weighted"):
            expected[f"{stat}_{average}"] = fn(y, pred, average=average)
    assert ev.metrics == pytest.approx(expected, rel=1e-12)

    assert ev.confusion_matrix is not None
    assert ev.confusion_matrix.matrix == skm.confusion_matrix(y, pred).tolist()
    assert ev.confusion_matrix.labels == multiclass_case.class_names
    p, r, f, s = skm.precision_recall_fscore_support(y, pred)
    assert [row["class"] for row in ev.per_class] == multiclass_case.class_names
    for c, row in enumerate(ev.per_class):
        assert (row["precision"], row["recall"], row["f1"]) == pytest.approx((p[c], r[c], f[c]))
        assert row["support"] == s[c]
        assert row["auc"] == pytest.approx(skm.roc_auc_score(y == c, proba[:, c]))


def test_multiclass_from_labels_only_skips_probability_metrics(multiclass_case: Case) -> None:
    labels = multiclass_case.prediction.labels
    assert labels is not None
    ev = evaluate(
        "multiclass_classifier", multiclass_case.y_true, Prediction(values=labels, labels=labels)
    )
    assert ev.metrics["accuracy"] == skm.accuracy_score(multiclass_case.y_true, labels)
    assert ev.metrics["log_loss"] is None and "labels only" in ev.notes["log_loss"]
    assert ev.metrics["auc"] is None
    assert len(ev.class_names) == 3


def test_multiclass_with_a_class_missing_from_the_truth(multiclass_case: Case) -> None:
    y = multiclass_case.y_true
    keep = y != 2
    proba = multiclass_case.prediction.probabilities
    assert proba is not None
    ev = evaluate(
        "multiclass_classifier", y[keep], proba[keep], class_names=multiclass_case.class_names
    )
    assert ev.metrics["auc"] is None and "class_2" in ev.notes["auc"]
    assert ev.metrics["log_loss"] == pytest.approx(
        skm.log_loss(y[keep], proba[keep], labels=[0, 1, 2])
    )
    assert ev.per_class[2]["support"] == 0 and ev.per_class[2]["recall"] is None
    json.dumps(ev.as_dict(), allow_nan=False)


# ---------------------------------------------------------------------------- regression
def test_regression_metrics_equal_sklearn(regression_case: Case) -> None:
    y, pred = regression_case.y_true, regression_case.prediction.values
    ev = evaluate("regressor", y, regression_case.prediction)
    expected = {
        "rmse": skm.root_mean_squared_error(y, pred),
        "mse": skm.mean_squared_error(y, pred),
        "mae": skm.mean_absolute_error(y, pred),
        "mape": skm.mean_absolute_percentage_error(y, pred),
        "r2": skm.r2_score(y, pred),
        "explained_variance": skm.explained_variance_score(y, pred),
        "median_absolute_error": skm.median_absolute_error(y, pred),
        "max_error": skm.max_error(y, pred),
    }
    assert ev.metrics == pytest.approx(expected, rel=1e-12)
    assert ev.notes == {}
    residuals = y - pred
    assert ev.residuals is not None
    assert ev.residuals["mean"] == pytest.approx(residuals.mean())
    assert ev.residuals["median"] == pytest.approx(np.median(residuals))
    assert ev.residuals["max"] == pytest.approx(residuals.max())


def test_mape_skips_zero_targets_and_says_how_many(regression_case: Case) -> None:
    y, pred = regression_case.y_true.copy(), regression_case.prediction.values
    y[:7] = 0.0
    ev = evaluate("regressor", y, pred)
    assert ev.metrics["mape"] == pytest.approx(skm.mean_absolute_percentage_error(y[7:], pred[7:]))
    assert f"Skipped 7 of {len(y)} rows" in ev.notes["mape"]
    everything_zero = evaluate("regressor", np.zeros(5), np.arange(5.0))
    assert (
        everything_zero.metrics["mape"] is None
        and "Every true value is 0" in everything_zero.notes["mape"]
    )
    assert everything_zero.metrics["r2"] is None and everything_zero.notes["r2"]


# ---------------------------------------------------------------------------- the result
@pytest.mark.parametrize("case", ["binary_case", "multiclass_case", "regression_case"])
def test_as_dict_is_json_and_summary_is_short(case: str, request: pytest.FixtureRequest) -> None:
    c: Case = request.getfixturevalue(case)
    kind = {
        "binary_case": "binary_classifier",
        "multiclass_case": "multiclass_classifier",
        "regression_case": "regressor",
    }[case]
    ev = evaluate(kind, c.y_true, c.prediction)
    data = json.loads(json.dumps(ev.as_dict(), allow_nan=False))
    assert data["problem_type"] == kind and data["num_rows"] == len(c.y_true)
    assert set(data["metrics"]) == set(ev.metrics)
    expected_keys = {
        "binary_classifier": {"confusion_matrix", "threshold", "threshold_sweep", "class_names"},
        "multiclass_classifier": {"confusion_matrix", "per_class", "class_names"},
        "regressor": {"residuals"},
    }[kind]
    assert set(data) == {"problem_type", "num_rows", "metrics", "notes"} | expected_keys
    lines = ev.summary().splitlines()
    assert lines[0].startswith(kind) and 3 <= len(lines) <= 12


def test_row_order_does_not_change_the_metrics(binary_case: Case) -> None:
    rng = np.random.default_rng(1)
    order = rng.permutation(len(binary_case.y_true))
    p = binary_case.prediction
    a = evaluate("binary_classifier", binary_case.y_true, p, threshold="optimal-f1")
    b = evaluate(
        "binary_classifier",
        binary_case.y_true[order],
        Prediction(
            values=p.values[order], labels=p.labels[order] if p.labels is not None else None
        ),
        threshold="optimal-f1",
    )
    assert a.metrics == pytest.approx(b.metrics) and a.threshold == b.threshold


@settings(max_examples=40, deadline=None)
@given(
    data=st.lists(
        st.tuples(st.integers(0, 1), st.floats(0, 1, allow_nan=False)), min_size=2, max_size=60
    )
)
def test_property_optimal_f1_beats_every_threshold(data: list[tuple[int, float]]) -> None:
    y = np.array([d[0] for d in data])
    scores = np.array([d[1] for d in data])
    ev: Evaluation = evaluate("binary_classifier", y, scores, threshold="optimal-f1")
    if len(np.unique(y)) < 2:
        assert ev.threshold_method == "default" and ev.metrics["auc"] is None
        return
    assert ev.threshold is not None
    best = _f1_at(y, scores, ev.threshold)
    assert all(best >= _f1_at(y, scores, t) - 1e-12 for t in np.linspace(0, 1, 21))
    assert ev.metrics["auc"] == pytest.approx(skm.roc_auc_score(y, scores))
