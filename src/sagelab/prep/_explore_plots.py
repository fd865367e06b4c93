"""The figures of the cluster and projection reports."""

from __future__ import annotations

from typing import Any

import numpy as np

from sagelab._imports import require
from sagelab.prep._explore import ClusterExploration, Projection
from sagelab.prep._plots import COLORS, Plot, missing, new_figure, png, short

__all__ = ["cluster_plots", "projection_plots"]

_POINTS = 5_000


def cluster_plots(c: ClusterExploration) -> list[Plot]:
    """The elbow, the dendrogram, the cluster sizes, the cluster profiles and the cluster map."""
    return [_elbow(c), _dendrogram(c), _sizes(c), _profiles(c), _map(c)]


def projection_plots(p: Projection) -> list[Plot]:
    """The explained variance and the 2-D projection."""
    return [_explained(p), _projection(p)]


def _elbow(c: ClusterExploration) -> Plot:
    fig = new_figure(6.6, 3.8)
    ax = fig.add_axes((0.11, 0.14, 0.76, 0.76))
    ax.plot(c.k_values, c.inertia, "o-", color=COLORS[0], label="inertia")
    ax.set_xlabel("k (number of clusters)")
    ax.set_ylabel("inertia (within-cluster sum of squares)", color=COLORS[0])
    ax.set_xticks(c.k_values)
    ax.grid(alpha=0.3)
    right = ax.twinx()
    sil = [np.nan if s is None else s for s in c.silhouette]
    right.plot(c.k_values, sil, "s--", color=COLORS[1], label="silhouette")
    right.set_ylabel("silhouette score", color=COLORS[1])
    ax.axvline(c.best_k, color="grey", ls=":", lw=1.5)
    ax.text(c.best_k, ax.get_ylim()[1], f" k = {c.best_k}", va="top", fontsize=9)
    caption = (
        "k-means on the standardized columns for each k. Inertia (blue) always falls as k "
        "grows; look for the elbow where it stops falling fast. The silhouette score (red, −1 "
        "to 1) measures how much closer rows are to their own cluster than to the next one; "
        f"its peak, k = {c.best_k}, is the k described below."
    )
    return Plot("elbow", "Elbow and silhouette", caption, png(fig))


def _dendrogram(c: ClusterExploration) -> Plot:
    if len(c.linkage) < 1:
        return missing("dendrogram", "Dendrogram", "Not drawn: fewer than two rows.")
    hierarchy = require("scipy.cluster.hierarchy", "Cluster analysis", "scipy", "prep")
    fig = new_figure(8.0, 4.0)
    ax = fig.add_axes((0.09, 0.12, 0.89, 0.8))
    cut = c.linkage[-(c.best_k - 1), 2] if 1 < c.best_k <= len(c.linkage) else None
    hierarchy.dendrogram(
        c.linkage,
        ax=ax,
        truncate_mode="lastp",
        p=30,
        color_threshold=cut if cut is not None else 0,
        above_threshold_color="#888",
        leaf_font_size=7,
        show_contracted=True,
    )
    if cut is not None:
        ax.axhline(cut, color="grey", ls=":", lw=1)
    ax.set_ylabel("Ward distance")
    ax.set_xlabel("groups of rows (the number of rows in brackets)")
    caption = (
        f"Hierarchical (Ward) clustering of {c.dendrogram_rows:,} sampled rows: rows join "
        "into groups from the bottom up, and the height of a join is how far apart the two "
        "groups were. A long vertical gap before the last joins means a few well-separated "
        f"clusters; the dotted line cuts the tree into {c.best_k}."
    )
    return Plot("dendrogram", "Dendrogram", caption, png(fig))


def _sizes(c: ClusterExploration) -> Plot:
    fig = new_figure(6.0, 0.35 * c.best_k + 1.2)
    ax = fig.add_axes((0.14, 0.8 / (0.35 * c.best_k + 1.2), 0.7, 1 - 1.1 / (0.35 * c.best_k + 1.2)))
    ys = np.arange(c.best_k)[::-1]
    ax.barh(ys, c.sizes, color=[COLORS[i % len(COLORS)] for i in range(c.best_k)])
    ax.set_yticks(ys, [f"cluster {i}" for i in range(c.best_k)], fontsize=8)
    total = max(1, sum(c.sizes))
    for y, size in zip(ys, c.sizes, strict=True):
        ax.text(size, y, f" {size:,} ({size / total:.0%})", va="center", fontsize=8)
    ax.margins(x=0.2)
    ax.set_xlabel("sampled rows")
    caption = "How many of the sampled rows fall in each cluster. A tiny cluster may be a group of outliers."
    return Plot("cluster-sizes", "Cluster sizes", caption, png(fig))


