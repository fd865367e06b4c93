"""The SDK's Estimator end to end: real data, real job processes, models read back from the lake."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pytest
from _training_data import (
    LGB_REGRESSION,
    LINEAR_MULTICLASS,
    XGB_BINARY,
    Env,
    cancer_frame,
    diabetes_frame,
    register_table,
    wine_frame,
)

from sagelab.algorithms import HyperparameterError, get_algorithm
from sagelab.errors import InvalidInput
from sagelab.lake import ARTIFACTS_BUCKET
from sagelab.training import Estimator, Model, TrainingService
from sagelab.training._data import read_channel


@dataclass(frozen=True)
class Runs:
    xgb: Estimator
    xgb_again: Estimator
    lgb: Estimator
    linear: Estimator


@pytest.fixture(scope="module")
def runs(env: Env) -> Runs:
    """Four jobs started together, then awaited: two same-seed xgboost runs, lightgbm, linear."""
    files, session = env.files, env.session
    wine = register_table(session.catalog, session.lake, "wine", wine_frame())
    xgb = Estimator("xgboost", XGB_BINARY, seed=7, session=session)
    xgb_again = Estimator("xgboost", XGB_BINARY, seed=7, session=session)
    lgb = Estimator("lightgbm", LGB_REGRESSION, target="progression", seed=1, session=session)
    linear = Estimator("linear-learner", LINEAR_MULTICLASS, target="target", session=session)
    cancer = {"train": str(files.cancer_csv), "test": str(files.cancer_test_csv)}
    xgb.fit(cancer, wait=False, job_name="cancer-xgb")
    xgb_again.fit(cancer, wait=False, job_name="cancer-xgb-again")
    holdout = diabetes_frame().drop(columns=["visit"]).iloc[350:]
    lgb.fit({"train": str(files.diabetes_parquet), "validation": holdout}, wait=False)
    linear.fit({"train": wine}, wait=False)
    for est in (xgb, xgb_again, lgb, linear):
        job = est.latest_training_job
        assert job is not None
        job.wait()
    return Runs(xgb, xgb_again, lgb, linear)


def _result(est: Estimator) -> dict:
    job = est.latest_training_job
    assert job is not None
    described = job.describe()
    assert described["JobStatus"] == "Completed", described["FailureReason"]
    return described["Result"]


def test_xgboost_reads_sagemaker_csv_and_reports_declared_metrics(runs: Runs) -> None:
    result = _result(runs.xgb)
    train, test = result["InputDataConfig"]
    assert (train["ChannelName"], train["ContentType"], train["LabelColumn"]) == (
        "train",
        "text/csv",
        "first column",
    )
    assert (train["Rows"], train["Features"], test["Rows"]) == (500, 30, 69)
    assert train["Fingerprint"].startswith("sha256:") and len(train["Fingerprint"]) == 71
    declared = {m.name for m in get_algorithm("xgboost").metrics}
    final = result["FinalMetrics"]
    assert {"validation:auc", "test:auc"} <= set(final) <= declared
    assert final["test:auc"] > 0.95
    job = runs.xgb.latest_training_job
    assert job is not None
    listed = {m["MetricName"] for m in job.describe()["FinalMetricDataList"]}
    assert {"train:auc", "validation:auc", "test:auc"} <= listed


def test_the_job_records_its_lineage(runs: Runs, env: Env) -> None:
    result = _result(runs.xgb)
    assert result["HyperParameters"]["num_round"] == 20
    assert result["HyperParameters"]["eta"] == 0.3  # defaults are recorded too
    assert result["Seed"] == 7
    assert {"sagelab", "python", "numpy", "xgboost"} <= set(result["Versions"])
    assert result["Split"]["Method"] == "stratified"
    assert result["Split"]["TrainRows"] + result["Split"]["ValidationRows"] == 500
    assert result["TrainingTimeInSeconds"] > 0
    artifacts = result["ModelArtifacts"]
    assert artifacts["S3ModelArtifacts"] == runs.xgb.model_data
    assert artifacts["S3ModelArtifacts"].startswith(f"s3://{ARTIFACTS_BUCKET}/training/cancer-xgb/")
    listed = env.session.lake.list(ARTIFACTS_BUCKET, "training/cancer-xgb/model/")
    assert sum(o.size for o in listed.objects) == artifacts["SizeBytes"] > 0
    meta = json.loads(
        env.session.lake.get(ARTIFACTS_BUCKET, "training/cancer-xgb/model/sagelab-training.json")
    )
    assert meta["AlgorithmName"] == "xgboost" and meta["ProblemType"] == "binary_classifier"
    assert meta["FeatureNames"] == [f"f{i}" for i in range(30)]
    assert meta["SagelabVersion"]


def test_metrics_stream_per_round(runs: Runs) -> None:
    frame = runs.xgb.training_job_analytics.dataframe()
    assert list(frame.columns) == ["timestamp", "metric_name", "value", "step"]
    for name in ("train:auc", "validation:auc"):
        steps = frame[frame.metric_name == name].step.tolist()
        assert steps == list(range(20)), name


def test_progress_follows_iterations(runs: Runs, env: Env) -> None:
    last = list(env.training.progress("cancer-xgb"))[-1]
    assert last.done and last.status == "Completed"
    assert (last.step, last.total, last.metric) == (20, 20, "validation:auc")
    assert last.value == pytest.approx(_result(runs.xgb)["FinalMetrics"]["validation:auc"])


def test_same_seed_same_data_same_predictions(runs: Runs, env: Env) -> None:
    X = cancer_frame().drop(columns=["diagnosis"]).to_numpy()
    a, b = runs.xgb.model, runs.xgb_again.model
    assert np.array_equal(a.predict(X).values, b.predict(X).values)
    fa = _result(runs.xgb)["InputDataConfig"][0]["Fingerprint"]
    fb = _result(runs.xgb_again)["InputDataConfig"][0]["Fingerprint"]
    assert fa == fb


def test_model_refuses_another_feature_count(runs: Runs) -> None:
    X = cancer_frame().drop(columns=["diagnosis"]).to_numpy()
    with pytest.raises(InvalidInput, match="30 features"):
        runs.xgb.model.predict(X[:, :12])


def test_lightgbm_reads_headered_parquet_with_target_and_a_dataframe(runs: Runs) -> None:
    result = _result(runs.lgb)
    train, validation = result["InputDataConfig"]
    assert train["Target"] == "progression" and train["Features"] == 10
    assert validation["Source"].startswith("s3://artifacts/training/inputs/validation-")
    assert result["Split"] == {"Method": "channel"}
    assert set(result["FinalMetrics"]) == {"validation:rmse"}
    model = runs.lgb.model
    frame = diabetes_frame()
    # Features are picked by name, so column order and extra columns do not matter.
    shuffled = frame[["visit", "progression", *reversed(model.feature_names)]]
    assert np.allclose(model.predict(shuffled).values, model.predict(frame).values)
    with pytest.raises(InvalidInput, match="'bmi'"):
        model.predict(frame.drop(columns=["bmi"]))


def test_linear_learner_streams_a_catalog_table(runs: Runs) -> None:
    result = _result(runs.linear)
    assert result["InputDataConfig"][0]["SourceKind"] == "table"
    assert result["ProblemType"] == "multiclass_classifier"
    assert result["FinalMetrics"]["validation:multiclass_accuracy"] > 0.8
    job = runs.linear.latest_training_job
    assert job is not None
    assert "streamed" in "\n".join(job.logs())
    assert [p.step for p in job.metrics("train:objective_loss")] == list(range(5))


def test_streaming_and_loading_read_the_same_rows(env: Env) -> None:
    """A streamed channel's batches hold exactly the rows the in-memory one holds."""
    table = register_table(env.session.catalog, env.session.lake, "cancer", cancer_frame())
    engine = env.training.engine()
    kwargs = {"algorithm": "linear-learner", "target": "diagnosis"}
    loaded = read_channel(engine, "train", table, **kwargs)
    streamed = read_channel(engine, "train", table, stream=True, **kwargs)
    assert loaded.fingerprint == streamed.fingerprint
    mask = np.arange(loaded.num_rows) % 3 == 0
    batches = list(streamed.source(mask).batches(50))
    assert [b.num_rows for b in batches[:-1]] == [50] * (len(batches) - 1)
    X = np.concatenate([b.X for b in batches])
    assert np.array_equal(X, loaded.source(mask).load().X)


