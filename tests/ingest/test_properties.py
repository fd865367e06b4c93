"""Property: ingest, then query the table, gives back exactly the rows given."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sagelab.ingest import ingest
from sagelab.lake import Catalog, Lake

Query = Callable[[str], list[dict[str, Any]]]

# Odd but printable column names: unicode, spaces, quotes, dots, SQL words.
_NAME_CHARS = st.characters(
    categories=["L", "N", "Zs", "Pd", "Po", "Ps", "Pe", "Sm", "Sc"],
    exclude_characters="\\",
)
_NAMES = st.text(_NAME_CHARS, min_size=1, max_size=10).filter(
    lambda s: s.strip() == s and s.lower() != "rid"
) | st.sampled_from(["select", "from", "a b", "é", 'q"uote', "dot.ted", "x-y", "日本"])
_TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)
_INT = st.integers(-(2**63), 2**63 - 1)
_FLOAT = st.floats(allow_nan=False, allow_infinity=False)

# Each kind: (values, Arrow type).
_KINDS: dict[str, tuple[st.SearchStrategy[Any], pa.DataType]] = {
    "int": (_INT, pa.int64()),
    "float": (_FLOAT, pa.float64()),
    "text": (_TEXT, pa.string()),
    "bool": (st.booleans(), pa.bool_()),
    "struct": (
        st.fixed_dictionaries({"n": st.none() | _INT, "s": st.none() | _TEXT}),
        pa.struct([("n", pa.int64()), ("s", pa.string())]),
    ),
    "list": (st.lists(_INT, max_size=4), pa.list_(pa.int64())),
}


@st.composite
def tables(draw: st.DrawFn) -> tuple[list[tuple[str, str]], list[dict[str, Any]]]:
    """Columns ``(name, kind)`` and rows with nulls; ``rid`` numbers the rows."""
    names = draw(st.lists(_NAMES, min_size=1, max_size=5, unique_by=str.lower))
    kinds = [draw(st.sampled_from(sorted(_KINDS))) for _ in names]
    columns = list(zip(names, kinds, strict=True))
    n = draw(st.integers(1, 25))
    rows = []
    for rid in range(n):
        row: dict[str, Any] = {"rid": rid}
        for name, kind in columns:
            row[name] = draw(st.none() | _KINDS[kind][0])
        rows.append(row)
    return columns, rows


_TABLE_IDS = itertools.count()


def _round_trip(query: Query, table: str) -> list[dict[str, Any]]:
    return query(f"SELECT * FROM {table} ORDER BY rid")


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=tables())
def test_jsonl_round_trip(
    tmp_path: Path, catalog: Catalog, lake: Lake, query: Query, data: Any
) -> None:
    _columns, rows = data
    src = tmp_path / f"t{next(_TABLE_IDS)}.jsonl"
    src.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
    )
    table = f"prop.j{next(_TABLE_IDS)}"
    result = ingest(str(src), table, catalog=catalog, lake=lake)
    assert (result.rows_in, result.rows_written, result.rows_rejected) == (len(rows), len(rows), 0)
    got = _round_trip(query, table)
    assert got == rows


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=tables())
def test_parquet_round_trip(
    tmp_path: Path, catalog: Catalog, lake: Lake, query: Query, data: Any
) -> None:
    columns, rows = data
    schema = pa.schema([("rid", pa.int64())] + [(name, _KINDS[kind][1]) for name, kind in columns])
    src = tmp_path / f"t{next(_TABLE_IDS)}.parquet"
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), src)
    table = f"prop.p{next(_TABLE_IDS)}"
    result = ingest(str(src), table, catalog=catalog, lake=lake)
    assert (result.rows_in, result.rows_written, result.rows_rejected) == (len(rows), len(rows), 0)
    assert _round_trip(query, table) == rows
