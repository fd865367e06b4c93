"""``sagelab sql``: SQL over catalog tables."""

from __future__ import annotations

import typer

from sagelab.cli._output import JSON_OPTION, console, print_json, print_records

__all__ = ["sql_command"]

_MAX_SHOWN = 200


def sql_command(
    query: str = typer.Argument(
        ..., help="A SELECT over DATABASE.TABLE names, or CREATE TABLE db.t AS SELECT ..."
    ),
    database: str = typer.Option(
        None, "--database", "-d", help="Database for unqualified table names."
    ),
    fmt: str = typer.Option(None, "--format", help="With --out: csv, json or parquet."),
    out: str = typer.Option(
        None, "--out", help="Write the rows to this path (or s3://bucket/key) instead."
    ),
    stats: bool = typer.Option(False, "--stats", help="Show partitions and files read."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Run SQL (DuckDB) over the catalog, pruning partitions from WHERE."""
    from sagelab.cli._app import session
    from sagelab.errors import InvalidInput

    engine = session().sql_engine(database)
    if out or fmt:
        if not (out and fmt):
            raise InvalidInput(
                "--out and --format go together (e.g. --format parquet --out result.parquet)."
            )
        result = engine.export(query, out, fmt)
        info = {**result.table.to_pylist()[0], **result.stats()}
        print_json(info) if json_out else console.print(
            f"wrote {info['rows_written']:,} rows to {out} ({fmt}) in {result.seconds:.2f}s"
        )
        return
    result = engine.query(query)
    if json_out:
        print_json(
            {"columns": result.columns, "rows": result.table.to_pylist(), "stats": result.stats()}
        )
        return
    rows = result.table.slice(0, _MAX_SHOWN).to_pylist()
    print_records(rows, result.columns)
    more = f" (showing {_MAX_SHOWN})" if result.num_rows > _MAX_SHOWN else ""
    console.print(f"[dim]{result.num_rows:,} row(s){more} in {result.seconds:.3f}s[/dim]")
    if stats:
        for table, s in result.scanned.items():
            console.print(
                f"[dim]{table}: {s['partitions_read']}/{s['partitions']} partitions, {s['files']} files[/dim]"
            )
