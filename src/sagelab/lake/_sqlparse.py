"""Reading user SQL before DuckDB sees it: one allowed statement, its catalog tables, their pruning predicates.

sqlglot parses the statement; nothing here touches a file or a database.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import sqlglot
from sqlglot import exp

from sagelab.errors import InvalidInput, NotFound
from sagelab.lake._catalog import TableInfo

__all__ = ["TableRef", "collect_references", "parse_statement", "rewrite_references", "view_name"]

#: Table functions that generate rows and touch no file; every other one is refused.
_SAFE_TABLE_FUNCTIONS = frozenset({"range", "generate_series", "unnest"})


@dataclass
class TableRef:
    """A catalog table a statement reads, with what can prune it."""

    database: str
    name: str
    #: Per occurrence: the WHERE conjuncts that read only partition columns
    #: (DuckDB SQL, unqualified), or None for an occurrence that cannot be pruned.
    predicates: list[list[str] | None] = field(default_factory=list)


def parse_statement(sql: str) -> exp.Expression:
    """Parse one query (SELECT, WITH, VALUES, DESCRIBE) or ``CREATE TABLE db.t AS SELECT``.

    Raises:
        InvalidInput: empty, unparsable, several statements, or another kind of statement.
    """
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
            "sagelab sql runs queries (SELECT, WITH, VALUES, DESCRIBE) and CREATE TABLE ... AS "
            f"SELECT; got a {statement.key.upper()} statement."
        )
    return cast(exp.Expression, statement)


def view_name(database: str, name: str) -> str:
    """The quoted placeholder a catalog table is replaced by, before its files are inlined."""
    return f"__sagelab_{database}__{name}"


def collect_references(
    statement: exp.Expression,
    default_database: str | None,
    table_info: Callable[[str, str], TableInfo],
) -> dict[tuple[str, str], TableRef]:
    """Every catalog table ``statement`` reads, keyed by (database, name).

    Unqualified names are qualified with ``default_database`` in place.

    Raises:
        InvalidInput: a table function that could read files, a three-part name, or an
            unqualified name with no default database.
        NotFound: a table or database not in the catalog.
    """
    ctes = {cte.alias_or_name for cte in statement.find_all(exp.CTE)}
    refs: dict[tuple[str, str], TableRef] = {}
    for table in list(statement.find_all(exp.Table)):
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
            if default_database is None:
                raise InvalidInput(
                    f"The table {table.name!r} needs its database: write DATABASE.{table.name} "
                    "or pass a default database."
                )
            database = default_database
            table.set("db", exp.to_identifier(database))
        key = (database, table.name)
        table_info(database, table.name)  # NotFound now, naming the closest table
        ref = refs.setdefault(key, TableRef(database, table.name))
        ref.predicates.append(_partition_predicates(table, default_database, table_info))
    return refs


def rewrite_references(statement: exp.Expression, refs: dict[tuple[str, str], TableRef]) -> str:
    """The statement as DuckDB SQL, each catalog table replaced by :func:`view_name` (aliases kept)."""
    for table in list(statement.find_all(exp.Table)):
        key = (table.db, table.name)
        if not table.db or key not in refs:
            continue
        alias = table.args.get("alias") or exp.TableAlias(this=exp.to_identifier(table.name))
        table.replace(exp.Table(this=exp.to_identifier(view_name(*key), quoted=True), alias=alias))
    for column in statement.find_all(exp.Column):
        # ``db.table.column`` keeps working: the table's alias is its name.
        if column.args.get("db") is not None:
            column.set("db", None)
    return statement.sql("duckdb")


def _partition_predicates(
    table: exp.Table, default_database: str | None, table_info: Callable[[str, str], TableInfo]
) -> list[str] | None:
    """The conjuncts of the enclosing WHERE that can prune this table occurrence."""
    select = table.find_ancestor(exp.Select)
    if select is None:
        return None
    where = select.args.get("where")
    if where is None:
        return []
    info = table_info(table.db or default_database or "", table.name)
    keys = {c.name.lower() for c in info.partition_keys}
    if not keys:
        return []
    alias = table.alias_or_name
    # An unqualified partition column is only this table's when no other source
    # in the same SELECT could have a column of that name too.
    other_columns: set[str] = set()
    for other in select.find_all(exp.Table):
        if other is table:
            continue
        if not (other.db or default_database) or isinstance(other.this, exp.Func | exp.Anonymous):
            return None  # a CTE or a generated table: its columns are unknown here
        try:
            other_info = table_info(other.db or default_database or "", other.name)
        except NotFound:
            return None
        other_columns.update(c.name.lower() for c in other_info.all_columns)
    kept: list[str] = []
    for conjunct in _conjuncts(where.this):
        columns = list(conjunct.find_all(exp.Column))
        if not columns or conjunct.find(exp.Query) is not None:
            continue
        if all(
            col.name.lower() in keys
            and (col.table == alias or (not col.table and col.name.lower() not in other_columns))
            for col in columns
        ):
            stripped = conjunct.copy()
            for col in stripped.find_all(exp.Column):
                col.set("table", None)
            kept.append(stripped.sql("duckdb"))
    return kept


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
