"""CSV files to Parquet, exactly: every row is written or rejected.

**Fast path**: PyArrow's CSV reader (threaded over the whole file up to
256 MiB, streaming beyond), which is strict: it infers the types from the first
8 MiB block and raises on any later value that does not fit (``1.5`` in an
integer column) and on a row with the wrong number of fields; a column with
bytes that are not UTF-8 comes out binary, which sends the file on too. It
never changes a value silently, so when it finishes, every row is in the output.

**Slow path** (whenever the fast path raises): DuckDB with types sniffed from
*every* row (``sample_size=-1``, so a column holding ``1`` and ``1.5`` is a
double, and one holding ``1`` and ``n/a`` a string) and ``store_rejects``,
which records each row it cannot read (wrong number of fields, bad encoding)
with its line number; a file it cannot parse at all (an unterminated quote)
is refused with DuckDB's reason. The rejected records' exact
bytes and physical line numbers are then read back from the file.

Both paths: only an empty field is null; a header naming a column twice
(compared without case, as Athena does) is refused.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from sagelab.errors import InvalidInput
from sagelab.ingest._convert import MAX_RECORD_BYTES, Context, Converted, Fallback, short_reason
from sagelab.ingest._duck import literal, projection
from sagelab.ingest._sources import SourceFile

__all__ = ["Dialect", "convert_csv", "sniff_dialect"]

# PyArrow infers the types from the first block: a large one sees more rows.
_BLOCK = 8 * 1024 * 1024
_IN_MEMORY_BYTES = 256 * 1024 * 1024
_TRUE = ["true", "True", "TRUE"]
_FALSE = ["false", "False", "FALSE"]


@dataclass(frozen=True)
class Dialect:
    """How a CSV file is written."""

    delimiter: str = ","
    quote: str = '"'
    escape: str = '"'
    header: bool = True


def sniff_dialect(
    src: SourceFile, ctx: Context, delimiter: str | None, header: bool | None
) -> Dialect:
    """The file's dialect: the caller's overrides, else DuckDB's sniffer, else RFC 4180."""
    found = Dialect()
    try:
        rows = ctx.con.execute(
            "SELECT Delimiter, Quote, Escape, HasHeader, Columns FROM sniff_csv(?, sample_size=4096)",
            [src.path],
        ).fetchall()
        row = rows[0] if rows else None
    except duckdb.Error:
        row = None  # e.g. bytes that are not UTF-8: the slow path reports those rows
    # The sniffer can be fooled by ragged rows into seeing one wide column; a guess of one
    # column is no guess, so RFC 4180's comma (a tab for .tsv) stands then.
    if row is not None and len(row[4]) > 1:
        delim, quote, escape, has_header, _columns = row
        found = Dialect(
            delimiter=delim if delim and delim != "(empty)" else ",",
            quote=quote if quote and quote != "(empty)" else '"',
            escape=escape if escape and escape != "(empty)" else '"',
            header=bool(has_header),
        )
    elif src.name.lower().endswith(".tsv"):
        found = Dialect(delimiter="\t")
    return Dialect(
        delimiter=delimiter if delimiter is not None else found.delimiter,
        quote=found.quote,
        escape=found.escape,
        header=header if header is not None else found.header,
    )


def convert_csv(src: SourceFile, out: str, ctx: Context, dialect: Dialect) -> Converted:
    """Convert a CSV file to Parquet at ``out``.

    Raises:
        InvalidInput: the header names a column twice, or the file cannot be read at all.
    """
    names = _header(src, ctx, dialect)
    try:
        return _fast(src, out, ctx, dialect, names)
    except Fallback:
        pass
    if os.path.exists(out):
        os.remove(out)
    return _slow(src, out, ctx, dialect, names)


def _header(src: SourceFile, ctx: Context, dialect: Dialect) -> list[str] | None:
    """The header's names (checked for duplicates), or None for a file without a header."""
    if not dialect.header:
        return None
    with open(src.path, "rb") as fh:
        first = fh.readline(MAX_RECORD_BYTES).decode("utf-8", errors="replace").rstrip("\r\n")
    if not first:
        return None
    quote = dialect.quote or None
    row = next(csv.reader([first], delimiter=dialect.delimiter, quotechar=quote), [])
    names = [str(v) for v in row]
    seen: dict[str, int] = {}
    for i, name in enumerate(names, start=1):
        key = name.lower()
        if key in seen:
            raise InvalidInput(
                f"The header of {src.name!r} names the column {name!r} twice (columns {seen[key]} "
                f"and {i}; names are compared without case, as in Athena). Rename one of them."
            )
        seen[key] = i
    return names


