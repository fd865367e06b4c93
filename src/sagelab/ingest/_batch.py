"""Batch ingestion: files in, a catalog table of Parquet out, every record accounted for.

One run goes through four steps, and nothing reaches the lake before the
third:

1. **convert** each source file to a staged Parquet file in a private local
   folder (see :mod:`sagelab.ingest._json`, :mod:`~sagelab.ingest._csv`,
   :mod:`~sagelab.ingest._parquet`); rejected records go to a staged log;
2. **check** the new columns against the table (safe widening only), and
   partition the staged files when the table is partitioned;
3. **publish** the reject log and the data files through the lake, each
   object atomically;
4. **register** the table, its new partitions and its record count in the
   catalog; in overwrite mode, then delete the files of the old data.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import unquote

import pyarrow.parquet as pq

from sagelab.errors import InvalidInput, InvalidKey
from sagelab.ingest._convert import Context, Converted, parquet_options
from sagelab.ingest._csv import convert_csv, sniff_dialect
from sagelab.ingest._duck import connect, ident, literal
from sagelab.ingest._json import convert_json
from sagelab.ingest._parquet import convert_parquet
from sagelab.ingest._rejects import RejectLog
from sagelab.ingest._sources import SourceFile, resolve_sources
from sagelab.lake import (
    WAREHOUSE_BUCKET,
    Catalog,
    Column,
    Lake,
    TableInfo,
    columns_from_arrow,
    parse_table_name,
    resolve_location,
    unify_types,
)

__all__ = ["INGEST_DATE_COLUMN", "IngestResult", "ingest"]

#: The partition column added by ``partition_by_ingest_date``.
INGEST_DATE_COLUMN = "ingest_date"
_MODES = ("append", "overwrite")
_CODECS = ("zstd", "snappy")
_NESTED_PREFIXES = ("struct<", "array<", "map<")

_Progress = Callable[[int, int], None]


@dataclass
class IngestResult:
    """What one ingestion did. ``rows_in == rows_written + rows_rejected`` always holds.

    Attributes:
        table: the catalog table, ``database.table``.
        rows_in: records found in the sources (blank lines are not records).
        rows_written: records stored in the table.
        rows_rejected: records sent to ``error_location``.
        error_location: the lake prefix of the reject log, or None when nothing was rejected.
        files_written: the data files written, as lake URIs.
        partitions: the partitions written to, as ``key=value/...`` paths.
        bytes_in: the size of the sources.
        seconds: how long the run took.
        mode: ``append`` or ``overwrite``.
    """

    table: str
    rows_in: int
    rows_written: int
    rows_rejected: int
    error_location: str | None
    files_written: list[str] = field(default_factory=list)
    partitions: list[str] = field(default_factory=list)
    bytes_in: int = 0
    seconds: float = 0.0
    mode: str = "append"

    def as_dict(self) -> dict[str, Any]:
        """The summary, as ``--json`` prints it."""
        return {
            "table": self.table,
            "rows_in": self.rows_in,
            "rows_written": self.rows_written,
            "rows_rejected": self.rows_rejected,
            "error_location": self.error_location,
            "files_written": list(self.files_written),
            "partitions": list(self.partitions),
            "bytes_in": self.bytes_in,
            "seconds": round(self.seconds, 3),
            "mode": self.mode,
        }


def ingest(
    source: str | Sequence[str],
    table: str,
    *,
    catalog: Catalog,
    lake: Lake,
    format: str | None = None,
    mode: Literal["append", "overwrite"] | str = "append",
    partition_by: Sequence[str] = (),
    partition_by_ingest_date: bool = False,
    compression: Literal["zstd", "snappy"] | str = "zstd",
    csv_delimiter: str | None = None,
    csv_header: bool | None = None,
    location: str | None = None,
    progress: _Progress | None = None,
) -> IngestResult:
    """Load files into a catalog table as Parquet; rejected records go to the lake's error location.

    Every record of the sources is either written or rejected (with its source,
    line, reason and raw text), so ``rows_in == rows_written + rows_rejected``.

    In ``append`` mode the new columns must fit the table's: a column may widen
    safely (int to bigint or double, a struct gaining fields), new columns are
    added, and columns missing from the new data read as null. Anything else is
    refused before anything is written. In ``overwrite`` mode the new files are
    written, the catalog is switched to them (new schema, partitions and record
    count), and then the old files are deleted. A reader that lists the table's
    files during those steps may see the old and the new rows together, and one
    that is already reading an old file when it is deleted may fail; a reader
    that starts after the run sees only the new data.

    Args:
        source: a path, glob, folder or URL, or several. ``s3://bucket/key`` is in the lake.
        table: ``database.table``; the table is created if it does not exist.
        catalog: the data catalog.
        lake: the lake the table's files live in.
        format: ``jsonl``, ``json`` (an array of objects), ``csv`` or ``parquet``;
            None detects each file's format from its extension, then its first bytes.
        mode: ``append`` or ``overwrite``.
        partition_by: columns to partition by (hive ``key=value/`` folders).
        partition_by_ingest_date: add an ``ingest_date=YYYY-MM-DD`` partition (UTC).
        compression: the Parquet codec, ``zstd`` or ``snappy``.
        csv_delimiter: the CSV delimiter; None sniffs it.
        csv_header: whether CSV files start with a header; None sniffs it.
        location: the table's location for a new table (default ``s3://warehouse/<db>/<table>/``).
        progress: called with (bytes done, bytes in total) as the sources are read.

    Returns:
        The run's summary.

    Raises:
        InvalidInput: a bad table name, option or source file (empty, no records, duplicate
            column names...); ``IncompatibleSchema`` (a subclass) when a column's new type
            cannot be stored in the table's, naming the column and both types.
        NotFound: a source path, glob or URL that matches no file.
    """
    started = time.perf_counter()
    database, name = parse_table_name(table)
    _check_options(mode, compression, partition_by, csv_delimiter)
    existing = catalog.get_table(database, name) if catalog.table_exists(database, name) else None
    table_uri = _table_location(existing, location, database, name)
    bucket, prefix = _lake_prefix(table_uri, lake)
    wanted_keys, by_date = _wanted_keys(existing, mode, partition_by, partition_by_ingest_date)
    now = datetime.now(UTC)
    run_id = f"{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"

    with tempfile.TemporaryDirectory(prefix="sagelab-ingest-") as staging:
        sources = resolve_sources(source, lake=lake, staging=staging, format=format)
        bytes_in = sum(s.size for s in sources)
        log_path = os.path.join(staging, "rejects.jsonl")
        con = connect(staging)
        try:
            with open(log_path, "wb") as log_file:
                ctx = Context(con, staging, RejectLog(log_file, now.isoformat()), compression)
                converted = _convert_all(sources, ctx, run_id, progress, csv_delimiter, csv_header)
                rejected = ctx.rejects.count
            rows_in = sum(c.rows_in for c in converted)
            rows_written = sum(c.rows_written for c in converted)
            _require_records(sources, rows_in)
            staged = [c.path for c in converted if c.path is not None]
            new_columns = _columns_of(staged, sources)
            columns, keys = _table_schema(existing, mode, new_columns, wanted_keys, by_date)
            if staged:
                outputs = _layout(con, staging, staged, keys, by_date, now, run_id, compression)
            else:
                outputs = []
        finally:
            con.close()

        # Every key is checked before the first object is published.
        for rel, _path, values, _rows in outputs:
            _check_object_key(lake, bucket, f"{prefix}{rel}", keys, values)
        old_keys = _existing_keys(lake, bucket, prefix) if mode == "overwrite" and staged else []
        lake.create_bucket(bucket, exist_ok=True)
        error_location = None
        if rejected:
            error_prefix = f"_errors/{database}/{name}/{run_id}/"
            lake.create_bucket(WAREHOUSE_BUCKET, exist_ok=True)
            with lake.write_path(WAREHOUSE_BUCKET, f"{error_prefix}rejects.jsonl") as target:
                shutil.move(log_path, target)
            error_location = lake.uri(WAREHOUSE_BUCKET, error_prefix)
        written: list[str] = []
        for rel, path, _values, _rows in outputs:
            with lake.write_path(bucket, f"{prefix}{rel}") as target:
                shutil.move(path, target)
            written.append(lake.uri(bucket, f"{prefix}{rel}"))

    partitions: list[str] = []
    if outputs:
        partitions = _register(
            catalog,
            existing,
            mode,
            database,
            name,
            table_uri,
            columns,
            keys,
            compression,
            outputs,
            rows_written,
            run_id,
        )
        for key in old_keys:
            lake.delete(bucket, key)
    if progress is not None:
        progress(bytes_in, bytes_in)
    return IngestResult(
        table=f"{database}.{name}",
        rows_in=rows_in,
        rows_written=rows_written,
        rows_rejected=rejected,
        error_location=error_location,
        files_written=written,
        partitions=partitions,
        bytes_in=bytes_in,
        seconds=time.perf_counter() - started,
        mode=mode,
    )


# --------------------------------------------------------------------------- options
def _check_options(
    mode: str, compression: str, partition_by: Sequence[str], csv_delimiter: str | None
) -> None:
    if mode not in _MODES:
        raise InvalidInput(f"The mode {mode!r} is not known: use 'append' or 'overwrite'.")
    if compression not in _CODECS:
        raise InvalidInput(
            f"The compression {compression!r} is not offered: use 'zstd' or 'snappy'."
        )
    if isinstance(partition_by, str):
        raise InvalidInput(
            f"partition_by takes a list of column names; got the string {partition_by!r}."
        )
    if len({k.lower() for k in partition_by}) != len(partition_by):
        raise InvalidInput(f"partition_by names a column twice: {list(partition_by)!r}.")
    if csv_delimiter is not None and len(csv_delimiter) != 1:
        raise InvalidInput(
            f"The CSV delimiter must be one character (e.g. ',' or '\\t'); got {csv_delimiter!r}."
        )


def _table_location(
    existing: TableInfo | None, location: str | None, database: str, name: str
) -> str:
    default = f"s3://{WAREHOUSE_BUCKET}/{database}/{name}/"
    if existing is None:
        uri = location or default
        return uri if uri.endswith("/") else uri + "/"
    if location is not None and location.rstrip("/") != existing.location.rstrip("/"):
        raise InvalidInput(
            f"The table {database}.{name} lives at {existing.location}, not {location}. Leave "
            "the location out to add to it, or ingest into a new table."
        )
    return existing.location if existing.location.endswith("/") else existing.location + "/"


def _lake_prefix(uri: str, lake: Lake) -> tuple[str, str]:
    loc = resolve_location(uri, lake)
    if not loc.in_lake or loc.bucket is None:
        raise InvalidInput(
            f"The table location {uri!r} is outside the lake; ingestion writes to the lake: "
            "use s3://bucket/prefix/ (or leave it out for s3://warehouse/<db>/<table>/)."
        )
    key = (loc.key or "").strip("/")
    return loc.bucket, f"{key}/" if key else ""


def _wanted_keys(
    existing: TableInfo | None, mode: str, partition_by: Sequence[str], by_date: bool
) -> tuple[list[str], bool]:
    """The partition columns of the run (``ingest_date`` last when by date)."""
    wanted = list(partition_by) + ([INGEST_DATE_COLUMN] if by_date else [])
    if existing is None or mode == "overwrite":
        return list(partition_by), by_date
    current = [k.name for k in existing.partition_keys]
    if not wanted:
        return [k for k in current if k != INGEST_DATE_COLUMN], INGEST_DATE_COLUMN in current
    if [k.lower() for k in wanted] != [k.lower() for k in current]:
        raise InvalidInput(
            f"The table {existing.qualified_name} is partitioned by "
            f"({', '.join(current) or 'nothing'}), not ({', '.join(wanted)}). Leave the "
            "partitioning out to follow the table's, or use mode 'overwrite' to repartition."
        )
    return list(partition_by), by_date


# --------------------------------------------------------------------------- convert
def _convert_all(
    sources: list[SourceFile],
    ctx: Context,
    run_id: str,
    progress: _Progress | None,
    csv_delimiter: str | None,
    csv_header: bool | None,
) -> list[Converted]:
    total = sum(s.size for s in sources)
    base = 0
    out: list[Converted] = []
    for seq, src in enumerate(sources):
        if progress is not None:
            ctx.report = _file_progress(progress, base, src.size, total)
        target = os.path.join(ctx.staging, f"part-{run_id}-{seq:05d}.parquet")
        if src.size == 0:
            out.append(Converted(0, 0, 0, None, "empty"))
        elif src.format in ("jsonl", "json"):
            out.append(convert_json(src, target, ctx))
        elif src.format == "csv":
            dialect = sniff_dialect(src, ctx, csv_delimiter, csv_header)
            out.append(convert_csv(src, target, ctx, dialect))
        else:
            out.append(convert_parquet(src, target, ctx))
        base += src.size
        if progress is not None:
            progress(base, total)
    ctx.report = None
    return out


def _file_progress(
    progress: _Progress, base: int, size: int, total: int
) -> Callable[[float], None]:
    high = [base]

    def report(fraction: float) -> None:
        done = base + int(size * max(0.0, min(fraction, 1.0)))
        if done > high[0]:  # a bar never goes backwards, even when a file is read twice
            high[0] = done
            progress(done, total)

    return report


def _require_records(sources: list[SourceFile], rows_in: int) -> None:
    if rows_in:
        return
    names = ", ".join(repr(s.name) for s in sources[:3]) + (" ..." if len(sources) > 3 else "")
    if all(s.size == 0 for s in sources):
        raise InvalidInput(f"The source {names} is empty (0 bytes): there is nothing to ingest.")
    raise InvalidInput(
        f"The source {names} holds no records (only a header, or blank lines): there is "
        "nothing to ingest."
    )


# --------------------------------------------------------------------------- schema
def _columns_of(staged: list[str], sources: list[SourceFile]) -> list[Column]:
    """The columns of the new data: each file's, unified (types widened safely)."""
    merged: dict[str, Column] = {}
    for path in staged:
        seen: dict[str, str] = {}
        for col in columns_from_arrow(pq.read_schema(path)):
            key = col.name.lower()
            if key in seen:
                raise InvalidInput(
                    f"The new data names the column {col.name!r} twice ({seen[key]!r} and "
                    f"{col.name!r}; names are compared without case, as in Athena). Rename one "
                    "in the source."
                )
            seen[key] = col.name
            if key in merged:
                old = merged[key]
                merged[key] = Column(old.name, unify_types(old.type, col.type, old.name))
            else:
                merged[key] = Column(col.name, col.type)
    return list(merged.values())