def _profiles(c: ClusterExploration) -> Plot:
    k, m = c.centers.shape
    shown = min(m, 40)
    width = min(14.0, 2.5 + 0.42 * shown)
    fig = new_figure(width, 0.42 * k + 2.2)
    ax = fig.add_axes((0.1, 1.6 / (0.42 * k + 2.2), 0.78, 1 - 1.9 / (0.42 * k + 2.2)))
    limit = max(1.0, float(np.nanmax(np.abs(c.centers[:, :shown]))) if c.centers.size else 1.0)
    image = ax.imshow(c.centers[:, :shown], cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto")
    fig.colorbar(image, ax=ax, fraction=0.04, pad=0.02, label="std. deviations from the mean")
    ax.set_yticks(range(k), [f"cluster {i}" for i in range(k)], fontsize=8)
    ax.set_xticks(
        range(shown), [short(n, 18) for n in c.columns[:shown]], rotation=60, ha="right", fontsize=7
    )
    if k * shown <= 160:
        for i in range(k):
            for j in range(shown):
                v = c.centers[i, j]
                ax.text(
                    j,
                    i,
                    f"{v:.1f}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if abs(v) > 0.6 * limit else "black",
                )
    caption = (
        "Each cluster's mean of each column, in standard deviations from the overall mean: red "
        "above, blue below. A cluster is described by its strongest colours; the table below has "
        "the means in the columns' own units."
    )
    return Plot("cluster-profiles", "Cluster profiles", caption, png(fig))


def _map(c: ClusterExploration) -> Plot:
    xy = c.map2d
    if len(xy) == 0:
        return missing(
            "cluster-map", "Clusters on the first two principal components", "Not drawn: no rows."
        )
    fig = new_figure(6.4, 5.0)
    ax = fig.add_axes((0.1, 0.1, 0.86, 0.84))
    rows = _subsample(len(xy))
    for i in range(c.best_k):
        mask = c.labels[rows] == i
        ax.plot(
            xy[rows][mask, 0],
            xy[rows][mask, 1],
            ".",
            ms=3,
            alpha=0.5,
            color=COLORS[i % len(COLORS)],
            label=f"cluster {i}",
        )
    ax.set_xlabel("first principal component")
    ax.set_ylabel("second principal component")
    ax.legend(fontsize=8, markerscale=3, loc="best")
    caption = (
        "The sampled rows on the plane of the first two principal components, coloured by "
        "cluster. Clusters that overlap here may still be apart in the other dimensions."
    )
    return Plot("cluster-map", "Clusters on the first two principal components", caption, png(fig))


def _explained(p: Projection) -> Plot:
    ratios = np.asarray(p.explained_variance[:30])
    fig = new_figure(6.6, 3.8)
    ax = fig.add_axes((0.11, 0.14, 0.85, 0.76))
    xs = np.arange(1, len(ratios) + 1)
    ax.bar(xs, ratios, color=COLORS[0], alpha=0.8, label="each component")
    ax.plot(xs, np.cumsum(ratios), "o-", color=COLORS[1], label="cumulative")
    ax.axhline(0.9, color="grey", ls=":", lw=1)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("principal component")
    ax.set_ylabel("share of the variance")
    ax.set_xticks(xs if len(xs) <= 20 else xs[::2])
    ax.legend(fontsize=8, loc="center right")
    needed = int(np.searchsorted(np.cumsum(p.explained_variance), 0.9) + 1)
    caption = (
        f"How much of the standardized columns' variance each principal component explains, "
        f"and the running total. {needed} of {len(p.columns)} components explain 90 %: the "
        "fewer, the more the columns repeat each other."
    )
    return Plot("explained-variance", "Explained variance", caption, png(fig))


def _projection(p: Projection) -> Plot:
    label = "PCA (first two components)" if p.method == "pca" else "t-SNE"
    fig = new_figure(6.8, 5.2)
    ax = fig.add_axes((0.1, 0.1, 0.72 if p.target_numeric else 0.86, 0.84))
    rows = _subsample(len(p.coords))
    xy = p.coords[rows]
    values = p.target_values[rows] if p.target_values is not None else None
    if values is None:
        ax.plot(xy[:, 0], xy[:, 1], ".", ms=3, alpha=0.5, color=COLORS[0])
        how = ""
    elif p.target_numeric:
        image = ax.scatter(
            xy[:, 0], xy[:, 1], c=values.astype(float), s=6, cmap="viridis", alpha=0.7
        )
        fig.colorbar(image, ax=ax, label=short(p.target, 30))
        how = f", coloured by {p.target!r}"
    else:
        counts: dict[Any, int] = {}
        for v in values:
            counts[v] = counts.get(v, 0) + 1
        classes = sorted(counts, key=lambda v: -counts[v])
        for i, cls in enumerate(classes[: len(COLORS)]):
            mask = np.array([v == cls for v in values])
            ax.plot(
                xy[mask, 0],
                xy[mask, 1],
                ".",
                ms=3.5,
                alpha=0.6,
                color=COLORS[i],
                label=short("missing" if cls is None else cls, 18),
            )
        if len(classes) > len(COLORS):
            other = np.array([v not in classes[: len(COLORS)] for v in values])
            ax.plot(xy[other, 0], xy[other, 1], ".", ms=3, alpha=0.3, color="#bbb", label="other")
        ax.legend(fontsize=8, markerscale=3, title=short(p.target, 20), title_fontsize=8)
        how = f", coloured by {p.target!r}"
    if p.method == "pca":
        ev = p.explained_variance
        ax.set_xlabel(f"PC1 ({ev[0]:.0%} of the variance)")
        ax.set_ylabel(f"PC2 ({ev[1]:.0%} of the variance)" if len(ev) > 1 else "PC2")
        reading = "Distances are meaningful: rows far apart differ in the columns that load on these components."
    else:
        ax.set_xticks([])
        ax.set_yticks([])
        reading = (
            "t-SNE keeps neighbours together but not distances: groups that separate are real, "
            "but their sizes and the gaps between them mean little."
        )
    caption = f"{label} of {len(rows):,} sampled rows{how}. {reading}"
    return Plot("projection", f"Projection: {label}", caption, png(fig))


def _subsample(n: int) -> np.ndarray:
    if n <= _POINTS:
        return np.arange(n)
    return np.sort(np.random.default_rng(0).choice(n, _POINTS, replace=False))