# --------------------------------------------------------------------------- fast path
class _Counting(io.RawIOBase):
    """A file that tells how far it has been read (PyArrow reads it; progress reports it)."""

    def __init__(self, path: str, ctx: Context, size: int) -> None:
        self._fh = open(path, "rb")  # noqa: SIM115 - closed in close()
        self._ctx = ctx
        self._size = max(size, 1)
        self._done = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = self._fh.readinto(buffer)
        self._done += n or 0
        if self._ctx.report is not None:
            self._ctx.report(self._done / self._size)
        return n or 0

    def close(self) -> None:
        self._fh.close()
        super().close()


def _fast(
    src: SourceFile, out: str, ctx: Context, dialect: Dialect, names: list[str] | None
) -> Converted:
    read = pacsv.ReadOptions(
        block_size=_BLOCK,
        skip_rows=1 if names is not None else 0,
        column_names=names,
        autogenerate_column_names=names is None,
    )
    parse = pacsv.ParseOptions(
        delimiter=dialect.delimiter,
        quote_char=dialect.quote or False,
        double_quote=dialect.escape == dialect.quote,
        escape_char=dialect.escape if dialect.escape != dialect.quote else False,
    )
    convert = pacsv.ConvertOptions(
        null_values=[""],
        strings_can_be_null=True,
        quoted_strings_can_be_null=True,
        true_values=_TRUE,
        false_values=_FALSE,
    )
    rows = 0
    try:
        if src.size <= _IN_MEMORY_BYTES:
            # Small enough to hold: PyArrow's threaded reader beats its streaming one.
            table = pacsv.read_csv(
                src.path, read_options=read, parse_options=parse, convert_options=convert
            )
            schema = _storable(table.schema, names)
            _refuse_line_breaks(table)
            pq.write_table(_as(table, schema), out, compression=ctx.compression)
            rows = table.num_rows
        else:
            with _Counting(src.path, ctx, src.size) as raw:
                reader = pacsv.open_csv(
                    io.BufferedReader(raw, _BLOCK),
                    read_options=read,
                    parse_options=parse,
                    convert_options=convert,
                )
                schema = _storable(reader.schema, names)
                with pq.ParquetWriter(out, schema, compression=ctx.compression) as writer:
                    for batch in reader:
                        chunk = pa.Table.from_batches([batch])
                        _refuse_line_breaks(chunk)
                        writer.write_table(_as(chunk, schema))
                        rows += batch.num_rows
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, UnicodeDecodeError) as exc:
        raise Fallback(str(exc)) from exc
    return Converted(rows, rows, 0, out if rows else None, "fast")


def _refuse_line_breaks(table: pa.Table) -> None:
    """Fall back when a value holds a line break.

    The fast path reads without quoted line breaks (``newlines_in_values`` off, which
    keeps PyArrow parallel), yet PyArrow lets a quote left open run to the end of the
    file, swallowing the rows after it into one value. DuckDB tells the two apart.

    Raises:
        Fallback: some string value holds a line break.
    """
    for column in table.columns:
        text = pa.types.is_string(column.type) or pa.types.is_large_string(column.type)
        # Two plain searches: many times cheaper than one regular expression.
        if text and any(pc.any(pc.match_substring(column, c)).as_py() for c in ("\n", "\r")):
            raise Fallback("a value holds a line break")


def _as(table: pa.Table, schema: pa.Schema) -> pa.Table:
    return table.rename_columns(schema.names).cast(schema)


