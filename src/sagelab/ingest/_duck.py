"""DuckDB helpers shared by the converters: connections, quoting, and SQL built from column types.

Two pieces of SQL are generated from the types DuckDB infers:

* the **projection** that makes a DuckDB result safe to store: JSON-typed
  values (DuckDB's type for a column of mixed types) become strings, keeping
  string values as they are and every other value as its JSON text, so a mixed
  column reads the same however DuckDB came to type it; integers wider than
  64 bits become ``decimal(38,0)`` (Parquet has no wider integer).
* the **guard** that makes sampled type inference exact. DuckDB infers JSON
  types from a sample and then casts every value to them; most mismatches
  raise, but a few casts are lenient and silent (``1.5`` into a ``BIGINT``
  column becomes 2, ``true`` becomes 1, ``"7"`` becomes 7, any value in a
  column that was all null in the sample becomes null). The guard reads only
  the columns where that can happen, as raw JSON, and counts values whose JSON
  type the column's type does not hold; any such value sends the file to the
  exact slow path.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from typing import Any

import duckdb

__all__ = ["connect", "guard_sql", "ident", "literal", "projection"]

_INTEGER_IDS = frozenset(
    {
        "tinyint",
        "smallint",
        "integer",
        "bigint",
        "utinyint",
        "usmallint",
        "uinteger",
        "ubigint",
        "hugeint",
        "uhugeint",
    }
)
_FLOAT_IDS = frozenset({"float", "double", "decimal"})
_WIDE_INTEGER_IDS = frozenset({"hugeint", "uhugeint", "ubigint"})
#: JSON value types (as ``json_type`` names them) that a column type holds exactly.
_ALLOWED: dict[str, tuple[str, ...]] = {
    "integer": ("BIGINT", "UBIGINT", "NULL"),
    "float": ("BIGINT", "UBIGINT", "DOUBLE", "NULL"),
    "boolean": ("BOOLEAN", "NULL"),
    "null": ("NULL",),
}


def connect(staging: str) -> duckdb.DuckDBPyConnection:
    """A private in-memory DuckDB that spills to ``staging`` when a sort or buffer outgrows memory."""
    con = duckdb.connect()
    con.execute(f"SET temp_directory = {literal(staging)}")
    return con


def literal(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def ident(name: str) -> str:
    """A quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def _kind(dtype: Any) -> str:
    """What the guard must check for a type: 'integer', 'float', 'boolean', 'null', or ''."""
    tid = dtype.id
    if tid in _INTEGER_IDS:
        return "integer"
    if tid in _FLOAT_IDS:
        return "float"
    if tid == "boolean":
        return "boolean"
    if tid == "null" or str(dtype) == '"NULL"':
        return "null"
    return ""


def _children(dtype: Any) -> list[tuple[str, Any]]:
    return list(dtype.children) if dtype.id in ("struct", "list", "map") else []


# --------------------------------------------------------------------------- guard
def _guard_type(dtype: Any) -> str | None:
    """The type to read a value as for the guard: risky leaves as JSON, others left out."""
    if _kind(dtype):
        return "JSON"
    if dtype.id == "struct":
        fields = [(n, _guard_type(t)) for n, t in _children(dtype)]
        kept = [f"{ident(n)} {g}" for n, g in fields if g is not None]
        return f"STRUCT({', '.join(kept)})" if kept else None
    if dtype.id == "list":
        inner = _guard_type(_children(dtype)[0][1])
        return f"{inner}[]" if inner is not None else None
    if dtype.id == "map":
        inner = _guard_type(_children(dtype)[1][1])
        return f"MAP(VARCHAR, {inner})" if inner is not None else None
    return None


