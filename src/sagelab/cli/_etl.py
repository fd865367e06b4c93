"""``sagelab etl``: run SQL or Python transforms into catalog tables, as jobs."""

from __future__ import annotations

import typer

from sagelab.cli._output import JSON_OPTION, print_json

__all__ = ["app"]

app = typer.Typer(
    help="ETL jobs: SQL or Python transforms into catalog tables.", no_args_is_help=True
)


@app.command("run")
def run(
    output: str = typer.Option(..., "--output", "-o", help="DATABASE.TABLE to write."),
    sql: str = typer.Option(
        None, "--sql", help="A SELECT over catalog tables whose rows become the output."
    ),
    python: str = typer.Option(
        None,
        "--python",
        help="MODULE:FUNCTION or FILE.py:FUNCTION applied to each batch (a pandas DataFrame).",
    ),
    input_sql: str = typer.Option(
        None, "--input-sql", help="With --python: the rows to transform."
    ),
    input_table: str = typer.Option(
        None, "--input", help="With --python: a DATABASE.TABLE to transform."
    ),
    mode: str = typer.Option(
        "overwrite", "--mode", help="overwrite, append or error (if the table exists)."
    ),
    database: str = typer.Option(
        None, "--database", "-d", help="Database for unqualified table names."
    ),
    name: str = typer.Option(None, "--name", help="The job's name (default: generated)."),
    wait: bool = typer.Option(
        True, "--wait/--no-wait", help="Wait for the job and show its result."
    ),
    json_out: bool = JSON_OPTION,
) -> None:
    """Run an ETL job and record it (sagelab jobs list shows it)."""
    from sagelab.cli._app import session
    from sagelab.cli._jobs import show_job
    from sagelab.errors import InvalidInput

    if (sql is None) == (python is None):
        raise InvalidInput("Give exactly one of --sql or --python.")
    if python is not None:
        if (input_sql is None) == (input_table is None):
            raise InvalidInput("With --python, give exactly one of --input-sql or --input.")
        kind = "etl.python"
        params = {
            "entry_point": python,
            "input_sql": input_sql or f"SELECT * FROM {input_table}",
            "output": output,
            "mode": mode,
            "database": database,
        }
    else:
        kind = "etl.sql"
        params = {"sql": sql, "output": output, "mode": mode, "database": database}
    jobs = session().jobs
    info = jobs.submit(kind, params, name=name)
    if wait:
        info = jobs.wait(info.name)
    if json_out:
        print_json(info.as_dict())
    else:
        show_job(info)
    if info.as_dict()["JobStatus"] in ("Failed", "Stopped"):
        raise typer.Exit(1)
