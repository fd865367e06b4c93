"""ETL jobs end to end: real processes, real data, the catalog and the lake."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.datasets import load_wine

from sagelab.config import Settings
from sagelab.lake import Catalog, Lake, SqlEngine, TableInfo, columns_from_arrow
from sagelab.session import Session

TRANSFORM = """
import pandas as pd

def add_ratio(df: pd.DataFrame) -> pd.DataFrame:
    df["alcohol_per_ash"] = df["alcohol"] / df["ash"]
    return df[["target", "alcohol", "alcohol_per_ash"]]

def broken(df):
    raise RuntimeError("the transform fell over")

def wrong_type(df):
    return 42
"""


@pytest.fixture
def session(settings: Settings) -> Session:
    """A session whose catalog holds the wine data set as a Parquet table."""
    session = Session(settings)
    lake: Lake = session.lake
    lake.create_bucket("warehouse", exist_ok=True)
    wine = pa.Table.from_pandas(load_wine(as_frame=True).frame, preserve_index=False)
    with lake.write_path("warehouse", "uci/wine/part-0.parquet") as path:
        pq.write_table(wine, path)
    Catalog(session.store).create_table(
        TableInfo(
            database="uci",
            name="wine",
            location="s3://warehouse/uci/wine/",
            classification="parquet",
            columns=columns_from_arrow(wine.schema),
            parameters={"recordCount": wine.num_rows},
        )
    )
    return session


def test_sql_etl_job(session: Session) -> None:
    info = session.jobs.submit(
        "etl.sql",
        {
            "sql": "SELECT target, count(*) AS n, avg(alcohol) AS alcohol FROM uci.wine GROUP BY target",
            "output": "uci.wine_by_class",
        },
        wait=True,
    )
    data = info.as_dict()
    assert data["JobStatus"] == "Completed", data["FailureReason"]
    assert data["Result"]["rows_written"] == 3
    rows = session.sql("SELECT target, n FROM uci.wine_by_class ORDER BY target").table.to_pylist()
    assert rows == [{"target": 0, "n": 59}, {"target": 1, "n": 71}, {"target": 2, "n": 48}]
    assert Catalog(session.store).get_table("uci", "wine_by_class").created_by == f"etl:{info.name}"
    log = "".join(session.jobs.logs(info.name))
    assert "wrote 3 rows" in log


def test_python_transform_job(session: Session, tmp_path: Path) -> None:
    script = tmp_path / "transforms.py"
    script.write_text(TRANSFORM)
    info = session.jobs.submit(
        "etl.python",
        {
            "entry_point": f"{script}:add_ratio",
            "input_sql": "SELECT * FROM uci.wine",
            "output": "uci.wine_ratio",
            "batch_size": 50,
        },
        wait=True,
    )
    data = info.as_dict()
    assert data["JobStatus"] == "Completed", data["FailureReason"]
    assert data["Result"]["rows_read"] == data["Result"]["rows_written"] == 178
    assert data["Result"]["batches"] == 4
    engine = SqlEngine(Catalog(session.store), session.lake)
    got = engine.query(
        "SELECT round(sum(alcohol_per_ash), 6) AS s FROM uci.wine_ratio"
    ).table.to_pylist()
    frame = load_wine(as_frame=True).frame
    assert got == [{"s": round(float((frame["alcohol"] / frame["ash"]).sum()), 6)}]


@pytest.mark.parametrize(
    ("params", "prefix", "needle"),
    [
        ({"sql": "SELECT nope FROM uci.wine", "output": "uci.bad"}, "ClientError:", "nope"),
        (
            {"sql": "SELECT * FROM uci.wines", "output": "uci.bad"},
            "ClientError:",
            "Did you mean 'wine'",
        ),
        ({"sql": "SELECT 1 AS x", "output": "../etc"}, "ClientError:", "DATABASE.TABLE"),
        (
            {"sql": "SELECT 1 AS x", "output": "uci.x", "mode": "merge"},
            "ClientError:",
            "mode 'merge'",
        ),
    ],
)
def test_sql_etl_failures_are_client_errors(
    session: Session, params: dict[str, str], prefix: str, needle: str
) -> None:
    info = session.jobs.submit("etl.sql", params, wait=True).as_dict()
    assert info["JobStatus"] == "Failed"
    assert info["FailureReason"].startswith(prefix)
    assert needle in info["FailureReason"]
    assert not Catalog(session.store).table_exists("uci", "bad")


def test_python_transform_failures(session: Session, tmp_path: Path) -> None:
    script = tmp_path / "transforms.py"
    script.write_text(TRANSFORM)
    base = {"input_sql": "SELECT * FROM uci.wine", "output": "uci.out"}
    broken = session.jobs.submit(
        "etl.python", {**base, "entry_point": f"{script}:broken"}, wait=True
    ).as_dict()
    assert broken["JobStatus"] == "Failed"
    assert broken["FailureReason"].startswith("AlgorithmError:")
    assert "fell over" in broken["FailureReason"]
    wrong = session.jobs.submit(
        "etl.python", {**base, "entry_point": f"{script}:wrong_type"}, wait=True
    ).as_dict()
    assert wrong["FailureReason"].startswith("ClientError:")
    assert "return a pandas DataFrame" in wrong["FailureReason"]
    missing = session.jobs.submit(
        "etl.python", {**base, "entry_point": f"{script}:nothing"}, wait=True
    ).as_dict()
    assert missing["FailureReason"].startswith("ClientError:")
    assert not Catalog(session.store).table_exists("uci", "out")