def _table_schema(
    existing: TableInfo | None,
    mode: str,
    new: list[Column],
    wanted_keys: list[str],
    by_date: bool,
) -> tuple[list[Column], list[Column]]:
    """The table's data columns and partition keys after this run.

    Raises:
        IncompatibleSchema: a column's new type cannot be stored in the table's.
        InvalidInput: a partition column is missing from the data, or nested.
    """
    by_name = {c.name.lower(): c for c in new}
    keys: list[Column] = []
    for key in wanted_keys:
        col = by_name.get(key.lower())
        if col is None:
            raise InvalidInput(
                f"Cannot partition by {key!r}: the data has no such column. Columns: "
                f"{', '.join(c.name for c in new)}."
            )
        if col.type.lower().startswith(_NESTED_PREFIXES):
            raise InvalidInput(
                f"Cannot partition by {key!r}: it is a nested column ({col.type}); partition "
                "by a column of plain values."
            )
        keys.append(col)
    if by_date:
        keys.append(Column(INGEST_DATE_COLUMN, "string"))
    key_names = {k.name.lower() for k in keys}
    data = [c for c in new if c.name.lower() not in key_names]
    if existing is None or mode == "overwrite":
        return data, keys
    columns = list(existing.columns)
    index = {c.name.lower(): i for i, c in enumerate(columns)}
    for col in data:
        i = index.get(col.name.lower())
        if i is None:
            columns.append(col)
            index[col.name.lower()] = len(columns) - 1
            continue
        old = columns[i]
        columns[i] = Column(
            old.name, unify_types(old.type, col.type, old.name), old.nullable, old.comment
        )
    merged_keys = []
    for old, col in zip(existing.partition_keys, keys, strict=True):
        merged_keys.append(Column(old.name, unify_types(old.type, col.type, old.name)))
    return columns, merged_keys


