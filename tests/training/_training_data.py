"""Real data sets from scikit-learn, written the ways users bring them, and job clean-up."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pyarrow as pa
import pyarrow.parquet as pq
from sklearn.datasets import dump_svmlight_file, load_breast_cancer, load_diabetes, load_wine

from sagelab.algorithms import get_algorithm
from sagelab.jobs import JobInfo, JobService
from sagelab.lake import Catalog, Lake, TableInfo, columns_from_arrow
from sagelab.session import Session
from sagelab.training import TrainingService

#: Fast, single-threaded settings: the machine's two cores are shared by the jobs.
XGB_BINARY = {"num_round": 20, "objective": "binary:logistic", "eval_metric": "auc", "nthread": 1}
LGB_REGRESSION = {"num_boost_round": 30, "objective": "regression", "num_threads": 1}
LINEAR_MULTICLASS = {"predictor_type": "multiclass_classifier", "epochs": 5, "mini_batch_size": 32}


_Linear = get_algorithm("linear-learner")


class OneGoLearner(_Linear):  # type: ignore[misc,valid-type]
    """A plug-in algorithm that cannot checkpoint (linear-learner without the capability)."""

    name = "one-go"
    capabilities = replace(_Linear.capabilities, checkpoints=False)


@dataclass(frozen=True)
class Files:
    """Paths of the data sets written for one test module."""

    folder: Path
    cancer_csv: Path  # SageMaker's convention: no header, label first
    cancer_test_csv: Path
    cancer_parquet: Path  # headered, label column 'diagnosis'
    diabetes_parquet: Path  # headered, target 'progression'; the first 350 rows
    cancer_libsvm: Path


@dataclass(frozen=True)
class Env:
    """A test module's installation: its session, training service and data files."""

    session: Session
    training: TrainingService
    files: Files


def cancer_frame() -> pd.DataFrame:
    data = load_breast_cancer(as_frame=True)
    frame = data.frame.rename(columns={"target": "diagnosis"})
    frame.columns = [c.replace(" ", "_") for c in frame.columns]
    return frame


def diabetes_frame() -> pd.DataFrame:
    data = load_diabetes(as_frame=True)
    frame = data.frame.rename(columns={"target": "progression"})
    # A visit date per row, in an order unrelated to the rows', for time-ordered splits.
    order = np.random.default_rng(3).permutation(len(frame))
    frame["visit"] = pd.Timestamp("2020-01-01") + pd.to_timedelta(order, unit="D")
    return frame


def write_files(folder: Path) -> Files:
    folder.mkdir(parents=True, exist_ok=True)
    cancer = cancer_frame()
    label_first = cancer[["diagnosis", *[c for c in cancer.columns if c != "diagnosis"]]]
    train, test = label_first.iloc[:500], label_first.iloc[500:]
    train.to_csv(folder / "cancer.csv", header=False, index=False)
    test.to_csv(folder / "cancer-test.csv", header=False, index=False)
    pq.write_table(pa.Table.from_pandas(cancer, preserve_index=False), folder / "cancer.parquet")
    diabetes = diabetes_frame().drop(columns=["visit"]).iloc[:350]
    pq.write_table(
        pa.Table.from_pandas(diabetes, preserve_index=False), folder / "diabetes.parquet"
    )
    X = cancer.drop(columns=["diagnosis"]).to_numpy()
    # Zero out the small values so the matrix is sparse enough to be worth libsvm.
    X = np.where(np.median(X, axis=0) < X, X, 0.0)
    dump_svmlight_file(
        X, cancer["diagnosis"].to_numpy(), str(folder / "cancer.libsvm"), zero_based=True
    )
    return Files(
        folder,
        folder / "cancer.csv",
        folder / "cancer-test.csv",
        folder / "cancer.parquet",
        folder / "diabetes.parquet",
        folder / "cancer.libsvm",
    )


def register_table(catalog: Catalog, lake: Lake, name: str, frame: pd.DataFrame) -> str:
    """Write ``frame`` as a Parquet table ``uci.<name>`` of the catalog; returns its name."""
    lake.create_bucket("warehouse", exist_ok=True)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    with lake.write_path("warehouse", f"uci/{name}/part-0.parquet") as path:
        pq.write_table(table, path)
    catalog.create_table(
        TableInfo(
            database="uci",
            name=name,
            location=f"s3://warehouse/uci/{name}/",
            classification="parquet",
            columns=columns_from_arrow(table.schema),
            parameters={"recordCount": table.num_rows},
        ),
        replace=True,
    )
    return f"uci.{name}"


def wine_frame() -> pd.DataFrame:
    return load_wine(as_frame=True).frame


def end_jobs(jobs: JobService) -> None:
    """Kill what the module's jobs left running (by each job's own process group)."""
    for info in jobs.list(limit=1000):
        _end(info, kill=not info.is_terminal)


def _end(info: JobInfo, *, kill: bool) -> None:
    if info.pid is None or info.pid_start_time is None:
        return
    try:
        proc = psutil.Process(info.pid)
        if abs(proc.create_time() - info.pid_start_time) >= 1.0:
            return
    except psutil.NoSuchProcess:
        return
    if kill:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                return
        except psutil.NoSuchProcess:
            return
        time.sleep(0.05)
