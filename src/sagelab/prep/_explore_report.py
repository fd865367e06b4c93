"""The HTML report of a cluster or projection analysis."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sagelab.errors import InvalidInput
from sagelab.prep._explore import ClusterExploration, Projection
from sagelab.prep._explore_plots import cluster_plots, projection_plots
from sagelab.prep._plots import Plot
from sagelab.prep._report import page, plot_figure, report_target, section, table, write_page

__all__ = ["write_explore_report"]


def write_explore_report(
    result: ClusterExploration | Projection, path: str | os.PathLike[str]
) -> Path:
    """Write a cluster or projection analysis as one self-contained HTML page with its figures.

    Clusters: the elbow (inertia) with silhouette scores, the dendrogram, cluster sizes,
    per-cluster profiles and the clusters on the first two principal components.
    Projections: the explained variance and the 2-D projection coloured by the target.
    The figures are embedded and also written as PNGs to ``<name>_files/``.

    Args:
        result: what :func:`explore_clusters` or :func:`explore_projection` returned.
        path: the ``.html`` file to write; missing parent folders are created.

    Returns:
        The path of the HTML file.

    Raises:
        InvalidInput: ``result`` is neither, or ``path`` is a folder or not ``.html``.
        ImportError: matplotlib is not installed.
    """
    target = report_target(path)
    if isinstance(result, ClusterExploration):
        plots = cluster_plots(result)
        return write_page(target, plots, lambda files: _cluster_page(result, plots, files))
    if isinstance(result, Projection):
        plots = projection_plots(result)
        return write_page(target, plots, lambda files: _projection_page(result, plots, files))
    raise InvalidInput(
        "write_explore_report needs what explore_clusters() or explore_projection() returned; "
        f"got {type(result).__name__}."
    )


def _common_facts(r: ClusterExploration | Projection) -> list[tuple[str, Any]]:
    facts: list[tuple[str, Any]] = [
        ("source", r.source),
        ("rows", r.rows),
        ("sample", f"{r.sample_rows:,} rows"),
        ("columns (standardized)", ", ".join(r.columns)),
    ]
    if r.imputed:
        facts.append(
            (
                "missing values",
                "replaced by the median: "
                + ", ".join(f"{k} ({v:,})" for k, v in r.imputed.items()),
            )
        )
    if r.dropped:
        facts.append(("left out", ", ".join(f"{k} ({v})" for k, v in r.dropped.items())))
    facts.append(("took", f"{r.seconds:.2f} s"))
    return facts


def _cluster_page(c: ClusterExploration, plots: list[Plot], files: str) -> str:
    by = {p.name: p for p in plots}
    facts = [*_common_facts(c), ("best k (silhouette)", c.best_k)]
    k_rows = [(k, i, s) for k, i, s in zip(c.k_values, c.inertia, c.silhouette, strict=True)]
    total = max(1, sum(c.sizes))
    cluster_rows = [
        (f"cluster {n}", size, f"{size / total:.1%}", *[c.means[n][col] for col in c.columns[:12]])
        for n, size in enumerate(c.sizes)
    ]
    cluster_rows.append(("all rows", total, "100%", *[c.overall[col] for col in c.columns[:12]]))
    header = ("cluster", "rows", "share", *c.columns[:12])
    sections = [
        section(
            "elbow",
            "Choosing k",
            plot_figure(by["elbow"])
            + table(("k", "inertia", "silhouette"), k_rows, numeric_from=0),
        ),
        section("dendrogram", "Hierarchical clustering", plot_figure(by["dendrogram"])),
        section(
            "clusters",
            f"The {c.best_k} clusters",
            plot_figure(by["cluster-sizes"])
            + plot_figure(by["cluster-profiles"])
            + "<h3>Means per cluster</h3>"
            + table(header, cluster_rows)
            + plot_figure(by["cluster-map"]),
        ),
    ]
    return page(f"Clusters of {_short(c.source)}", facts, sections, files)


def _projection_page(p: Projection, plots: list[Plot], files: str) -> str:
    by = {x.name: x for x in plots}
    facts = [
        *_common_facts(p),
        ("method", p.method),
        ("target", p.target or "none"),
        ("rows projected", p.projected_rows),
    ]
    loadings = sorted(p.loadings.items(), key=lambda kv: -abs(kv[1][0]))
    sections = [
        section(
            "explained-variance",
            "Explained variance",
            plot_figure(by["explained-variance"])
            + "<h3>Loadings</h3><p>Each column's weight in the first two principal components "
            "(largest first): the columns with large weights are what the components measure.</p>"
            + table(("column", "PC1", "PC2"), [(k, a, b) for k, (a, b) in loadings]),
        ),
        section("projection", "Projection", plot_figure(by["projection"])),
    ]
    return page(f"Projection of {_short(p.source)}", facts, sections, files)


def _short(source: str) -> str:
    text = " ".join(source.split())
    return text if len(text) <= 80 else text[:77] + "..."
