"""``sagelab lake``: buckets and objects, the catalog, the crawler, batch ingestion."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from sagelab.cli._output import JSON_OPTION, console, print_json, print_records, progress_bar

if TYPE_CHECKING:
    from sagelab.lake import ObjectInfo
    from sagelab.session import Session

__all__ = ["app"]

app = typer.Typer(
    help="The data lake: buckets, catalog tables, crawler and ingestion.", no_args_is_help=True
)


def _session() -> Session:
    from sagelab.cli._app import session

    return session()


# ---------------------------------------------------------------------- objects
def _object_dict(info: ObjectInfo) -> dict[str, object]:
    """An object in the shape of S3's ListObjectsV2 entries."""
    return {
        "Key": info.key,
        "Size": info.size,
        "ETag": info.etag,
        "LastModified": info.last_modified.isoformat(),
    }


@app.command("mb")
def make_bucket(bucket: str, json_out: bool = JSON_OPTION) -> None:
    """Make a bucket."""
    _session().lake.create_bucket(bucket)
    if json_out:
        print_json({"bucket": bucket, "created": True})
    else:
        console.print(f"make_bucket: {bucket}")


@app.command("ls")
def list_objects(
    uri: str = typer.Argument("", help="s3://BUCKET/PREFIX; empty lists the buckets."),
    recursive: bool = typer.Option(
        False, "--recursive", "-r", help="List every key under the prefix."
    ),
    json_out: bool = JSON_OPTION,
) -> None:
    """List buckets, or the keys and common prefixes under s3://BUCKET/PREFIX."""
    lake = _session().lake
    if not uri:
        buckets = [{"Name": name} for name in lake.list_buckets()]
        print_json({"Buckets": buckets}) if json_out else print_records(buckets)
        return
    bucket, prefix = lake.parse_uri(uri if uri.startswith("s3://") else f"s3://{uri}")
    result = lake.list(bucket, prefix=prefix, delimiter=None if recursive else "/")
    objects = [_object_dict(o) for o in result.objects]
    prefixes = list(result.common_prefixes)
    if json_out:
        print_json({"Contents": objects, "CommonPrefixes": prefixes})
        return
    # Like `aws s3 ls`: names relative to the folder of the prefix listed.
    folder = prefix[: prefix.rfind("/") + 1]
    for p in prefixes:
        console.print(f"{'PRE':>30} {p[len(folder) :]}", highlight=False)
    print_records(objects) if objects else None


@app.command("put")
def put_object(
    path: Path = typer.Argument(..., help="A local file."),
    uri: str = typer.Argument(..., help="s3://BUCKET/KEY"),
    json_out: bool = JSON_OPTION,
) -> None:
    """Upload a local file to s3://BUCKET/KEY (atomically)."""
    from sagelab.errors import NotFound

    lake = _session().lake
    bucket, key = lake.parse_uri(uri)
    if not path.is_file():
        raise NotFound(f"The file {str(path)!r} does not exist.")
    with path.open("rb") as fh:
        info = lake.put(bucket, key, fh)
    print_json(_object_dict(info)) if json_out else console.print(f"upload: {path} to {uri}")


@app.command("get")
def get_object(
    uri: str = typer.Argument(..., help="s3://BUCKET/KEY"),
    path: str = typer.Argument("-", help="Where to write it; '-' for stdout."),
) -> None:
    """Download s3://BUCKET/KEY."""
    lake = _session().lake
    bucket, key = lake.parse_uri(uri)
    with lake.open_read(bucket, key) as src:
        if path == "-":
            while chunk := src.read(1 << 20):
                sys.stdout.buffer.write(chunk)
        else:
            with open(path, "wb") as dst:
                while chunk := src.read(1 << 20):
                    dst.write(chunk)


@app.command("rm")
def remove_object(
    uri: str = typer.Argument(..., help="s3://BUCKET/KEY"),
    recursive: bool = typer.Option(
        False, "--recursive", "-r", help="Delete every key under the prefix."
    ),
    json_out: bool = JSON_OPTION,
) -> None:
    """Delete an object (or, with --recursive, a prefix)."""
    lake = _session().lake
    bucket, key = lake.parse_uri(uri)
    if recursive:
        deleted = lake.delete_prefix(bucket, key)
    else:
        lake.delete(bucket, key)
        deleted = 1
    print_json({"deleted": deleted}) if json_out else console.print(f"delete: {uri}")


# ---------------------------------------------------------------------- catalog
@app.command("databases")
def databases(json_out: bool = JSON_OPTION) -> None:
    """List the catalog's databases."""
    rows = [d.as_dict() for d in _session().catalog.list_databases()]
    print_json({"DatabaseList": rows}) if json_out else print_records(
        rows, ["Name", "Description", "CreateTime"]
    )


@app.command("tables")
def tables(
    database: str = typer.Argument(None, help="Only this database's tables."),
    json_out: bool = JSON_OPTION,
) -> None:
    """List catalog tables."""
    infos = _session().catalog.list_tables(database)
    if json_out:
        print_json({"TableList": [t.as_dict() for t in infos]})
        return
    print_records(
        [
            {
                "table": t.qualified_name,
                "format": t.classification + (f"+{t.compression}" if t.compression else ""),
                "columns": len(t.columns),
                "partition keys": ", ".join(k.name for k in t.partition_keys),
                "rows": t.row_count,
                "version": t.version_id,
                "location": t.location,
            }
            for t in infos
        ]
    )


