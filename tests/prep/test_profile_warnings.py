"""Warnings fire on constructed cases, name the columns, and stay quiet on clean data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_wine

from sagelab.lake import SqlEngine
from sagelab.prep import Profile, profile
from sagelab.session import Session


@pytest.fixture
def engine(home: Path) -> SqlEngine:
    return Session().sql_engine()


def _profile(engine: SqlEngine, tmp_path: Path, frame: pd.DataFrame, **kwargs: object) -> Profile:
    path = tmp_path / "data.parquet"
    frame.to_parquet(path)
    return profile(str(path), engine=engine, **kwargs)  # type: ignore[arg-type]


def _kinds(p: Profile) -> dict[str, list[tuple[str, ...]]]:
    out: dict[str, list[tuple[str, ...]]] = {}
    for w in p.warnings:
        out.setdefault(w.kind, []).append(w.columns)
    return out


@pytest.fixture(scope="module")
def wine() -> pd.DataFrame:
    return load_wine(as_frame=True).frame


def test_duplicated_column_constant_and_leaky_target(
    engine: SqlEngine, tmp_path: Path, wine: pd.DataFrame
) -> None:
    frame = wine.copy()
    frame["alcohol_copy"] = frame["alcohol"]
    frame["plant"] = "vineyard-1"
    frame["leak"] = frame["target"] * 10.0 + np.random.default_rng(0).normal(0, 0.01, len(frame))
    p = _profile(engine, tmp_path, frame, target="target")
    kinds = _kinds(p)
    assert ("alcohol", "alcohol_copy") in kinds["high_correlation"]
    message = next(w.message for w in p.warnings if w.columns == ("alcohol", "alcohol_copy"))
    assert "'alcohol'" in message and "'alcohol_copy'" in message and "1.000" in message
    assert kinds["constant"] == [("plant",)]
    assert "'vineyard-1'" in next(w.message for w in p.warnings if w.kind == "constant")
    assert ("leak", "target") in kinds["target_leakage"]
    assert ("alcohol", "target") not in kinds["target_leakage"]
    # The pair with the target is a leak, not a redundant pair.
    assert all("target" not in pair for pair in kinds["high_correlation"])
    assert p.warnings[0].kind == "target_leakage"  # the most important kind comes first


def test_leaky_categorical_copy_and_auc_leak(engine: SqlEngine, tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 2000)
    frame = pd.DataFrame(
        {
            "label": np.where(y == 1, "yes", "no"),
            "status": np.where(y == 1, "closed", "open"),  # the target under another name
            "score": y * 2 + rng.normal(0, 1, 2000),  # separates the classes, but not perfectly
            "after": np.where(y == 1, rng.uniform(10, 11, 2000), rng.uniform(0, 9, 2000)),
            "noise": rng.normal(size=2000),
        }
    )
    p = _profile(engine, tmp_path, frame, target="label")
    leaks = {cols[0] for cols in _kinds(p)["target_leakage"]}
    assert leaks == {"status", "after"}
    assert p.target is not None
    found = {a.column: a for a in p.target.associations}
    assert found["after"].auc == pytest.approx(1.0) or found["after"].auc == pytest.approx(0.0)
    assert found["noise"].p_value is not None and found["noise"].p_value > 0.001


def test_missing_cardinality_identifiers_imbalance_duplicates(
    engine: SqlEngine, tmp_path: Path
) -> None:
    rng = np.random.default_rng(2)
    n = 1000
    frame = pd.DataFrame(
        {
            "id": [f"row-{i}" for i in range(n)],
            "city": [f"city-{i % 120}" for i in range(n)],
            "sparse": np.where(rng.random(n) < 0.7, np.nan, rng.normal(size=n)),
            "fraud": (rng.random(n) < 0.04).astype(int),
            "amount": rng.lognormal(size=n),
        }
    )
    frame = pd.concat([frame, frame.iloc[:25]], ignore_index=True)
    p = _profile(engine, tmp_path, frame, target="fraud")
    kinds = _kinds(p)
    assert kinds["missing"] == [("sparse",)]
    assert kinds["high_cardinality"] == [("city",)]
    assert ("id",) in kinds["unique"]
    assert kinds["imbalance"] == [("fraud",)]
    assert "repeat an earlier row" in next(w.message for w in p.warnings if w.kind == "duplicates")
    assert p.duplicate_rows == 25


def test_clean_data_has_no_warnings(engine: SqlEngine, tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {
            "a": rng.normal(size=500),
            "b": rng.normal(size=500),
            "colour": rng.choice(["red", "green", "blue"], 500),
            "y": rng.integers(0, 2, 500),
        }
    )
    p = _profile(engine, tmp_path, frame, target="y")
    assert p.warnings == []


def test_infinite_values_are_counted_and_left_out(engine: SqlEngine) -> None:
    p = profile(
        "SELECT (i * 7919) % 101 AS k, CASE WHEN i % 10 = 0 THEN 'inf'::DOUBLE WHEN i % 10 = 1 THEN 'nan'::DOUBLE "
        "ELSE i::DOUBLE END AS x FROM range(100) t(i)",
        engine=engine,
    )
    x = p.column("x")
    assert x.infinite == 10 and x.missing == 10 and x.count == 80
    assert x.max == 99.0 and [w.kind for w in p.warnings] == ["infinite"]
    dupes = profile(
        "SELECT 'inf'::DOUBLE AS x UNION ALL SELECT 'nan' UNION ALL SELECT NULL", engine=engine
    )
    assert dupes.duplicate_rows == 0  # NaN, infinity and NULL are different values