# --------------------------------------------------------------------------- layout
def _layout(
    con: Any,
    staging: str,
    staged: list[str],
    keys: list[Column],
    by_date: bool,
    now: datetime,
    run_id: str,
    compression: str,
) -> list[tuple[str, str, list[str], int]]:
    """The files to publish: ``(relative key, local path, partition values, rows)``."""
    if not keys:
        return [(os.path.basename(p), p, [], pq.ParquetFile(p).metadata.num_rows) for p in staged]
    folder = os.path.join(staging, "partitioned")
    files = "[" + ", ".join(literal(p) for p in staged) + "]"
    extra = f", {literal(now.date().isoformat())} AS {ident(INGEST_DATE_COLUMN)}" if by_date else ""
    partition = ", ".join(ident(k.name) for k in keys)
    con.execute(
        f"COPY (SELECT *{extra} FROM read_parquet({files}, union_by_name=true)) TO "
        f"{literal(folder)} ({parquet_options(compression)}, PARTITION_BY ({partition}), "
        f"FILENAME_PATTERN {literal(f'part-{run_id}-{{i}}')})"
    )
    out = []
    for root, _dirs, names in os.walk(folder):
        for file_name in sorted(names):
            path = os.path.join(root, file_name)
            rel = os.path.relpath(path, folder).replace(os.sep, "/")
            values = [unquote(seg.partition("=")[2]) for seg in rel.split("/")[:-1]]
            out.append((rel, path, values, pq.ParquetFile(path).metadata.num_rows))
    return sorted(out)