@app.command("describe")
def describe(
    table: str = typer.Argument(..., help="DATABASE.TABLE"),
    versions: bool = typer.Option(False, "--versions", help="Show the schema history too."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Describe a catalog table: location, format, schema, partitions."""
    from sagelab.lake import parse_table_name

    catalog = _session().catalog
    database, name = parse_table_name(table)
    info = catalog.get_table(database, name)
    partitions = catalog.get_partitions(database, name)
    history = catalog.table_versions(database, name) if versions else None
    if json_out:
        data = {"Table": info.as_dict(), "Partitions": [p.as_dict() for p in partitions]}
        if history is not None:
            data["TableVersions"] = history
        print_json(data)
        return
    console.print(f"[bold]{info.qualified_name}[/bold]  version {info.version_id}")
    console.print(f"location: {info.location}")
    console.print(
        f"format: {info.classification}  compression: {info.compression or 'none'}  "
        f"rows: {info.row_count if info.row_count is not None else 'unknown'}"
    )
    print_records(
        [
            {"column": c.name, "type": c.type, "nullable": c.nullable, "partition key": False}
            for c in info.columns
        ]
        + [
            {"column": c.name, "type": c.type, "nullable": c.nullable, "partition key": True}
            for c in info.partition_keys
        ],
        title="Schema",
    )
    if partitions:
        shown = partitions[:20]
        print_records(
            [
                {
                    "values": "/".join(p.values),
                    "location": p.location,
                    **{
                        k: v for k, v in p.parameters.items() if k in ("recordCount", "objectCount")
                    },
                }
                for p in shown
            ],
            title=f"Partitions ({len(partitions)})",
        )
    if history:
        print_records(
            [
                {
                    "version": v["VersionId"],
                    "created": v["CreateTime"],
                    "by": v["CreatedBy"],
                    "change": v["Change"],
                }
                for v in history
            ],
            title="Versions",
        )


@app.command("crawl")
def crawl(
    location: str = typer.Argument(..., help="s3://BUCKET/PREFIX in the lake, or a local folder."),
    database: str = typer.Option(..., "--database", "-d", help="The catalog database to fill."),
    table_prefix: str = typer.Option("", "--table-prefix", help="Prefix for the tables' names."),
    policy: str = typer.Option(
        "update",
        "--schema-change-policy",
        help="On a changed schema: 'update' the table or only 'log' it.",
    ),
    json_out: bool = JSON_OPTION,
) -> None:
    """Walk a location, infer schemas and partitions, and register one table per dataset."""
    with progress_bar("crawling", enabled=not json_out) as progress:
        report = _session().crawl(
            location,
            database,
            table_prefix=table_prefix,
            schema_change_policy=policy,
            progress=progress,
        )
    data = report.as_dict()
    if json_out:
        print_json(data)
        return
    _print_crawl(data)


def _print_crawl(data: dict[str, Any]) -> None:
    rows = []
    for t in data.get("tables", []):
        change = t.get("changes") or {}
        rows.append(
            {
                "table": f"{data['database']}.{t['name']}",
                "status": t["status"],
                "format": t["classification"],
                "version": t["version_id"],
                "files": t["files"],
                "partitions": t["partitions"],
                "new partitions": len(change.get("partitions_added", [])),
                "added": ", ".join(c["name"] for c in change.get("added", [])),
                "removed": ", ".join(c["name"] for c in change.get("removed", [])),
                "changed": ", ".join(
                    f"{c['name']}: {c['from']}→{c['to']}" for c in change.get("changed", [])
                ),
            }
        )
    print_records(rows, title=f"Crawl of {data['location']} ({data['schema_change_policy']})")
    for t in data.get("tables", []):
        for note in t.get("notes", []):
            console.print(f"[yellow]note[/yellow] {t['name']}: {note}", highlight=False)
    skipped = data.get("skipped") or []
    if skipped:
        print_records(skipped, title="Skipped files")


@app.command("ingest")
def ingest(
    source: list[str] = typer.Argument(
        ..., help="Files, globs, folders or URLs (CSV, JSON lines, JSON arrays, Parquet)."
    ),
    table: str = typer.Option(..., "--table", "-t", help="DATABASE.TABLE to write."),
    fmt: str = typer.Option(None, "--format", help="csv, json or parquet (default: detected)."),
    mode: str = typer.Option("append", "--mode", help="append or overwrite."),
    partition_by: list[str] = typer.Option(
        [], "--partition-by", help="Partition by this column (repeatable)."
    ),
    by_date: bool = typer.Option(
        False, "--partition-by-ingest-date", help="Add an ingest_date=YYYY-MM-DD partition."
    ),
    compression: str = typer.Option("zstd", "--compression", help="zstd or snappy."),
    delimiter: str = typer.Option(None, "--delimiter", help="CSV delimiter (default: detected)."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Ingest files into a catalog table as Parquet; rejected rows go to an error location."""
    options = {
        "format": fmt,
        "mode": mode,
        "partition_by": partition_by,
        "partition_by_ingest_date": by_date,
        "compression": compression,
    }
    if delimiter is not None:
        options["csv_delimiter"] = delimiter
    with progress_bar("ingesting", enabled=not json_out) as progress:
        result = _session().ingest(
            source if len(source) > 1 else source[0], table, progress=progress, **options
        )
    data = result.as_dict()
    if json_out:
        print_json(data)
        return
    console.print(
        f"[bold]{data['table']}[/bold]: {data['rows_in']:,} rows in, {data['rows_written']:,} written, "
        f"{data['rows_rejected']:,} rejected, {len(data.get('files_written') or [])} file(s)"
    )
    if data.get("rows_rejected"):
        console.print(f"[yellow]rejected rows:[/yellow] {data['error_location']}")