def _storable(schema: pa.Schema, names: list[str] | None) -> pa.Schema:
    """The schema to store: PyArrow's, with null columns as strings and DuckDB's default names.

    Raises:
        Fallback: a column holds bytes that are not UTF-8 (PyArrow types it binary);
            rejecting those rows is the slow path's job.
    """
    if any(pa.types.is_binary(f.type) for f in schema):
        raise Fallback("bytes that are not UTF-8")
    # A column with no value in the first block is typed null by PyArrow and a string by
    # DuckDB's sniffer: store it as a string either way. Without a header, use DuckDB's names.
    fields = []
    for i, field in enumerate(schema):
        name = field.name if names is not None else f"column{i}"
        dtype = pa.string() if pa.types.is_null(field.type) else field.type
        fields.append(pa.field(name, dtype))
    return pa.schema(fields)


# --------------------------------------------------------------------------- slow path
def _slow(
    src: SourceFile, out: str, ctx: Context, dialect: Dialect, names: list[str] | None
) -> Converted:
    tag = os.path.basename(out).replace(".", "_").replace("-", "_")
    table, scan = f"_rejects_{tag}", f"_scans_{tag}"
    options = (
        f"delim={literal(dialect.delimiter)}, quote={literal(dialect.quote)}, "
        f"escape={literal(dialect.escape)}, header={'true' if names is not None else 'false'}, "
        f"sample_size=-1, store_rejects=true, rejects_table={literal(table)}, "
        f"rejects_scan={literal(scan)}, max_line_size={MAX_RECORD_BYTES}"
    )
    if names is not None:
        options += ", names=[" + ", ".join(literal(n) for n in names) + "]"
    reader = f"read_csv({literal(src.path)}, {options})"
    try:
        rel = ctx.con.sql(f"SELECT * FROM {reader}")
        columns = list(zip(rel.columns, rel.types, strict=True))
        written = ctx.copy(f"SELECT {projection(columns)} FROM {reader}", out)
        rejects = ctx.con.execute(
            f"SELECT line, string_agg(lower(error_type::VARCHAR) || ': ' || error_message, '; ' "
            f"ORDER BY column_idx), ltrim(first(csv_line), chr(10) || chr(13)) "
            f"FROM {table} GROUP BY line ORDER BY line"
        ).fetchall()
    except duckdb.Error as exc:
        raise InvalidInput(
            f"The CSV file {src.name!r} cannot be read: {short_reason(exc)}."
        ) from exc
    finally:
        for name in (table, scan):
            ctx.con.execute(f"DROP TABLE IF EXISTS {name}")
    found = _locate(src.path, dialect, {int(line) for line, _, _ in rejects})
    for line, reason, text in rejects:
        physical, raw = found.get(int(line), (int(line), text.encode("utf-8")))
        ctx.rejects.add(src.name, str(reason), line=physical, raw=raw)
    rows_in = written + len(rejects)
    return Converted(rows_in, written, len(rejects), out if written else None, "slow")


def _locate(path: str, dialect: Dialect, wanted: set[int]) -> dict[int, tuple[int, bytes]]:
    """For DuckDB's reject line numbers: the physical line number and the record's exact bytes.

    DuckDB numbers lines without counting line breaks inside quoted fields, and
    shows a rejected line decoded, so both are recovered here by reading the file
    again with Python's own CSV reader (only when rows were rejected), which
    tells where each record starts and ends.
    """
    found: dict[int, tuple[int, bytes]] = {}
    if not wanted:
        return found
    pending: list[bytes] = []

    def lines(fh: BinaryIO) -> Iterator[str]:
        for raw in fh:
            pending.append(raw)
            # surrogateescape keeps undecodable bytes; the csv module just carries them.
            yield raw.decode("utf-8", errors="surrogateescape")

    quoted_breaks = 0
    last = max(wanted)
    double = dialect.escape == dialect.quote
    with open(path, "rb") as fh:
        reader = csv.reader(
            lines(fh),
            delimiter=dialect.delimiter,
            quotechar=dialect.quote or None,
            doublequote=double,
            escapechar=None if double else dialect.escape,
            strict=False,
        )
        start = 1
        try:
            for _record in reader:
                duck_line = start - quoted_breaks
                if duck_line in wanted:
                    found[duck_line] = (start, b"".join(pending).rstrip(b"\r\n"))
                quoted_breaks += len(pending) - 1
                start += len(pending)
                pending.clear()
                if duck_line >= last:
                    break
        except csv.Error:
            pass  # what is not found keeps DuckDB's numbering and text
    return found