def _bad(expr: str, dtype: Any, names: Iterator[str]) -> str:
    """SQL true when the raw JSON under ``expr`` holds a value ``dtype`` cannot hold exactly."""
    kind = _kind(dtype)
    if kind:
        allowed = ", ".join(literal(t) for t in _ALLOWED[kind])
        return f"coalesce(json_type({expr}) NOT IN ({allowed}), false)"
    if dtype.id == "struct":
        parts = [
            _bad(f"({expr}).{ident(n)}", t, names)
            for n, t in _children(dtype)
            if _guard_type(t) is not None
        ]
        return " OR ".join(parts) if parts else "false"
    if dtype.id in ("list", "map"):
        child = _children(dtype)[0 if dtype.id == "list" else 1][1]
        var = next(names)
        items = expr if dtype.id == "list" else f"map_values({expr})"
        return f"coalesce(len(list_filter({items}, lambda {var}: {_bad(var, child, names)})) > 0, false)"
    return "false"


def guard_sql(reader: str, columns: Sequence[tuple[str, Any]]) -> str | None:
    """A query counting records and values the inferred types would change, or None if none can.

    Args:
        reader: a ``read_json(...)`` call without a ``columns`` argument; the guard adds one.
        columns: the inferred ``(name, DuckDBPyType)`` of each column.
    """
    names = (f"_v{i}" for i in itertools.count())
    risky = [(n, t, _guard_type(t)) for n, t in columns]
    risky = [(n, t, g) for n, t, g in risky if g is not None]
    if not risky:
        return None
    spec = ", ".join(f"{literal(n)}: {literal(g)}" for n, _, g in risky if g is not None)
    bad = " OR ".join(f"({_bad(ident(n), t, names)})" for n, t, _ in risky)
    reader = reader.rstrip()[:-1] + f", columns={{{spec}}})"
    return f"SELECT count(*) AS n, count(*) FILTER (WHERE {bad}) AS bad FROM {reader}"


# --------------------------------------------------------------------------- projection
def _plain(expr: str, dtype: Any, names: Iterator[str]) -> str | None:
    """SQL turning ``expr`` into a storable value, or None when it already is one."""
    if str(dtype) == "JSON":
        return (
            f"CASE WHEN json_type({expr}) = 'VARCHAR' THEN json_extract_string({expr}, '$') "
            f"ELSE CAST({expr} AS VARCHAR) END"
        )
    if dtype.id in _WIDE_INTEGER_IDS:
        return f"CAST({expr} AS DECIMAL(38,0))"
    if dtype.id == "struct":
        fields = [(n, _plain(f"({expr}).{ident(n)}", t, names)) for n, t in _children(dtype)]
        if all(sql is None for _, sql in fields):
            return None
        packed = ", ".join(
            f"{ident(n)} := {sql if sql is not None else f'({expr}).{ident(n)}'}"
            for n, sql in fields
        )
        return f"CASE WHEN {expr} IS NULL THEN NULL ELSE struct_pack({packed}) END"
    if dtype.id == "list":
        var = next(names)
        inner = _plain(var, _children(dtype)[0][1], names)
        return None if inner is None else f"list_transform({expr}, lambda {var}: {inner})"
    if dtype.id == "map":
        (_, ktype), (_, vtype) = _children(dtype)
        var = next(names)
        key = _plain(f"{var}.key", ktype, names)
        value = _plain(f"{var}.value", vtype, names)
        if key is None and value is None:
            return None
        entry = f"struct_pack(key := {key or f'{var}.key'}, value := {value or f'{var}.value'})"
        return f"map_from_entries(list_transform(map_entries({expr}), lambda {var}: {entry}))"
    return None


def projection(columns: Sequence[tuple[str, Any]]) -> str:
    """The select list that stores the columns safely (``*`` when nothing needs changing)."""
    names = (f"_p{i}" for i in itertools.count())
    parts = []
    changed = False
    for name, dtype in columns:
        sql = _plain(ident(name), dtype, names)
        changed = changed or sql is not None
        parts.append(f"{sql} AS {ident(name)}" if sql is not None else ident(name))
    return ", ".join(parts) if changed else "*"
