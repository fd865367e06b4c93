"""``sagelab profile`` and ``sagelab explore clusters|project``: parse, call, show."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import typer

from sagelab.cli._output import JSON_OPTION, console, print_json, print_records, progress_bar

__all__ = ["explore_app", "profile_command"]

#: Rows read over all passes before a progress bar is worth drawing.
_PROGRESS_MIN_ROWS = 2_000_000


def _progress(
    description: str, *, enabled: bool, min_total: int = _PROGRESS_MIN_ROWS
) -> AbstractContextManager[Callable[[int, int], None]]:
    """A bar over rows read (all passes), once the work is large."""
    return progress_bar(description, enabled=enabled, min_total=min_total, in_bytes=False)


def _split(columns: str | None) -> list[str] | None:
    if not columns:
        return None
    return [c.strip() for c in columns.split(",") if c.strip()]


def profile_command(
    source: str = typer.Argument(
        ..., help="A query, a catalog table DATABASE.TABLE, or CSV/JSON/Parquet files."
    ),
    target: str = typer.Option(None, "--target", "-t", help="The column to predict."),
    report: str = typer.Option(
        None, "--report", "-r", help="Write the HTML report here (PNGs go beside it)."
    ),
    name: str = typer.Option(
        None, "--name", help="Store as s3://artifacts/profiles/NAME/ (default: from SOURCE)."
    ),
    store: bool = typer.Option(
        True, "--store/--no-store", help="Copy the profile and report into the lake."
    ),
    sample_rows: int = typer.Option(
        100_000, "--sample-rows", help="Rows sampled for Spearman's rho and the scatter matrix."
    ),
    json_out: bool = JSON_OPTION,
) -> None:
    """Profile a SOURCE: types, statistics, correlations, target associations and warnings."""
    from sagelab.cli._app import session
    from sagelab.prep import profile, profile_name, store_profile, write_profile_report

    s = session()
    with _progress("profiling", enabled=not json_out) as progress:
        result = profile(
            source, engine=s.sql_engine(), target=target, sample_rows=sample_rows, progress=progress
        )
    written = str(write_profile_report(result, report)) if report else None
    stored = (
        store_profile(result, s.lake, name or profile_name(source), report=written)
        if store
        else None
    )
    if json_out:
        print_json({**result.as_dict(), "report": written, "stored": stored})
        return
    _show_profile(result)
    if written:
        console.print(f"report: {written}")
    if stored:
        console.print(f"[dim]stored in {stored}[/dim]")


def _show_profile(result: Any) -> None:
    rows = []
    for c in result.columns:
        rows.append(
            {
                "column": c.name,
                "type": c.kind,
                "missing": f"{c.missing_share:.1%}",
                "distinct": c.distinct,
                "mean": c.mean,
                "std": c.std,
                "min": c.min,
                "median": c.quantiles.get("50%") if c.quantiles else None,
                "max": c.max,
            }
        )
    print_records(rows, title=f"{result.rows:,} rows × {len(result.columns)} columns")
    console.print(
        f"duplicate rows: {result.duplicate_rows:,}   missing cells: {result.missing_cells:,}"
        f"   took {result.seconds:.2f}s"
    )
    if result.target is not None and result.target.associations:
        assoc = [
            {
                "column": a.column,
                "test": a.test,
                "p_value": a.p_value,
                "effect": a.effect,
                "measure": a.effect_name,
            }
            for a in result.target.associations[:10]
        ]
        print_records(assoc, title=f"association with {result.target.name!r}")
    if result.warnings:
        console.print(f"[bold yellow]{len(result.warnings)} warning(s)[/bold yellow]")
        for w in result.warnings:
            console.print(f"  [yellow]{w.kind}[/yellow]: {_escape(w.message)}", highlight=False)
    else:
        console.print("no warnings")


def _escape(text: str) -> str:
    return text.replace("[", r"\[")


explore_app = typer.Typer(
    help="Cluster and projection analysis of a SOURCE's numeric columns.", no_args_is_help=True
)


@explore_app.command("clusters")
def clusters_command(
    source: str = typer.Argument(
        ..., help="A query, a catalog table DATABASE.TABLE, or CSV/JSON/Parquet files."
    ),
    columns: str = typer.Option(
        None, "--columns", "-c", help="Comma-separated numeric columns (default: all)."
    ),
    k_min: int = typer.Option(2, "--k-min", help="The fewest clusters to try."),
    k_max: int = typer.Option(10, "--k-max", help="The most clusters to try."),
    k: int = typer.Option(
        None, "--k", help="Describe this many clusters (default: best silhouette)."
    ),
    sample_rows: int = typer.Option(20_000, "--sample-rows", help="Rows sampled for k-means."),
    report: str = typer.Option(None, "--report", "-r", help="Write the HTML report here."),
    json_out: bool = JSON_OPTION,
) -> None:
    """k-means elbow and silhouette, a dendrogram, and the clusters' sizes and profiles."""
    from sagelab.cli._app import session
    from sagelab.errors import InvalidInput
    from sagelab.prep import explore_clusters, write_explore_report

    if k_max < k_min:
        raise InvalidInput(f"--k-max ({k_max}) is smaller than --k-min ({k_min}).")
    with _progress("clustering", enabled=not json_out, min_total=0) as progress:
        result = explore_clusters(
            source,
            engine=session().sql_engine(),
            columns=_split(columns),
            k_values=range(k_min, k_max + 1),
            k=k,
            sample_rows=sample_rows,
            progress=progress,
        )
    written = str(write_explore_report(result, report)) if report else None
    if json_out:
        print_json({**result.as_dict(), "report": written})
        return
    print_records(
        [
            {"k": kv, "inertia": i, "silhouette": s, "best": "←" if kv == result.best_k else ""}
            for kv, i, s in zip(result.k_values, result.inertia, result.silhouette, strict=True)
        ],
        title=f"k-means on {result.sample_rows:,} sampled rows, {len(result.columns)} columns",
    )
    total = max(1, sum(result.sizes))
    print_records(
        [
            {
                "cluster": n,
                "rows": size,
                "share": f"{size / total:.1%}",
                **dict(list(result.means[n].items())[:6]),
            }
            for n, size in enumerate(result.sizes)
        ],
        title=f"{result.best_k} clusters (means)",
    )
    if written:
        console.print(f"report: {written}")


