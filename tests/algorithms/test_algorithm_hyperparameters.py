"""Hyperparameters are validated before any work, with one message per problem."""

from __future__ import annotations

import pytest

from sagelab.algorithms import HyperparameterError, get_algorithm
from sagelab.errors import InvalidInput


def _range(algorithm: str, name: str) -> str:
    (spec,) = [h for h in get_algorithm(algorithm).hyperparameters if h.name == name]
    return spec.describe_range()


def _problems(name: str, given: dict[str, object]) -> list[str]:
    with pytest.raises(HyperparameterError) as info:
        get_algorithm(name)(given)
    assert isinstance(info.value, InvalidInput)
    return info.value.problems


def test_a_typo_gets_a_suggestion() -> None:
    problems = _problems("xgboost", {"num_round": 10, "etaa": 0.1})
    assert problems == [
        "'etaa' is not a hyperparameter of xgboost. Did you mean 'eta'? Known: "
        + ", ".join(sorted(h.name for h in get_algorithm("xgboost").hyperparameters))
        + "."
    ]


def test_one_message_per_problem() -> None:
    problems = _problems("xgboost", {"etaa": 0.1, "max_depth": "six", "subsample": 2})
    assert len(problems) == 4
    assert (
        f"The 'max_depth' hyperparameter of xgboost must be {_range('xgboost', 'max_depth')}. "
        "Got 'six'."
    ) in problems
    assert (
        "The 'subsample' hyperparameter of xgboost must be a number in (0, 1]. Got 2." in problems
    )
    assert any("'num_round'" in p and "required" in p for p in problems)
    assert any("Did you mean 'eta'" in p for p in problems)


def test_num_round_is_required_as_in_sagemaker() -> None:
    assert _problems("xgboost", {}) == [
        "The 'num_round' hyperparameter of xgboost is required: give "
        f"{_range('xgboost', 'num_round')}."
    ]
    assert _range("xgboost", "num_round").startswith("an integer in [1, inf")
    (spec,) = [
        h
        for h in get_algorithm("xgboost").describe()["Hyperparameters"]
        if h["Name"] == "num_round"
    ]
    assert spec["IsRequired"] is True


def test_sagemaker_strings_are_coerced() -> None:
    xgb = get_algorithm("xgboost")({"num_round": "10", "eta": "0.25", "max_depth": "3.0"})
    assert (xgb.params["num_round"], xgb.params["eta"], xgb.params["max_depth"]) == (10, 0.25, 3)
    linear = get_algorithm("linear-learner")(
        {"predictor_type": "regressor", "use_bias": "false", "epochs": "4"}
    )
    assert linear.params["use_bias"] is False and linear.params["epochs"] == 4


def test_eval_metric_items_are_checked_with_the_other_values() -> None:
    problems = _problems("xgboost", {"num_round": 0, "eval_metric": "acu,logloss"})
    assert len(problems) == 2
    assert any("'num_round'" in p for p in problems)
    assert any("Got 'acu'. Did you mean 'auc'?" in p for p in problems)


def test_metrics_must_fit_the_objective() -> None:
    (problem,) = _problems(
        "xgboost", {"num_round": 5, "objective": "binary:logistic", "eval_metric": "mlogloss"}
    )
    assert "'mlogloss'" in problem and "binary_classifier" in problem
    (problem,) = _problems("lightgbm", {"objective": "regression", "metric": "auc"})
    assert "'auc'" in problem and "rmse" in problem


def test_lightgbm_refuses_two_ways_of_weighting_classes() -> None:
    (problem,) = _problems(
        "lightgbm", {"objective": "binary", "is_unbalance": True, "scale_pos_weight": 3}
    )
    assert "is_unbalance or scale_pos_weight" in problem


def test_lightgbm_names_are_sagemakers() -> None:
    names = {h.name for h in get_algorithm("lightgbm").hyperparameters}
    assert {
        "num_boost_round",
        "learning_rate",
        "num_leaves",
        "max_depth",
        "feature_fraction",
        "bagging_fraction",
        "bagging_freq",
        "min_data_in_leaf",
        "lambda_l1",
        "lambda_l2",
        "objective",
        "metric",
        "early_stopping_rounds",
    } <= names


def test_linear_learner_needs_a_predictor_type_and_a_fitting_loss() -> None:
    assert _problems("linear-learner", {}) == [
        "The 'predictor_type' hyperparameter of linear-learner is required: give one of "
        "'binary_classifier', 'multiclass_classifier', 'regressor'."
    ]
    (problem,) = _problems("linear-learner", {"predictor_type": "regressor", "loss": "logistic"})
    assert "'logistic'" in problem and "'squared_loss'" in problem
    problems = _problems(
        "linear-learner",
        {"predictor_type": "regresor", "mini_batch_size": 0, "optimizer": "adamw"},
    )
    assert len(problems) == 3
    assert any("Did you mean 'regressor'?" in p for p in problems)
    assert any("Did you mean 'adam'?" in p for p in problems)


def test_metric_declarations_use_sagemaker_names() -> None:
    xgb = get_algorithm("xgboost")
    assert xgb.metric("validation:auc").direction == "Maximize"
    assert xgb.metric("validation:rmse").direction == "Minimize"
    assert xgb.metric("train:mlogloss").direction == "Minimize"
    linear = get_algorithm("linear-learner")
    for name in (
        "train:objective_loss",
        "validation:objective_loss",
        "validation:binary_classification_accuracy",
        "validation:binary_f_beta",
        "validation:precision",
        "validation:recall",
        "validation:roc_auc_score",
        "validation:multiclass_accuracy",
        "validation:rmse",
        "validation:mse",
        "validation:absolute_loss",
        "test:objective_loss",
    ):
        linear.metric(name)
    with pytest.raises(InvalidInput, match="Did you mean 'validation:auc'"):
        xgb.metric("validation:acu")
