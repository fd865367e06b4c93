"""Cluster and projection analysis of a SOURCE's numeric columns, on a bounded sample.

Both analyses read a bounded random sample (bottom-k by a hash, repeatable), replace missing values
by the column's median, drop constant columns and standardize the rest (z-scores), so
that a column measured in thousands does not outweigh one measured in fractions.

* :func:`explore_clusters`: k-means for each k with its inertia (the elbow) and
  silhouette score, the k with the best silhouette, cluster sizes and per-cluster
  means, and a Ward dendrogram on a smaller sample.
* :func:`explore_projection`: PCA's explained variance, and a 2-D projection (PCA or
  t-SNE) to colour by a target.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from sagelab._imports import require
from sagelab.errors import InvalidInput, closest
from sagelab.prep import _profile_sql as q
from sagelab.prep._profile_model import json_value

if TYPE_CHECKING:
    from sagelab.lake import SqlEngine

__all__ = [
    "PROJECTION_METHODS",
    "ClusterExploration",
    "Projection",
    "explore_clusters",
    "explore_projection",
]

PROJECTION_METHODS = ("pca", "tsne")
_TSNE_ROWS = 3_000
_SILHOUETTE_ROWS = 3_000
_MAX_CLASSES = 10


@dataclass
class _Sample:
    source: str
    rows: int
    columns: list[str]
    raw: np.ndarray  # the sample's values, missing replaced by the median
    z: np.ndarray  # standardized
    mean: np.ndarray
    std: np.ndarray
    imputed: dict[str, int]
    dropped: dict[str, str]
    target: str | None = None
    target_values: np.ndarray | None = None
    target_numeric: bool = False


@dataclass
class ClusterExploration:
    """What :func:`explore_clusters` found.

    Attributes:
        source: the SOURCE.
        rows: the rows of the source; ``sample_rows`` of them were analysed.
        columns: the standardized numeric columns used.
        k_values: the numbers of clusters tried.
        inertia: per k, k-means' within-cluster sum of squares (of z-scores).
        silhouette: per k, the mean silhouette score (−1 to 1, higher is better separated),
            on at most 3,000 of the sampled rows.
        best_k: the k with the best silhouette (or the k asked for).
        sizes: the sampled rows in each cluster of ``best_k``.
        means: per cluster, each column's mean in its own units.
        centers: per cluster, each column's mean in standard deviations from the overall mean.
        overall: each column's mean over the sample.
        dendrogram_rows: the rows the hierarchical clustering used.
        imputed: per column, missing values replaced by the median.
        dropped: columns left out, with why.
    """

    source: str
    rows: int
    sample_rows: int
    columns: list[str]
    k_values: list[int]
    inertia: list[float]
    silhouette: list[float | None]
    best_k: int
    sizes: list[int]
    means: list[dict[str, float]]
    centers: np.ndarray
    overall: dict[str, float]
    dendrogram_rows: int
    imputed: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    linkage: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)), repr=False)
    labels: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int), repr=False)
    map2d: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)), repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "rows": self.rows,
            "sample_rows": self.sample_rows,
            "columns": list(self.columns),
            "k": [
                {"k": k, "inertia": json_value(i), "silhouette": json_value(s)}
                for k, i, s in zip(self.k_values, self.inertia, self.silhouette, strict=True)
            ],
            "best_k": self.best_k,
            "clusters": [
                {
                    "cluster": n,
                    "size": size,
                    "share": size / max(1, self.sample_rows),
                    "means": json_value(self.means[n]),
                    "z_means": json_value(
                        dict(zip(self.columns, self.centers[n].tolist(), strict=True))
                    ),
                }
                for n, size in enumerate(self.sizes)
            ],
            "overall_means": json_value(self.overall),
            "dendrogram_rows": self.dendrogram_rows,
            "imputed": dict(self.imputed),
            "dropped": dict(self.dropped),
            "seconds": round(self.seconds, 4),
        }


@dataclass
class Projection:
    """What :func:`explore_projection` found.

    Attributes:
        method: ``pca`` or ``tsne``.
        explained_variance: PCA's share of the variance each component explains.
        loadings: per column, its weight in the first two principal components.
        coords: the 2-D coordinates of the projected rows.
        target_values: the target on the same rows (for colouring), or None.
        projected_rows: how many rows were projected (t-SNE uses at most 3,000).
    """

    source: str
    rows: int
    sample_rows: int
    method: str
    columns: list[str]
    explained_variance: list[float]
    loadings: dict[str, tuple[float, float]]
    projected_rows: int
    target: str | None = None
    target_numeric: bool = False
    imputed: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    coords: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)), repr=False)
    target_values: np.ndarray | None = field(default=None, repr=False)

    def as_dict(self) -> dict[str, Any]:
        cumulative = np.cumsum(self.explained_variance).tolist() if self.explained_variance else []
        return {
            "source": self.source,
            "rows": self.rows,
            "sample_rows": self.sample_rows,
            "method": self.method,
            "columns": list(self.columns),
            "explained_variance": json_value(self.explained_variance),
            "cumulative_variance": json_value(cumulative),
            "loadings": {k: json_value(list(v)) for k, v in self.loadings.items()},
            "projected_rows": self.projected_rows,
            "target": self.target,
            "imputed": dict(self.imputed),
            "dropped": dict(self.dropped),
            "seconds": round(self.seconds, 4),
        }


# ---------------------------------------------------------------------------- sample
def _check_rows(name: str, value: int, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise InvalidInput(f"{name} must be a whole number of at least {low}; got {value!r}.")


def _load(
    source: str,
    engine: SqlEngine,
    *,
    columns: Sequence[str] | None,
    target: str | None,
    sample_rows: int,
    seed: int,
    min_columns: int,
) -> _Sample:
    with engine.open_source(source) as (conn, sql):
        cols = q.describe(conn, sql)
        by_name = {c.name: c for c in cols}
        target_col = None
        if target is not None:
            if target not in by_name:
                raise InvalidInput(
                    f"The target column {target!r} is not in the data; its columns are "
                    f"{', '.join(repr(c.name) for c in cols[:20])}."
                    + closest(target, list(by_name))
                )
            target_col = by_name[target]
        if columns:
            chosen = []
            for name in columns:
                if name not in by_name:
                    raise InvalidInput(
                        f"The column {name!r} is not in the data." + closest(name, list(by_name))
                    )
                if not (by_name[name].numeric or by_name[name].family == "bool"):
                    raise InvalidInput(
                        f"The column {name!r} is {by_name[name].dtype}; clusters and projections "
                        "use numeric or boolean columns."
                    )
                chosen.append(by_name[name])
        else:
            chosen = [c for c in cols if (c.numeric or c.family == "bool") and c is not target_col]
        if not chosen:
            raise InvalidInput(
                f"{source!r} has no numeric or boolean columns"
                + (" besides the target" if target_col is not None else "")
                + " to analyse."
            )
        typed = q.typed_sql(sql, cols)
        rows = int(q.run(conn, f"SELECT count(*) FROM {typed}")[0][0])
        raw_cols = [target_col] if target_col is not None else []
        floats, arrays = q.run_sample(
            conn, typed, chosen, raw_cols, rows=rows, sample_rows=sample_rows, seed=seed
        )
    n = min(rows, sample_rows)
    if n == 0:
        raise InvalidInput(f"{source!r} has no rows to analyse.")
    x = np.column_stack([floats[f"n{c.index}"] for c in chosen]) if chosen else np.zeros((n, 0))
    keep, imputed, dropped = [], {}, {}
    for j, c in enumerate(chosen):
        col = x[:, j]
        present = np.isfinite(col)
        if not present.any():
            dropped[c.name] = "no values"
            continue
        median = float(np.median(col[present]))
        missing = int((~present).sum())
        if missing:
            col[~present] = median
            imputed[c.name] = missing
        if float(np.std(col)) == 0.0:
            dropped[c.name] = "constant"
            continue
        keep.append(j)
    if len(keep) < min_columns:
        raise InvalidInput(
            f"{source!r} has {len(keep)} usable numeric column(s)"
            + (
                f" (left out: {', '.join(f'{k}: {v}' for k, v in dropped.items())})"
                if dropped
                else ""
            )
            + f"; this needs at least {min_columns}."
        )
    raw = x[:, keep]
    mean, std = raw.mean(axis=0), raw.std(axis=0)
    sample = _Sample(
        source,
        rows,
        [chosen[j].name for j in keep],
        raw,
        (raw - mean) / std,
        mean,
        std,
        imputed,
        dropped,
    )
    if target_col is not None:
        values = arrays[f"c{target_col.index}"].to_pylist()
        sample.target = target_col.name
        sample.target_numeric = (
            target_col.numeric and len({v for v in values if v is not None}) > _MAX_CLASSES
        )
        sample.target_values = (
            np.array([np.nan if v is None else float(v) for v in values])
            if sample.target_numeric
            else np.array(values, dtype=object)
        )
    return sample


# ---------------------------------------------------------------------------- clusters
def explore_clusters(
    source: str,
    *,
    engine: SqlEngine,
    columns: Sequence[str] | None = None,
    k_values: Sequence[int] = tuple(range(2, 11)),
    k: int | None = None,
    sample_rows: int = 20_000,
    dendrogram_rows: int = 2_000,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> ClusterExploration:
    """k-means for each k (inertia and silhouette), the best k's clusters, and a dendrogram.

    Args:
        source: a query, a catalog table ``database.table``, or CSV/JSON/Parquet files.
        engine: the SQL engine that reads the source.
        columns: the numeric or boolean columns to use; all of them when omitted.
        k_values: the numbers of clusters to try (each at least 2).
        k: the number of clusters to describe; the best silhouette when omitted.
        sample_rows: the random sample's size.
        dendrogram_rows: rows of the sample for the hierarchical (Ward) clustering,
            whose cost grows with the square of the rows.
        seed: the seed of the sample and of k-means.
        progress: called as ``progress(done, total)`` after each k.

    Returns:
        The :class:`ClusterExploration`.

    Raises:
        InvalidInput: a column or the target is missing or not numeric, no numeric column
            has values, fewer rows than clusters, or a bad ``k``/``k_values``.
        NotFound: the source names a table or file that does not exist.
        ImportError: scikit-learn or scipy is not installed.
    """
    started = time.perf_counter()
    _check_rows("sample_rows", sample_rows, 2)
    _check_rows("dendrogram_rows", dendrogram_rows, 2)
    ks = sorted({int(v) for v in k_values})
    if not ks or any(isinstance(v, bool) or int(v) != v or v < 2 for v in k_values):
        raise InvalidInput(f"k_values must be whole numbers of at least 2; got {list(k_values)!r}.")
    if k is not None:
        _check_rows("k", k, 2)
        ks = sorted(set(ks) | {k})
    sample = _load(
        source,
        engine,
        columns=columns,
        target=None,
        sample_rows=sample_rows,
        seed=seed,
        min_columns=1,
    )
    n = len(sample.z)
    usable = [v for v in ks if v < n]
    if not usable or (k is not None and k >= n):
        raise InvalidInput(
            f"{source!r} has {n} row(s) to cluster; k-means with {k or ks[0]} clusters needs more rows than clusters."
        )
    cluster = require("sklearn.cluster", "Cluster analysis", "scikit-learn", "prep")
    metrics = require("sklearn.metrics", "Cluster analysis", "scikit-learn", "prep")
    inertia, silhouette, labels_by_k = [], [], {}
    rng = np.random.default_rng(seed)
    sil_rows = rng.choice(n, min(n, _SILHOUETTE_ROWS), replace=False)
    for step, v in enumerate(usable, start=1):
        model = cluster.KMeans(n_clusters=v, n_init=3, random_state=seed).fit(sample.z)
        labels = model.labels_
        labels_by_k[v] = (labels, model.cluster_centers_)
        inertia.append(float(model.inertia_))
        sub = labels[sil_rows]
        score = (
            float(metrics.silhouette_score(sample.z[sil_rows], sub))
            if 1 < len(np.unique(sub)) < len(sil_rows)
            else None
        )
        silhouette.append(score)
        if progress is not None:
            progress(step, len(usable) + 1)
    if k is not None:
        best = k
    else:
        scored = [(s, v) for s, v in zip(silhouette, usable, strict=True) if s is not None]
        best = max(scored)[1] if scored else usable[0]
    labels, centers = labels_by_k[best]
    sizes = np.bincount(labels, minlength=best).tolist()
    means = []
    for c in range(best):
        members = sample.raw[labels == c]
        means.append(
            {
                name: float(members[:, j].mean()) if len(members) else math.nan
                for j, name in enumerate(sample.columns)
            }
        )
    hierarchy = require("scipy.cluster.hierarchy", "Cluster analysis", "scipy", "prep")
    d_rows = np.sort(rng.choice(n, min(n, dendrogram_rows), replace=False))
    linkage = hierarchy.linkage(sample.z[d_rows], method="ward")
    result = ClusterExploration(
        source=source,
        rows=sample.rows,
        sample_rows=n,
        columns=sample.columns,
        k_values=usable,
        inertia=inertia,
        silhouette=silhouette,
        best_k=best,
        sizes=[int(s) for s in sizes],
        means=means,
        centers=np.asarray(centers),
        overall=dict(zip(sample.columns, sample.mean.tolist(), strict=True)),
        dendrogram_rows=len(d_rows),
        imputed=sample.imputed,
        dropped=sample.dropped,
        linkage=linkage,
        labels=labels,
        map2d=_pca_2d(sample.z),
    )
    if progress is not None:
        progress(len(usable) + 1, len(usable) + 1)
    result.seconds = time.perf_counter() - started
    return result


def _pca_2d(z: np.ndarray) -> np.ndarray:
    decomposition = require("sklearn.decomposition", "Cluster analysis", "scikit-learn", "prep")
    if z.shape[1] == 1:
        return np.column_stack([z[:, 0], np.zeros(len(z))])
    return np.asarray(decomposition.PCA(n_components=2, random_state=0).fit_transform(z))


# ---------------------------------------------------------------------------- projection
def explore_projection(
    source: str,
    *,
    engine: SqlEngine,
    method: str = "pca",
    target: str | None = None,
    columns: Sequence[str] | None = None,
    sample_rows: int = 20_000,
    tsne_rows: int = _TSNE_ROWS,
    perplexity: float = 30.0,
    seed: int = 0,
) -> Projection:
    """PCA's explained variance and a 2-D projection (PCA or t-SNE) coloured by a target.

    Args:
        source: a query, a catalog table ``database.table``, or CSV/JSON/Parquet files.
        engine: the SQL engine that reads the source.
        method: ``pca`` or ``tsne``.
        target: the column to colour the points by (left out of the projected columns).
        columns: the numeric or boolean columns to use; all of them when omitted.
        sample_rows: the random sample's size.
        tsne_rows: t-SNE's cost grows quickly with rows: it projects at most this many
            of the sampled rows (after PCA to at most 50 dimensions).
        perplexity: t-SNE's perplexity (capped below a third of the rows).
        seed: the seed of the sample and of t-SNE.

    Returns:
        The :class:`Projection`.

    Raises:
        InvalidInput: an unknown method, a column or the target is missing, fewer than
            two usable numeric columns, or fewer than three rows.
        NotFound: the source names a table or file that does not exist.
        ImportError: scikit-learn is not installed.
    """
    started = time.perf_counter()
    if method not in PROJECTION_METHODS:
        raise InvalidInput(
            f"The projection method {method!r} is not one of {', '.join(PROJECTION_METHODS)}."
        )
    _check_rows("sample_rows", sample_rows, 3)
    _check_rows("tsne_rows", tsne_rows, 3)
    sample = _load(
        source,
        engine,
        columns=columns,
        target=target,
        sample_rows=sample_rows,
        seed=seed,
        min_columns=2,
    )
    n = len(sample.z)
    if n < 3:
        raise InvalidInput(f"{source!r} has {n} row(s); a projection needs at least 3.")
    decomposition = require("sklearn.decomposition", "Projections", "scikit-learn", "prep")
    pca = decomposition.PCA(random_state=0).fit(sample.z)
    explained = [float(v) for v in pca.explained_variance_ratio_]
    components = pca.components_
    loadings = {
        name: (float(components[0, j]), float(components[1, j]) if len(components) > 1 else 0.0)
        for j, name in enumerate(sample.columns)
    }
    rows = np.arange(n)
    if method == "pca":
        coords = pca.transform(sample.z)[:, :2]
    else:
        manifold = require("sklearn.manifold", "Projections", "scikit-learn", "prep")
        if n > tsne_rows:
            rows = np.sort(np.random.default_rng(seed).choice(n, tsne_rows, replace=False))
        reduced = pca.transform(sample.z[rows])[:, : min(50, sample.z.shape[1])]
        coords = manifold.TSNE(
            n_components=2,
            perplexity=min(perplexity, max(1.0, (len(rows) - 1) / 3.0)),
            init="pca",
            random_state=seed,
        ).fit_transform(reduced)
    target_values = sample.target_values[rows] if sample.target_values is not None else None
    result = Projection(
        source=source,
        rows=sample.rows,
        sample_rows=n,
        method=method,
        columns=sample.columns,
        explained_variance=explained,
        loadings=loadings,
        projected_rows=len(rows),
        target=sample.target,
        target_numeric=sample.target_numeric,
        imputed=sample.imputed,
        dropped=sample.dropped,
        coords=np.asarray(coords),
        target_values=target_values,
    )
    result.seconds = time.perf_counter() - started
    return result