@explore_app.command("project")
def project_command(
    source: str = typer.Argument(
        ..., help="A query, a catalog table DATABASE.TABLE, or CSV/JSON/Parquet files."
    ),
    method: str = typer.Option("pca", "--method", "-m", help="pca or tsne."),
    target: str = typer.Option(None, "--target", "-t", help="Colour the points by this column."),
    columns: str = typer.Option(
        None, "--columns", "-c", help="Comma-separated numeric columns (default: all)."
    ),
    sample_rows: int = typer.Option(20_000, "--sample-rows", help="Rows sampled."),
    report: str = typer.Option(None, "--report", "-r", help="Write the HTML report here."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Explained variance (PCA) and a 2-D projection (PCA or t-SNE) coloured by a target."""
    from sagelab.cli._app import session
    from sagelab.prep import explore_projection, write_explore_report

    result = explore_projection(
        source,
        engine=session().sql_engine(),
        method=method,
        target=target,
        columns=_split(columns),
        sample_rows=sample_rows,
    )
    written = str(write_explore_report(result, report)) if report else None
    if json_out:
        print_json({**result.as_dict(), "report": written})
        return
    cumulative = 0.0
    rows = []
    for n, share in enumerate(result.explained_variance[:10], start=1):
        cumulative += share
        rows.append({"component": n, "variance": f"{share:.1%}", "cumulative": f"{cumulative:.1%}"})
    print_records(
        rows,
        title=f"PCA of {len(result.columns)} standardized columns ({result.sample_rows:,} rows)",
    )
    if written:
        console.print(f"report: {written}")
