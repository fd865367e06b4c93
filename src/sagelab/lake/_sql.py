"""SQL over the catalog (Athena's role), run by DuckDB.

A query names catalog tables as ``database.table``. For each one the engine
creates a DuckDB view over the table's files, reading only the partitions that
the query's ``WHERE`` can match: predicates that touch nothing but partition
columns are evaluated against the catalog's known partitions first (like Athena
with the Glue catalog), so pruned partitions are not even listed. DuckDB then
prunes again on the files it is given.

User SQL runs sandboxed: one statement, a query or ``CREATE TABLE ... AS``,
on a DuckDB database that may only read the tables' folders. Opening a DuckDB
database costs about 20 ms, more than many queries, so an engine keeps one
sandboxed database and gives each query a cursor of its own with
connection-local views; it opens a new one only when a query needs a folder
the current one may not read, and for writes.
"""

from __future__ import annotations

import os
import re
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import duckdb
import pyarrow as pa
from sqlglot import exp

from sagelab.errors import Conflict, InvalidInput, NotFound
from sagelab.lake._catalog import Catalog, PartitionInfo, TableInfo, parse_table_name, validate_name
from sagelab.lake._locations import Location, resolve_location
from sagelab.lake._schema import Column, columns_from_arrow, glue_to_duckdb, unify_types
from sagelab.lake._sqlparse import (
    TableRef,
    collect_references,
    parse_statement,
    rewrite_references,
    view_name,
)

if TYPE_CHECKING:
    from sagelab.lake._objects import Lake

__all__ = ["ARTIFACTS_BUCKET", "WAREHOUSE_BUCKET", "QueryResult", "SqlEngine"]

#: The lake bucket that tables created by sagelab live in.
WAREHOUSE_BUCKET = "warehouse"
#: The lake bucket for what stages produce: models, reports, recipes
#: (``training/<job>/...``, ``profiles/<name>/...``, ``recipes/<name>/...``).
ARTIFACTS_BUCKET = "artifacts"

_OUTPUT_FORMATS = ("csv", "json", "parquet")


@dataclass
class QueryResult:
    """A query's answer and what it took to get it."""

    table: pa.Table
    seconds: float
    #: Per catalog table: partitions known, partitions read, files read.
    scanned: dict[str, dict[str, int]] = field(default_factory=dict)
    #: For CREATE TABLE AS: the table created.
    created_table: str | None = None

    @property
    def columns(self) -> list[str]:
        return self.table.column_names

    @property
    def num_rows(self) -> int:
        return self.table.num_rows

    def stats(self) -> dict[str, Any]:
        return {
            "rows": self.num_rows,
            "seconds": round(self.seconds, 6),
            "scanned": self.scanned,
            "created_table": self.created_table,
        }


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _sql_literal(path: str) -> str:
    return "'" + path.replace("'", "''") + "'"


