"""Bad input: each case gives a clear error or exact reject records, and never loses a row."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from _ingest_data import read_rejects, write_jsonl

from sagelab.errors import InvalidInput, NotFound
from sagelab.ingest import IngestResult, ingest
from sagelab.lake import Catalog, Lake

Query = Callable[[str], list[dict[str, Any]]]


def _run(src: Path, table: str, catalog: Catalog, lake: Lake, **kw: Any) -> IngestResult:
    result = ingest(str(src), table, catalog=catalog, lake=lake, **kw)
    assert result.rows_in == result.rows_written + result.rows_rejected
    if result.rows_rejected:
        assert result.error_location is not None
        assert result.error_location.startswith(
            f"s3://warehouse/_errors/{table.replace('.', '/')}/"
        )
        assert len(read_rejects(lake, result.error_location)) == result.rows_rejected
    else:
        assert result.error_location is None
    return result


def _rejects(lake: Lake, result: IngestResult) -> list[dict[str, Any]]:
    assert result.error_location is not None
    records = read_rejects(lake, result.error_location)
    for r in records:
        assert {"source", "line", "reason", "raw", "ingested_at"} <= set(r)
    return records


def test_empty_file_is_refused(tmp_path: Path, catalog: Catalog, lake: Lake) -> None:
    for name in ("empty.jsonl", "empty.csv", "empty.json"):
        (tmp_path / name).write_bytes(b"")
        with pytest.raises(InvalidInput, match=r"empty \(0 bytes\)"):
            ingest(str(tmp_path / name), "bad.empty", catalog=catalog, lake=lake)
    assert not catalog.table_exists("bad", "empty")


def test_header_only_csv_is_refused(tmp_path: Path, catalog: Catalog, lake: Lake) -> None:
    src = tmp_path / "header.csv"
    src.write_text("id,name,price\n")
    with pytest.raises(InvalidInput, match="holds no records"):
        ingest(str(src), "bad.header", catalog=catalog, lake=lake)
    assert not catalog.table_exists("bad", "header")


def test_ragged_csv_rows_are_rejected(
    tmp_path: Path, catalog: Catalog, lake: Lake, query: Query
) -> None:
    src = tmp_path / "ragged.csv"
    src.write_text("id,name,price\n1,apple,1.5\n2,pear\n3,plum,2.5,extra\n4,fig,3.0\n")
    result = _run(src, "bad.ragged", catalog, lake)
    assert (result.rows_in, result.rows_written, result.rows_rejected) == (4, 2, 2)
    rejects = sorted(_rejects(lake, result), key=lambda r: r["line"])
    assert [(r["line"], r["raw"]) for r in rejects] == [(3, "2,pear"), (4, "3,plum,2.5,extra")]
    assert "missing columns" in rejects[0]["reason"]
    assert "too many columns" in rejects[1]["reason"]
    assert all(r["source"] == str(src) for r in rejects)
    assert query("SELECT id, name, price FROM bad.ragged ORDER BY id") == [
        {"id": 1, "name": "apple", "price": 1.5},
        {"id": 4, "name": "fig", "price": 3.0},
    ]


def test_invalid_utf8_is_rejected_with_its_bytes(
    tmp_path: Path, catalog: Catalog, lake: Lake
) -> None:
    bad_line = b'{"id": 2, "name": "caf\xe9"}'
    src = tmp_path / "latin1.jsonl"
    src.write_bytes(
        b'{"id": 1, "name": "ok"}\n' + bad_line + b'\n{"id": 3, "name": "\xc3\xa9t\xc3\xa9"}\n'
    )
    result = _run(src, "bad.utf8", catalog, lake)
    assert (result.rows_in, result.rows_written, result.rows_rejected) == (3, 2, 1)
    (reject,) = _rejects(lake, result)
    assert reject["line"] == 2
    assert reject["reason"].startswith("not valid UTF-8")
    assert reject["raw"] == bad_line.decode("utf-8", errors="replace")
    assert base64.b64decode(reject["raw_base64"]) == bad_line

    csv_line = b"2,caf\xe9"
    csv_src = tmp_path / "latin1.csv"
    csv_src.write_bytes(b"id,name\n1,ok\n" + csv_line + b"\n3,\xc3\xa9t\xc3\xa9\n")
    result = _run(csv_src, "bad.utf8_csv", catalog, lake)
    assert (result.rows_in, result.rows_written, result.rows_rejected) == (3, 2, 1)
    (reject,) = _rejects(lake, result)
    assert reject["line"] == 3 and "encoding" in reject["reason"]
    assert base64.b64decode(reject["raw_base64"]) == csv_line


def test_mixed_types_widen_to_string(
    tmp_path: Path, catalog: Catalog, lake: Lake, query: Query
) -> None:
    values: list[Any] = [1, "two", 3.5, True, {"n": 4}, [5], None]
    src = write_jsonl(tmp_path / "mixed.jsonl", [{"i": i, "v": v} for i, v in enumerate(values)])
    result = _run(src, "bad.mixed", catalog, lake)
    assert result.rows_written == len(values)
    assert {c.name: c.type for c in catalog.get_table("bad", "mixed").columns}["v"] == "string"
    rows = query("SELECT v FROM bad.mixed ORDER BY i")
    assert [r["v"] for r in rows] == ["1", "two", "3.5", "true", '{"n":4}', "[5]", None]


def test_mixed_types_in_csv_after_the_sample(
    tmp_path: Path, catalog: Catalog, lake: Lake, query: Query
) -> None:
    # PyArrow types the first 8 MiB as integers; a later 'n/a' widens the column, no row is lost.
    pad = "p" * 40
    lines = ["id,qty,pad"] + [f"{i},{i % 7},{pad}" for i in range(200_000)]
    lines += [f"200000,n/a,{pad}", f"200001,2.5,{pad}"]
    src = tmp_path / "qty.csv"
    src.write_text("\n".join(lines) + "\n")
    result = _run(src, "bad.qty", catalog, lake)
    assert result.rows_written == 200_002 and result.rows_rejected == 0
    assert {c.name: c.type for c in catalog.get_table("bad", "qty").columns}["qty"] == "string"
    assert query("SELECT qty FROM bad.qty WHERE id >= 200000 ORDER BY id") == [
        {"qty": "n/a"},
        {"qty": "2.5"},
    ]


def test_a_10mb_single_line(tmp_path: Path, catalog: Catalog, lake: Lake, query: Query) -> None:
    big = "x" * (10 * 1024 * 1024)
    src = write_jsonl(tmp_path / "big.jsonl", [{"id": 1, "blob": big}, {"id": 2, "blob": "small"}])
    result = _run(src, "bad.big", catalog, lake)
    assert result.rows_written == 2
    assert query("SELECT id, length(blob) AS n FROM bad.big ORDER BY id") == [
        {"id": 1, "n": len(big)},
        {"id": 2, "n": 5},
    ]
    csv_src = tmp_path / "big.csv"
    csv_src.write_text(f"id,blob\n1,{big}\n2,small\n")
    result = _run(csv_src, "bad.big_csv", catalog, lake)
    assert result.rows_written == 2
    assert query("SELECT max(length(blob)) AS n FROM bad.big_csv") == [{"n": len(big)}]


def test_deeply_nested_json(tmp_path: Path, catalog: Catalog, lake: Lake, query: Query) -> None:
    def nest(levels: int) -> Any:
        tree: Any = {"leaf": 1}
        for _ in range(levels):
            tree = {"d": tree}
        return tree

    deep, too_deep = nest(100), nest(300)
    src = write_jsonl(
        tmp_path / "deep.jsonl",
        [{"id": 1, "tree": deep}, {"id": 2, "tree": None}, {"id": 3, "tree": too_deep}],
    )
    result = _run(src, "bad.deep", catalog, lake)
    assert (result.rows_written, result.rows_rejected) == (2, 1)
    (reject,) = _rejects(lake, result)
    assert reject["line"] == 3 and "nested more than 128 levels" in reject["reason"]
    assert json.loads(reject["raw"]) == {"id": 3, "tree": too_deep}
    # Beyond 32 levels the rest is kept as JSON text: nothing is lost.
    column = {c.name: c.type for c in catalog.get_table("bad", "deep").columns}["tree"]
    assert column.startswith("struct<d:struct<d:") and column.count("struct<") < 40
    (row,) = query("SELECT tree FROM bad.deep WHERE id = 1")
    node = row["tree"]
    depth = 0
    while isinstance(node, dict):
        node, depth = node["d"], depth + 1
    assert json.loads(node) == _strip(deep, depth)


def _strip(tree: Any, levels: int) -> Any:
    for _ in range(levels):
        tree = tree["d"]
    return tree


def test_duplicate_column_names(tmp_path: Path, catalog: Catalog, lake: Lake) -> None:
    src = tmp_path / "dup.csv"
    src.write_text("id,Name,name\n1,a,b\n")
    with pytest.raises(InvalidInput, match=r"names the column 'name' twice \(columns 2 and 3"):
        ingest(str(src), "bad.dup", catalog=catalog, lake=lake)
    # In JSON lines a duplicate key is a bad record, not a bad file.
    lines = tmp_path / "dup.jsonl"
    lines.write_text('{"id": 1, "a": 1}\n{"id": 2, "a": 1, "a": 2}\n{"id": 3, "a": 3}\n')
    result = _run(lines, "bad.dup_json", catalog, lake)
    assert (result.rows_written, result.rows_rejected) == (2, 1)
    (reject,) = _rejects(lake, result)
    assert reject["line"] == 2 and "duplicate key" in reject["reason"]
    assert reject["raw"] == '{"id": 2, "a": 1, "a": 2}'
    # Keys that differ only in case: DuckDB would rename one; refused instead.
    cased = write_jsonl(tmp_path / "case.jsonl", [{"id": 1, "a": 1, "A": 2}])
    with pytest.raises(InvalidInput, match=r"columns 'a' and 'A'.*differ only in case"):
        ingest(str(cased), "bad.cased", catalog=catalog, lake=lake)


def test_bad_json_lines_are_rejected_exactly(
    tmp_path: Path, catalog: Catalog, lake: Lake, query: Query
) -> None:
    src = tmp_path / "events.jsonl"
    src.write_text(
        '{"id": 1, "tags": ["a"]}\n'
        '[{"id": 2}, {"id": 3}]\n'  # a JSON array inside JSON lines
        "\n"  # a blank line: not a record
        '{"id": 4, "tags": ["b"]\n'  # truncated
        '"just a string"\n'
        '{"id": 5, "tags": []}\r\n'
        "null\n"
        '{"id": 6, "tags": ["c", "d"]}'  # no newline at the end
    )
    result = _run(src, "bad.events", catalog, lake)
    assert (result.rows_in, result.rows_written, result.rows_rejected) == (7, 4, 3)
    rejects = {r["line"]: r for r in _rejects(lake, result)}
    assert sorted(rejects) == [2, 4, 5]
    assert rejects[2]["reason"].startswith("a JSON array, not an object")
    assert rejects[2]["raw"] == '[{"id": 2}, {"id": 3}]'
    assert rejects[4]["reason"].startswith("not valid JSON")
    assert rejects[4]["raw"] == '{"id": 4, "tags": ["b"]'
    assert rejects[5]["reason"].startswith("a JSON string")
    # A `null` line is a record of nulls, as DuckDB reads it.
    assert query("SELECT id, tags FROM bad.events ORDER BY id") == [
        {"id": 1, "tags": ["a"]},
        {"id": 5, "tags": []},
        {"id": 6, "tags": ["c", "d"]},
        {"id": None, "tags": None},
    ]


def test_json_array_file(tmp_path: Path, catalog: Catalog, lake: Lake) -> None:
    src = tmp_path / "items.json"
    src.write_text('[{"id": 1}, 2, {"id": 3}, [4], {"id": 5}]')
    result = _run(src, "bad.items", catalog, lake)
    assert (result.rows_written, result.rows_rejected) == (3, 2)
    rejects = sorted(_rejects(lake, result), key=lambda r: r["element"])
    assert [(r["line"], r["element"], r["raw"]) for r in rejects] == [
        (None, 2, "2"),
        (None, 4, "[4]"),
    ]
    broken = tmp_path / "broken.json"
    broken.write_text('[{"id": 1}, {"id": 2')
    with pytest.raises(InvalidInput, match="is not valid JSON"):
        ingest(str(broken), "bad.broken", catalog=catalog, lake=lake)


def test_missing_file(tmp_path: Path, catalog: Catalog, lake: Lake) -> None:
    missing = tmp_path / "nowhere" / "events.jsonl"
    with pytest.raises(NotFound, match=r"nowhere/events\.jsonl"):
        ingest(str(missing), "bad.missing", catalog=catalog, lake=lake)
    with pytest.raises(NotFound, match=r"matches no file"):
        ingest(str(tmp_path / "*.parquet"), "bad.missing", catalog=catalog, lake=lake)
    with pytest.raises(NotFound):
        ingest("s3://warehouse/none/such.csv", "bad.missing", catalog=catalog, lake=lake)


@pytest.mark.parametrize(
    "name", ["../etc.passwd", "db/../x.t", "bad.../x", "a.b.c", "Sales.t", "x"]
)
def test_table_names_are_checked(tmp_path: Path, catalog: Catalog, lake: Lake, name: str) -> None:
    src = write_jsonl(tmp_path / "a.jsonl", [{"a": 1}])
    with pytest.raises(InvalidInput):
        ingest(str(src), name, catalog=catalog, lake=lake)
    assert not lake.bucket_exists("warehouse")


def test_hostile_partition_values(
    tmp_path: Path, catalog: Catalog, lake: Lake, query: Query
) -> None:
    records = [{"k": "a/b", "v": 1}, {"k": None, "v": 2}, {"k": "é %=", "v": 3}]
    src = write_jsonl(tmp_path / "p.jsonl", records)
    result = _run(src, "bad.parts", catalog, lake, partition_by=["k"])
    assert all(f.startswith("s3://warehouse/bad/parts/k=") for f in result.files_written)
    assert query("SELECT k, v FROM bad.parts ORDER BY v") == records
    # A value that would climb out of the table's folder is refused before anything is written.
    before = lake.list("warehouse").keys
    escape = write_jsonl(tmp_path / "escape.jsonl", [{"k": "../../etc", "v": 4}])
    with pytest.raises(InvalidInput, match=r"partition \(k='\.\./\.\./etc'\) cannot be stored"):
        ingest(str(escape), "bad.parts", catalog=catalog, lake=lake)
    assert lake.list("warehouse").keys == before
    assert catalog.get_table("bad", "parts").row_count == 3


def test_every_record_rejected(tmp_path: Path, catalog: Catalog, lake: Lake) -> None:
    src = tmp_path / "junk.jsonl"
    src.write_text("not json\n{broken\n")
    result = _run(src, "bad.junk", catalog, lake)
    assert (result.rows_in, result.rows_written, result.rows_rejected) == (2, 0, 2)
    assert result.files_written == []
    assert [r["raw"] for r in sorted(_rejects(lake, result), key=lambda r: r["line"])] == [
        "not json",
        "{broken",
    ]
    assert not catalog.table_exists("bad", "junk")  # no schema to register


def test_csv_rejects_name_physical_lines(
    tmp_path: Path, catalog: Catalog, lake: Lake, query: Query
) -> None:
    # Quoted line breaks and blank lines shift records against lines; rejects name the line.
    src = tmp_path / "notes.csv"
    src.write_bytes(b'id,note\n1,"two\nlines"\n\n2,ok,extra\n3,"a\nb\nc"\n4\n5,caf\xe9\n6,fine\n')
    result = _run(src, "bad.notes", catalog, lake)
    assert (result.rows_in, result.rows_written, result.rows_rejected) == (6, 3, 3)
    rejects = sorted(_rejects(lake, result), key=lambda r: r["line"])
    assert [(r["line"], r["raw"]) for r in rejects] == [
        (5, "2,ok,extra"),
        (9, "4"),
        (10, "5,caf\ufffd"),
    ]
    assert base64.b64decode(rejects[2]["raw_base64"]) == b"5,caf\xe9"
    assert query("SELECT id, note FROM bad.notes ORDER BY id") == [
        {"id": 1, "note": "two\nlines"},
        {"id": 3, "note": "a\nb\nc"},
        {"id": 6, "note": "fine"},
    ]


def test_a_pretty_printed_json_document(
    tmp_path: Path, catalog: Catalog, lake: Lake, query: Query
) -> None:
    src = tmp_path / "config.json"
    src.write_text(
        json.dumps({"name": "a", "size": 1}, indent=2)
        + "\n"
        + json.dumps({"name": "b", "size": 2}, indent=2)
    )
    result = _run(src, "bad.pretty", catalog, lake)
    assert (result.rows_in, result.rows_written) == (2, 2)
    assert query("SELECT name, size FROM bad.pretty ORDER BY size") == [
        {"name": "a", "size": 1},
        {"name": "b", "size": 2},
    ]
    garbage = tmp_path / "garbage.json"
    garbage.write_text("this is not json\nat all\n")
    with pytest.raises(InvalidInput, match="not valid JSON"):
        ingest(str(garbage), "bad.garbage", catalog=catalog, lake=lake)


def test_unterminated_quote_is_a_clear_error(tmp_path: Path, catalog: Catalog, lake: Lake) -> None:
    src = tmp_path / "quote.csv"
    src.write_text('id,txt\n1,"never closed\n2,b\n3,c\n')
    with pytest.raises(InvalidInput, match=r"quote\.csv.*cannot be read"):
        ingest(str(src), "bad.quote", catalog=catalog, lake=lake)
    assert not catalog.table_exists("bad", "quote")
