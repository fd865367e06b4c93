"""Bad input gets a clear error: at submit time when no data is needed, else a ClientError job."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from _training_data import XGB_BINARY, Env, cancer_frame, diabetes_frame, register_table

from sagelab.algorithms import HyperparameterError
from sagelab.cli import main
from sagelab.errors import InvalidInput, NotFound
from sagelab.jobs import JobInfo


@pytest.mark.parametrize(
    ("request_", "needle"),
    [
        ({"algorithm": "xgbost"}, "Did you mean 'xgboost'"),
        ({"hyperparameters": {**XGB_BINARY, "num_round": "many"}}, "'num_round'"),
        ({"hyperparameters": {"objective": "binary:logistic"}}, "'num_round' hyperparameter"),
        ({"hyperparameters": {**XGB_BINARY, "max_dept": 3}}, "Did you mean 'max_depth'"),
        ({"inputs": {"valid": "x.csv", "train": "x.csv"}}, "Unknown channel(s) 'valid'"),
        ({"inputs": {"validation": "x.csv"}}, "needs a train channel"),
        ({"inputs": {"train": "  "}}, "train channel's SOURCE"),
        ({"cv": 1}, "[2, 100]"),
        ({"cv": 3, "split_by": "visit"}, "leave out cv or split_by"),
        ({"split_by": "visit", "inputs": {"train": "a.csv", "validation": "b.csv"}}, "split_by"),
        ({"holdout": 1.5}, "(0, 1)"),
        ({"content_type": "text/xml"}, "text/xml"),
        ({"seed": -1}, "seed"),
        ({"checkpoint_uri": "checkpoints/run-1"}, "s3://"),
    ],
)
def test_requests_are_checked_before_a_job_starts(
    env: Env, request_: dict[str, Any], needle: str
) -> None:
    args: dict[str, Any] = {
        "algorithm": "xgboost",
        "inputs": {"train": "x.csv"},
        "hyperparameters": XGB_BINARY,
        **request_,
    }
    before = len(env.session.jobs.list())
    with pytest.raises(InvalidInput) as caught:
        env.training.submit(args.pop("algorithm"), args.pop("inputs"), **args)
    assert needle in str(caught.value)
    assert len(env.session.jobs.list()) == before


def test_hyperparameter_errors_come_back_from_the_cli(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["train", "-a", "xgboost", "--train", "x.csv", "--hp", "eta=2", "--hp", "num_round=5"]
    )
    err = capsys.readouterr().err
    assert code == 1 and "'eta'" in err and "[0, 1]" in err
    code = main(["train", "-a", "xgboost", "--train", "x.csv", "--hp", "eta"])
    assert code == 1 and "key=value" in capsys.readouterr().err
    assert isinstance(HyperparameterError("xgboost", ["x"]), InvalidInput)


@pytest.fixture(scope="module")
def failed(env: Env) -> dict[str, JobInfo]:
    """Jobs fed bad data, started together and awaited: each must fail before training."""
    files, session, training = env.files, env.session, env.training
    folder = files.folder
    cancer = cancer_frame()
    table = register_table(session.catalog, session.lake, "cancer", cancer)
    text = diabetes_frame().drop(columns=["visit"])
    text["sex"] = np.where(text["sex"] > 0, "male", "female")
    text["smoker"] = "no"
    text.to_parquet(folder / "with-text.parquet")
    nan_labels = cancer.copy()
    nan_labels["diagnosis"] = nan_labels["diagnosis"].astype(float)
    nan_labels.loc[[7, 9, 11], "diagnosis"] = np.nan
    nan_labels.to_parquet(folder / "nan-labels.parquet")
    pd.read_csv(files.cancer_csv, header=None).iloc[:, :12].to_csv(
        folder / "narrow.csv", header=False, index=False
    )
    lgb = {"objective": "regression", "num_boost_round": 5, "num_threads": 1}
    cases = {
        "missing-target": ("xgboost", {"train": str(files.cancer_parquet)}, "label", XGB_BINARY),
        "text-features": (
            "lightgbm",
            {"train": str(folder / "with-text.parquet")},
            "progression",
            lgb,
        ),
        "nan-labels": (
            "xgboost",
            {"train": str(folder / "nan-labels.parquet")},
            "diagnosis",
            XGB_BINARY,
        ),
        "single-class": (
            "xgboost",
            {"train": f"SELECT * FROM {table} WHERE diagnosis = 1"},
            "diagnosis",
            XGB_BINARY,
        ),
        "empty": (
            "xgboost",
            {"train": f"SELECT * FROM {table} WHERE mean_radius < 0"},
            "diagnosis",
            XGB_BINARY,
        ),
        "headerless-target": ("xgboost", {"train": str(files.cancer_csv)}, "diagnosis", XGB_BINARY),
        "narrow-validation": (
            "xgboost",
            {"train": str(files.cancer_csv), "validation": str(folder / "narrow.csv")},
            None,
            XGB_BINARY,
        ),
    }
    for name, (algorithm, inputs, target, hp) in cases.items():
        training.submit(algorithm, inputs, target=target, hyperparameters=hp, name=name)
    return {name: session.jobs.wait(name, timeout=60) for name in cases}


@pytest.mark.parametrize(
    ("job", "needles"),
    [
        ("missing-target", ["no target column 'label'", "'mean_radius'"]),
        ("text-features", ["non-numeric", "'sex' (text)", "'smoker' (text)", "one-hot"]),
        ("nan-labels", ["3 row(s)", "no label", "row 7"]),
        ("single-class", ["single class (1)"]),
        ("empty", ["train channel is empty"]),
        ("headerless-target", ["no target column 'diagnosis'", "no header row"]),
        ("narrow-validation", ["11 feature columns", "the train channel has 30"]),
    ],
)
def test_bad_data_fails_the_job_with_a_client_error(
    failed: dict[str, JobInfo], job: str, needles: list[str]
) -> None:
    info = failed[job]
    assert info.status == "Failed"
    assert info.failure_reason.startswith("ClientError: "), info.failure_reason
    for needle in needles:
        assert needle in info.failure_reason
    # Nothing was trained: the job never reached the Training status.
    assert "Training" not in [t.status for t in info.transitions]


def test_a_missing_file_is_named(env: Env, tmp_path: Path) -> None:
    info = env.training.submit(
        "xgboost", str(tmp_path / "nope.csv"), hyperparameters=XGB_BINARY, wait=True
    )
    assert info.status == "Failed" and "nope.csv" in info.failure_reason
    assert info.failure_reason.startswith("ClientError: ")
    with pytest.raises(NotFound, match="only a Completed job"):
        env.training.model(info.name)
