"""Parquet files into the table: typed already, so rewritten with the table's codec, never rejected."""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from sagelab.errors import InvalidInput
from sagelab.ingest._convert import Context, Converted, check_names, short_reason
from sagelab.ingest._duck import literal, projection
from sagelab.ingest._sources import SourceFile

__all__ = ["convert_parquet"]


def convert_parquet(src: SourceFile, out: str, ctx: Context) -> Converted:
    """Rewrite a Parquet file at ``out`` (streamed by DuckDB, row groups at a time).

    Raises:
        InvalidInput: the file is not Parquet, or DuckDB cannot read all of it.
    """
    try:
        rows_in = pq.ParquetFile(src.path).metadata.num_rows
    except (pa.ArrowInvalid, OSError) as exc:
        raise InvalidInput(f"The file {src.name!r} is not a valid Parquet file: {exc}.") from exc
    reader = f"read_parquet({literal(src.path)})"
    try:
        rel = ctx.con.sql(f"SELECT * FROM {reader}")
        columns = list(zip(rel.columns, rel.types, strict=True))
        check_names(rel.columns, src.name)
        written = ctx.copy(f"SELECT {projection(columns)} FROM {reader}", out)
    except duckdb.Error as exc:
        raise InvalidInput(
            f"The Parquet file {src.name!r} cannot be read: {short_reason(exc)}."
        ) from exc
    if written != rows_in:
        raise InvalidInput(
            f"The Parquet file {src.name!r} says it holds {rows_in} rows but {written} were read; "
            "it may be damaged."
        )
    return Converted(rows_in, written, 0, out if written else None, "fast")
