"""SQL over the catalog (Athena's role), run by DuckDB.

A query names catalog tables as ``database.table``. For each one the engine
creates a DuckDB view over the table's files, reading only the partitions that
the query's ``WHERE`` can match: predicates that touch nothing but partition
columns are evaluated against the catalog's known partitions first (like Athena
with the Glue catalog), so pruned partitions are not even listed. DuckDB then
prunes again on the files it is given.

User SQL runs sandboxed: one statement, a query or ``CREATE TABLE ... AS``,
on a DuckDB connection that may only touch the tables' folders.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import duckdb
import pyarrow as pa
import sqlglot
from sqlglot import exp

from sagelab.errors import Conflict, InvalidInput, NotFound
from sagelab.lake._catalog import Catalog, TableInfo, parse_table_name, validate_name
from sagelab.lake._locations import Location, resolve_location
from sagelab.lake._schema import Column, columns_from_arrow, glue_to_duckdb, unify_types

if TYPE_CHECKING:
    from sagelab.lake._objects import Lake

__all__ = ["WAREHOUSE_BUCKET", "QueryResult", "SqlEngine"]

#: The lake bucket that tables created by sagelab live in.
WAREHOUSE_BUCKET = "warehouse"

_OUTPUT_FORMATS = ("csv", "json", "parquet")
#: Table functions that generate rows and touch no file; every other one is refused.
_SAFE_TABLE_FUNCTIONS = frozenset({"range", "generate_series", "unnest"})


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


@dataclass
class _Ref:
    database: str
    name: str
    #: The WHERE conjuncts that read only partition columns, per occurrence;
    #: None for an occurrence that cannot be pruned.
    predicates: list[list[str] | None] = field(default_factory=list)


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
        conn, scanned, query_sql = self._prepare(statement)
        try:
            table = self._arrow(conn, query_sql)
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
        conn, scanned, query_sql = self._prepare(statement, unsandboxed=True)
        options = {
            "csv": "FORMAT csv, HEADER true",
            "json": "FORMAT json",
            "parquet": "FORMAT parquet, COMPRESSION zstd",
        }[fmt]
        try:
            with self._writable_path(out) as path:
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
    def _parse(self, sql: str) -> exp.Expression:
        if not isinstance(sql, str) or not sql.strip():
            raise InvalidInput("The query is empty. Give a SELECT statement.")
        try:
            statements = [s for s in sqlglot.parse(sql, read="duckdb") if s is not None]
        except sqlglot.errors.ParseError as exc:
            raise InvalidInput(f"The query cannot be parsed: {exc}") from exc
        if len(statements) != 1:
            raise InvalidInput(f"Give one SQL statement at a time; got {len(statements)}.")
        statement = statements[0]
        if isinstance(statement, exp.Create):
            kind = str(statement.args.get("kind") or "").upper()
            if kind != "TABLE" or not isinstance(statement.expression, exp.Query):
                raise InvalidInput("Only CREATE TABLE database.table AS SELECT ... is supported.")
            return statement
        if not isinstance(statement, exp.Query | exp.Describe):
            raise InvalidInput(
                f"sagelab sql runs queries (SELECT, WITH, VALUES, DESCRIBE) and CREATE TABLE ... AS "
                f"SELECT; got a {statement.key.upper()} statement."
            )
        return cast(exp.Expression, statement)

    def _references(self, statement: exp.Expression) -> dict[tuple[str, str], _Ref]:
        ctes = {cte.alias_or_name for cte in statement.find_all(exp.CTE)}
        refs: dict[tuple[str, str], _Ref] = {}
        for table in statement.find_all(exp.Table):
            if table.args.get("catalog") is not None and table.catalog:
                raise InvalidInput(f"Name tables as database.table; got {table.sql('duckdb')!r}.")
            if isinstance(table.this, exp.Func | exp.Anonymous) or not table.name:
                if _function_name(table.this) in _SAFE_TABLE_FUNCTIONS:
                    continue
                raise InvalidInput(
                    f"Table functions such as {table.sql('duckdb')!r} are not allowed: "
                    "query catalog tables by their database.table names."
                )
            database = table.db or ""
            if not database:
                if table.name in ctes:
                    continue
                if self.default_database is None:
                    raise InvalidInput(
                        f"The table {table.name!r} needs its database: write DATABASE.{table.name} "
                        "or pass a default database."
                    )
                database = self.default_database
                table.set("db", exp.to_identifier(database))
            key = (database, table.name)
            ref = refs.setdefault(key, _Ref(database, table.name))
            ref.predicates.append(self._partition_predicates(table))
        return refs

    def _partition_predicates(self, table: exp.Table) -> list[str] | None:
        """The conjuncts of the enclosing WHERE that can prune this table occurrence."""
        select = table.find_ancestor(exp.Select)
        if select is None:
            return None
        where = select.args.get("where")
        if where is None:
            return []
        info = self._table_info_cached(table.db or self.default_database or "", table.name)
        keys = {c.name.lower() for c in info.partition_keys}
        if not keys:
            return []
        alias = table.alias_or_name
        # Columns every other source in this SELECT might have: an unqualified partition
        # column is only this table's when no other source could have it too.
        others = [t for t in select.find_all(exp.Table) if t is not table]
        other_columns: set[str] = set()
        for other in others:
            if other.db or self.default_database:
                try:
                    info_o = self._table_info_cached(
                        other.db or self.default_database or "", other.name
                    )
                except NotFound:
                    return None
                other_columns.update(c.name.lower() for c in info_o.all_columns)
            else:
                return None  # a CTE: its columns are unknown here, so don't guess
        kept: list[str] = []
        for conjunct in _conjuncts(where.this):
            columns = list(conjunct.find_all(exp.Column))
            if not columns or conjunct.find(exp.Query) is not None:
                continue
            if all(
                col.name.lower() in keys
                and (
                    col.table == alias or (not col.table and col.name.lower() not in other_columns)
                )
                for col in columns
            ):
                stripped = conjunct.copy()
                for col in stripped.find_all(exp.Column):
                    col.set("table", None)
                kept.append(stripped.sql("duckdb"))
        return kept

    # ------------------------------------------------------------------ views
    def _table_info_cached(self, database: str, name: str) -> TableInfo:
        key = (database, name)
        if key not in self._infos:
            self._infos[key] = self.catalog.get_table(database, name)
        return self._infos[key]

    def _prepare(
        self,
        statement: exp.Expression,
        *,
        unsandboxed: bool = False,
        extra_dirs: Iterable[str] = (),
    ) -> tuple[duckdb.DuckDBPyConnection, dict[str, dict[str, int]], str]:
        self._infos: dict[tuple[str, str], TableInfo] = {}
        statement = statement.copy()
        refs = self._references(statement)
        conn = duckdb.connect()
        try:
            if self.lake is not None and self.lake.local_path(WAREHOUSE_BUCKET, "") is None:
                conn.register_filesystem(self.lake.filesystem)
            scanned: dict[str, dict[str, int]] = {}
            allowed: list[str] = list(extra_dirs)
            for (database, name), ref in refs.items():
                info = self._table_info_cached(database, name)
                files, stats, dirs = self._files(info, ref)
                scanned[f"{database}.{name}"] = stats
                allowed.extend(dirs)
                conn.execute(f"CREATE SCHEMA IF NOT EXISTS {_quote(database)}")
                conn.execute(
                    f"CREATE VIEW {_quote(database)}.{_quote(name)} AS {self._view_sql(conn, info, files)}"
                )
            if not unsandboxed:
                self._sandbox(conn, allowed)
            return conn, scanned, statement.sql("duckdb")
        except BaseException:
            conn.close()
            raise

    @staticmethod
    def _sandbox(conn: duckdb.DuckDBPyConnection, allowed: list[str]) -> None:
        dirs = sorted({d.rstrip("/") + "/" for d in allowed})
        conn.execute(f"SET allowed_directories=[{', '.join(_sql_literal(d) for d in dirs)}]")
        conn.execute("SET enable_external_access=false")
        conn.execute("SET lock_configuration=true")

    def _files(self, info: TableInfo, ref: _Ref) -> tuple[list[str], dict[str, int], list[str]]:
        location = resolve_location(info.location, self.lake)
        if not info.partition_keys:
            everything = _data_files(location)
            return (
                everything,
                {"partitions": 0, "partitions_read": 0, "files": len(everything)},
                [location.readable_path],
            )
        partitions = self.catalog.get_partitions(info.database, info.name)
        kept = self._prune(info, partitions, ref)
        files: list[str] = []
        dirs: list[str] = []
        for part in kept:
            part_location = resolve_location(part.location, self.lake)
            files.extend(_data_files(part_location))
            dirs.append(part_location.readable_path)
        stats = {"partitions": len(partitions), "partitions_read": len(kept), "files": len(files)}
        return files, stats, dirs or [location.readable_path]

    def _prune(self, info: TableInfo, partitions: list[Any], ref: _Ref) -> list[Any]:
        if not partitions or any(p is None or not p for p in ref.predicates):
            return partitions
        # Evaluate each occurrence's predicates on a small table of partition values,
        # typed as the catalog says, and keep the union of what any occurrence needs.
        conn = duckdb.connect()
        try:
            casts = ", ".join(
                f"CAST(v[{i + 1}] AS {glue_to_duckdb(k.type)}) AS {_quote(k.name)}"
                for i, k in enumerate(info.partition_keys)
            )
            values = pa.table(
                {"idx": list(range(len(partitions))), "v": [list(p.values) for p in partitions]}
            )
            conn.register("parts_raw", values)
            conn.execute(f"CREATE VIEW parts AS SELECT idx, {casts} FROM parts_raw")
            keep: set[int] = set()
            for preds in ref.predicates:
                where = " AND ".join(f"({p})" for p in preds or [])
                try:
                    rows = conn.execute(f"SELECT idx FROM parts WHERE {where}").fetchall()
                except duckdb.Error:
                    return partitions  # a predicate DuckDB can't evaluate alone: read everything
                keep.update(r[0] for r in rows)
            return [p for i, p in enumerate(partitions) if i in keep]
        finally:
            conn.close()

    def _view_sql(self, conn: duckdb.DuckDBPyConnection, info: TableInfo, files: list[str]) -> str:
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
        present = {
            c.lower() for c in self._arrow(conn, f"SELECT * FROM {reader} LIMIT 0").column_names
        }
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

    @contextmanager
    def reader(self, sql: str, batch_size: int = 100_000) -> Iterator[pa.RecordBatchReader]:
        """Stream a query's rows as Arrow batches (for transforms over inputs larger than memory).

        Raises:
            InvalidInput: as for :meth:`query`.
        """
        statement = self._parse(sql)
        if isinstance(statement, exp.Create):
            raise InvalidInput("Give a SELECT query to read from.")
        conn, _, query_sql = self._prepare(statement)
        try:
            with self._translated():
                reader = conn.sql(query_sql).to_arrow_reader(batch_size)
            yield reader
        finally:
            conn.close()

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
        if isinstance(source, pa.RecordBatchReader):
            conn, scanned = duckdb.connect(), dict[str, dict[str, int]]()
            conn.register("__sagelab_input", source)
            query_sql = 'SELECT * FROM "__sagelab_input"'
        else:
            conn, scanned, query_sql = self._prepare(source, unsandboxed=True)
        key = f"{(loc.key or '').rstrip('/')}/part-{uuid.uuid4().hex[:12]}.parquet".lstrip("/")
        try:
            if isinstance(source, pa.RecordBatchReader):
                schema = source.schema
            else:
                schema = self._arrow(conn, f"SELECT * FROM ({query_sql}) LIMIT 0").schema
            columns = columns_from_arrow(schema)
            _check_unique(columns, f"{database}.{name}")
            with self.lake.write_path(loc.bucket, key) as path:
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


def _function_name(node: exp.Expression | None) -> str:
    if isinstance(node, exp.Anonymous):
        return str(node.name).lower()
    if isinstance(node, exp.Func):
        return node.sql_name().lower()
    return ""


def _conjuncts(node: Any) -> list[exp.Expression]:
    if isinstance(node, exp.And):
        return _conjuncts(node.left) + _conjuncts(node.right)
    if isinstance(node, exp.Paren):
        return _conjuncts(node.this)
    return [node]


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