def test_estimator_surface(runs: Runs, env: Env) -> None:
    est = runs.xgb
    assert est.hyperparameters() == XGB_BINARY
    assert est.metrics() == _result(est)["FinalMetrics"]
    assert isinstance(est.model, Model) and est.model.job_name == "cancer-xgb"
    attached = Estimator.attach("cancer-xgb", session=env.session)
    assert attached.model_data == est.model_data
    assert attached.hyperparameters() == XGB_BINARY
    with pytest.raises(HyperparameterError, match="'eta'"):
        Estimator("xgboost", {**XGB_BINARY, "eta": 7}, session=env.session)
    with pytest.raises(InvalidInput, match="fit"):
        _ = Estimator("xgboost", XGB_BINARY, session=env.session).model_data
    assert isinstance(TrainingService.from_settings(), TrainingService)


def test_lake_folders_are_sources(env: Env) -> None:
    """A folder in the lake: headerless CSV parts are read in order; Parquet is recognised."""
    lake, engine = env.session.lake, env.training.engine()
    lake.create_bucket("raw", exist_ok=True)
    lines = env.files.cancer_csv.read_bytes().splitlines(keepends=True)
    lake.put("raw", "cancer/part-0.csv", b"".join(lines[:200]))
    lake.put("raw", "cancer/part-1.csv", b"".join(lines[200:]))
    lake.put("raw", "cancer/_SUCCESS", b"")
    channel = read_channel(engine, "train", "s3://raw/cancer/", algorithm="xgboost")
    whole = read_channel(engine, "train", str(env.files.cancer_csv), algorithm="xgboost")
    assert channel.spec.content_type == "text/csv" and channel.spec.headerless
    assert channel.num_rows == 500 and channel.fingerprint == whole.fingerprint
    lake.put("raw", "cancer-pq/part-0.parquet", env.files.cancer_parquet.read_bytes())
    parquet = read_channel(
        engine, "train", "s3://raw/cancer-pq/", algorithm="xgboost", target="diagnosis"
    )
    assert parquet.spec.content_type == "application/x-parquet" and parquet.num_rows == 569