class SqlEngine:
    """Runs SQL over catalog tables.

    Args:
        catalog: the data catalog.
        lake: the lake that ``s3://`` locations live in.
        default_database: the database unqualified table names resolve in.
    """

    def __init__(
        self, catalog: Catalog, lake: Lake | None, *, default_database: str | None = None
    ) -> None:
        self.catalog = catalog
        self.lake = lake
        self.default_database = default_database
        self._shared: duckdb.DuckDBPyConnection | None = None
        self._shared_dirs: frozenset[str] = frozenset()
        self._lock = threading.Lock()

    def close(self) -> None:
        """Close the engine's DuckDB database (queries still running keep theirs)."""
        with self._lock:
            if self._shared is not None:
                self._shared.close()
                self._shared = None

    # ------------------------------------------------------------------ public
    def query(self, sql: str) -> QueryResult:
        """Run one query (or ``CREATE TABLE db.t AS SELECT ...``) and return its rows.

        Raises:
            InvalidInput: the SQL cannot be parsed, is not a query, or names a wrong column.
            NotFound: a table or database is not in the catalog.
            Conflict: CREATE TABLE names an existing table.
        """
        started = time.perf_counter()
        statement = self._parse(sql)
        if isinstance(statement, exp.Create):
            return self._create_table_as(statement, started)
        # Assume the files hold every catalog column (one bind, no footer probe); only
        # when DuckDB disagrees, look at the files and read missing columns as NULL.
        for probe in (False, True):
            conn, scanned, query_sql = self._prepare(statement, probe=probe)
            try:
                table = self._arrow(conn, query_sql)
                break
            except InvalidInput as exc:
                if probe or not isinstance(exc.__cause__, duckdb.BinderException):
                    raise
            finally:
                conn.close()
        return QueryResult(table, time.perf_counter() - started, scanned)

    def export(self, sql: str, out: str, fmt: str) -> QueryResult:
        """Run a query and write its rows to ``out`` (a local path or a lake URI) as csv, json or parquet.

        Raises:
            InvalidInput: unknown format, or as for :meth:`query`.
        """
        if fmt not in _OUTPUT_FORMATS:
            raise InvalidInput(
                f"The output format {fmt!r} is not one of {', '.join(_OUTPUT_FORMATS)}."
            )
        started = time.perf_counter()
        statement = self._parse(sql)
        if isinstance(statement, exp.Create):
            raise InvalidInput("Write CREATE TABLE ... AS results to the catalog, not to --out.")
        options = {
            "csv": "FORMAT csv, HEADER true",
            "json": "FORMAT json",
            "parquet": "FORMAT parquet, COMPRESSION zstd",
        }[fmt]
        with self._writable_path(out) as path:
            conn, scanned, query_sql = self._prepare(statement, write_to=path)
            try:
                count = self._execute(
                    conn, f"COPY ({query_sql}) TO {_sql_literal(path)} ({options})"
                )[0]
            finally:
                conn.close()
        rows = int(count[0]) if count else 0
        summary = pa.table({"rows_written": [rows], "out": [out], "format": [fmt]})
        return QueryResult(summary, time.perf_counter() - started, scanned)

    def create_table_as(
        self, select_sql: str, table: str, *, mode: str = "error", created_by: str = "ctas"
    ) -> QueryResult:
        """Write the rows of ``select_sql`` as Parquet into the lake and register them as ``table``.

        Args:
            select_sql: a query over catalog tables.
            table: ``database.table`` to create.
            mode: ``error`` (refuse an existing table), ``overwrite`` or ``append``.
            created_by: recorded on the catalog table.

        Raises:
            Conflict: the table exists and mode is ``error``.
            InvalidInput: as for :meth:`query`.
        """
        if mode not in ("error", "overwrite", "append"):
            raise InvalidInput(f"The mode {mode!r} is not one of error, overwrite, append.")
        started = time.perf_counter()
        statement = self._parse(select_sql)
        if isinstance(statement, exp.Create):
            raise InvalidInput("Give a SELECT query; the table to create is named separately.")
        database, name = parse_table_name(table)
        return self._write_table(statement, database, name, mode, created_by, started)

    # ------------------------------------------------------------------ parsing
    @staticmethod
    def _parse(sql: str) -> exp.Expression:
        return parse_statement(sql)

    # ------------------------------------------------------------------ views
    def _table_info_cached(self, database: str, name: str) -> TableInfo:
        key = (database, name)
        if key not in self._infos:
            self._infos[key] = self.catalog.get_table(database, name)
        return self._infos[key]

    def _prepare(
        self, statement: exp.Expression, *, write_to: str | None = None, probe: bool = True
    ) -> tuple[duckdb.DuckDBPyConnection, dict[str, dict[str, int]], str]:
        """A sandboxed connection, and the statement with each catalog table inlined as a
        subquery over its files.

        Args:
            statement: the parsed query.
            write_to: a file the statement will write (``COPY ... TO``); its folder is
                allowed too, on a database of its own.
            probe: read the files' columns first, so that catalog columns no file has
                come back as NULL (else every column is assumed present).
        """
        self._infos: dict[tuple[str, str], TableInfo] = {}
        statement = statement.copy()
        refs = collect_references(statement, self.default_database, self._table_info_cached)
        locations = {
            key: resolve_location(self._table_info_cached(*key).location, self.lake) for key in refs
        }
        dirs = [loc.readable_path for loc in locations.values()]
        conn = self._connect(dirs, write_to)
        try:
            scanned: dict[str, dict[str, int]] = {}
            relations: dict[str, str] = {}
            for key, ref in refs.items():
                info = self._table_info_cached(*key)
                files, stats = self._files(conn, info, locations[key], ref)
                scanned[info.qualified_name] = stats
                relations[_quote(view_name(*key))] = self._view_sql(conn, info, files, probe)
            sql = rewrite_references(statement, refs)
            # Inlined rather than CREATE VIEW: DuckDB binds the files once, not twice.
            for placeholder, relation in relations.items():
                sql = sql.replace(placeholder, f"({relation})")
            return conn, scanned, sql
        except BaseException:
            conn.close()
            raise

    def _connect(self, dirs: list[str], write_to: str | None) -> duckdb.DuckDBPyConnection:
        """A cursor of the shared sandboxed database, or a database of its own for writes."""
        needed = {_as_dir(d) for d in dirs}
        if write_to is not None:
            return self._open_database(needed | {_as_dir(os.path.dirname(write_to))})
        with self._lock:
            if self._shared is None or not all(_covered(d, self._shared_dirs) for d in needed):
                # A new folder: a new database that may read it and every folder before.
                self._shared_dirs = frozenset(self._shared_dirs | needed)
                self._shared = self._open_database(self._shared_dirs)
            return self._shared.cursor()

    def _open_database(self, allowed: Iterable[str]) -> duckdb.DuckDBPyConnection:
        conn = duckdb.connect()
        try:
            if self.lake is not None and self.lake.local_path(WAREHOUSE_BUCKET, "") is None:
                conn.register_filesystem(self.lake.filesystem)
            dirs = sorted({_as_dir(d) for d in allowed})
            conn.execute(f"SET allowed_directories=[{', '.join(_sql_literal(d) for d in dirs)}]")
            conn.execute("SET enable_external_access=false")
            conn.execute("SET lock_configuration=true")
        except BaseException:
            conn.close()
            raise
        return conn

    def _files(
        self, conn: duckdb.DuckDBPyConnection, info: TableInfo, location: Location, ref: TableRef
    ) -> tuple[list[str], dict[str, int]]:
        if not info.partition_keys:
            everything = _data_files(location)
            return everything, {"partitions": 0, "partitions_read": 0, "files": len(everything)}
        partitions = self.catalog.get_partitions(info.database, info.name)
        kept = self._prune(conn, info, partitions, ref)
        files: list[str] = []
        for part in kept:
            files.extend(_data_files(resolve_location(part.location, self.lake)))
        return files, {
            "partitions": len(partitions),
            "partitions_read": len(kept),
            "files": len(files),
        }

    @staticmethod
    def _prune(
        conn: duckdb.DuckDBPyConnection,
        info: TableInfo,
        partitions: list[PartitionInfo],
        ref: TableRef,
    ) -> list[PartitionInfo]:
        if not partitions or any(p is None or not p for p in ref.predicates):
            return partitions
        # Evaluate each occurrence's predicates on the partitions' values, typed as the
        # catalog says, and keep the union of what any occurrence needs.
        rows = ", ".join(
            f"({i}, {', '.join(_sql_literal(str(v)) for v in p.values)})"
            for i, p in enumerate(partitions)
        )
        raw = ", ".join(f"v{i}" for i in range(len(info.partition_keys)))
        casts = ", ".join(
            f"CAST(v{i} AS {glue_to_duckdb(k.type)}) AS {_quote(k.name)}"
            for i, k in enumerate(info.partition_keys)
        )
        parts = f"(SELECT idx, {casts} FROM (VALUES {rows}) AS p(idx, {raw}))"
        keep: set[int] = set()
        for preds in ref.predicates:
            where = " AND ".join(f"({p})" for p in preds or [])
            try:
                found = conn.execute(f"SELECT idx FROM {parts} WHERE {where}").fetchall()
            except duckdb.Error:
                return partitions  # a predicate DuckDB can't evaluate alone: read everything
            keep.update(r[0] for r in found)
        return [p for i, p in enumerate(partitions) if i in keep]

    def _view_sql(
        self, conn: duckdb.DuckDBPyConnection, info: TableInfo, files: list[str], probe: bool
    ) -> str:
        columns = info.all_columns
        if not files:
            select = ", ".join(
                f"CAST(NULL AS {glue_to_duckdb(c.type)}) AS {_quote(c.name)}" for c in columns
            )
            return f"SELECT {select} WHERE false"
        file_list = "[" + ", ".join(_sql_literal(f) for f in files) + "]"
        hive = ""
        if info.partition_keys:
            types = ", ".join(
                f"{_sql_literal(k.name)}: {_sql_literal(glue_to_duckdb(k.type))}"
                for k in info.partition_keys
            )
            hive = f", hive_partitioning=true, hive_types={{{types}}}"
        if info.classification == "parquet":
            reader = f"read_parquet({file_list}, union_by_name=true{hive})"
        elif info.classification == "csv":
            serde = info.serde_parameters
            delim = _sql_literal(str(serde.get("delimiter", ",")))
            quote = _sql_literal(str(serde.get("quote", '"')))
            header = "true" if serde.get("header", True) else "false"
            col_types = ", ".join(
                f"{_sql_literal(c.name)}: {_sql_literal(glue_to_duckdb(c.type))}"
                for c in info.columns
            )
            reader = (
                f"read_csv({file_list}, delim={delim}, header={header}, quote={quote}, null_padding=true, "
                f"columns={{{col_types}}}{hive})"
            )
        elif info.classification == "json":
            col_types = ", ".join(
                f"{_sql_literal(c.name)}: {_sql_literal(glue_to_duckdb(c.type))}"
                for c in info.columns
            )
            reader = (
                f"read_json({file_list}, format='newline_delimited', columns={{{col_types}}}{hive})"
            )
        else:
            raise InvalidInput(
                f"The table {info.qualified_name} has classification {info.classification!r}; "
                "sagelab reads csv, json and parquet."
            )
        if probe:
            found = self._arrow(conn, f"SELECT * FROM {reader} LIMIT 0").column_names
            present = {c.lower() for c in found}
        else:
            present = {c.name.lower() for c in columns}
        select = ", ".join(
            (
                f"CAST({_quote(c.name)} AS {glue_to_duckdb(c.type)}) AS {_quote(c.name)}"
                if c.name.lower() in present and _simple(c.type)
                else _quote(c.name)
                if c.name.lower() in present
                else f"CAST(NULL AS {glue_to_duckdb(c.type)}) AS {_quote(c.name)}"
            )
            for c in columns
        )
        return f"SELECT {select} FROM {reader}"

    # ------------------------------------------------------------------ CTAS
    def _create_table_as(self, statement: exp.Create, started: float) -> QueryResult:
        target = statement.this
        if isinstance(target, exp.Schema):
            target = target.this
        if not isinstance(target, exp.Table) or not target.db:
            raise InvalidInput("CREATE TABLE needs a name of the form database.table.")
        database, name = validate_name(target.db, "database"), validate_name(target.name, "table")
        mode = "overwrite" if statement.args.get("replace") else "error"
        if statement.args.get("exists") and self.catalog.table_exists(database, name):
            info = self.catalog.get_table(database, name)
            return QueryResult(
                pa.table({"table": [info.qualified_name]}), 0.0, {}, info.qualified_name
            )
        query: exp.Expression = statement.expression
        return self._write_table(query, database, name, mode, "ctas", started)

    def write_reader(
        self,
        reader: pa.RecordBatchReader,
        table: str,
        *,
        mode: str = "error",
        created_by: str = "etl",
    ) -> QueryResult:
        """Write a stream of Arrow batches as a Parquet table in the lake and register it.

        Memory stays bounded: DuckDB consumes the stream batch by batch.

        Raises:
            Conflict: the table exists and mode is ``error``.
        """
        if mode not in ("error", "overwrite", "append"):
            raise InvalidInput(f"The mode {mode!r} is not one of error, overwrite, append.")
        database, name = parse_table_name(table)
        return self._write_table(reader, database, name, mode, created_by, time.perf_counter())

    def classify_source(self, source: str) -> str:
        """What a SOURCE string names: ``query``, ``table`` (a catalog table) or ``path``."""
        if _SQL_START.match(source):
            return "query"
        if _TABLE_NAME.match(source) and self.catalog.table_exists(*source.split(".")):
            return "table"
        return "path"

    @contextmanager
    def open_source(self, source: str) -> Iterator[tuple[duckdb.DuckDBPyConnection, str]]:
        """A sandboxed DuckDB connection and a SELECT over a SOURCE, for callers that
        compute with DuckDB themselves (profiles, statistics).

        A SOURCE is a query, a catalog table (``database.table``) or a path, glob, folder
        or URL of CSV, JSON lines or Parquet files (gzip allowed).

        Raises:
            InvalidInput: a bad query, or files of a format sagelab does not read.
            NotFound: no such table or file.
        """
        kind = self.classify_source(source)
        if kind == "path":
            conn, sql = self._open_files(source)
        else:
            statement = self._parse(source if kind == "query" else f"SELECT * FROM {source}")
            if isinstance(statement, exp.Create):
                raise InvalidInput("Give a SELECT query, a table or files to read from.")
            conn, _, sql = self._prepare(statement)
        try:
            yield conn, sql
        finally:
            conn.close()

    @contextmanager
    def reader(self, source: str, batch_size: int = 100_000) -> Iterator[pa.RecordBatchReader]:
        """Stream a SOURCE's rows as Arrow batches (for work over inputs larger than memory).

        Raises:
            InvalidInput: as for :meth:`open_source`.
            NotFound: as for :meth:`open_source`.
        """
        with self.open_source(source) as (conn, sql), self._translated():
            yield conn.sql(sql).to_arrow_reader(batch_size)

    def read_table(self, source: str) -> pa.Table:
        """A SOURCE's rows, all in memory.

        Raises:
            InvalidInput: as for :meth:`open_source`.
            NotFound: as for :meth:`open_source`.
        """
        with self.open_source(source) as (conn, sql):
            return self._arrow(conn, sql)

    def _open_files(self, source: str) -> tuple[duckdb.DuckDBPyConnection, str]:
        location = resolve_location(source, self.lake)
        fs, path = location.fs, location.path
        if any(ch in path for ch in "*?["):
            matches = sorted(fs.glob(path))
            if not matches:
                raise NotFound(f"No file matches {source!r}.")
            files, root = matches, _common_dir(matches)
        elif fs.isdir(path):
            files = _data_files(location)
            if not files:
                raise NotFound(f"The folder {source!r} holds no data files.")
            root = path
        elif fs.exists(path):
            files, root = [path], os.path.dirname(path)
        else:
            raise NotFound(
                f"{source!r} is neither a catalog table (DATABASE.TABLE), a query, nor an "
                "existing file or folder."
            )
        if location.local_path is None:
            files = [f if "://" in f else fs.unstrip_protocol(f) for f in files]
            root = fs.unstrip_protocol(root)
        formats = {_file_format(f) for f in files}
        if len(formats) != 1 or None in formats:
            raise InvalidInput(
                f"{source!r} holds files sagelab cannot read together ({', '.join(sorted(str(f) for f in formats))}); "
                "give CSV (.csv, .tsv), JSON lines (.json, .jsonl) or Parquet (.parquet) files of one format."
            )
        fmt = cast(str, formats.pop())
        file_list = "[" + ", ".join(_sql_literal(f) for f in files) + "]"
        hive = ", hive_partitioning=true" if any("=" in f.rsplit("/", 1)[0] for f in files) else ""
        reader = {
            "csv": f"read_csv({file_list}, union_by_name=true{hive})",
            "json": f"read_json({file_list}, union_by_name=true{hive})",
            "parquet": f"read_parquet({file_list}, union_by_name=true{hive})",
        }[fmt]
        return self._open_database([root]), f"SELECT * FROM {reader}"

    def _write_table(
        self,
        source: exp.Expression | pa.RecordBatchReader,
        database: str,
        name: str,
        mode: str,
        created_by: str,
        started: float,
    ) -> QueryResult:
        if self.lake is None:
            raise InvalidInput("CREATE TABLE AS writes into the lake, but no lake is configured.")
        exists = self.catalog.table_exists(database, name)
        existing = self.catalog.get_table(database, name) if exists else None
        if existing is not None and existing.partition_keys and mode == "append":
            raise InvalidInput(
                f"The table {database}.{name} is partitioned; append to it with "
                "'sagelab lake ingest --partition-by', or overwrite it."
            )
        if exists and mode == "error":
            raise Conflict(
                f"The table '{database}.{name}' already exists. Drop it, or use CREATE OR REPLACE TABLE."
            )
        location = existing.location if existing else f"s3://{WAREHOUSE_BUCKET}/{database}/{name}/"
        loc = resolve_location(location, self.lake)
        if not loc.in_lake or loc.bucket is None:
            raise InvalidInput(
                f"The table {database}.{name} lives outside the lake ({location}); write it there yourself."
            )
        self.lake.create_bucket(loc.bucket) if not self.lake.bucket_exists(loc.bucket) else None
        old_files = _data_files(loc) if existing and mode == "overwrite" else []
        key = f"{(loc.key or '').rstrip('/')}/part-{uuid.uuid4().hex[:12]}.parquet".lstrip("/")
        with self.lake.write_path(loc.bucket, key) as path:
            scanned: dict[str, dict[str, int]] = {}
            if isinstance(source, pa.RecordBatchReader):
                conn = self._open_database([os.path.dirname(path)])
                conn.register("__sagelab_input", source)
                query_sql, schema = 'SELECT * FROM "__sagelab_input"', source.schema
            else:
                conn, scanned, query_sql = self._prepare(source, write_to=path)
            try:
                if not isinstance(source, pa.RecordBatchReader):
                    schema = self._arrow(conn, f"SELECT * FROM ({query_sql}) LIMIT 0").schema
                columns = columns_from_arrow(schema)
                _check_unique(columns, f"{database}.{name}")
                row = self._execute(
                    conn,
                    f"COPY ({query_sql}) TO {_sql_literal(path)} (FORMAT parquet, COMPRESSION zstd)",
                )[0]
            finally:
                conn.close()
        rows = int(row[0]) if row else 0
        columns = [Column(c.name, c.type, True) for c in columns]
        if existing is not None and mode == "append":
            by_name = {c.name: c for c in existing.columns}
            columns = [
                Column(c.name, unify_types(by_name[c.name].type, c.type, c.name))
                if c.name in by_name
                else c
                for c in columns
            ] + [c for c in existing.columns if c.name not in {x.name for x in columns}]
            total = (existing.row_count or 0) + rows
        else:
            total = rows
        info = TableInfo(
            database=database,
            name=name,
            location=location,
            classification="parquet",
            columns=columns,
            compression="zstd",
            created_by=created_by,
            parameters={"recordCount": total},
        )
        if existing is None:
            self.catalog.create_table(info)
        else:
            self.catalog.update_table(info, created_by=created_by)
            self.catalog.set_parameters(database, name, recordCount=total)
            if existing.partition_keys:  # overwritten by an unpartitioned table
                self.catalog.delete_partitions(database, name)
            for old in old_files:
                bucket, old_key = self.lake.parse_uri(_as_lake_uri(old, loc, self.lake))
                self.lake.delete(bucket, old_key)
        summary = pa.table({"table": [f"{database}.{name}"], "rows_written": [rows]})
        return QueryResult(summary, time.perf_counter() - started, scanned, f"{database}.{name}")

    # ------------------------------------------------------------------ helpers
    @staticmethod
    @contextmanager
    def _translated() -> Iterator[None]:
        """DuckDB's errors as sagelab's, with DuckDB's own first line (it names the table or column)."""
        try:
            yield
        except duckdb.PermissionException as exc:
            raise InvalidInput(
                f"The query tried to reach a file outside its tables: {_first_line(exc)}. "
                "Query catalog tables by their database.table names."
            ) from exc
        except (duckdb.CatalogException, duckdb.BinderException, duckdb.ParserException) as exc:
            raise InvalidInput(f"The query is not valid: {_first_line(exc)}") from exc
        except duckdb.Error as exc:
            raise InvalidInput(f"The query failed: {_first_line(exc)}") from exc

    def _arrow(self, conn: duckdb.DuckDBPyConnection, sql: str) -> pa.Table:
        with self._translated():
            return conn.sql(sql).to_arrow_table()

    def _execute(self, conn: duckdb.DuckDBPyConnection, sql: str) -> list[Any]:
        with self._translated():
            return conn.execute(sql).fetchall()

    def _writable_path(self, out: str) -> Any:
        from pathlib import Path

        @contextmanager
        def local() -> Any:
            target = Path(out).expanduser().absolute()
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.sagelab-tmp-{uuid.uuid4().hex[:8]}")
            try:
                yield str(tmp)
                tmp.replace(target)
            finally:
                tmp.unlink(missing_ok=True)

        if out.startswith("s3://"):
            if self.lake is None:
                raise InvalidInput(f"{out!r} is in the lake, but no lake is configured.")
            bucket, key = self.lake.parse_uri(out)
            return self.lake.write_path(bucket, key)
        return local()