def _check_object_key(
    lake: Lake, bucket: str, key: str, keys: list[Column], values: list[str]
) -> None:
    try:
        lake.uri(bucket, key)  # checks the key as every write will
    except InvalidKey as exc:
        if not keys:
            raise
        shown = ", ".join(f"{k.name}={v!r}" for k, v in zip(keys, values, strict=True))
        raise InvalidInput(
            f"The partition ({shown}) cannot be stored: its folder name would not be a safe "
            f"object key ({exc}). Clean the partition column's values, or partition by "
            "another column."
        ) from exc


def _existing_keys(lake: Lake, bucket: str, prefix: str) -> list[str]:
    if not lake.bucket_exists(bucket):
        return []
    return lake.list(bucket, prefix).keys


# --------------------------------------------------------------------------- catalog
def _register(
    catalog: Catalog,
    existing: TableInfo | None,
    mode: str,
    database: str,
    name: str,
    table_uri: str,
    columns: list[Column],
    keys: list[Column],
    compression: str,
    outputs: list[tuple[str, str, list[str], int]],
    rows_written: int,
    run_id: str,
) -> list[str]:
    """Create or update the table and its partitions; returns the partition paths written."""
    fresh = existing is None or mode == "overwrite"
    before = 0 if fresh or existing is None else existing.row_count or 0
    parameters = {"recordCount": before + rows_written, "sagelab.lastIngestRun": run_id}
    info = TableInfo(
        database=database,
        name=name,
        location=table_uri,
        classification="parquet",
        columns=columns,
        partition_keys=keys,
        compression=compression,
        parameters=parameters,
        description=existing.description if existing is not None else "",
        created_by="sagelab ingest",
    )
    if existing is None:
        catalog.create_table(info)
    else:
        if mode == "overwrite" and existing.partition_keys:
            catalog.delete_partitions(database, name)
        catalog.update_table(info)
    if not keys:
        return []
    counts: dict[tuple[str, ...], int] = {}
    folders: dict[tuple[str, ...], str] = {}
    for rel, _path, values, rows in outputs:
        counts[tuple(values)] = counts.get(tuple(values), 0) + rows
        folders[tuple(values)] = rel.rsplit("/", 1)[0]
    known: dict[tuple[str, ...], int] = {}
    if not fresh:
        for part in catalog.get_partitions(database, name):
            known[tuple(part.values)] = int(part.parameters.get("recordCount", 0) or 0)
    paths = []
    entries = []
    for part_values, rows in sorted(counts.items()):
        location = f"{table_uri}{folders[part_values]}/"
        entries.append(
            (list(part_values), location, {"recordCount": known.get(part_values, 0) + rows})
        )
        paths.append(folders[part_values])
    catalog.add_partitions(database, name, entries)
    return paths
