"""Batch ingestion from real data sets: formats, sources, partitions, appends, overwrites."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from _ingest_data import write_jsonl

from sagelab.errors import InvalidInput
from sagelab.ingest import IngestResult, ingest
from sagelab.lake import Catalog, IncompatibleSchema, Lake

Query = Callable[[str], list[dict[str, Any]]]


def _adds_up(result: IngestResult) -> None:
    summary = result.as_dict()
    assert summary["rows_in"] == summary["rows_written"] + summary["rows_rejected"]
    assert set(summary) == {
        "table", "rows_in", "rows_written", "rows_rejected", "error_location",
        "files_written", "partitions", "bytes_in", "seconds", "mode",
    }  # fmt: skip
    json.dumps(summary)  # the CLI prints it as JSON


def _lake_keys(lake: Lake, bucket: str = "warehouse", prefix: str = "") -> list[str]:
    return lake.list(bucket, prefix).keys if lake.bucket_exists(bucket) else []


def test_jsonl_from_iris(
    tmp_path: Path, catalog: Catalog, lake: Lake, query: Query, iris: pd.DataFrame
) -> None:
    src = write_jsonl(tmp_path / "iris.jsonl", iris.to_dict("records"))
    result = ingest(str(src), "bio.iris", catalog=catalog, lake=lake)
    _adds_up(result)
    assert (result.rows_in, result.rows_written, result.rows_rejected) == (150, 150, 0)
    assert result.error_location is None
    assert len(result.files_written) == 1
    assert result.files_written[0].startswith("s3://warehouse/bio/iris/part-")
    info = catalog.get_table("bio", "iris")
    assert info.classification == "parquet" and info.compression == "zstd"
    assert info.location == "s3://warehouse/bio/iris/"
    assert info.row_count == 150
    assert {c.name: c.type for c in info.columns} == {
        "sepal_length": "double", "sepal_width": "double", "petal_length": "double",
        "petal_width": "double", "species": "string",
    }  # fmt: skip
    rows = query(
        "SELECT species, count(*) AS n, round(sum(petal_length), 1) AS s FROM bio.iris GROUP BY 1 ORDER BY 1"
    )
    expected = iris.groupby("species")["petal_length"].agg(["count", "sum"])
    assert [(r["species"], r["n"]) for r in rows] == [
        (k, int(v)) for k, v in expected["count"].items()
    ]
    assert [r["s"] for r in rows] == [round(v, 1) for v in expected["sum"]]


def test_csv_from_flights(
    tmp_path: Path, catalog: Catalog, lake: Lake, query: Query, flights: pd.DataFrame
) -> None:
    src = tmp_path / "flights.csv"
    flights.to_csv(src, index=False)
    result = ingest(str(src), "air.flights", catalog=catalog, lake=lake, compression="snappy")
    _adds_up(result)
    assert result.rows_written == len(flights) and result.rows_rejected == 0
    types = {c.name: c.type for c in catalog.get_table("air", "flights").columns}
    assert types["carrier"] == "string" and types["distance"] == "bigint"
    assert types["dep_delay"] == "double"  # holds missing values
    path = lake.local_path("warehouse", lake.parse_uri(result.files_written[0])[1])
    assert path is not None
    assert pq.ParquetFile(path).metadata.row_group(0).column(0).compression == "SNAPPY"
    rows = query(
        "SELECT count(*) AS n, count(dep_delay) AS d, sum(distance) AS km FROM air.flights"
    )
    assert rows == [
        {
            "n": len(flights),
            "d": int(flights["dep_delay"].notna().sum()),
            "km": int(flights["distance"].sum()),
        }
    ]


def test_json_array_from_biopsy(
    tmp_path: Path, catalog: Catalog, lake: Lake, query: Query, biopsy: pd.DataFrame
) -> None:
    src = tmp_path / "biopsy.json"
    records = json.loads(biopsy.to_json(orient="records"))
    src.write_text(json.dumps(records, indent=1), encoding="utf-8")  # an array over many lines
    result = ingest(str(src), "bio.biopsy", catalog=catalog, lake=lake)
    _adds_up(result)
    assert result.rows_written == len(biopsy) == 699
    rows = query(
        "SELECT class, count(*) AS n, count(V6) AS v6 FROM bio.biopsy GROUP BY 1 ORDER BY 1"
    )
    assert [(r["class"], r["n"]) for r in rows] == [("benign", 458), ("malignant", 241)]
    assert sum(r["v6"] for r in rows) == int(biopsy["V6"].notna().sum())


def test_parquet_source(
    tmp_path: Path, catalog: Catalog, lake: Lake, query: Query, iris: pd.DataFrame
) -> None:
    src = tmp_path / "iris.parquet"
    pq.write_table(pa.Table.from_pandas(iris, preserve_index=False), src)
    result = ingest(str(src), "bio.iris_pq", catalog=catalog, lake=lake)
    _adds_up(result)
    assert result.rows_written == 150
    assert query("SELECT count(DISTINCT species) AS k FROM bio.iris_pq") == [{"k": 3}]


def test_folder_and_glob(
    tmp_path: Path, catalog: Catalog, lake: Lake, query: Query, flights: pd.DataFrame
) -> None:
    folder = tmp_path / "drop"
    folder.mkdir()
    for i, part in enumerate([flights.iloc[:1000], flights.iloc[1000:2000], flights.iloc[2000:]]):
        part.to_csv(folder / f"flights-{i}.csv", index=False)
    (folder / "_SUCCESS").write_text("")  # metadata, not data
    by_folder = ingest(str(folder), "air.by_folder", catalog=catalog, lake=lake)
    _adds_up(by_folder)
    assert by_folder.rows_written == len(flights) and len(by_folder.files_written) == 3
    by_glob = ingest(str(folder / "flights-[01].csv"), "air.by_glob", catalog=catalog, lake=lake)
    assert by_glob.rows_written == 2000
    assert query("SELECT count(*) AS n FROM air.by_folder") == [{"n": len(flights)}]


def test_partition_by_column(
    tmp_path: Path, catalog: Catalog, lake: Lake, query: Query, flights: pd.DataFrame
) -> None:
    src = tmp_path / "flights.csv"
    flights.to_csv(src, index=False)
    result = ingest(str(src), "air.by_origin", catalog=catalog, lake=lake, partition_by=["origin"])
    _adds_up(result)
    assert sorted(result.partitions) == ["origin=EWR", "origin=JFK", "origin=LGA"]
    assert all("/origin=" in f for f in result.files_written)
    info = catalog.get_table("air", "by_origin")
    assert [k.name for k in info.partition_keys] == ["origin"]
    assert "origin" not in [c.name for c in info.columns]
    parts = {
        tuple(p.values): p.parameters["recordCount"]
        for p in catalog.get_partitions("air", "by_origin")
    }
    assert parts == {(k,): int(v) for k, v in flights["origin"].value_counts().items()}
    rows = query("SELECT count(*) AS n FROM air.by_origin WHERE origin = 'JFK'")
    assert rows == [{"n": int((flights["origin"] == "JFK").sum())}]
    # An append follows the table's partitioning without being told, and counts accumulate.
    again = ingest(str(src), "air.by_origin", catalog=catalog, lake=lake)
    assert len(again.partitions) == 3
    parts = {
        tuple(p.values): p.parameters["recordCount"]
        for p in catalog.get_partitions("air", "by_origin")
    }
    assert parts[("JFK",)] == 2 * int((flights["origin"] == "JFK").sum())
    assert catalog.get_table("air", "by_origin").row_count == 2 * len(flights)
    with pytest.raises(InvalidInput, match="partitioned by"):
        ingest(str(src), "air.by_origin", catalog=catalog, lake=lake, partition_by=["dest"])


def test_partition_by_ingest_date(
    tmp_path: Path, catalog: Catalog, lake: Lake, query: Query, iris: pd.DataFrame
) -> None:
    src = write_jsonl(tmp_path / "iris.jsonl", iris.to_dict("records"))
    today = datetime.now(UTC).date().isoformat()
    result = ingest(
        str(src), "bio.daily", catalog=catalog, lake=lake, partition_by_ingest_date=True
    )
    assert result.partitions == [f"ingest_date={today}"]
    info = catalog.get_table("bio", "daily")
    assert [(k.name, k.type) for k in info.partition_keys] == [("ingest_date", "string")]
    assert query("SELECT ingest_date, count(*) AS n FROM bio.daily GROUP BY 1") == [
        {"ingest_date": today, "n": 150}
    ]


def test_append_widens_and_adds_columns(
    tmp_path: Path, catalog: Catalog, lake: Lake, query: Query
) -> None:
    first = tmp_path / "first.parquet"
    pq.write_table(
        pa.table({"id": pa.array([1, 2], pa.int32()), "score": pa.array([10, 20], pa.int32())}),
        first,
    )
    ingest(str(first), "app.scores", catalog=catalog, lake=lake)
    assert {c.name: c.type for c in catalog.get_table("app", "scores").columns} == {
        "id": "int",
        "score": "int",
    }
    # int -> bigint, int -> double, and a new column.
    second = write_jsonl(tmp_path / "second.jsonl", [{"id": 3, "score": 2.5, "note": "late"}])
    result = ingest(str(second), "app.scores", catalog=catalog, lake=lake)
    _adds_up(result)
    info = catalog.get_table("app", "scores")
    assert [(c.name, c.type) for c in info.columns] == [
        ("id", "bigint"),
        ("score", "double"),
        ("note", "string"),
    ]
    assert info.row_count == 3
    assert info.version_id == 2
    rows = query("SELECT id, score, note FROM app.scores ORDER BY id")
    assert rows == [
        {"id": 1, "score": 10.0, "note": None},
        {"id": 2, "score": 20.0, "note": None},
        {"id": 3, "score": 2.5, "note": "late"},
    ]


def test_incompatible_change_is_refused_before_writing(
    tmp_path: Path, catalog: Catalog, lake: Lake
) -> None:
    ingest(
        str(write_jsonl(tmp_path / "a.jsonl", [{"id": 1, "n": 5}])),
        "app.strict",
        catalog=catalog,
        lake=lake,
    )
    before_keys = _lake_keys(lake)
    before = catalog.get_table("app", "strict")
    bad = write_jsonl(tmp_path / "b.jsonl", [{"id": 2, "n": "five"}, {"id": 3, "n": "six"}])
    with pytest.raises(IncompatibleSchema, match=r"'n' is bigint in the table but string"):
        ingest(str(bad), "app.strict", catalog=catalog, lake=lake)
    assert _lake_keys(lake) == before_keys  # no data file, no reject log
    after = catalog.get_table("app", "strict")
    assert (after.columns, after.row_count, after.version_id) == (
        before.columns,
        before.row_count,
        before.version_id,
    )


def test_overwrite_replaces_data(
    tmp_path: Path, catalog: Catalog, lake: Lake, query: Query, iris: pd.DataFrame
) -> None:
    src = write_jsonl(tmp_path / "iris.jsonl", iris.to_dict("records"))
    first = ingest(str(src), "bio.over", catalog=catalog, lake=lake, partition_by=["species"])
    ingest(str(src), "bio.over", catalog=catalog, lake=lake)
    assert catalog.get_table("bio", "over").row_count == 300
    small = write_jsonl(tmp_path / "small.jsonl", [{"species": "x", "petal_length": 1}])
    result = ingest(str(small), "bio.over", catalog=catalog, lake=lake, mode="overwrite")
    _adds_up(result)
    assert result.mode == "overwrite"
    info = catalog.get_table("bio", "over")
    assert info.row_count == 1 and info.partition_keys == []
    assert catalog.get_partitions("bio", "over") == []
    assert {c.name for c in info.columns} == {"species", "petal_length"}
    keys = _lake_keys(lake, prefix="bio/over/")
    assert [f"s3://warehouse/{k}" for k in keys] == result.files_written
    assert not any(f in result.files_written for f in first.files_written)
    assert query("SELECT species, petal_length FROM bio.over") == [
        {"species": "x", "petal_length": 1}
    ]


def test_progress_reports_bytes(
    tmp_path: Path, catalog: Catalog, lake: Lake, flights: pd.DataFrame
) -> None:
    src = tmp_path / "flights.csv"
    flights.to_csv(src, index=False)
    seen: list[tuple[int, int]] = []
    result = ingest(
        str(src),
        "air.progress",
        catalog=catalog,
        lake=lake,
        progress=lambda d, t: seen.append((d, t)),
    )
    assert seen and seen[-1] == (result.bytes_in, result.bytes_in) == (src.stat().st_size,) * 2
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_options_are_checked(tmp_path: Path, catalog: Catalog, lake: Lake) -> None:
    src = write_jsonl(tmp_path / "a.jsonl", [{"a": 1}])
    with pytest.raises(InvalidInput, match="mode"):
        ingest(str(src), "x.y", catalog=catalog, lake=lake, mode="merge")
    with pytest.raises(InvalidInput, match="compression"):
        ingest(str(src), "x.y", catalog=catalog, lake=lake, compression="lz4")
    with pytest.raises(InvalidInput, match="no such column"):
        ingest(str(src), "x.y", catalog=catalog, lake=lake, partition_by=["b"])
    with pytest.raises(InvalidInput, match="outside the lake"):
        ingest(str(src), "x.y", catalog=catalog, lake=lake, location=str(tmp_path / "elsewhere"))
    with pytest.raises(InvalidInput, match="format"):
        ingest(str(src), "x.y", catalog=catalog, lake=lake, format="xml")
    assert not catalog.table_exists("x", "y")


def test_fast_path_never_changes_values_after_the_sample(
    tmp_path: Path, catalog: Catalog, lake: Lake, query: Query
) -> None:
    # DuckDB infers types from the first 20,480 records; what comes later must still be exact.
    n = 21_000
    records: list[dict[str, Any]] = [
        {"i": i, "f": float(i), "b": True, "z": None} for i in range(n)
    ]
    records.append({"i": 1.5, "f": 1.0, "b": True, "z": None})  # a fraction in an integer column
    records.append({"i": 7, "f": 2.0, "b": 1, "z": None})  # a number in a boolean column
    records.append({"i": 8, "f": 3.0, "b": False, "z": "late"})  # a value in an all-null column
    records.append({"i": 9, "f": 4.0, "b": False, "z": None, "new": "key"})  # a key never seen
    src = write_jsonl(tmp_path / "late.jsonl", records)
    result = ingest(str(src), "app.late", catalog=catalog, lake=lake)
    _adds_up(result)
    assert result.rows_written == n + 4 and result.rows_rejected == 0
    types = {c.name: c.type for c in catalog.get_table("app", "late").columns}
    assert types == {"i": "double", "f": "double", "b": "string", "z": "string", "new": "string"}
    special = query(
        "SELECT i, b, z, new FROM app.late "
        "WHERE i = 1.5 OR b = '1' OR z IS NOT NULL OR new IS NOT NULL ORDER BY i"
    )
    assert special == [
        {"i": 1.5, "b": "true", "z": None, "new": None},
        {"i": 7.0, "b": "1", "z": None, "new": None},
        {"i": 8.0, "b": "false", "z": "late", "new": None},
        {"i": 9.0, "b": "false", "z": None, "new": "key"},
    ]


def test_nested_values_after_the_sample_stay_exact(
    tmp_path: Path, catalog: Catalog, lake: Lake, query: Query
) -> None:
    records: list[dict[str, Any]] = [{"s": {"n": i, "t": "x"}, "l": [i]} for i in range(21_000)]
    records.append({"s": {"n": 1.5, "t": "y"}, "l": [2, 2.5]})
    src = write_jsonl(tmp_path / "nested.jsonl", records)
    result = ingest(str(src), "app.nested", catalog=catalog, lake=lake)
    _adds_up(result)
    types = {c.name: c.type for c in catalog.get_table("app", "nested").columns}
    assert types == {"s": "struct<n:double,t:string>", "l": "array<double>"}
    assert query("SELECT s, l FROM app.nested WHERE s.t = 'y'") == [
        {"s": {"n": 1.5, "t": "y"}, "l": [2.0, 2.5]}
    ]


def test_sources_in_the_lake_and_at_urls(
    tmp_path: Path, catalog: Catalog, lake: Lake, iris: pd.DataFrame
) -> None:
    body = "".join(json.dumps(r) + "\n" for r in iris.to_dict("records")).encode()
    lake.create_bucket("landing")
    lake.put("landing", "drops/iris.jsonl", body)
    from_lake = ingest("s3://landing/drops/", "bio.from_lake", catalog=catalog, lake=lake)
    assert from_lake.rows_written == 150
    # Any fsspec URL: here fsspec's in-memory file system stands in for a remote store.
    root = f"memory://ingest-{uuid.uuid4().hex}"
    remote = Lake(root)
    remote.create_bucket("raw")
    remote.put("raw", "iris.jsonl", body)
    try:
        from_url = ingest(f"{root}/raw/iris.jsonl", "bio.from_url", catalog=catalog, lake=lake)
    finally:
        remote.delete_bucket("raw", force=True)
    assert from_url.rows_written == 150
    assert from_url.bytes_in == len(body)


def test_csv_dialect_overrides(tmp_path: Path, catalog: Catalog, lake: Lake, query: Query) -> None:
    tsv = tmp_path / "scores.tsv"
    tsv.write_text("name\tscore\nann\t1\nbob\t2\n")
    assert ingest(str(tsv), "app.tsv", catalog=catalog, lake=lake).rows_written == 2
    assert query("SELECT name, score FROM app.tsv ORDER BY score") == [
        {"name": "ann", "score": 1},
        {"name": "bob", "score": 2},
    ]
    semi = tmp_path / "noheader.txt"
    semi.write_text("ann;1\nbob;2\n")
    result = ingest(
        str(semi),
        "app.semi",
        catalog=catalog,
        lake=lake,
        format="csv",
        csv_delimiter=";",
        csv_header=False,
    )
    assert result.rows_written == 2
    assert [c.name for c in catalog.get_table("app", "semi").columns] == ["column0", "column1"]


def test_progress_on_json(tmp_path: Path, catalog: Catalog, lake: Lake) -> None:
    src = write_jsonl(tmp_path / "n.jsonl", [{"i": i} for i in range(1000)])
    seen: list[tuple[int, int]] = []
    ingest(
        str(src),
        "app.progress",
        catalog=catalog,
        lake=lake,
        progress=lambda d, t: seen.append((d, t)),
    )
    size = src.stat().st_size
    assert seen[-1] == (size, size)