def _simple(type_string: str) -> bool:
    return not type_string.startswith(("struct", "array", "map"))


def _check_unique(columns: list[Column], table: str) -> None:
    seen: set[str] = set()
    for c in columns:
        if c.name.lower() in seen:
            raise InvalidInput(
                f"The query gives two columns named {c.name!r}; name them apart with AS before "
                f"creating {table}."
            )
        seen.add(c.name.lower())


_SQL_START = re.compile(r"^\s*(select|with|values|from|describe|\()", re.IGNORECASE)
_TABLE_NAME = re.compile(r"^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$")
_FORMATS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
    ".json": "json",
    ".jsonl": "json",
    ".ndjson": "json",
    ".parquet": "parquet",
    ".pq": "parquet",
}


def _file_format(path: str) -> str | None:
    name = path.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    return _FORMATS.get(os.path.splitext(name)[1])


def _common_dir(paths: list[str]) -> str:
    return os.path.commonpath([os.path.dirname(p) for p in paths]) if paths else ""


def _as_dir(path: str) -> str:
    return path.rstrip("/") + "/"


def _covered(directory: str, allowed: Iterable[str]) -> bool:
    return any(directory.startswith(a) for a in allowed)


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _data_files(location: Location) -> list[str]:
    """Data files under a location, skipping hidden and ``_``-prefixed names (``_SUCCESS``, ``_errors``)."""
    fs = location.fs
    try:
        if not fs.exists(location.path):
            return []
        found = fs.find(location.path) if fs.isdir(location.path) else [location.path]
    except FileNotFoundError:
        return []
    base = location.path.rstrip("/")
    files = []
    for path in sorted(found):
        rel = path[len(base) :].lstrip("/") if path.startswith(base) else path
        if any(part.startswith((".", "_")) for part in rel.split("/")):
            continue
        files.append(path if location.local_path is not None else fs.unstrip_protocol(path))
    return files


def _as_lake_uri(path: str, loc: Location, lake: Lake) -> str:
    base = (loc.local_path or loc.fs.unstrip_protocol(loc.path)).rstrip("/")
    rel = path[len(base) :].lstrip("/")
    return lake.uri(loc.bucket or "", f"{(loc.key or '').rstrip('/')}/{rel}".lstrip("/"))
