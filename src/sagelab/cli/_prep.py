"""``sagelab prep``: fit a preparation recipe on training data, apply it to new data."""

from __future__ import annotations

from typing import Any

import typer

from sagelab.cli._output import JSON_OPTION, console, print_json, print_records

__all__ = ["app"]

app = typer.Typer(
    help="Data preparation: recipes fitted once and applied the same way everywhere.",
    no_args_is_help=True,
)

_DATA_HELP = "SOURCE: a DATABASE.TABLE, a SELECT query, or CSV / JSON lines / Parquet files."
_MODE_HELP = "If the output table exists: overwrite, append, or error."


@app.command("fit")
def fit(
    recipe: str = typer.Argument(..., help="The recipe: a YAML file of steps (or s3://...)."),
    data: str = typer.Option(..., "--data", help=_DATA_HELP),
    output: str = typer.Option(
        None, "--output", "-o", help="DATABASE.TABLE for the prepared training rows."
    ),
    name: str = typer.Option(
        None, "--name", help="The recipe's name (default: its name:, else the file's name)."
    ),
    mode: str = typer.Option("overwrite", "--mode", help=_MODE_HELP),
    database: str = typer.Option(
        None, "--database", "-d", help="Database for unqualified table names in --data."
    ),
    json_out: bool = JSON_OPTION,
) -> None:
    """Fit a recipe on training data and save it as a new version (s3://artifacts/recipes/NAME/vN/)."""
    from sagelab.cli._app import session
    from sagelab.prep import fit_recipe

    fitted = fit_recipe(
        recipe, data, engine=session().sql_engine(database), output=output, name=name, mode=mode
    )
    info = fitted.describe()
    if json_out:
        print_json(info)
        return
    fit_info: dict[str, Any] = info["fit"]
    console.print(
        f"fitted recipe [bold]{fitted.name}[/bold] v{fitted.version} -> {fitted.uri} "
        f"in {fit_info.get('seconds', 0):.2f}s"
    )
    _summary(fit_info.get("rows_in", 0), fit_info.get("rows_out", 0), fit_info, output)
    for resampled in fit_info.get("resampled") or []:
        if "rows_before" in resampled:
            console.print(
                f"step {resampled['step']} (resample, training only): "
                f"{resampled['rows_before']:,} -> {resampled['rows_after']:,} rows, "
                f"classes {resampled['classes_after']}"
            )
    console.print(
        f"[dim]{len(fitted.outputs)} output column(s): {', '.join(fitted.output_columns[:12])}"
        f"{', ...' if len(fitted.outputs) > 12 else ''}[/dim]"
    )


@app.command("apply")
def apply(
    recipe: str = typer.Argument(
        ..., help="A fitted recipe: its name, s3://artifacts/recipes/NAME/vN/, or a folder."
    ),
    data: str = typer.Option(..., "--data", help=_DATA_HELP),
    output: str = typer.Option(..., "--output", "-o", help="DATABASE.TABLE to write."),
    version: int = typer.Option(
        None, "--version", help="With a name: the version (default latest)."
    ),
    mode: str = typer.Option("overwrite", "--mode", help=_MODE_HELP),
    batch_size: int = typer.Option(65_536, "--batch-size", help="Rows per batch."),
    database: str = typer.Option(
        None, "--database", "-d", help="Database for unqualified table names in --data."
    ),
    json_out: bool = JSON_OPTION,
) -> None:
    """Apply a fitted recipe to data, batch by batch, into a table (training-only steps skipped)."""
    from sagelab.cli._app import session
    from sagelab.prep import apply_recipe

    result = apply_recipe(
        recipe,
        data,
        engine=session().sql_engine(database),
        output=output,
        version=version,
        mode=mode,
        batch_size=batch_size,
    )
    info = result.as_dict()
    if json_out:
        print_json(info)
        return
    console.print(
        f"applied recipe [bold]{result.recipe}[/bold] v{result.version} in {result.seconds:.2f}s"
    )
    _summary(result.rows_in, result.rows_out, info, result.output)


def _summary(rows_in: int, rows_out: int, info: dict[str, Any], output: str | None) -> None:
    where = f" into {output}" if output else ""
    console.print(f"{rows_in:,} row(s) in, {rows_out:,} row(s) out{where}")
    dropped = info.get("dropped") or []
    if dropped:
        print_records(dropped, ["step", "name", "rows"], title="rows removed")
    rejected = info.get("rows_rejected") or 0
    if rejected:
        console.print(
            f"[yellow]{rejected:,} row(s) failed a validation rule[/yellow]; see "
            f"{info.get('error_location')}"
        )
