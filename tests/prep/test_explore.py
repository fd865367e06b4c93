"""Cluster and projection analysis on real data, their reports, and bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_wine
from sklearn.decomposition import PCA
from sklearn.preprocessing import StandardScaler

from sagelab.errors import InvalidInput
from sagelab.lake import SqlEngine
from sagelab.prep import (
    ClusterExploration,
    Projection,
    explore_clusters,
    explore_projection,
    write_explore_report,
)
from sagelab.session import Session

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def engine(home: Path) -> SqlEngine:
    return Session().sql_engine()


@pytest.fixture(scope="module")
def wine(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, str]:
    frame = load_wine(as_frame=True).frame
    frame.loc[[3, 10, 40], "magnesium"] = np.nan
    path = tmp_path_factory.mktemp("wine") / "wine.parquet"
    frame.to_parquet(path)
    return frame, str(path)


def _features(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c != "target"]


def test_clusters_find_the_three_cultivars(
    engine: SqlEngine, wine: tuple[pd.DataFrame, str], tmp_path: Path
) -> None:
    frame, path = wine
    steps: list[tuple[int, int]] = []
    c = explore_clusters(
        path, engine=engine, columns=_features(frame), progress=lambda d, t: steps.append((d, t))
    )
    assert isinstance(c, ClusterExploration)
    assert c.k_values == list(range(2, 11)) and len(c.inertia) == len(c.silhouette) == 9
    assert all(
        a > b for a, b in zip(c.inertia, c.inertia[1:], strict=False)
    )  # inertia falls with k
    assert c.best_k == 3 and sum(c.sizes) == len(frame) == c.sample_rows
    assert c.imputed == {"magnesium": 3}
    # The clusters match the three cultivars closely (adjusted Rand index).
    from sklearn.metrics import adjusted_rand_score

    assert adjusted_rand_score(frame["target"], c.labels) > 0.8
    means = pd.DataFrame(c.means)
    weighted = (means["alcohol"] * np.array(c.sizes)).sum() / sum(c.sizes)
    assert weighted == pytest.approx(frame["alcohol"].mean())
    assert c.centers.shape == (3, len(c.columns)) and c.dendrogram_rows == len(frame)
    assert steps[-1][0] == steps[-1][1]
    data = c.as_dict()
    assert data["best_k"] == 3 and len(data["clusters"]) == 3
    out = write_explore_report(c, tmp_path / "clusters.html")
    html = out.read_text(encoding="utf-8")
    for section in ('id="elbow"', 'id="dendrogram"', 'id="clusters"'):
        assert section in html
    pngs = {p.stem for p in (tmp_path / "clusters_files").glob("*.png")}
    assert pngs == {"elbow", "dendrogram", "cluster-sizes", "cluster-profiles", "cluster-map"}
    assert all(
        p.read_bytes().startswith(PNG_MAGIC) for p in (tmp_path / "clusters_files").glob("*.png")
    )


def test_fixed_k_and_sampling(engine: SqlEngine, wine: tuple[pd.DataFrame, str]) -> None:
    frame, path = wine
    c = explore_clusters(
        path,
        engine=engine,
        columns=_features(frame),
        k=4,
        k_values=[2, 3],
        sample_rows=100,
        dendrogram_rows=50,
    )
    assert c.best_k == 4 and c.k_values == [2, 3, 4] and c.sample_rows == 100
    assert c.rows == len(frame) and c.dendrogram_rows == 50 and sum(c.sizes) == 100


def test_pca_projection_equals_sklearn(
    engine: SqlEngine, wine: tuple[pd.DataFrame, str], tmp_path: Path
) -> None:
    frame, path = wine
    p = explore_projection(path, engine=engine, method="pca", target="target")
    assert isinstance(p, Projection) and p.target == "target" and not p.target_numeric
    x = frame[_features(frame)].copy()
    x["magnesium"] = x["magnesium"].fillna(x["magnesium"].median())
    pca = PCA().fit(StandardScaler().fit_transform(x))
    np.testing.assert_allclose(p.explained_variance, pca.explained_variance_ratio_, rtol=1e-8)
    assert p.columns == _features(frame) and p.coords.shape == (len(frame), 2)
    assert sorted(set(p.target_values.tolist())) == [0, 1, 2]  # type: ignore[union-attr]
    out = write_explore_report(p, tmp_path / "pca.html")
    html = out.read_text(encoding="utf-8")
    assert 'id="explained-variance"' in html and 'id="projection"' in html and "Loadings" in html
    assert {f.stem for f in (tmp_path / "pca_files").glob("*.png")} == {
        "explained-variance",
        "projection",
    }


def test_tsne_projection_coloured_by_a_numeric_target(
    engine: SqlEngine, wine: tuple[pd.DataFrame, str], tmp_path: Path
) -> None:
    _, path = wine
    p = explore_projection(path, engine=engine, method="tsne", target="proline", tsne_rows=120)
    assert p.method == "tsne" and p.projected_rows == 120 and p.coords.shape == (120, 2)
    assert p.target_numeric and "proline" not in p.columns
    assert np.isfinite(p.coords).all()
    write_explore_report(p, tmp_path / "tsne.html")
    assert (tmp_path / "tsne_files" / "projection.png").read_bytes().startswith(PNG_MAGIC)


def test_bad_input(engine: SqlEngine, wine: tuple[pd.DataFrame, str], tmp_path: Path) -> None:
    _, path = wine
    with pytest.raises(InvalidInput, match="'umap' is not one of pca, tsne"):
        explore_projection(path, engine=engine, method="umap")
    with pytest.raises(InvalidInput, match="Did you mean 'target'"):
        explore_projection(path, engine=engine, target="targte")
    with pytest.raises(InvalidInput, match="no numeric or boolean columns"):
        explore_clusters("SELECT 'a' AS s, 'b' AS t", engine=engine)
    with pytest.raises(InvalidInput, match="is VARCHAR"):
        explore_clusters("SELECT 'a' AS s, 1 AS n", engine=engine, columns=["s"])
    with pytest.raises(InvalidInput, match="no rows"):
        explore_clusters("SELECT 1.0 AS a WHERE false", engine=engine)
    with pytest.raises(InvalidInput, match="more rows than clusters"):
        explore_clusters("SELECT range::DOUBLE AS a FROM range(3)", engine=engine, k_values=[5])
    with pytest.raises(InvalidInput, match="at least 2"):
        explore_clusters(path, engine=engine, k_values=[1, 2])
    with pytest.raises(InvalidInput, match="usable numeric column"):
        explore_projection("SELECT 1.0 AS a, range::DOUBLE AS b FROM range(10)", engine=engine)
    with pytest.raises(InvalidInput, match="explore_clusters"):
        write_explore_report("nope", tmp_path / "x.html")  # type: ignore[arg-type]


def test_all_null_and_constant_columns_are_left_out(engine: SqlEngine) -> None:
    c = explore_clusters(
        "SELECT NULL::DOUBLE AS nothing, 1.0 AS one, (i % 17)::DOUBLE AS a, ((i * 7) % 13)::DOUBLE AS b "
        "FROM range(200) t(i)",
        engine=engine,
        k_values=[2, 3],
    )
    assert c.columns == ["a", "b"] and c.dropped == {"nothing": "no values", "one": "constant"}
