"""Property: a recipe applied to single rows at serving time gives exactly what it gave in batch.

Generated training tables have missing values; generated serving rows add
categories never seen in training, missing values of every kind, and extreme
numbers (±1e300, ±infinity, the smallest subnormal, integers beyond 2**53).
Each serving row goes in alone, as a JSON request would bring it (so a lone
missing value arrives as a column of type null), and the outputs, put
together, must equal the batch's output bit for bit.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sagelab.lake import Catalog, Lake, SqlEngine
from sagelab.prep import fit_recipe
from sagelab.store import Store

RECIPE: dict[str, Any] = {
    "name": "serving-property",
    "target": "y",
    "steps": [
        {"step": "validate", "rules": [{"column": "x2", "min": -1e15, "max": 1e15}]},
        {"step": "impute", "columns": ["x1"], "strategy": "median"},
        {"step": "impute", "columns": ["x2", "x3"], "strategy": "knn", "n_neighbors": 3},
        {
            "step": "impute",
            "columns": ["x1", "x2", "x3", "x4"],
            "strategy": "iterative",
            "max_iter": 5,
        },
        {"step": "impute", "columns": ["city"], "strategy": "most_frequent"},
        {"step": "outliers", "columns": ["x1"], "method": "quantile", "lower": 0.1, "upper": 0.9},
        {"step": "outliers", "columns": ["x3"], "method": "log"},
        {"step": "scale", "columns": ["x1", "x2"], "method": "robust"},
        {"step": "scale", "columns": ["x4"], "method": "standard"},
        {"step": "encode", "columns": ["cat"]},
        {"step": "encode", "columns": ["city"], "method": "ordinal"},
        {"step": "bin", "columns": ["x3"], "method": "quantile", "bins": 3},
        {"step": "interactions", "columns": ["x1", "x2", "x4"]},
        {"step": "datetime", "columns": ["when"], "parts": ["month", "dayofweek", "hour"]},
        {"step": "text", "column": "note", "max_features": 8},
        {"step": "pca", "columns": ["x1", "x2", "x1*x2", "x4"], "n_components": 2, "keep": True},
    ],
}

WORDS = ["united", "air", "lines", "delta", "jetblue", "airways", "express", "american"]
EXTREMES = [1e300, -1e300, float("inf"), float("-inf"), float("nan"), 5e-324, -0.0, 1e15]
START = datetime(2013, 1, 1)


def _maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), strategy, strategy, strategy)


def _row(serving: bool) -> st.SearchStrategy[dict[str, Any]]:
    moderate = st.floats(-1e6, 1e6, allow_nan=False)
    extreme = st.sampled_from(EXTREMES) if serving else moderate
    cats = ["a", "b", "c", "zz-never-seen"] if serving else ["a", "b", "c"]
    cities = ["EWR", "JFK", "LGA", "SFO"] if serving else ["EWR", "JFK", "LGA"]
    big = st.sampled_from([2**62, -(2**60), 2**53 + 1]) if serving else st.integers(-1000, 1000)
    fields: dict[str, Any] = {
        "x1": _maybe(st.one_of(moderate, extreme)),
        "x2": _maybe(st.one_of(st.integers(-1000, 1000), big)),
        "x3": _maybe(st.one_of(st.floats(0, 1e9), extreme)),
        "x4": _maybe(st.one_of(moderate, extreme)),
        "cat": _maybe(st.sampled_from(cats)),
        "city": _maybe(st.sampled_from(cities)),
        "when": _maybe(st.integers(0, 24 * 365).map(lambda h: START + timedelta(hours=h))),
        "note": _maybe(st.lists(st.sampled_from(WORDS), max_size=4).map(" ".join)),
    }
    if not serving:
        fields["y"] = st.integers(0, 1)
    return st.fixed_dictionaries(fields)


@pytest.fixture
def engine(store: Store, tmp_path: Path) -> SqlEngine:
    return SqlEngine(Catalog(store), Lake(tmp_path / "lake"))


# One metadata backend is enough here: the property is about the transform, not the catalog.
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    train=st.lists(_row(serving=False), min_size=12, max_size=30),
    serve=st.lists(_row(serving=True), min_size=1, max_size=8),
)
def test_single_rows_at_serving_time_equal_the_batch(
    engine: SqlEngine, train: list[dict[str, Any]], serve: list[dict[str, Any]]
) -> None:
    # The training table needs a few values per column to learn from.
    for i, row in enumerate(train[:4]):
        row.update(x1=float(i), x2=i, x3=float(i), x4=float(-i), note="delta air lines")
    fitted = fit_recipe(RECIPE, pa.Table.from_pylist(train), engine=engine)
    batch = fitted.transform_with_report(pa.Table.from_pylist(serve))
    singles = [fitted.transform_with_report(row) for row in serve]
    together = pa.concat_tables([s.table for s in singles])
    assert batch.table.schema == fitted.output_schema(with_target=False)
    assert together.equals(batch.table)
    kept = [i for i, s in enumerate(singles) if s.rows_out]
    assert list(batch.row_index) == kept
    rejected = [i for i, s in enumerate(singles) if s.rejects]
    assert [r["row"] for r in batch.rejects] == rejected
    # Unseen categories land in the unknown bucket, never in a known one.
    for row, out in zip([serve[i] for i in kept], batch.table.to_pylist(), strict=True):
        if row["cat"] == "zz-never-seen":
            assert out["cat__unknown"] == 1.0
            assert all(
                v == 0.0 for k, v in out.items() if k.startswith("cat_") and k != "cat__unknown"
            )


def test_the_training_rows_transform_to_the_training_output(engine: SqlEngine) -> None:
    rng = np.random.default_rng(3)
    rows = [
        {
            "x1": float(rng.normal()) if rng.random() > 0.2 else None,
            "x2": int(rng.integers(-50, 50)),
            "x3": float(rng.exponential(100)),
            "x4": float(rng.normal(5)) if rng.random() > 0.2 else None,
            "cat": str(rng.choice(["a", "b", "c"])),
            "city": str(rng.choice(["EWR", "JFK", "LGA"])),
            "when": START + timedelta(hours=int(rng.integers(0, 9000))),
            "note": " ".join(rng.choice(WORDS, 3)),
            "y": int(rng.integers(0, 2)),
        }
        for _ in range(60)
    ]
    fitted = fit_recipe(RECIPE, pa.Table.from_pylist(rows), engine=engine, output="prep.train")
    written = engine.query("SELECT * FROM prep.train").table
    again = fitted.transform(pa.Table.from_pylist(rows))
    assert again.equals(written.select(again.column_names))
